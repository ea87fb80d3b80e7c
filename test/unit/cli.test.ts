import { describe, expect, test } from '@jest/globals';
import { main } from '../../src/cli/main.js';
import { commandSpecs } from '../../src/cli/commands.js';

/** Runs the CLI in-process with captured streams. */
async function run(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: {},
    cwd: process.cwd(),
  });
  return { code, stdout, stderr };
}

// The design's command surface; --help must list every one of them.
const surface = ['deploy', 'image-tag', 'rollback', 'history', 'trace', 'list', 'get', 'describe', 'delete', 'env', 'exec', 'logs', 'cp', 'cleanup', 'doctor', 'unlock', 'recover'];
const envSurface = ['up', 'ls', 'down', 'extend'];
const globalFlags = ['--etcd-endpoints', '--etcd-prefix', '--kubeconfig', '--context', '--config', '--set', '--summary-file', '--output', '--verbose', '--no-color'];

describe('gkube --help', () => {
  test('lists every command of the command surface and every global flag', async () => {
    const { code, stdout } = await run('--help');
    expect(code).toBe(0);
    for (const name of surface) expect(stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
    for (const flag of globalFlags) expect(stdout).toContain(flag);
    expect(stdout).toContain('Exit codes:');
  });

  test('env --help lists the ad-hoc environment subcommands', async () => {
    const { code, stdout } = await run('env', '--help');
    expect(code).toBe(0);
    for (const name of envSurface) expect(stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
  });
});

describe('commands not in this version', () => {
  const unbuilt = commandSpecs.filter((s) => !s.load && !commandSpecs.some((o) => o.name.startsWith(`${s.name} `)));

  test.each(unbuilt.map((s) => [s.name, exampleArgs(s.args)] as const))('gkube %s says so in one line and exits 2', async (name, args) => {
    const { code, stdout, stderr } = await run(...name.split(' '), ...args);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe(`error: gkube ${name} is not available in gkube 0.0.0-dev yet; nothing was changed\n`);
  });
});

describe('usage errors exit 2 with one line naming the problem', () => {
  test.each([
    [['bogus'], /unknown command 'bogus'/],
    [['list', '-o', 'yaml'], /argument 'yaml' is invalid\. Allowed choices are text, json/],
    [['delete'], /missing required argument 'job'/],
    [['deploy', '--no-such-flag'], /unknown option '--no-such-flag'/],
    [['env'], /Usage: gkube env/],
  ])('gkube %j', async (argv, message) => {
    const { code, stderr } = await run(...argv);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });
});

function exampleArgs(args: string | undefined): string[] {
  if (!args) return [];
  return args.split(' ').map((a, i) => (a.endsWith('...>') ? 'true' : `arg${i}`));
}
