// gkube deploy when things go wrong around it: SIGKILL at every step (the next run converges), SIGTERM (an
// aborted Jenkins build), 20 concurrent builds of one job and of twenty jobs.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { jobNames } from '../../src/jobs/naming.js';
import { jobKeys } from '../../src/jobs/keys.js';
import { DeployEnv, expectExit, prefix } from '../helpers/deploy-env.js';

let env: DeployEnv;
let v1: string;
let v11: string;

const provisionSteps = ['lock', 'record-start', 'storage', 'pod', 'wait-running', 'preflight', 'init', 'publish', 'reload', 'health', 'wait-ready', 'annotate', 'record-done'];
const updateSteps = ['lock', 'record-start', 'roll-image', 'wait-running', 'init', 'publish', 'reload', 'health', 'wait-ready', 'annotate', 'record-done'];

function deploy(job: string, commit: string, build: number, extra: Record<string, string> = {}, args: string[] = []) {
  return env.gkube(['deploy', '--timeout', '2m', ...args], env.jenkinsEnv(job, build, commit, extra));
}

/** Exactly one pod, one claim, a ready record at `commit`, revisions 1..n once each, the app answering. */
async function expectConverged(job: string, commit: string, revisions: number) {
  expect(await env.objects(job)).toEqual({ pods: 1, claims: 1 });
  const stored = await env.record(job);
  expect(stored?.record.status).toMatchObject({ phase: 'ready', commit, revision: revisions });
  expect((await env.history(job)).map((e) => e.revision)).toEqual(Array.from({ length: revisions }, (_, i) => i + 1));
  expect((await env.serve(job, '/healthz')).status).toBe(200);
}

beforeAll(async () => {
  env = await DeployEnv.start();
  await env.registry.pushImage('examples/hello', 'v1.0.0');
  await env.registry.pushImage('examples/hello', 'v1.1.0');
  v1 = await env.repo.git('rev-parse', 'HEAD');
  v11 = await env.repo.commit('release 1.1', { 'message.txt': 'Hello 1.1\n' });
  await env.repo.tag('v1.1.0', { annotated: true });
}, 120_000);

afterAll(async () => {
  await env?.stop();
});

describe('SIGKILL at any step leaves a state the next deploy converges from', () => {
  test.concurrent.each(provisionSteps)('provision killed as step %s begins', async (step) => {
    const job = `crash/provision/${step}`;
    const killed = await deploy(job, v1, 1, { GKUBE_TEST_KILL_AT_STEP: step });
    expect(killed.signal).toBe('SIGKILL');
    // The killed run held the lock: on the same host the rerun sees its process is gone and frees the lock
    // at once (elsewhere it would wait for the lease to expire, 10 s).
    const rerun = await deploy(job, v1, 2);
    expectExit(rerun, 0);
    if (step !== 'lock') expect(rerun.stderr).toMatch(/^\[gkube\] the lock of job crash\/provision\/\S+ was held by jenkins-crash-provision-\S+-1 \(deploy, pid \d+ on \S+, since \S+\), whose process is gone: freed it$/m);
    await expectConverged(job, v1, 1);
  }, 120_000);

  test.concurrent.each(updateSteps)('update (new image and code) killed as step %s begins', async (step) => {
    const job = `crash/update/${step}`;
    expectExit(await deploy(job, v1, 1), 0);
    const killed = await deploy(job, v11, 2, { GKUBE_TEST_KILL_AT_STEP: step });
    expect(killed.signal).toBe('SIGKILL');
    const rerun = await deploy(job, v11, 3);
    expectExit(rerun, 0);
    await expectConverged(job, v11, 2);
    expect((await env.pod(job))?.spec?.containers[0]?.image).toBe(`${env.image}:v1.1.0`);
    expect((await env.serve(job)).body).toBe('Hello 1.1\n');
  }, 120_000);

  test('a pod recreated for a spec change, killed as the new pod is made', async () => {
    const job = 'crash/update/recreate';
    expectExit(await deploy(job, v1, 1), 0);
    const uid = (await env.pod(job))?.metadata?.uid;
    const changed = ['--set', 'container.env.GREETING=hi'];
    const killed = await deploy(job, v1, 2, { GKUBE_TEST_KILL_AT_STEP: 'pod' }, changed);
    expect(killed.signal).toBe('SIGKILL');
    const rerun = await deploy(job, v1, 3, {}, changed);
    expectExit(rerun, 0);
    expect(rerun.stderr).toMatch(/the pod spec changed \(gkube\.yaml\): the pod is recreated on the same claim/);
    await expectConverged(job, v1, 2);
    const pod = await env.pod(job);
    expect(pod?.metadata?.uid).not.toBe(uid);
    expect(pod?.spec?.containers[0]?.env).toEqual(expect.arrayContaining([{ name: 'GREETING', value: 'hi' }]));
    // The code survived on the claim: the new pod serves it.
    expect((await env.serve(job)).body).toBe('Hello from gkube!\n');
  }, 120_000);
});

describe('SIGTERM (an aborted Jenkins build)', () => {
  test('stops at the next safe point, records aborted with the step, frees the lock, exits 143; the next deploy finishes', async () => {
    const job = 'abort/provision';
    const child = deploy(job, v1, 1);
    let sent = false;
    child.stderr!.on('data', (chunk: Buffer) => {
      if (!sent && chunk.toString().includes('created pod')) {
        sent = true;
        child.kill('SIGTERM');
      }
    });
    const r = await child;
    expect(sent).toBe(true);
    expectExit(r, 143);
    // The wait for the pod is itself a safe point: the run stops there, or just before it.
    expect(r.stderr).toMatch(/^error: job abort\/provision: stopped (by SIGTERM before step wait-running|while waiting for pod default\/\S+); recorded as aborted, lock released; the next deploy continues from here$/m);
    expect((await env.record(job))?.record.status).toMatchObject({ phase: 'aborted', revision: 0 });
    expect((await env.record(job))?.record.status.reason).toMatch(/step wait-running/);
    expect(await env.store.get(jobKeys(prefix, jobNames(job)).lock)).toBeUndefined();
    const rerun = await deploy(job, v1, 2, {}, ['--wait-lock', '0s']);
    expectExit(rerun, 0);
    await expectConverged(job, v1, 1);
  }, 120_000);
});

describe('concurrent builds', () => {
  test('20 concurrent deploys of one job: one pod, one history entry per run that did work, no duplicate revision', async () => {
    const job = 'concurrent/one';
    const first = await Promise.all(Array.from({ length: 20 }, (_, i) => deploy(job, v1, i + 1)));
    for (const r of first) expectExit(r, 0);
    const outcomes = first.map((r) => (String(r.stdout).match(/^(provisioned|updated) job|up to date/m) ?? ['?'])[0]);
    expect(outcomes.filter((o) => o === 'provisioned job')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'up to date')).toHaveLength(19);
    await expectConverged(job, v1, 1);
    const second = await Promise.all(Array.from({ length: 20 }, (_, i) => deploy(job, v11, 21 + i)));
    for (const r of second) expectExit(r, 0);
    expect(second.filter((r) => /^updated job/m.test(String(r.stdout)))).toHaveLength(1);
    await expectConverged(job, v11, 2);
  }, 300_000);

  test('20 concurrent deploys of twenty jobs all succeed', async () => {
    const jobs = Array.from({ length: 20 }, (_, i) => `concurrent/many/${i}`);
    const results = await Promise.all(jobs.map((job, i) => deploy(job, v1, i + 1)));
    results.forEach((r) => expectExit(r, 0));
    for (const job of jobs) await expectConverged(job, v1, 1);
  }, 300_000);
});
