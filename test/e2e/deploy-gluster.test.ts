// gkube deploy on GlusterFS storage (provider glusterfs, in-tree mode, a Kubernetes 1.25 emulator) on the
// machine's real glusterd: the volume is made, the PV really FUSE-mounted, the published files land on the
// brick; an update shows on the brick; the code outlives the pod; delete keeps or removes the volume.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { readFile, readdir, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { jobNames } from '../../src/jobs/naming.js';
import { DeployEnv, expectExit } from '../helpers/deploy-env.js';
import { GlusterPool, glusterHost, waitUntil } from '../harness/index.js';
import { connectEtcd } from '../../src/adapters/etcd.js';
import { connectKube } from '../../src/adapters/kube.js';
import { connectGluster } from '../../src/adapters/gluster.js';
import { deleteJob } from '../../src/jobs/delete.js';
import { GkubeError } from '../../src/errors.js';
import { systemClock } from '../../src/clock.js';
import type { Context } from '../../src/context.js';

let env: DeployEnv;
let brickRoot: string;
let commits: string[] = [];
// Gluster volumes are machine-wide: job names (and so volume names) carry this run's pid, so that two test
// runs on one machine never share a volume.
const run = process.pid.toString(36);
const job = `gluster-${run}/hello`;
const names = jobNames(job);

function sets(): string[] {
  return ['--set', 'storage.provider=glusterfs', '--set', `storage.glusterfs.servers={${glusterHost()}}`, '--set', `storage.glusterfs.brickRoot=${brickRoot}`, '--set', 'storage.size=64Mi'];
}

function deploy(build: number, commit: string, extra: string[] = [], name = job, vars: Record<string, string> = {}) {
  return env.gkube(['deploy', '--timeout', '2m', ...sets(), ...extra], env.jenkinsEnv(name, build, commit, vars));
}

/** `gluster volume info NAME` as text, or undefined when the volume does not exist (busy answers are retried). */
async function volumeInfo(name: string): Promise<string | undefined> {
  for (let attempt = 0; ; attempt++) {
    const r = await execa('gluster', ['--mode=script', 'volume', 'info', name], { reject: false });
    if (r.exitCode === 0) return r.stdout;
    if (/does not exist/.test(`${r.stdout}${r.stderr}`) || attempt >= 10) return undefined;
    // Another run on this machine may hold glusterd's lock for a moment.
    await new Promise((done) => setTimeout(done, 500));
  }
}

/** The live code as the brick holds it (replica 1: one brick, the files as they are). */
function onBrick(path: string): Promise<string> {
  return readFile(join(brickRoot, `${names.resourceName}-b0`, 'current', path), 'utf8');
}

beforeAll(async () => {
  await GlusterPool.connect();
  env = await DeployEnv.start({ kubeVersion: '1.25' });
  brickRoot = await env.temp.make('bricks');
  await env.registry.pushImage('examples/hello', 'v1.0.0');
  commits = [await env.repo.git('rev-parse', 'HEAD')];
}, 120_000);

const made: string[] = [names.resourceName];

afterAll(async () => {
  // Whatever a failed test left: the jobs' volumes are stopped and deleted.
  for (const volume of made) {
    if (!(await volumeInfo(volume))) continue;
    await execa('gluster', ['--mode=script', 'volume', 'stop', volume, 'force'], { reject: false });
    await execa('gluster', ['--mode=script', 'volume', 'delete', volume], { reject: false });
  }
  await env?.stop();
}, 120_000);

