import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Ajv } from 'ajv';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gkubeErrorOf } from '../helpers/errors.js';
import {
  configDigest,
  configSchema,
  defaults,
  loadConfig,
  maxConfigFileBytes,
  type AppConfig,
  type LoadConfigInput,
  type LoadedConfig,
} from '../../src/config/index.js';

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'gkube-config-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fresh working directory holding the given files (path → content). */
async function workspace(files: Record<string, string | Buffer> = {}): Promise<string> {
  const dir = await mkdtemp(join(root, 'ws-'));
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}

interface Case {
  /** Content of <cwd>/gkube.yaml; absent means no file. */
  yaml?: string;
  env?: Record<string, string | undefined>;
  sets?: string[];
  flags?: LoadConfigInput['flags'];
  file?: string;
}

async function load(c: Case): Promise<LoadedConfig> {
  const cwd = await workspace(c.yaml === undefined ? {} : { 'gkube.yaml': c.yaml });
  return loadConfig({ cwd, env: c.env ?? {}, sets: c.sets ?? [], flags: c.flags ?? {}, ...(c.file === undefined ? {} : { file: c.file }) });
}

const defaultConfig: AppConfig = {
  image: { tagPolicy: 'nearest' },
  namespace: 'default',
  container: { port: 8080, env: {}, resources: {}, runAsUser: 1000, runAsNonRoot: true },
  code: { path: '/srv/app', exclude: [] },
  init: [],
  reload: [],
  health: { timeout: '60s', retries: 5 },
  storage: {
    provider: 'storageclass',
    size: '1Gi',
    retain: false,
    glusterfs: { servers: [], brickRoot: '/data/gluster', replica: 1, arbiter: false, mode: 'in-tree' },
  },
  ttl: '8h',
};

