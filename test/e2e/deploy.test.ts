// gkube deploy exactly as a Jenkins "Execute shell" step runs it (/bin/sh -xe script, Jenkins variables, no
// TTY) against real etcd, the emulator and the real registry: provision → delta sync → new image → failed
// health check rolled back → identical rebuild → rollback --to-revision 1.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DeployEnv, expectExit, root } from '../helpers/deploy-env.js';

const job = 'team/hello/deploy';
let env: DeployEnv;
let build = 0;
const commits: string[] = [];

/** One Jenkins build of `commit`: the project's own jenkins/deploy.sh as the shell step; its summary file read back. */
async function jenkinsBuild(commit: string) {
  build += 1;
  const vars = env.jenkinsEnv(job, build, commit, { PATH: `${root}bin:${process.env['PATH'] ?? '/usr/bin:/bin'}`, GKUBE_DEPLOY_ARGS: '--timeout 2m' });
  await rm(join(env.repo.dir, 'gkube-summary.json'), { force: true });
  const r = await env.jenkins(await readFile(join(root, 'jenkins/deploy.sh'), 'utf8'), vars);
  let summary: Record<string, any> | undefined;
  try {
    summary = JSON.parse(await readFile(join(env.repo.dir, 'gkube-summary.json'), 'utf8'));
  } catch {
    summary = undefined;
  }
  return { ...r, summary };
}

beforeAll(async () => {
  env = await DeployEnv.start();
  await env.registry.pushImage('examples/hello', 'v1.0.0');
  await env.registry.pushImage('examples/hello', 'v1.1.0');
  commits.push(await env.repo.git('rev-parse', 'HEAD'));
}, 120_000);

afterAll(async () => {
  await env?.stop();
});