describe('deploy on GlusterFS (in-tree)', () => {
  test('provision makes and starts the volume with gkube\'s marker and a quota, and the code lands on the brick', async () => {
    const r = await deploy(1, commits[0]!);
    expectExit(r, 0);
    expect(r.stderr).toMatch(/created persistentvolumeclaim|adopted persistentvolumeclaim/);
    expect(r.stderr).toMatch(/\/srv\/app in the pod is writable, \S+ \S+ free/);
    const info = await volumeInfo(names.resourceName);
    expect(info).toMatch(/Status: Started/);
    expect(info).toContain(`user.gkube.job: ${names.resourceName}`);
    expect(info).toMatch(/features.quota: on/);
    // The kubelet applies no fsGroup to a GlusterFS mount: the volume's root is the app user's by Gluster's options.
    expect(info).toContain('storage.owner-uid: 1000');
    expect(info).toContain('storage.owner-gid: 1000');
    const brick = await stat(join(brickRoot, `${names.resourceName}-b0`));
    expect({ uid: brick.uid, gid: brick.gid }).toEqual({ uid: 1000, gid: 1000 });
    // Published by the pod's user over exec.
    const published = await stat(join(brickRoot, `${names.resourceName}-b0`, 'current', 'message.txt'));
    expect(published.uid).toBe(1000);
    expect(await onBrick('message.txt')).toBe('Hello from gkube!\n');
    expect(await env.serve(job)).toEqual({ status: 200, body: 'Hello from gkube!\n' });
    const pv = await env.core.readPersistentVolume({ name: `gkube-default-${names.resourceName}` });
    expect(pv.spec?.glusterfs).toEqual({ endpoints: `glusterfs-${names.resourceName}`, path: names.resourceName });
    expect(pv.spec?.persistentVolumeReclaimPolicy).toBe('Retain');
    expect((await env.record(job))?.record.status).toMatchObject({ phase: 'ready', volume: names.resourceName, pvc: names.resourceName });
    // doctor reports the pool and the volume.
    const doctor = await env.gkube(['doctor', '-o', 'json', ...sets()], env.jenkinsEnv(job, 1, commits[0]!));
    const checks = JSON.parse(String(doctor.stdout)).checks as Array<{ name: string; ok: boolean; detail: string }>;
    expect(checks.find((c) => c.name === 'gluster peers')).toMatchObject({ ok: true, detail: expect.stringMatching(/connected/) });
    expect(checks.find((c) => c.name === 'gluster volumes')).toMatchObject({ ok: true, detail: expect.stringContaining(`${names.resourceName} Started`) });
  }, 180_000);

  test('an update in place is read back straight from the brick', async () => {
    commits.push(await env.repo.commit('gluster update', { 'message.txt': 'Hello from the brick\n' }));
    const r = await deploy(2, commits[1]!);
    expectExit(r, 0);
    expect(await onBrick('message.txt')).toBe('Hello from the brick\n');
    expect(await env.serve(job)).toEqual({ status: 200, body: 'Hello from the brick\n' });
  }, 180_000);

  test('the code outlives its pod: a new pod on the same volume serves it without a publish', async () => {
    await env.core.deleteNamespacedPod({ name: names.resourceName, namespace: 'default' });
    await waitUntil('the pod to go', async () => (await env.objects(job)).pods === 0, 60_000, 200);
    const r = await deploy(3, commits[1]!);
    expectExit(r, 0);
    expect(r.stderr).toMatch(/code: the pod already has/);
    expect(await env.serve(job)).toEqual({ status: 200, body: 'Hello from the brick\n' });
  }, 180_000);

  test('delete --keep-storage keeps the volume and its data; the next deploy adopts them', async () => {
    const r = await env.gkube(['delete', job, '--keep-storage', '-o', 'json'], env.jenkinsEnv(job, 4, commits[1]!));
    expectExit(r, 0);
    expect(JSON.parse(String(r.stdout)).kept).toEqual(expect.arrayContaining([`Gluster volume ${names.resourceName}`]));
    expect(await env.record(job)).toBeUndefined();
    expect(await volumeInfo(names.resourceName)).toMatch(/Status: Started/);
    expect(await onBrick('message.txt')).toBe('Hello from the brick\n');
    const doctor = await env.gkube(['doctor', '-o', 'json', ...sets()], env.jenkinsEnv(job, 4, commits[1]!));
    const volumes = (JSON.parse(String(doctor.stdout)).checks as Array<{ name: string; detail: string }>).find((c) => c.name === 'gluster volumes');
    expect(volumes?.detail).toContain(`${names.resourceName} Started (no record names it)`);
    // As a volume made before gkube set its owner: root's again. The adopting deploy converges it.
    for (const key of ['storage.owner-uid', 'storage.owner-gid']) await execa('gluster', ['--mode=script', 'volume', 'set', names.resourceName, key, '0']);
    await waitUntil('the brick root to be root\'s', async () => (await stat(join(brickRoot, `${names.resourceName}-b0`))).uid === 0, 10_000, 100);
    const again = await deploy(5, commits[1]!);
    expectExit(again, 0);
    expect(again.stderr).toMatch(/adopted persistentvolumeclaim/);
    const adopted = await volumeInfo(names.resourceName);
    expect(adopted).toContain('storage.owner-uid: 1000');
    expect(adopted).toContain('storage.owner-gid: 1000');
    const brick = await stat(join(brickRoot, `${names.resourceName}-b0`));
    expect({ uid: brick.uid, gid: brick.gid }).toEqual({ uid: 1000, gid: 1000 });
    expect(await env.serve(job)).toEqual({ status: 200, body: 'Hello from the brick\n' });
  }, 180_000);

  test('delete removes the pod, the claim, the PV, the volume and the brick directory', async () => {
    const r = await env.gkube(['delete', job, '-o', 'json'], env.jenkinsEnv(job, 6, commits[1]!));
    expectExit(r, 0);
    expect(JSON.parse(String(r.stdout)).removed).toEqual(expect.arrayContaining([`Gluster volume ${names.resourceName}`, `persistentvolume gkube-default-${names.resourceName}`]));
    expect(await volumeInfo(names.resourceName)).toBeUndefined();
    expect(existsSync(join(brickRoot, `${names.resourceName}-b0`))).toBe(false);
    expect(await env.record(job)).toBeUndefined();
    await waitUntil('the claim to go', async () => (await env.objects(job)).claims === 0, 60_000, 200);
  }, 180_000);
});