describe('defaults', () => {
  test('no file, no env, no flags: the built-in defaults', async () => {
    const loaded = await load({});
    expect(loaded.config).toEqual(defaultConfig);
    expect(loaded.source).toBeUndefined();
    expect(loaded.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  test('an empty file, or one of comments only, is the defaults', async () => {
    for (const yaml of ['', '# nothing yet\n', '---\n']) {
      const loaded = await load({ yaml });
      expect(loaded.config).toEqual(defaultConfig);
      expect(loaded.source).toMatch(/gkube\.yaml$/);
    }
  });

  test('the exported defaults are frozen and match the documented ones', () => {
    expect(defaults).toEqual(defaultConfig);
    expect(Object.isFrozen(defaults.storage.glusterfs.servers)).toBe(true);
  });

  test('the loaded config is a copy: changing it does not change the defaults', async () => {
    const { config } = await load({});
    config.init.push('echo');
    config.storage.glusterfs.servers.push('x');
    expect(defaults.init).toEqual([]);
    expect((await load({})).config).toEqual(defaultConfig);
  });

  test('the schema is a valid draft-07 schema that accepts the defaults', () => {
    const ajv = new Ajv({ strict: false, logger: false });
    ajv.addFormat('gkube-duration', true);
    expect(ajv.validateSchema(configSchema)).toBe(true);
    const validate = ajv.compile(configSchema);
    expect(validate(defaults)).toBe(true);
  });
});

const fullYaml = `# every key gkube.yaml knows
image:
  repository: registry.example.com:5000/team/app
  tagPolicy: exact
namespace: team-a
container:
  command: [/usr/bin/app]
  args: [--serve, --verbose]
  port: 9090
  env:
    MODE: production
    API_TOKEN: "s3cret"
  resources:
    requests: { cpu: 250m, memory: 256Mi }
    limits: { cpu: 1, memory: 1Gi }
  runAsUser: 1001
  runAsNonRoot: true
code:
  path: /srv/www
  exclude: ['*.log', 'node_modules/**']
init:
  - npm ci
  - npm run migrate
reload: [kill -HUP 1]
health:
  http: { path: /healthz }
  timeout: 2m
  retries: 3
storage:
  provider: glusterfs
  size: 5Gi
  storageClassName: fast
  retain: true
  glusterfs:
    servers: [gluster-1.example.com, 10.0.0.12, "fd00::12"]
    brickRoot: /bricks/gkube
    replica: 3
    arbiter: true
    ssh: admin@gluster-1.example.com
    mode: storageclass
    storageClassName: glusterfs-csi
ttl: 2d
`;

const fullConfig: AppConfig = {
  image: { repository: 'registry.example.com:5000/team/app', tagPolicy: 'exact' },
  namespace: 'team-a',
  container: {
    command: ['/usr/bin/app'],
    args: ['--serve', '--verbose'],
    port: 9090,
    env: { MODE: 'production', API_TOKEN: 's3cret' },
    resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '1Gi' } },
    runAsUser: 1001,
    runAsNonRoot: true,
  },
  code: { path: '/srv/www', exclude: ['*.log', 'node_modules/**'] },
  init: ['npm ci', 'npm run migrate'],
  reload: ['kill -HUP 1'],
  health: { http: { path: '/healthz', port: 9090 }, timeout: '2m', retries: 3 },
  storage: {
    provider: 'glusterfs',
    size: '5Gi',
    storageClassName: 'fast',
    retain: true,
    glusterfs: {
      servers: ['gluster-1.example.com', '10.0.0.12', 'fd00::12'],
      brickRoot: '/bricks/gkube',
      replica: 3,
      arbiter: true,
      ssh: 'admin@gluster-1.example.com',
      mode: 'storageclass',
      storageClassName: 'glusterfs-csi',
    },
  },
  ttl: '2d',
};

describe('a file', () => {
  test('a full valid file is read as written; numbers at quantity keys become text; health.http.port follows container.port', async () => {
    const cwd = await workspace({ 'gkube.yaml': fullYaml });
    const loaded = await loadConfig({ cwd, env: {}, sets: [], flags: {} });
    expect(loaded.config).toEqual(fullConfig);
    expect(loaded.source).toBe(join(cwd, 'gkube.yaml'));
  });

  test('--config names another file, relative to cwd', async () => {
    const cwd = await workspace({ 'deploy/prod.yaml': 'namespace: prod\n', 'gkube.yaml': 'namespace: ignored\n' });
    const loaded = await loadConfig({ cwd, file: 'deploy/prod.yaml', env: {}, sets: [], flags: {} });
    expect(loaded.config.namespace).toBe('prod');
    expect(loaded.source).toBe(join(cwd, 'deploy/prod.yaml'));
  });

  test('--config may be absolute', async () => {
    const other = await workspace({ 'x.yaml': 'namespace: abs\n' });
    const cwd = await workspace();
    const loaded = await loadConfig({ cwd, file: join(other, 'x.yaml'), env: {}, sets: [], flags: {} });
    expect(loaded.config.namespace).toBe('abs');
  });

  test('health.exec, a partial glusterfs block, and YAML anchors', async () => {
    const { config } = await load({
      yaml: 'health:\n  exec: &probe [cat, /tmp/ready]\ninit: *probe\nstorage:\n  provider: glusterfs\n  glusterfs:\n    servers: [g1]\n',
    });
    expect(config.health).toEqual({ exec: ['cat', '/tmp/ready'], timeout: '60s', retries: 5 });
    expect(config.init).toEqual(['cat', '/tmp/ready']);
    expect(config.storage.glusterfs).toEqual({ servers: ['g1'], brickRoot: '/data/gluster', replica: 1, arbiter: false, mode: 'in-tree' });
  });

  test.each<[string, string, (c: AppConfig) => unknown, unknown]>([
    ['root, when runAsNonRoot is false', 'container:\n  runAsUser: 0\n  runAsNonRoot: false\n', (c) => c.container.runAsUser, 0],
    ['an arbiter with replica 3', 'storage:\n  glusterfs:\n    replica: 3\n    arbiter: true\n', (c) => c.storage.glusterfs.arbiter, true],
    ['a registry on localhost with a port', 'image:\n  repository: localhost:5000/app\n', (c) => c.image.repository, 'localhost:5000/app'],
    ['a repository without a registry', 'image:\n  repository: team/my-app__x\n', (c) => c.image.repository, 'team/my-app__x'],
    ['fractional cpu as a number', 'container:\n  resources:\n    limits: { cpu: 0.5 }\n', (c) => c.container.resources.limits?.cpu, '0.5'],
    ['env values that look like numbers, quoted', 'container:\n  env: { PORT: "8080", DEBUG: "true" }\n', (c) => c.container.env, { PORT: '8080', DEBUG: 'true' }],
    ['glusterfs mode storageclass with its class', 'storage:\n  glusterfs:\n    mode: storageclass\n    storageClassName: gluster\n', (c) => c.storage.glusterfs.storageClassName, 'gluster'],
  ])('accepts %s', async (_name, yaml, pick, expected) => {
    expect(pick((await load({ yaml })).config)).toEqual(expected);
  });

  test('a file of exactly 1 MiB is accepted', async () => {
    const yaml = 'namespace: big\n';
    const loaded = await load({ yaml: yaml + '#'.repeat(maxConfigFileBytes - yaml.length - 1) + '\n' });
    expect(loaded.config.namespace).toBe('big');
  });

  test('nothing is read from process.env: only the env passed in counts', async () => {
    const saved = process.env['GKUBE_NAMESPACE'];
    process.env['GKUBE_NAMESPACE'] = 'from-process';
    try {
      expect((await load({})).config.namespace).toBe('default');
    } finally {
      if (saved === undefined) delete process.env['GKUBE_NAMESPACE'];
      else process.env['GKUBE_NAMESPACE'] = saved;
    }
  });
});

describe('precedence: defaults < file < env < --set < flags', () => {
  const file = 'namespace: from-file\nimage:\n  repository: file.example.com/app\n  tagPolicy: exact\nstorage:\n  storageClassName: file-class\n';
  const env = { GKUBE_NAMESPACE: 'from-env', GKUBE_IMAGE: 'env.example.com/app', GKUBE_TAG_POLICY: 'commit' };
  const sets = ['namespace=from-set', 'image.repository=set.example.com/app', 'image.tagPolicy=nearest'];
  const flags = { namespace: 'from-flag', imageRepository: 'flag.example.com/app', tagPolicy: 'exact' };

  test.each<[string, Case, { namespace: string; repository: string | undefined; tagPolicy: string }]>([
    ['defaults', {}, { namespace: 'default', repository: undefined, tagPolicy: 'nearest' }],
    ['file over defaults', { yaml: file }, { namespace: 'from-file', repository: 'file.example.com/app', tagPolicy: 'exact' }],
    ['env over file', { yaml: file, env }, { namespace: 'from-env', repository: 'env.example.com/app', tagPolicy: 'commit' }],
    ['--set over env', { yaml: file, env, sets }, { namespace: 'from-set', repository: 'set.example.com/app', tagPolicy: 'nearest' }],
    ['flags over --set', { yaml: file, env, sets, flags }, { namespace: 'from-flag', repository: 'flag.example.com/app', tagPolicy: 'exact' }],
    ['env over defaults, no file', { env }, { namespace: 'from-env', repository: 'env.example.com/app', tagPolicy: 'commit' }],
    ['flags over file, no env or --set', { yaml: file, flags }, { namespace: 'from-flag', repository: 'flag.example.com/app', tagPolicy: 'exact' }],
    ['one key from each source', { yaml: file, env: { GKUBE_IMAGE: 'env.example.com/app' }, flags: { tagPolicy: 'commit' } }, { namespace: 'from-file', repository: 'env.example.com/app', tagPolicy: 'commit' }],
    ['an empty env var counts as unset', { yaml: file, env: { GKUBE_NAMESPACE: '', GKUBE_IMAGE: undefined } }, { namespace: 'from-file', repository: 'file.example.com/app', tagPolicy: 'exact' }],
    ['the later --set wins', { sets: ['namespace=first', 'namespace=second'] }, { namespace: 'second', repository: undefined, tagPolicy: 'nearest' }],
    ['--set null unsets the file value: the default applies', { yaml: file, sets: ['namespace=null', 'image.repository=~'] }, { namespace: 'default', repository: undefined, tagPolicy: 'exact' }],
  ])('%s', async (_name, c, expected) => {
    const { config } = await load(c);
    expect({ namespace: config.namespace, repository: config.image.repository, tagPolicy: config.image.tagPolicy }).toEqual(expected);
  });

  test('mappings merge key by key, lists are replaced whole', async () => {
    const { config } = await load({
      yaml: 'container:\n  env: { A: "1", B: "2" }\n  port: 9000\ninit: [one, two]\n',
      sets: ['container.env.B="3"', 'container.env.C=x', 'init={three}'],
    });
    expect(config.container.env).toEqual({ A: '1', B: '3', C: 'x' });
    expect(config.container.port).toBe(9000);
    expect(config.init).toEqual(['three']);
  });

  test('--set key[i] replaces or appends one item of the list so far', async () => {
    const { config } = await load({ yaml: 'init: [one, two]\n', sets: ['init[1]=TWO', 'init[2]=three', 'reload[0]=first'] });
    expect(config.init).toEqual(['one', 'TWO', 'three']);
    expect(config.reload).toEqual(['first']);
  });

  test('--set values are typed as YAML scalars', async () => {
    const { config } = await load({ sets: ['container.port=9000', 'storage.retain=true', 'container.env.PORT="9000"', 'container.command={sh,-c,exec app}', 'storage.size=2'] });
    expect(config.container.port).toBe(9000);
    expect(config.storage.retain).toBe(true);
    expect(config.container.env).toEqual({ PORT: '9000' });
    expect(config.container.command).toEqual(['sh', '-c', 'exec app']);
    expect(config.storage.size).toBe('2');
  });

  test('health.http.port set explicitly is kept; a null in the file unsets a key', async () => {
    const { config } = await load({ yaml: 'health:\n  http: { path: /h, port: 81 }\nstorage:\n  storageClassName: ~\n' });
    expect(config.health.http).toEqual({ path: '/h', port: 81 });
    expect(config.storage.storageClassName).toBeUndefined();
  });
});

// [name, case, message, hint]: each bad input gives exactly one line.
const badInputs: [string, Case, string, string?][] = [
  // unknown keys
  ['unknown top-level key, with a suggestion', { yaml: 'contaner:\n  port: 80\n' }, 'gkube.yaml: contaner: unknown key (did you mean container?)'],
  ['unknown nested key, with a suggestion', { yaml: 'container:\n  prot: 80\n' }, 'gkube.yaml: container.prot: unknown key (did you mean port?)'],
  ['a key with the wrong case', { yaml: 'image:\n  tagpolicy: exact\n' }, 'gkube.yaml: image.tagpolicy: unknown key (did you mean tagPolicy?)'],
  ['a key at the wrong level', { yaml: 'port: 8080\n' }, 'gkube.yaml: port: unknown key here (did you mean container.port or health.http.port?)'],
  ['an unknown key far from any', { yaml: 'storage:\n  flavour: x\n' }, 'gkube.yaml: storage.flavour: unknown key (known keys here: provider, size, storageClassName, retain, glusterfs)'],
  ['__proto__ is an unknown key, not a prototype', { yaml: '__proto__:\n  polluted: true\n' }, 'gkube.yaml: __proto__: unknown key (known keys here: image, namespace, container, code, init, reload, health, storage, ttl)'],
  ['an unknown key that only unsets', { sets: ['storage.clas=null'] }, '--set storage.clas=***: storage.clas: unknown key (known keys here: provider, size, storageClassName, retain, glusterfs)'],
  ['unknown key in --set, with a suggestion', { sets: ['contaner.port=80'] }, '--set contaner.port=***: contaner: unknown key (did you mean container?)'],
  ['a secret-named key misspelt in --set: its value is hidden', { sets: ['containr.env.API_TOKEN=s3cret'] }, '--set containr.env.API_TOKEN=***: containr: unknown key (did you mean container?)'],
  // wrong types and ranges
  ['port not an integer', { yaml: 'container:\n  port: http\n' }, 'gkube.yaml: container.port: must be an integer from 1 to 65535 (got "http")'],
  ['port out of range', { yaml: 'container:\n  port: 70000\n' }, 'gkube.yaml: container.port: must be an integer from 1 to 65535 (got 70000)'],
  ['port a fraction', { yaml: 'container:\n  port: 80.5\n' }, 'gkube.yaml: container.port: must be an integer from 1 to 65535 (got 80.5)'],
  ['a string where a list goes', { yaml: 'init: npm ci\n' }, 'gkube.yaml: init: must be a list of shell commands (strings) (got "npm ci")'],
  ['an empty command in a list', { yaml: 'reload: [ok, ""]\n' }, 'gkube.yaml: reload[1]: must be a non-empty shell command (got "")'],
  ['a mapping where a string goes', { yaml: 'namespace: { a: 1 }\n' }, 'gkube.yaml: namespace: must be a DNS-1123 label: at most 63 lowercase letters, digits and -, starting and ending with a letter or digit (got a mapping)'],
  ['a list where a mapping goes', { yaml: 'image: [a]\n' }, 'gkube.yaml: image: must be a mapping (got a list)'],
  ['a boolean written as a string', { yaml: 'storage:\n  retain: "yes"\n' }, 'gkube.yaml: storage.retain: must be true or false (got "yes")'],
  ['a bad enum', { yaml: 'image:\n  tagPolicy: latest\n' }, 'gkube.yaml: image.tagPolicy: must be nearest, exact or commit (got "latest")'],
  ['negative retries', { yaml: 'health:\n  retries: -1\n' }, 'gkube.yaml: health.retries: must be an integer from 0 to 1000 (got -1)'],
  ['runAsUser 0 while runAsNonRoot', { yaml: 'container:\n  runAsUser: 0\n' }, 'gkube.yaml: container.runAsUser: must not be 0 while container.runAsNonRoot is true'],
  // durations
  ['negative duration', { yaml: 'health:\n  timeout: -5m\n' }, 'gkube.yaml: health.timeout: must be a positive duration like 90s, 10m or 1h30m (got "-5m")'],
  ['zero duration', { yaml: 'ttl: 0s\n' }, 'gkube.yaml: ttl: must be a positive duration like 90s, 10m or 1h30m (got "0s")'],
  ['garbage duration', { yaml: 'ttl: soon\n' }, 'gkube.yaml: ttl: must be a positive duration like 90s, 10m or 1h30m (got "soon")'],
  ['a duration without a unit', { yaml: 'ttl: 90\n' }, 'gkube.yaml: ttl: must be a positive duration like 90s, 10m or 1h30m (got 90)'],
  ['an overlong duration', { sets: ['ttl=99999999999999999999h'] }, '--set ttl=99999999999999999999h: ttl: is longer than 24d, the longest duration gkube can wait'],
  ['a duration longer than a timer can wait', { yaml: 'health:\n  timeout: 30d\n' }, 'gkube.yaml: health.timeout: is longer than 24d, the longest duration gkube can wait (got "30d")'],
  // quantities
  ['bad quantity in --set', { sets: ['storage.size=lots'] }, '--set storage.size=lots: storage.size: must be a quantity like 1Gi or 500M'],
  ['bad quantity in the file', { yaml: 'container:\n  resources:\n    limits:\n      memory: 1GB\n' }, 'gkube.yaml: container.resources.limits.memory: must be a quantity like 1Gi or 500M (got "1GB")'],
  ['negative quantity', { yaml: 'container:\n  resources:\n    requests:\n      cpu: -1\n' }, 'gkube.yaml: container.resources.requests.cpu: must be a quantity like 1Gi or 500M (got "-1")'],
  ['zero storage size', { sets: ['storage.size=0Gi'] }, '--set storage.size=0Gi: storage.size: must be larger than zero'],
  // namespace
  ['bad namespace from env', { env: { GKUBE_NAMESPACE: 'Team_A' } }, 'GKUBE_NAMESPACE: namespace: must be a DNS-1123 label: at most 63 lowercase letters, digits and -, starting and ending with a letter or digit (got "Team_A")'],
  ['namespace too long from a flag', { flags: { namespace: 'a'.repeat(64) } }, `--namespace: namespace: must be a DNS-1123 label: at most 63 lowercase letters, digits and -, starting and ending with a letter or digit (got "${'a'.repeat(60)}…")`],
  ['namespace ending in -', { yaml: 'namespace: team-\n' }, 'gkube.yaml: namespace: must be a DNS-1123 label: at most 63 lowercase letters, digits and -, starting and ending with a letter or digit (got "team-")'],
  ['empty namespace flag', { flags: { namespace: '' } }, '--namespace: namespace: must be a DNS-1123 label: at most 63 lowercase letters, digits and -, starting and ending with a letter or digit (got "")'],
  // image repository
  ...(
    [
      ['with a tag', 'registry.example.com/team/app:v1'],
      ['with a digest', `registry.example.com/team/app@sha256:${'a'.repeat(64)}`],
      ['with uppercase', 'registry.example.com/Team/app'],
      ['with a scheme', 'https://registry.example.com/app'],
      ['ending in /', 'registry.example.com/app/'],
      ['with a double separator', 'team/app..x'],
    ] as const
  ).map(([what, value]): [string, Case, string] => [
    `image repository ${what}`,
    { flags: { imageRepository: value } },
    `--image: image.repository: must be an image repository like registry.example.com:5000/team/app (lowercase path, no tag or digest) (got ${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)})`,
  ]),
  ['bad tag policy from env', { env: { GKUBE_TAG_POLICY: 'latest' } }, 'GKUBE_TAG_POLICY: image.tagPolicy: must be nearest, exact or commit (got "latest")'],
  ['bad tag policy flag', { flags: { tagPolicy: 'Exact' } }, '--tag-policy: image.tagPolicy: must be nearest, exact or commit (got "Exact")'],
  // storage
  ['replica 4', { yaml: 'storage:\n  glusterfs:\n    replica: 4\n' }, 'gkube.yaml: storage.glusterfs.replica: must be 1, 2 or 3 (got 4)'],
  ['arbiter without replica 3', { yaml: 'storage:\n  glusterfs:\n    replica: 2\n    arbiter: true\n' }, 'gkube.yaml: storage.glusterfs.arbiter: can be true only when storage.glusterfs.replica is 3'],
  ['arbiter with the default replica', { sets: ['storage.glusterfs.arbiter=true'] }, '--set storage.glusterfs.arbiter=true: storage.glusterfs.arbiter: can be true only when storage.glusterfs.replica is 3'],
  ['glusterfs without servers', { yaml: 'storage:\n  provider: glusterfs\n' }, 'gkube.yaml: storage.glusterfs.servers: must list at least one server when storage.provider is glusterfs'],
  ['glusterfs from env-less --set, servers nowhere', { yaml: 'storage:\n  size: 2Gi\n', sets: ['storage.provider=glusterfs'] }, '--set storage.provider=glusterfs: storage.glusterfs.servers: must list at least one server when storage.provider is glusterfs'],
  ['a conflict is blamed on the source that completed it', { yaml: 'storage:\n  glusterfs:\n    replica: 3\n    arbiter: true\n', sets: ['storage.glusterfs.replica=2'] }, '--set storage.glusterfs.replica=2: storage.glusterfs.arbiter: can be true only when storage.glusterfs.replica is 3'],
  ['runAsNonRoot from a --set against the file\'s user 0', { yaml: 'container:\n  runAsUser: 0\n  runAsNonRoot: false\n', sets: ['container.runAsNonRoot=true'] }, '--set container.runAsNonRoot=true: container.runAsUser: must not be 0 while container.runAsNonRoot is true'],
  ['requests above limits', { yaml: 'container:\n  resources:\n    requests: { cpu: "2", memory: 1Gi }\n    limits: { cpu: 1500m, memory: 1Gi }\n' }, 'gkube.yaml: container.resources.requests.cpu: must be at most container.resources.limits.cpu (1500m) (got "2")'],
  ['a limit lowered by --set below the file\'s request', { yaml: 'container:\n  resources:\n    requests: { memory: 512Mi }\n', sets: ['container.resources.limits.memory=0.5e9'] }, '--set container.resources.limits.memory=0.5e9: container.resources.requests.memory: must be at most container.resources.limits.memory (500000000)'],
  ['glusterfs mode storageclass without a class', { yaml: 'storage:\n  glusterfs:\n    mode: storageclass\n' }, 'gkube.yaml: storage.glusterfs.storageClassName: is required when storage.glusterfs.mode is storageclass'],
  ['a bad server name', { yaml: 'storage:\n  glusterfs:\n    servers: [g1, "bad host"]\n' }, 'gkube.yaml: storage.glusterfs.servers[1]: must be a host name or IP address (got "bad host")'],
  ['a server twice', { yaml: 'storage:\n  glusterfs:\n    servers: [g1, g1]\n' }, 'gkube.yaml: storage.glusterfs.servers: must not list the same item twice'],
  ['an ssh target that would be an ssh option', { yaml: 'storage:\n  glusterfs:\n    ssh: -oProxyCommand=x@host\n' }, 'gkube.yaml: storage.glusterfs.ssh: must be user@host (the user may not start with -) (got "-oProxyCommand=x@host")'],
  ['a storage class name with uppercase', { sets: ['storage.storageClassName=Fast'] }, '--set storage.storageClassName=Fast: storage.storageClassName: must be a Kubernetes resource name (lowercase letters, digits, - and ., at most 253)'],
  ['brickRoot relative', { yaml: 'storage:\n  glusterfs:\n    brickRoot: data/bricks\n' }, 'gkube.yaml: storage.glusterfs.brickRoot: must be an absolute path other than / (like /srv/app), without . or .. segments (got "data/bricks")'],
  // code
  ['code.path /', { yaml: 'code:\n  path: /\n' }, 'gkube.yaml: code.path: must be an absolute path other than / (like /srv/app), without . or .. segments (got "/")'],
  ['code.path with ..', { yaml: 'code:\n  path: /srv/../etc\n' }, 'gkube.yaml: code.path: must be an absolute path other than / (like /srv/app), without . or .. segments (got "/srv/../etc")'],
  // health
  ['exec and http both, from two sources', { yaml: 'health:\n  exec: [cat, /ok]\n', sets: ['health.http.path=/healthz'] }, '--set health.http.path=/healthz: health: may set exec or http, not both'],
  ['http without a path', { yaml: 'health:\n  http:\n    port: 8081\n' }, 'gkube.yaml: health.http.path: is required when health.http is set'],
  ['http path without /', { yaml: 'health:\n  http:\n    path: healthz\n' }, 'gkube.yaml: health.http.path: must be a URL path starting with / (no spaces) (got "healthz")'],
  ['empty exec', { yaml: 'health:\n  exec: []\n' }, 'gkube.yaml: health.exec: must list at least one item'],
  // env names
  ['an env value that YAML reads as a number: quoting is the hint', { yaml: 'container:\n  env:\n    PORT: 8080\n' }, 'gkube.yaml: container.env.PORT: must be a string', 'put the value in quotes ("8080", "true") to make it a string'],
  ['an arg that YAML reads as a boolean', { yaml: 'container:\n  args: [--verbose, true]\n' }, 'gkube.yaml: container.args[1]: must be a string (got true)', 'put the value in quotes ("8080", "true") to make it a string'],
  ['a bad environment variable name', { yaml: 'container:\n  env:\n    1BAD: x\n' }, 'gkube.yaml: container.env.1BAD: must be an environment variable name: letters, digits and _, not starting with a digit'],
  // the file itself
  ['YAML syntax error, with its line', { yaml: 'image:\n  repository: a\n  tagPolicy: exact: x\n' }, 'gkube.yaml: line 3, column 14: not valid YAML: nested mappings are not allowed in compact mappings'],
  ['YAML with a tab indent', { yaml: 'image:\n\trepository: a\n' }, 'gkube.yaml: line 2, column 1: not valid YAML: tabs are not allowed as indentation'],
  ['a key twice', { yaml: 'namespace: a\nttl: 1h\nnamespace: b\n' }, 'gkube.yaml: line 3, column 1: not valid YAML: a key appears twice in the same mapping'],
  ['two YAML documents', { yaml: 'namespace: a\n---\nnamespace: b\n' }, 'gkube.yaml: line 2, column 1: not valid YAML: holds more than one YAML document; gkube.yaml is one mapping'],
  ['an undefined alias', { yaml: 'init: *nope\n' }, 'gkube.yaml: not valid YAML: unresolved alias (the anchor must be set before the alias): nope'],
  ['a list at the top level', { yaml: '- namespace: a\n' }, 'gkube.yaml: must be a mapping of keys (image, namespace, container, …) at the top level (got a list)'],
  ['a scalar at the top level, not echoed (it may be a token file)', { yaml: 'eyJhbGciOiJIUzI1NiJ9.secret\n' }, 'gkube.yaml: must be a mapping of keys (image, namespace, container, …) at the top level (got a string)'],
  ['an empty --config', { file: '' }, '--config: is empty (expected a file path)'],
  // malformed --set
  ['--set without =', { sets: ['storage.size'] }, '--set storage.size: expected key.path=value (like --set container.port=8080)'],
  ['--set with an empty key', { sets: ['=5Gi'] }, '--set =***: the key before = is empty (expected key.path=value)'],
  ['--set with a malformed key', { sets: ['storage..size=1Gi'] }, '--set storage..size=***: "storage..size" is not a key path like container.port or init[0]'],
  ['--set index past the end', { yaml: 'init: [a]\n', sets: ['init[3]=x'] }, '--set init[3]=x: init[3]: is out of range: the list has 1 item, so use an index from 0 to 1'],
  ['--set an object where a string goes', { sets: ['namespace={a,b}'] }, '--set namespace={a,b}: namespace: must be a DNS-1123 label: at most 63 lowercase letters, digits and -, starting and ending with a letter or digit'],
];

describe('each bad input gives exactly one line, exit 2', () => {
  // Every row gets four cells: jest passes a `done` callback to a test function with more parameters than cells.
  test.each(badInputs.map(([name, c, message, hint]) => [name, c, message, hint] as const))('%s', async (_name, c, message, hint) => {
    const err = await gkubeErrorOf(load(c));
    expect(err.message).toBe(message);
    expect(err.code).toBe('INVALID_CONFIG');
    expect(err.exitCode).toBe(2);
    expect(err.message).not.toContain('\n');
    expect(err.hint).toBe(hint);
    // ajv's own wording never reaches the user.
    expect(err.message).not.toMatch(/must NOT|must match|must have required|must be equal to|property name/);
  });

  test('an explicit --config that is missing is an error (a missing default file is not)', async () => {
    const cwd = await workspace();
    const err = await gkubeErrorOf(loadConfig({ cwd, file: 'deploy/gkube.yaml', env: {}, sets: [], flags: {} }));
    expect(err.message).toBe('deploy/gkube.yaml: file not found (given with --config)');
    expect(err.hint).toBe(`relative paths are resolved against ${cwd}`);
    expect(err.exitCode).toBe(2);
  });

  test('an explicit --config with a YAML error names that file', async () => {
    const cwd = await workspace({ 'ci/app.yaml': 'namespace: a\ninit: [one\n' });
    const err = await gkubeErrorOf(loadConfig({ cwd, file: 'ci/app.yaml', env: {}, sets: [], flags: {} }));
    expect(err.message).toBe('ci/app.yaml: line 3, column 1: not valid YAML: flow sequence in block collection must be sufficiently indented and end with a ]');
  });

  test('a file over 1 MiB is refused unread', async () => {
    const err = await gkubeErrorOf(load({ yaml: `namespace: a\n${'#'.repeat(2 * 1024 * 1024)}\n` }));
    expect(err.message).toBe('gkube.yaml: is 2.0 MiB; a gkube.yaml may be at most 1 MiB');
    expect(err.hint).toBe('is --config pointing at the right file?');
  });

  test('a file one byte over 1 MiB is refused', async () => {
    const err = await gkubeErrorOf(load({ yaml: '#'.repeat(maxConfigFileBytes) + '\n' }));
    expect(err.message).toBe('gkube.yaml: is 1.0 MiB; a gkube.yaml may be at most 1 MiB');
  });

  test('a directory named gkube.yaml is refused', async () => {
    const cwd = await workspace({ 'gkube.yaml/inner': 'x' });
    const err = await gkubeErrorOf(loadConfig({ cwd, env: {}, sets: [], flags: {} }));
    expect(err.message).toBe('gkube.yaml: is a directory, not a file');
  });

  test('a file that is not UTF-8 is refused', async () => {
    const cwd = await workspace({ 'gkube.yaml': Buffer.from([0x6e, 0x73, 0x3a, 0x20, 0xff, 0xfe, 0x0a]) });
    const err = await gkubeErrorOf(loadConfig({ cwd, env: {}, sets: [], flags: {} }));
    expect(err.message).toBe('gkube.yaml: is not UTF-8 text');
  });

  test('several problems: the first in file order, the count of the rest in the hint', async () => {
    const err = await gkubeErrorOf(
      load({
        yaml: 'namespace: Bad\ncontainer:\n  port: 0\nttl: never\n',
        env: { GKUBE_TAG_POLICY: 'x' },
        sets: ['nope'],
      }),
    );
    expect(err.message).toBe(
      'gkube.yaml: namespace: must be a DNS-1123 label: at most 63 lowercase letters, digits and -, starting and ending with a letter or digit (got "Bad")',
    );
    expect(err.hint).toBe('4 more configuration problems after this one');
  });

  test('file problems are reported in the order they appear in the file', async () => {
    const err = await gkubeErrorOf(load({ yaml: 'ttl: never\nnamespace: Bad\n' }));
    expect(err.message).toBe('gkube.yaml: ttl: must be a positive duration like 90s, 10m or 1h30m (got "never")');
    expect(err.hint).toBe('1 more configuration problem after this one');
  });

  test('the order is stable from run to run', async () => {
    const c: Case = { yaml: 'container:\n  port: x\n  runAsUser: -1\nstorage:\n  size: big\n', sets: ['ttl=0s'] };
    const first = await gkubeErrorOf(load(c));
    for (let i = 0; i < 3; i++) {
      const again = await gkubeErrorOf(load(c));
      expect([again.message, again.hint]).toEqual([first.message, first.hint]);
    }
  });
});

describe('secrets in container.env are never echoed', () => {
  const secret = 'hunter2-s3cret';
  test.each<[string, Case, string]>([
    ['a number value', { yaml: 'container:\n  env:\n    API_TOKEN: 12345\n' }, 'gkube.yaml: container.env.API_TOKEN: must be a string'],
    ['a list value', { yaml: `container:\n  env:\n    API_TOKEN: [${secret}]\n` }, 'gkube.yaml: container.env.API_TOKEN: must be a string'],
    ['env as a string', { yaml: `container:\n  env: "API_TOKEN=${secret}"\n` }, 'gkube.yaml: container.env: must be a mapping'],
    ['container as a string', { yaml: `container: "API_TOKEN=${secret}"\n` }, 'gkube.yaml: container: must be a mapping'],
    ['a number from --set', { sets: ['container.env.API_TOKEN=12345'] }, '--set container.env.API_TOKEN=***: container.env.API_TOKEN: must be a string'],
    ['an env mapping from --set', { sets: [`container.env=${secret}`] }, '--set container.env=***: container.env: must be a mapping'],
    ['a malformed --set', { sets: [`container.env.API_TOKEN:${secret}`] }, '--set container.env… (value hidden): expected key.path=value (like --set container.port=8080)'],
    ['a bad key next to a secret', { yaml: `container:\n  env:\n    API_TOKEN: ${secret}\n    bad-name: x\n` }, 'gkube.yaml: container.env.bad-name: must be an environment variable name: letters, digits and _, not starting with a digit'],
    ['a YAML error in a secret', { yaml: `container:\n  env:\n    API_TOKEN: "${secret}\n` }, 'gkube.yaml: line 4, column 1: not valid YAML: missing closing "quote'],
  ])('%s', async (_name, c, message) => {
    const err = await gkubeErrorOf(load(c));
    expect(err.message).toBe(message);
    expect(`${err.message}\n${err.hint ?? ''}`).not.toMatch(/12345|hunter2/);
  });
});

describe('digest', () => {
  test('stable across key order and formatting, equal for equal configs', async () => {
    const a = await load({ yaml: 'namespace: team-a\ncontainer:\n  port: 9000\n  env: { B: "2", A: "1" }\n' });
    const b = await load({ yaml: 'container:\n  env:\n    A: "1"\n    B: "2"\n  port: 9000\nnamespace: team-a # same\n' });
    const c = await load({ sets: ['container.env.A="1"', 'container.port=9000', 'namespace=team-a', 'container.env.B="2"'] });
    expect(a.digest).toBe(b.digest);
    expect(a.digest).toBe(c.digest);
    expect(a.digest).toBe(configDigest(a.config));
  });

  test('the defaults spelled out give the digest of no file', async () => {
    const none = await load({});
    const spelled = await load({ yaml: 'namespace: default\nttl: 8h\nstorage:\n  provider: storageclass\n  size: 1Gi\n' });
    expect(spelled.digest).toBe(none.digest);
  });

  test.each<[string, Case]>([
    ['a namespace', { yaml: 'namespace: team-b\n' }],
    ['a port', { sets: ['container.port=8081'] }],
    ['an env value', { sets: ['container.env.A=x'] }],
    ['a list order', { yaml: 'init: [b, a]\n' }],
    ['a tag policy from a flag', { flags: { tagPolicy: 'commit' } }],
  ])('changes when %s changes', async (_name, c) => {
    const base = await load({ yaml: 'init: [a, b]\n' });
    const changed = await load(c);
    expect(changed.digest).not.toBe(base.digest);
  });
});
