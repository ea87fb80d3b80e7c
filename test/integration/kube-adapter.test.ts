// The Kubernetes adapter against the emulator: create from gkube's manifests, wait for Ready, fail fast.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { connectKube, type KubePort } from '../../src/adapters/kube.js';
import { loadConfig } from '../../src/config/index.js';
import { jobNames } from '../../src/jobs/naming.js';
import { claimManifest, podManifest } from '../../src/provision/manifests.js';
import { KubeEmulator } from '../kube-emulator/emulator.js';
import { hostpathProvisioner } from '../kube-emulator/volumes.js';
import { startRegistry, TempDirs, waitUntil, type TestRegistry } from '../harness/index.js';
import { gkubeErrorOf } from '../helpers/errors.js';

const temp = new TempDirs();
let emulator: KubeEmulator;
let registry: TestRegistry;
let kube: KubePort;

async function config(sets: string[]) {
  return (await loadConfig({ cwd: '/nonexistent', env: {}, sets, flags: {} })).config;
}

function deployment(image: string) {
  return { image, imageTag: 'v1', commit: 'c'.repeat(40), configDigest: 'sha256:x' };
}

beforeAll(async () => {
  registry = await startRegistry();
  await registry.pushImage('team/app', 'v1');
  emulator = await KubeEmulator.start({ registryUrl: registry.url, kubelet: { imagePullBackOffInitialMs: 200, crashLoopBackOffInitialMs: 200, terminationGraceScale: 0.05 } });
  const file = join(await temp.make('kube-adapter'), 'kubeconfig');
  await emulator.writeKubeconfig(file);
  const kc = new k8s.KubeConfig();
  kc.loadFromString(emulator.kubeconfig);
  await kc.makeApiClient(k8s.StorageV1Api).createStorageClass({
    body: { metadata: { name: 'local', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } }, provisioner: hostpathProvisioner },
  });
  kube = connectKube({ kubeconfig: file, callTimeoutMs: 10_000 });
});

afterAll(async () => {
  await emulator?.stop();
  await registry?.stop();
  await temp.removeAll();
});

describe('kube adapter', () => {
  test('creates the claim and the pod from the manifests, and waits until Ready', async () => {
    const names = jobNames('adapter/ok');
    const cfg = await config(['container.command={sh,-c,"echo up; exec sleep 3600"}']);
    expect(await kube.create(claimManifest(names, cfg))).toBe(true);
    expect(await kube.create(podManifest(names, cfg, deployment(`${registry.host}/team/app:v1`), names.resourceName))).toBe(true);
    expect(await kube.create(podManifest(names, cfg, deployment(`${registry.host}/team/app:v1`), names.resourceName))).toBe(false);
    const states: string[] = [];
    const pod = await kube.waitForReady('default', names.resourceName, 30_000, (s) => states.push(s));
    expect(pod).toMatchObject({ name: names.resourceName, phase: 'Running', ready: true, images: [`${registry.host}/team/app:v1`] });
    expect(pod.annotations['gkube.dev/commit']).toBe('c'.repeat(40));
    expect(states.at(-1)).toBe('Running, ready');
    expect(await kube.logTail('default', names.resourceName, 5)).toBe('up');
    expect(await kube.deletePod('default', names.resourceName)).toBe(true);
    expect(await kube.deleteClaim('default', names.resourceName)).toBe(true);
    // The claim stays Terminating (pvc-protection) until the pod is gone, as on a real cluster.
    await waitUntil('the claim to go', async () => !(await kube.deleteClaim('default', names.resourceName)), 20_000, 300);
  });

  test('an image the registry lacks fails fast with the reason, not at the timeout', async () => {
    const names = jobNames('adapter/no-image');
    const cfg = await config(['container.command={sleep,"3600"}']);
    await kube.create(podManifest(names, cfg, deployment(`${registry.host}/team/app:v404`), undefined));
    const started = Date.now();
    const error = await gkubeErrorOf(kube.waitForReady('default', names.resourceName, 60_000));
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(error.code).toBe('OPERATION_FAILED');
    expect(error.message).toMatch(new RegExp(`^pod default/${names.resourceName} cannot start: (ErrImagePull|ImagePullBackOff)`));
  });

  test('a crashing command fails fast with the last log lines in the hint', async () => {
    const names = jobNames('adapter/crash');
    const cfg = await config(['container.command={sh,-c,"echo missing DATABASE_URL >&2; exit 1"}']);
    await kube.create(podManifest(names, cfg, deployment(`${registry.host}/team/app:v1`), undefined));
    const error = await gkubeErrorOf(kube.waitForReady('default', names.resourceName, 60_000));
    expect(error.message).toMatch(/cannot start: CrashLoopBackOff/);
    expect(error.hint).toContain('missing DATABASE_URL');
  });

  test('logTail with previous reads the container that ran before the last restart (empty when there was none); the pod says how it ended', async () => {
    const names = jobNames('adapter/restarted');
    // Each start prints its own count: the first container says 1 and exits, the second says 2 and stays.
    const cfg = await config(['container.command={sh,-c,"n=$(( $(cat /srv/app/n 2>/dev/null || echo 0) + 1 )); echo $n > /srv/app/n; echo start $n; [ $n -ge 2 ] && exec sleep 3600; exit 3"}']);
    await kube.create(podManifest(names, cfg, deployment(`${registry.host}/team/app:v1`), undefined));
    expect(await kube.logTail('default', names.resourceName, 5, true)).toBe('');
    await waitUntil('the container to restart', async () => (await kube.logTail('default', names.resourceName, 5)) === 'start 2', 30_000, 200);
    expect(await kube.logTail('default', names.resourceName, 5, true)).toBe('start 1');
    const pod = await kube.findPod('default', names.resourceName);
    expect(pod).toMatchObject({ restarts: 1 });
    expect(pod?.lastEnd).toMatch(/^exit code 3 \(Error\) at \d{4}-\d\d-\d\dT/);
    await kube.deletePod('default', names.resourceName);
  });

  test('deleteObject removes only what carries the given labels; someone else\'s object of that name stays', async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromString(emulator.kubeconfig);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const ports = [{ port: 1, protocol: 'TCP' }];
    await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'glusterfs-theirs' }, spec: { ports } } });
    await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'glusterfs-ours', labels: { 'gkube.dev/job': 'ours' } }, spec: { ports } } });
    const labels = { 'gkube.dev/job': 'ours' };
    expect(await kube.deleteObject('Service', 'default', 'glusterfs-theirs', labels)).toBe('foreign');
    expect((await core.readNamespacedService({ name: 'glusterfs-theirs', namespace: 'default' })).metadata?.name).toBe('glusterfs-theirs');
    expect(await kube.deleteObject('Service', 'default', 'glusterfs-ours', labels)).toBe('deleted');
    expect(await kube.deleteObject('Service', 'default', 'glusterfs-ours', labels)).toBe('absent');
    await core.deleteNamespacedService({ name: 'glusterfs-theirs', namespace: 'default' });
  });
});
