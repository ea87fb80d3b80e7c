// Pods end to end through the API: a GlusterFS-backed PV really mounted, the pod proxy, pull and crash back-offs.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { KubeEmulator } from '../kube-emulator/emulator.js';
import { GlusterPool, glusterHost, startRegistry, waitUntil, type TestRegistry, type TestVolume } from '../harness/index.js';

let emulator: KubeEmulator;
let registry: TestRegistry;
let pool: GlusterPool;
let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;
const ns = 'default';

async function waitForPod(name: string, predicate: (p: k8s.V1Pod) => boolean, what: string): Promise<k8s.V1Pod> {
  let last: k8s.V1Pod | undefined;
  await waitUntil(`pod ${name} ${what} (last status: ${JSON.stringify(last?.status?.containerStatuses?.[0]?.state)})`, async () => {
    last = await core.readNamespacedPod({ name, namespace: ns });
    return predicate(last);
  }, 30_000);
  return last!;
}

const waiting = (p: k8s.V1Pod) => p.status?.containerStatuses?.[0]?.state?.waiting;
const isReady = (p: k8s.V1Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

beforeAll(async () => {
  registry = await startRegistry();
  await registry.pushImage('team/app', 'v1');
  pool = await GlusterPool.connect();
  emulator = await KubeEmulator.start({ registryUrl: registry.url, kubelet: { imagePullBackOffInitialMs: 200, crashLoopBackOffInitialMs: 200, probeTimeScale: 0.1 } });
  kc = new k8s.KubeConfig();
  kc.loadFromString(emulator.kubeconfig);
  core = kc.makeApiClient(k8s.CoreV1Api);
});

afterAll(async () => {
  await emulator?.stop();
  await pool?.cleanup();
  await registry?.stop();
});

describe('a pod on a GlusterFS persistent volume', () => {
  let volume: TestVolume;

  test('the PV is FUSE-mounted for real: a file the pod writes lands on the Gluster brick', async () => {
    volume = await pool.createVolume();
    await core.createNamespacedEndpoints({ namespace: ns, body: { metadata: { name: 'glusterfs-cluster' }, subsets: [{ addresses: [{ ip: await hostAddress() }], ports: [{ port: 1 }] }] } });
    await core.createPersistentVolume({
      body: {
        metadata: { name: 'gluster-code' },
        spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteMany'], persistentVolumeReclaimPolicy: 'Retain', storageClassName: '', glusterfs: { endpoints: 'glusterfs-cluster', path: volume.name } },
      },
    });
    await core.createNamespacedPersistentVolumeClaim({
      namespace: ns,
      body: { metadata: { name: 'gluster-code' }, spec: { accessModes: ['ReadWriteMany'], storageClassName: '', volumeName: 'gluster-code', resources: { requests: { storage: '1Gi' } } } },
    });
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'on-gluster' },
        spec: {
          terminationGracePeriodSeconds: 1,
          containers: [{ name: 'app', image: `${registry.host}/team/app:v1`, command: ['sh', '-c', 'echo written-by-pod > /srv/code/proof.txt; exec sleep 3600'], volumeMounts: [{ name: 'code', mountPath: '/srv/code' }] }],
          volumes: [{ name: 'code', persistentVolumeClaim: { claimName: 'gluster-code' } }],
        },
      },
    });
    await waitForPod('on-gluster', isReady, 'ready');
    await waitUntil('proof.txt on the brick', async () => (await readFile(join(volume.brickDirs[0]!, 'proof.txt'), 'utf8').catch(() => '')) === 'written-by-pod\n');
    const mounts = await readFile('/proc/mounts', 'utf8');
    expect(mounts).toMatch(new RegExp(`:/?${volume.name} \\S+ fuse\\.glusterfs`));

    // exec sees the same files the container does.
    let out = '';
    const stdout = new PassThrough().on('data', (d) => (out += d));
    const status = await new Promise<k8s.V1Status>((resolve, reject) => {
      new k8s.Exec(kc).exec(ns, 'on-gluster', 'app', ['cat', '/srv/code/proof.txt'], stdout, null, null, false, resolve).catch(reject);
    });
    expect(status.status).toBe('Success');
    expect(out).toBe('written-by-pod\n');

    await core.deleteNamespacedPod({ name: 'on-gluster', namespace: ns });
    await waitUntil('pod gone', async () => (await core.listNamespacedPod({ namespace: ns, fieldSelector: 'metadata.name=on-gluster' })).items.length === 0, 20_000);
    // The data outlives the pod.
    expect(await readFile(join(volume.brickDirs[0]!, 'proof.txt'), 'utf8')).toBe('written-by-pod\n');
  });
});

describe('kubelet states through the API', () => {
  test('an image the registry does not hold goes ErrImagePull, then ImagePullBackOff', async () => {
    const image = `${registry.host}/team/app:v404`;
    await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'no-image' }, spec: { containers: [{ name: 'app', image, command: ['sleep', '60'] }] } } });
    const reasons = new Set<string>();
    await waitForPod('no-image', (p) => {
      const w = waiting(p);
      if (w?.reason) reasons.add(w.reason);
      return w?.reason === 'ImagePullBackOff';
    }, 'in ImagePullBackOff');
    expect(reasons.has('ErrImagePull') || reasons.has('ImagePullBackOff')).toBe(true);
    const events = await core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=no-image' });
    expect(events.items.map((e) => e.message).join('\n')).toContain(`Failed to pull image "${image}"`);
    expect(events.items.some((e) => e.reason === 'Failed' && e.message === 'Error: ErrImagePull')).toBe(true);
  });

  test('a command that exits 1 goes CrashLoopBackOff with restarts', async () => {
    await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'crasher' }, spec: { containers: [{ name: 'app', image: `${registry.host}/team/app:v1`, command: ['sh', '-c', 'echo dying; exit 1'] }] } } });
    const p = await waitForPod('crasher', (pod) => waiting(pod)?.reason === 'CrashLoopBackOff', 'in CrashLoopBackOff');
    const status = p.status!.containerStatuses![0]!;
    expect(status.restartCount).toBeGreaterThanOrEqual(1);
    expect(status.lastState?.terminated).toMatchObject({ exitCode: 1, reason: 'Error' });
  });

  test('the pod proxy reaches an HTTP server listening on the pod\'s own IP; an httpGet readiness probe gates Ready', async () => {
    const server = "require('http').createServer((q,s)=>{s.setHeader('content-type','text/plain');s.end('hello via '+q.url)}).listen(8080, process.env.POD_IP)";
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'http' },
        spec: {
          containers: [{
            name: 'web', image: `${registry.host}/team/app:v1`, command: ['node', '-e', server],
            env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
            ports: [{ containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 1 },
          }],
        },
      },
    });
    const p = await waitForPod('http', isReady, 'ready');
    expect(p.status!.podIP).toMatch(/^127\./);
    const body = await core.connectGetNamespacedPodProxyWithPath({ name: 'http:8080', namespace: ns, path: 'index.html' });
    expect(body).toBe('hello via /index.html');
  });
});

/** A non-loopback address of this host, as a Gluster endpoint needs (gluster refuses 127.x). */
async function hostAddress(): Promise<string> {
  const { lookup } = await import('node:dns/promises');
  return (await lookup(glusterHost(), { family: 4 })).address;
}
