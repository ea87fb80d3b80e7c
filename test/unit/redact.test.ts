import { describe, expect, test } from '@jest/globals';
import { redact, redactArgs, redactValue } from '../../src/output/redact.js';
import { reportError } from '../../src/output/errors.js';
import { GkubeError } from '../../src/errors.js';
import { main } from '../../src/cli/main.js';
import { buildContext, etcdConnection, etcdPrefix } from '../../src/cli/setup.js';

describe('redact', () => {
  test.each([
    ['https://jenkins:s3cret@git.example.com/team/app.git', 'https://***@git.example.com/team/app.git'],
    ['http://token@registry.local/v2/', 'http://***@registry.local/v2/'],
    ['Authorization: Bearer abc.def.ghi', 'Authorization: Bearer ***'],
    ['url?token=abc123&x=1', 'url?token=***&x=1'],
    ['password=hunter2 next', 'password=*** next'],
    ['https://git.example.com/team/app.git', 'https://git.example.com/team/app.git'],
    // a password holding / or @: masked up to the last @, not up to the first / or @
    ['"http://root:ab/cd+ef@etcd-1:2379" is bad', '"http://***@etcd-1:2379" is bad'],
    ['http://root:p@ss@etcd-1:2379', 'http://***@etcd-1:2379'],
    ['http://root:a/b@c:d@etcd-1:2379/v3 and https://etcd-2:2379', 'http://***@etcd-1:2379/v3 and https://etcd-2:2379'],
    // secret-named keys, _ and . and - in the name included
    ['API_TOKEN=abc123 next', 'API_TOKEN=*** next'],
    ['export GITHUB_TOKEN=ghp_x; DB_PASSWORD=p@ss/w0rd', 'export GITHUB_TOKEN=*** DB_PASSWORD=***'],
    ['--registry-auth=abc', '--registry-auth=***'],
    ['container.env.API_KEY=abc', 'container.env.API_KEY=***'],
    ['password="hunter 2" then', 'password=*** then'],
    ["password='hunter 2' then", 'password=*** then'],
    ['secret=', 'secret='],
    // masked already: the punctuation after it stays
    ['--set container.env.API_TOKEN=***: container.env.API_TOKEN: must be a string', '--set container.env.API_TOKEN=***: container.env.API_TOKEN: must be a string'],
    ["unknown option '--api-token=***'", "unknown option '--api-token=***'"],
  ])('%s', (input, expected) => {
    expect(redact(input)).toBe(expected);
  });

  test('JSON stays JSON, with every secret masked', () => {
    const data = {
      reason: 'step init: API_TOKEN=abc123',
      command: 'login --password="hunter 2" && run',
      url: 'https://root:a/b@c@git.example.com/x.git',
      empty: 'token=',
      list: ['secret=x', 'plain'],
    };
    const text = redact(JSON.stringify(data, null, 2));
    expect(JSON.parse(text)).toEqual({
      reason: 'step init: API_TOKEN=***',
      command: 'login --password=*** && run',
      url: 'https://***@git.example.com/x.git',
      empty: 'token=',
      list: ['secret=***', 'plain'],
    });
    expect(text).not.toMatch(/abc123|hunter|a\/b|root/);
  });
});

describe('redactValue masks a whole value, whatever characters its secret holds', () => {
  test.each([
    ['http://root:ab/cd+ef@etcd-1:2379', 'http://***@etcd-1:2379'],
    ['http://root:p@ss@etcd-1:2379', 'http://***@etcd-1:2379'],
    ['https://root:a b@etcd-1:2379', 'https://***@etcd-1:2379'],
    ['root:secret@etcd-1:2379', '***@etcd-1:2379'],
    ['http://etcd-1:2379', 'http://etcd-1:2379'],
    ['--etcd-endpoint=http://root:a b@etcd-1:2379', '--etcd-endpoint=http://***@etcd-1:2379'],
    ['--db-password=my secret', '--db-password=***'],
    ['--API_TOKEN=a@b c', '--API_TOKEN=***'],
    ['containr.env.API_TOKEN=a b@c', 'containr.env.API_TOKEN=***'],
    ['http://u:p@h:1/?token=a@b', 'http://***@h:1/?token=***'],
    ['--etcd-prefix=/gkube/v1', '--etcd-prefix=/gkube/v1'],
  ])('%s', (input, expected) => {
    expect(redactValue(input)).toBe(expected);
  });

  test('redactArgs masks each argument that holds a secret where the text quotes it', () => {
    const args = ['list', '--db-password=my secret word'];
    expect(redactArgs("error: unknown option '--db-password=my secret word'\n", args)).toBe("error: unknown option '--db-password=***'\n");
  });
});

/** Runs the CLI in-process with captured streams. */
async function run(argv: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env, cwd: process.cwd() });
  return { code, stdout, stderr };
}