describe('GlusterFS and failures', () => {
  test.each(['gluster-start', 'gluster-pv', 'gluster-claim'])('SIGKILL as %s begins: the rerun converges to one volume, its one brick, one PV and one claim', async (step) => {
    const name = `gluster-${run}/crash/${step}`;
    const resource = jobNames(name).resourceName;
    made.push(resource);
    const killed = await deploy(1, commits[0]!, [], name, { GKUBE_TEST_KILL_AT_STEP: step });
    expect(killed.signal).toBe('SIGKILL');
    const rerun = await deploy(2, commits[0]!, [], name);
    expectExit(rerun, 0);
    expect(await volumeInfo(resource)).toMatch(/Number of Bricks: 1\b/);
    expect((await readdir(brickRoot)).filter((d) => d.startsWith(resource))).toEqual([`${resource}-b0`]);
    expect(await env.objects(name)).toEqual({ pods: 1, claims: 1 });
    const pvs = await env.core.listPersistentVolume({ labelSelector: `gkube.dev/job=${resource}` });
    expect(pvs.items).toHaveLength(1);
    expect((await env.record(name))?.record.status).toMatchObject({ phase: 'ready', revision: 1, volume: resource });
    const removed = await env.gkube(['delete', name], env.jenkinsEnv(name, 3, commits[0]!));
    expectExit(removed, 0);
    expect(await volumeInfo(resource)).toBeUndefined();
    expect((await readdir(brickRoot)).filter((d) => d.startsWith(resource))).toEqual([]);
  }, 180_000);

  test('a publish that exceeds the volume\'s quota fails with the reason and leaves the live code as it was', async () => {
    const name = `gluster-${run}/quota`;
    const resource = jobNames(name).resourceName;
    made.push(resource);
    expectExit(await deploy(1, commits[0]!, ['--set', 'storage.size=8Mi'], name), 0);
    const before = (await env.record(name))!.record.status;
    // 24 MiB of incompressible data against an 8 MiB quota.
    const big = randomBytes(24 * 1024 * 1024).toString('base64');
    const commit = await env.repo.commit('too big', { 'data/big.bin': big, 'message.txt': 'too big\n' });
    const r = await deploy(2, commit, ['--set', 'storage.size=8Mi'], name);
    expectExit(r, 1);
    expect(r.stderr).toMatch(/^error: .*(Disk quota exceeded|No space left)/m);
    expect((await env.record(name))?.record.status).toMatchObject({ commit: before.commit, image: before.image });
    expect(await env.serve(name)).toEqual({ status: 200, body: 'Hello from gkube!\n' });
    expectExit(await env.gkube(['delete', name], env.jenkinsEnv(name, 3, commit)), 0);
    await env.repo.git('reset', '-q', '--hard', commits[1]!);
  }, 180_000);
});

