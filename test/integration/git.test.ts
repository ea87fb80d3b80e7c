import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { simpleGit } from 'simple-git';
import { GitRepo } from '../harness/index.js';

describe('git fixtures read back with simple-git', () => {
  let repo: GitRepo;
  let first: string;
  let second: string;
  let third: string;

  beforeAll(async () => {
    repo = await GitRepo.create();
    first = await repo.commit('first', { 'index.html': 'v1\n', 'Dockerfile': 'FROM scratch\n' });
    await repo.tag('v1.0.0', { annotated: true });
    second = await repo.commit('second', { 'index.html': 'v2\n' });
    await repo.tag('build-17');
    await repo.branch('feature/login');
    third = await repo.commit('third', { 'login.html': 'login\n', 'index.html': null });
    await repo.checkout('main');
  });
  afterAll(async () => {
    await repo?.remove();
  });

  test('annotated and lightweight tags point at their commits', async () => {
    const git = simpleGit(repo.dir);
    const tags = await git.tags();
    expect(tags.all.sort()).toEqual(['build-17', 'v1.0.0']);
    // An annotated tag is its own object; ^{commit} peels it to the commit it names.
    expect((await git.revparse(['v1.0.0^{commit}'])).trim()).toBe(first);
    expect((await git.catFile(['-t', 'v1.0.0'])).trim()).toBe('tag');
    expect((await git.catFile(['-t', 'build-17'])).trim()).toBe('commit');
    expect((await git.revparse(['build-17'])).trim()).toBe(second);
  });

  test('branches, HEAD and the nearest tag are what the fixture built', async () => {
    const git = simpleGit(repo.dir);
    const branches = await git.branchLocal();
    expect(branches.current).toBe('main');
    expect(branches.all.sort()).toEqual(['feature/login', 'main']);
    expect((await git.revparse(['HEAD'])).trim()).toBe(second);
    expect((await git.revparse(['feature/login'])).trim()).toBe(third);
    expect((await git.raw(['describe', '--tags', '--abbrev=0', third])).trim()).toBe('build-17');
    expect((await git.raw(['describe', '--abbrev=0', third])).trim()).toBe('v1.0.0');
    const diff = await git.raw(['diff', '--name-status', second, third]);
    expect(diff.trim().split('\n').sort()).toEqual(['A\tlogin.html', 'D\tindex.html']);
  });
});