describe("the parser's own errors are masked", () => {
  test.each([
    [['list', '--etcd-endpoint=http://root:s3cret@etcd-1:2379'], "error: unknown option '--etcd-endpoint=http://***@etcd-1:2379'"],
    [['list', '--etcd-endpoint=http://root:s3/cr@et@etcd-1:2379'], "error: unknown option '--etcd-endpoint=http://***@etcd-1:2379'"],
    [['list', '--db-password=my s3cret'], "error: unknown option '--db-password=***'"],
    [['list', '--API_TOKEN=s3cret'], "error: unknown option '--API_TOKEN=***'"],
    [['list', '-o', 'token=s3cret'], "error: option '-o, --output <format>' argument 'token=***' is invalid. Allowed choices are text, json."],
  ])('gkube %j', async (argv, line) => {
    const { code, stdout, stderr } = await run(argv);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.split('\n')[0]).toBe(line);
    expect(stderr).not.toMatch(/s3cret|s3\/cr|my s3/);
  });
});

describe('etcd settings', () => {
  test.each([
    ['http://root:ab/cd+ef@etcd-1:2379', '"http://***@etcd-1:2379"'],
    ['http://root:p@ss@etcd-1:2379', '"http://***@etcd-1:2379"'],
    ['https://root:s3cret@etcd-1', '"https://***@etcd-1"'],
    ['root:s3cret@etcd-1:2379', '"***@etcd-1:2379"'],
    ['http://etcd-1:2379,http://root:p@ss/w@etcd-2:2379', '"http://***@etcd-2:2379"'],
  ])('an endpoint %j is named masked: %s', (endpoints, shown) => {
    let message = '';
    try {
      etcdConnection({ etcdEndpoints: endpoints }, {});
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe(`--etcd-endpoints: ${shown} is not an etcd endpoint URL like https://etcd-1:2379 (scheme http or https, host and port, no path)`);
  });

  test('an empty GKUBE_ETCD_ENDPOINTS or ETCDCTL_ENDPOINTS counts as unset', () => {
    expect(etcdConnection({}, { GKUBE_ETCD_ENDPOINTS: '', ETCDCTL_ENDPOINTS: 'http://etcd-9:2379' }).endpoints).toEqual(['http://etcd-9:2379']);
    expect(etcdConnection({}, { GKUBE_ETCD_ENDPOINTS: '', ETCDCTL_ENDPOINTS: '' }).endpoints).toEqual(['http://127.0.0.1:2379']);
    expect(etcdConnection({}, { GKUBE_ETCD_ENDPOINTS: 'http://etcd-1:2379', ETCDCTL_ENDPOINTS: 'http://etcd-9:2379' }).endpoints).toEqual(['http://etcd-1:2379']);
    // The flag given empty is a mistake, not "unset".
    expect(() => etcdConnection({ etcdEndpoints: '' }, {})).toThrow('--etcd-endpoints: no etcd endpoint given');
  });

  test('an empty GKUBE_ETCD_PREFIX counts as unset', () => {
    expect(etcdPrefix({}, { GKUBE_ETCD_PREFIX: '' })).toBe('/gkube/v1');
    expect(etcdPrefix({}, { GKUBE_ETCD_PREFIX: '/ci/gkube' })).toBe('/ci/gkube');
    expect(() => etcdPrefix({ etcdPrefix: '' }, {})).toThrow('--etcd-prefix: "" is not a key prefix');
  });
});

describe('progress lines', () => {
  test('are masked as errors are', async () => {
    let stderr = '';
    const ctx = await buildContext({
      args: [],
      options: { output: 'text' },
      cli: { stdout: { write: () => true }, stderr: { write: (s: string) => (stderr += s) }, env: {}, cwd: process.cwd() },
    });
    try {
      ctx.progress('the change failed: fetch https://ci:p@ss/w0rd@git.example.com/app.git failed; API_TOKEN=abc123 was set');
    } finally {
      ctx.close();
    }
    expect(stderr).toBe('the change failed: fetch https://***@git.example.com/app.git failed; API_TOKEN=*** was set\n');
  });
});

describe('reportError', () => {
  test('prints message and hint with secrets masked and returns the error exit code', () => {
    let err = '';
    const streams = { stdout: { write: () => true }, stderr: { write: (s: string) => (err += s) } };
    const code = reportError(
      new GkubeError('DEPENDENCY_UNREACHABLE', 'etcd at https://root:pw@10.0.0.1:2379 did not answer within 10s', { hint: 'check GKUBE_ETCD_ENDPOINTS' }),
      streams,
      false,
    );
    expect(code).toBe(4);
    expect(err).toBe('error: etcd at https://***@10.0.0.1:2379 did not answer within 10s\nhint: check GKUBE_ETCD_ENDPOINTS\n');
  });

  test('an unexpected error is reported as internal, exit 1', () => {
    let err = '';
    const code = reportError(new TypeError('x is undefined'), { stdout: { write: () => true }, stderr: { write: (s: string) => (err += s) } }, false);
    expect(code).toBe(1);
    expect(err).toMatch(/^error: internal error: x is undefined\nhint: rerun with --verbose/);
  });
});