describe('gkube deploy in a Jenkins shell step', () => {
  test('first build provisions: claim, pod, init, publish, reload, health; record ready at revision 1', async () => {
    const r = await jenkinsBuild(commits[0]!);
    expect(r.stderr).toMatch(/^\+ gkube deploy --summary-file \S+\/gkube-summary\.json --timeout 2m$/m); // sh -x echoes the command
    expectExit(r, 0);
    expect(r.stdout).toMatch(/^provisioned job team\/hello\/deploy$/m);
    // One plain line per step, each with its duration.
    for (const step of ['is in the registry', 'locked job', 'created persistentvolumeclaim', 'created pod', 'is running', 'ran 1 init command', 'published', 'ran 1 reload command', 'healthy: GET :8080/healthz answered 200', 'recorded revision 1']) {
      expect(r.stderr).toMatch(new RegExp(`^\\[gkube\\] .*${step.replace(/[/.]/g, '\\$&')}.* \\(\\d+\\.\\ds\\)$`, 'm'));
    }
    expect(r.stderr).not.toMatch(/\u001b\[/);
    expect(r.summary).toMatchObject({ job, action: 'provision', result: 'succeeded', image: `${env.image}:v1.0.0`, imageTag: 'v1.0.0', gitTag: 'v1.0.0', commit: commits[0], revision: 1 });
    const stored = await env.record(job);
    expect(stored?.record.status).toMatchObject({ phase: 'ready', revision: 1, commit: commits[0], imageTag: 'v1.0.0', build: { number: '1' } });
    expect(await env.history(job)).toEqual([expect.objectContaining({ revision: 1, action: 'provision', result: 'succeeded', commit: commits[0] })]);
    expect(await env.serve(job)).toEqual({ status: 200, body: 'Hello from gkube!\n' });
    const pod = await env.pod(job);
    expect(pod?.metadata?.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'gkube' });
    expect(pod?.metadata?.annotations).toMatchObject({ 'gkube.dev/commit': commits[0], 'gkube.dev/git-tag': 'v1.0.0', 'gkube.dev/build-number': '1', 'gkube.dev/job-name': job });
    expect(pod?.spec?.securityContext?.fsGroup).toBe(1000);
    expect(pod?.spec?.containers[0]?.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    expect(await env.objects(job)).toEqual({ pods: 1, claims: 1 });
  }, 180_000);

  test('a later commit under the same nearest tag syncs only the change; the pod serves the new content', async () => {
    commits.push(await env.repo.commit('new message', { 'message.txt': 'Hello again, delta!\n' }));
    const podBefore = (await env.pod(job))?.metadata?.uid;
    const r = await jenkinsBuild(commits[1]!);
    expectExit(r, 0);
    expect(r.summary).toMatchObject({ action: 'update', result: 'succeeded', imageTag: 'v1.0.0', commit: commits[1], revision: 2, publish: { mode: 'delta', files: 1, deleted: 0 } });
    expect(await env.serve(job)).toEqual({ status: 200, body: 'Hello again, delta!\n' });
    expect((await env.pod(job))?.metadata?.uid).toBe(podBefore);
    expect((await env.pod(job))?.metadata?.annotations?.['gkube.dev/commit']).toBe(commits[1]);
  }, 180_000);

  test('a build at a new tag rolls the image in place and syncs the code', async () => {
    commits.push(await env.repo.commit('release 1.1', { 'message.txt': 'Hello 1.1\n' }));
    await env.repo.tag('v1.1.0', { annotated: true });
    const podBefore = await env.pod(job);
    const r = await jenkinsBuild(commits[2]!);
    expectExit(r, 0);
    expect(r.summary).toMatchObject({ action: 'update', result: 'succeeded', image: `${env.image}:v1.1.0`, gitTag: 'v1.1.0', revision: 3 });
    expect(r.stderr).toMatch(/set the image of pod default\/\S+ to \S+:v1\.1\.0/);
    const pod = await env.pod(job);
    expect(pod?.metadata?.uid).toBe(podBefore?.metadata?.uid);
    expect(pod?.spec?.containers[0]?.image).toBe(`${env.image}:v1.1.0`);
    expect(pod?.status?.containerStatuses?.[0]?.restartCount).toBeGreaterThan(podBefore?.status?.containerStatuses?.[0]?.restartCount ?? 0);
    expect(await env.serve(job)).toEqual({ status: 200, body: 'Hello 1.1\n' });
  }, 180_000);

  test('a build whose health check fails is rolled back: previous content served, exit 1, history says why', async () => {
    commits.push(await env.repo.commit('broken config', { 'message.txt': 'Broken!\n', 'config.json': '{ not json' }));
    const r = await jenkinsBuild(commits[3]!);
    expectExit(r, 1);
    expect(r.stderr).toMatch(/^error: health check of pod default\/\S+ failed \d+ times?: GET :8080\/healthz answered 500/m);
    expect(r.summary).toMatchObject({ action: 'update', result: 'rolled-back', commit: commits[3], revision: 4, rolledBackTo: { commit: commits[2], image: `${env.image}:v1.1.0` } });
    expect(await env.serve(job)).toEqual({ status: 200, body: 'Hello 1.1\n' });
    expect(await env.serve(job, '/healthz')).toEqual({ status: 200, body: 'ok\n' });
    // The rollback waits for the readiness probe to pass again: the pod takes traffic when gkube returns.
    expect(r.stderr).toMatch(/^\[gkube\] .*pod default\/\S+ is ready again/m);
    expect((await env.pod(job))?.status?.conditions).toContainEqual(expect.objectContaining({ type: 'Ready', status: 'True' }));
    const stored = await env.record(job);
    expect(stored?.record.status).toMatchObject({ phase: 'failed', rolledBack: true, commit: commits[2], revision: 4 });
    expect(stored?.record.status.reason).toMatch(/health check/);
    // What runs is what build 3 deployed: the pod and the record both say so, and trace sees no drift.
    expect(stored?.record.status.build?.number).toBe('3');
    expect((await env.pod(job))?.metadata?.annotations).toMatchObject({ 'gkube.dev/commit': commits[2], 'gkube.dev/build-number': '3' });
    const trace = await env.gkube(['trace', job, '-o', 'json'], env.jenkinsEnv(job, build, commits[3]!));
    expectExit(trace, 0);
    expect(JSON.parse(String(trace.stdout))).toMatchObject({ commit: commits[2], build: { number: '3' }, drift: [] });
    const last = (await env.history(job)).at(-1)!;
    expect(last).toMatchObject({ revision: 4, result: 'rolled-back', commit: commits[3] });
    expect(last.diagnostics).toMatch(/last log lines of pod/);
    expect(last.diagnostics).toMatch(/reloaded: config\.json/);
  }, 180_000);

  test('an identical rebuild of the live commit is a no-op: exit 0, nothing written', async () => {
    const before = await env.record(job);
    const r = await jenkinsBuild(commits[2]!);
    expectExit(r, 0);
    expect(r.summary).toMatchObject({ action: 'noop', result: 'unchanged', revision: 4 });
    expect(r.stdout).toMatch(/up to date: nothing was changed/);
    expect((await env.record(job))?.modRevision).toBe(before?.modRevision);
    expect(await env.history(job)).toHaveLength(4);
  }, 60_000);

  test('rollback --to-revision 1 returns to the first commit and image, as revision 5', async () => {
    build += 1;
    const vars = env.jenkinsEnv(job, build, commits[2]!);
    const r = await env.jenkins('cd "$WORKSPACE"\n"$GKUBE" rollback "$JOB_NAME" --to-revision 1 -o json\n', vars);
    expectExit(r, 0);
    expect(JSON.parse(String(r.stdout))).toMatchObject({ action: 'rollback', result: 'succeeded', commit: commits[0], image: `${env.image}:v1.0.0`, revision: 5 });
    expect(await env.serve(job)).toEqual({ status: 200, body: 'Hello from gkube!\n' });
    expect((await env.pod(job))?.spec?.containers[0]?.image).toBe(`${env.image}:v1.0.0`);
    expect((await env.history(job)).map((e) => [e.revision, e.action, e.result])).toEqual([
      [1, 'provision', 'succeeded'], [2, 'update', 'succeeded'], [3, 'update', 'succeeded'], [4, 'update', 'rolled-back'], [5, 'rollback', 'succeeded'],
    ]);
    expect(await env.objects(job)).toEqual({ pods: 1, claims: 1 });
  }, 180_000);
});
