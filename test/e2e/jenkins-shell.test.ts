import { describe, expect, test } from '@jest/globals';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const root = fileURLToPath(new URL('../..', import.meta.url));
const gkube = `${root}bin/gkube`;
const jenkinsEnv = {
  JOB_NAME: 'team/app folder/deploy ünïcode',
  BUILD_NUMBER: '42',
  BUILD_URL: 'http://jenkins.invalid/job/team/job/app/42/',
  JENKINS_URL: 'http://jenkins.invalid/',
  WORKSPACE: root,
};

/** Runs a script the way Jenkins "Execute shell" does: /bin/sh -xe, no TTY, Jenkins variables. */
function jenkinsShell(script: string) {
  return execa('/bin/sh', ['-xe', '-c', script], { env: jenkinsEnv, reject: false, stdin: 'ignore' });
}

describe('the built gkube in a Jenkins shell step', () => {
  test('the bundle exists (npm test builds it first)', () => {
    expect(existsSync(`${root}dist/gkube.mjs`)).toBe(true);
  });

  test('--version prints the package version and exits 0', async () => {
    const r = await jenkinsShell(`"${gkube}" --version`);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+$/);
  });

  test('--help lists the commands with no terminal escape codes', async () => {
    const r = await jenkinsShell(`"${gkube}" --help`);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('deploy');
    expect(r.stdout).not.toMatch(/\u001b\[/);
  });

  test('a command not in this version fails the build step with exit 2 and one line', async () => {
    const r = await jenkinsShell(`"${gkube}" cleanup --dry-run`);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('error:'))).toEqual([
      expect.stringMatching(/^error: gkube cleanup is not available in gkube \d+\.\d+\.\d+ yet; nothing was changed$/),
    ]);
  });
});