describe('replicated volumes', () => {
  test('replica 2: two bricks, the published code on both', async () => {
    const name = `gluster-${run}/replica`;
    const resource = jobNames(name).resourceName;
    made.push(resource);
    const r = await deploy(1, commits[1]!, ['--set', 'storage.glusterfs.replica=2'], name);
    expectExit(r, 0);
    expect(await volumeInfo(resource)).toMatch(/Type: Replicate[\s\S]*Number of Bricks: 1 x 2 = 2/);
    for (const b of [0, 1]) expect(await readFile(join(brickRoot, `${resource}-b${b}`, 'current', 'message.txt'), 'utf8')).toBe('Hello from the brick\n');
    expectExit(await env.gkube(['delete', name], env.jenkinsEnv(name, 2, commits[1]!)), 0);
    expect((await readdir(brickRoot)).filter((d) => d.startsWith(resource))).toEqual([]);
  }, 180_000);
});

describe('delete while the pool is unwell', () => {
  test('a pool that stays busy leaves the record deleting with the reason (exit 1); the next delete finishes', async () => {
    const name = `gluster-${run}/busy`;
    const resource = jobNames(name).resourceName;
    made.push(resource);
    expectExit(await deploy(1, commits[1]!, [], name), 0);
    const etcd = connectEtcd({ endpoints: env.etcd.endpoints, callTimeoutMs: 5_000 });
    const real = connectGluster();
    // The pool answers, but every stop is refused as glusterd does when a peer is down (after the adapter's own retries).
    const busy = { ...real, volumeInfo: real.volumeInfo.bind(real), stopVolume: async () => {
      throw new GkubeError('OPERATION_FAILED', `gluster volume stop ${resource} failed on this host: Some of the peers are down (5 tries over 10 s)`);
    } };
    const ctx = {
      etcd: () => etcd,
      prefix: '/gkube/v1',
      kube: () => connectKube({ kubeconfig: env.kubeconfig, callTimeoutMs: 10_000 }),
      gluster: async () => busy,
      clock: systemClock,
      identity: { id: 'test@host:1', user: 'test', host: 'host', pid: process.pid },
      progress: () => undefined,
      isRunning: () => true,
      signal: new AbortController().signal,
      stepStarting: () => undefined,
    } as unknown as Context;
    try {
      const err = await deleteJob(ctx, jobNames(name), { keepStorage: false, waitLockMs: 10_000 }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(GkubeError);
      expect((err as GkubeError).exitCode).toBe(1);
      expect((err as GkubeError).message).toMatch(/was not removed completely: .*Some of the peers are down.*; the record is left in phase deleting/);
      expect((await env.record(name))?.record.status).toMatchObject({ phase: 'deleting', reason: expect.stringMatching(/Some of the peers are down/) });
      expect(await volumeInfo(resource)).toMatch(/Status: Started/);
    } finally {
      etcd.close();
    }
    const again = await env.gkube(['delete', name], env.jenkinsEnv(name, 2, commits[1]!));
    expectExit(again, 0);
    expect(await volumeInfo(resource)).toBeUndefined();
    expect(await env.record(name)).toBeUndefined();
  }, 180_000);
});
