// `gkube image-tag` in a Jenkins workspace: real git repositories, /bin/sh -xe, Jenkins variables.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { GitRepo, TempDirs } from '../harness/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const gkube = join(root, 'bin/gkube');
const temp = new TempDirs();
let repo: GitRepo;
let released: string;
let between: string;
let untagged: string;

function shell(script: string, cwd: string, env: Record<string, string> = {}) {
  return execa('/bin/sh', ['-xe', '-c', script], { cwd, reject: false, stdin: 'ignore', env: { JOB_NAME: 'team/app', BUILD_NUMBER: '9', WORKSPACE: cwd, ...env } });
}

beforeAll(async () => {
  repo = await GitRepo.create(await temp.make('image-tag'));
  await repo.commit('first', { 'index.html': 'v1\n' });
  released = await repo.commit('release', { 'index.html': 'v1.4.2\n' });
  await repo.tag('v1.4.2', { annotated: true });
  between = await repo.commit('fix', { 'index.html': 'fixed\n' });
  await repo.tag('v1/hotfix');
  untagged = await repo.commit('more', { 'index.html': 'more\n' });
});

afterAll(async () => {
  await temp.removeAll();
});

describe('gkube image-tag', () => {
  test('nearest (default): an untagged commit after v1.4.2 and v1/hotfix uses the nearest tag, mapped to a valid image tag', async () => {
    const r = await shell(`"${gkube}" image-tag`, repo.dir, { GIT_COMMIT: untagged });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^v1-hotfix-[0-9a-f]{7}$/);
  });

  test('exact on a tagged commit; commit policy from --tag-policy; --ref wins over GIT_COMMIT', async () => {
    expect((await shell(`"${gkube}" image-tag --tag-policy exact`, repo.dir, { GIT_COMMIT: released })).stdout).toBe('v1.4.2');
    expect((await shell(`"${gkube}" image-tag --tag-policy commit`, repo.dir, { GIT_COMMIT: between })).stdout).toBe(`sha-${between.slice(0, 12)}`);
    expect((await shell(`"${gkube}" image-tag --ref v1.4.2 --tag-policy exact`, repo.dir, { GIT_COMMIT: untagged })).stdout).toBe('v1.4.2');
  });

  test('-o json names the commit the tag was resolved to', async () => {
    const r = await shell(`"${gkube}" image-tag --ref v1.4.2 -o json`, repo.dir);
    expect(JSON.parse(r.stdout)).toEqual({ imageTag: 'v1.4.2', gitTag: 'v1.4.2', commit: released, ref: 'v1.4.2', policy: 'nearest' });
  });

  test('the policy comes from gkube.yaml and GKUBE_TAG_POLICY too', async () => {
    const withFile = await temp.make('image-tag-config');
    const r = await shell(`cp -r "${repo.dir}/." . && printf 'image:\\n  tagPolicy: commit\\n' > gkube.yaml && "${gkube}" image-tag --ref v1.4.2`, withFile);
    expect(r.stdout).toBe(`sha-${released.slice(0, 12)}`);
    expect((await shell(`"${gkube}" image-tag --ref v1.4.2`, withFile, { GKUBE_TAG_POLICY: 'exact' })).stdout).toBe('v1.4.2');
  });

  test.each([
    ['an untagged commit under exact', (d: string) => [`"${gkube}" image-tag --tag-policy exact`, d, { GIT_COMMIT: 'HEAD' }], 2, /^error: tag policy exact: commit [0-9a-f]{12} has no git tag; nothing was changed$/],
    ['an injected ref', (d: string) => [`"${gkube}" image-tag --ref '--upload-pack=touch pwned'`, d, {}], 6, /^error: --ref: "--upload-pack=touch pwned" starts with "-" and would be read as a git option; refused, nothing was changed$/],
    ['an injected GIT_COMMIT', (d: string) => [`"${gkube}" image-tag`, d, { GIT_COMMIT: '--output=/tmp/pwned' }], 6, /^error: GIT_COMMIT: "--output=\/tmp\/pwned" starts with "-"/],
    ['a ref that names nothing', (d: string) => [`"${gkube}" image-tag --ref v9.9.9`, d, {}], 2, /^error: --ref: "v9\.9\.9" names no commit in /],
    ['an invalid policy', (d: string) => [`"${gkube}" image-tag --tag-policy latest`, d, {}], 2, /^error: --tag-policy: image\.tagPolicy: /],
  ] as const)('%s: one line, the documented exit code', async (_what, make, code, line) => {
    const [script, dir, env] = make(repo.dir) as [string, string, Record<string, string>];
    const r = await shell(script, dir, env);
    expect(r.exitCode).toBe(code);
    expect(r.stderr.split('\n').find((l) => l.startsWith('error:'))).toMatch(line);
    expect(existsSync(join(dir, 'pwned'))).toBe(false);
    expect(existsSync('/tmp/pwned')).toBe(false);
  });

  test('a workspace that is not a git checkout: one line, exit 2', async () => {
    const empty = await temp.make('not-git');
    const r = await shell(`"${gkube}" image-tag`, empty);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n').find((l) => l.startsWith('error:'))).toBe(`error: workspace ${empty} is not a git checkout; nothing was changed`);
  });
});
