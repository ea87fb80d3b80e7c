// GlusterFS PVs through the emulator's kubelet volume manager, on the machine's real glusterd:
// one FUSE mount per PV shared by the pods that use it, real files on the bricks, FailedMount errors.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { lookup } from 'node:dns/promises';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { GlusterPool, glusterHost, type TestVolume } from '../harness/index.js';
import { findType } from '../kube-emulator/resources.js';
import { ObjectStore, type KubeObject } from '../kube-emulator/store.js';
import { VolumeManager } from '../kube-emulator/volumes.js';
import { prepareError, startVolumeManager } from './volume-helpers.js';

const T = {
  pvc: findType('', 'persistentvolumeclaims')!,
  pv: findType('', 'persistentvolumes')!,
  pod: findType('', 'pods')!,
  endpoints: findType('', 'endpoints')!,
};

let pool: GlusterPool;
let volume: TestVolume;
let hostIp: string;
let stateDir: string;
let store: ObjectStore;
let vm: VolumeManager;
let logs: string[];

beforeAll(async () => {
  pool = await GlusterPool.connect();
  volume = await pool.createVolume();
  hostIp = (await lookup(glusterHost(), { family: 4 })).address;
});

afterAll(async () => {
  await pool?.cleanup();
});

beforeEach(async () => {
  ({ stateDir, store, logs, vm } = await startVolumeManager('gkube-volumes-gluster-'));
});

afterEach(async () => {
  await vm.stop();
  // Nothing of ours may still be mounted: only then is removing the state directory safe.
  expect(await mountsUnder(stateDir)).toEqual([]);
  await rm(stateDir, { recursive: true, force: true });
});

/** /proc/mounts lines whose mount point is under `dir`. */
async function mountsUnder(dir: string): Promise<string[]> {
  return (await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.split(' ')[1]?.startsWith(dir));
}

function glusterEndpoints(name: string, addresses: Array<{ ip: string; hostname?: string }>): void {
  store.create(T.endpoints, {
    metadata: { name, namespace: 'default' },
    subsets: [{ addresses, ports: [{ port: 1, protocol: 'TCP' }] }],
  });
}

/** A glusterfs PV, a claim bound to it by name, and `pods` pods using the claim. */
async function glusterClaim(pvName: string, glusterfs: Record<string, unknown>, pods: string[]): Promise<KubeObject[]> {
  store.create(T.pv, {
    metadata: { name: pvName },
    spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteMany'], persistentVolumeReclaimPolicy: 'Retain', volumeMode: 'Filesystem', glusterfs },
  });
  store.create(T.pvc, {
    metadata: { name: `${pvName}-claim`, namespace: 'default' },
    spec: { accessModes: ['ReadWriteMany'], storageClassName: '', volumeName: pvName, resources: { requests: { storage: '1Gi' } } },
  });
  const created = pods.map((name) =>
    store.create(T.pod, {
      metadata: { name, namespace: 'default' },
      spec: { nodeName: 'emulator-node', containers: [{ name: 'app', image: 'app:1' }], volumes: [{ name: 'code', persistentVolumeClaim: { claimName: `${pvName}-claim` } }] },
      status: { phase: 'Running' },
    }),
  );
  await vm.idle();
  expect(store.get(T.pvc, 'default', `${pvName}-claim`)!['status'].phase).toBe('Bound');
  return created;
}


describe('GlusterFS persistent volumes (real glusterd)', () => {
  test('pods share one real FUSE mount of the PV; files land on the brick; the last release unmounts it', async () => {
    glusterEndpoints('glusterfs-cluster', [{ ip: hostIp, hostname: glusterHost() }]);
    const [a, b] = await glusterClaim('pv-gluster', { endpoints: 'glusterfs-cluster', path: volume.name }, ['web-a', 'web-b']);
    // Both pods start at once: one mount, two references.
    const [volsA, volsB] = await Promise.all([vm.prepare(a!), vm.prepare(b!)]);
    const fromA = volsA.get('code')!;
    const fromB = volsB.get('code')!;
    expect(fromA).toEqual({ hostPath: join(stateDir, 'mounts', 'pv-gluster'), readOnly: false });
    expect(fromB).toEqual(fromA);
    const lines = await mountsUnder(stateDir);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^${hostIp.replace(/\./g, '\\.')}:/${volume.name} ${fromA.hostPath} fuse\\.glusterfs rw,`));

    await writeFile(join(fromA.hostPath, 'index.html'), 'hello through gluster\n');
    expect(await readFile(join(volume.brickDirs[0]!, 'index.html'), 'utf8')).toBe('hello through gluster\n');

    await vm.release(a!);
    expect(await mountsUnder(stateDir)).toHaveLength(1); // web-b still uses it
    expect(await readFile(join(fromB.hostPath, 'index.html'), 'utf8')).toBe('hello through gluster\n');
    await vm.release(b!);
    expect(await mountsUnder(stateDir)).toEqual([]);
    await expect(stat(fromA.hostPath)).rejects.toThrow(/ENOENT/);
    // The data stays on the volume.
    expect(await readFile(join(volume.brickDirs[0]!, 'index.html'), 'utf8')).toBe('hello through gluster\n');
  });

  test('a dead first endpoint address does not stop the mount; a read-only source is mounted ro', async () => {
    glusterEndpoints('glusterfs-cluster', [{ ip: 'gkube-no-such-host.invalid' }, { ip: hostIp }]);
    const [pod] = await glusterClaim('pv-ro', { endpoints: 'glusterfs-cluster', path: `/${volume.name}`, readOnly: true }, ['reader']);
    const got = (await vm.prepare(pod!)).get('code')!;
    expect(got.readOnly).toBe(true);
    // mount.glusterfs fetches the volfile from the other addresses (backup-volfile-servers) or the next address
    // is tried; /proc/mounts names whichever address the mount command was given.
    const [line] = await mountsUnder(stateDir);
    expect(line).toMatch(new RegExp(`^\\S+:/${volume.name} ${got.hostPath} fuse\\.glusterfs ro,`));
    await vm.release(pod!);
  });

  test('a mount that vanished under a pod is mounted again on the next prepare', async () => {
    glusterEndpoints('glusterfs-cluster', [{ ip: hostIp }]);
    const [pod] = await glusterClaim('pv-again', { endpoints: 'glusterfs-cluster', path: volume.name }, ['web']);
    const dir = (await vm.prepare(pod!)).get('code')!.hostPath;
    await execa('umount', [dir]);
    expect(await mountsUnder(stateDir)).toEqual([]);
    expect((await vm.prepare(pod!)).get('code')!.hostPath).toBe(dir);
    expect(await mountsUnder(stateDir)).toHaveLength(1);
    await vm.release(pod!);
    expect(await mountsUnder(stateDir)).toEqual([]);
  });

  test('a Gluster volume that does not exist fails as the kubelet FailedMount, leaving nothing mounted', async () => {
    glusterEndpoints('glusterfs-cluster', [{ ip: hostIp }]);
    const [pod] = await glusterClaim('pv-ghost', { endpoints: 'glusterfs-cluster', path: 'gkube-no-such-volume' }, ['web']);
    const err = await prepareError(vm, pod!);
    expect(err.reason).toBe('FailedMount');
    expect(err.message.startsWith('MountVolume.SetUp failed for volume "pv-ghost" : mount failed: mount failed: exit status 1\nMounting command: mount\nMounting arguments: -t glusterfs -o ')).toBe(true);
    expect(err.message).toContain(`${hostIp}:/gkube-no-such-volume ${join(stateDir, 'mounts', 'pv-ghost')}`);
    expect(err.message).toContain('Output: Mounting glusterfs on'); // mount.glusterfs's stderr
    expect(err.message).toContain('the following error information was pulled from the glusterfs log');
    expect(await mountsUnder(stateDir)).toEqual([]);
    await expect(stat(join(stateDir, 'mounts', 'pv-ghost'))).rejects.toThrow(/ENOENT/);
  });

  test('fsGroup leaves a Gluster mount as the volume has it (the in-tree plugin manages no ownership); a PV gid annotation is a supplementary group', async () => {
    glusterEndpoints('glusterfs-cluster', [{ ip: hostIp }]);
    const [pod] = await glusterClaim('pv-owner', { endpoints: 'glusterfs-cluster', path: volume.name }, ['web']);
    store.mutate(T.pv, undefined, 'pv-owner', (v) => {
      v.metadata.annotations = { ...v.metadata.annotations, 'pv.beta.kubernetes.io/gid': '5555' };
    });
    const grouped = store.mutate(T.pod, 'default', 'web', (p) => {
      p['spec'].securityContext = { fsGroup: 4000 };
    })!;
    const brickRoot = await stat(volume.brickDirs[0]!);
    const got = (await vm.prepare(grouped)).get('code')!;
    expect(got).toEqual({ hostPath: join(stateDir, 'mounts', 'pv-owner'), readOnly: false, supplementalGroups: [5555] });
    const root = await stat(got.hostPath);
    expect({ uid: root.uid, gid: root.gid, mode: root.mode & 0o7777 }).toEqual({ uid: brickRoot.uid, gid: brickRoot.gid, mode: brickRoot.mode & 0o7777 });
    expect(root.gid).not.toBe(4000);
    await vm.release(pod!);
  });

  test('missing Endpoints fail before any mount is tried', async () => {
    const [pod] = await glusterClaim('pv-noep', { endpoints: 'glusterfs-cluster', path: volume.name }, ['web']);
    const err = await prepareError(vm, pod!);
    expect(err.message).toBe('MountVolume.NewMounter initialization failed for volume "pv-noep" : endpoints "glusterfs-cluster" not found');
  });

  test('stop() unmounts mounts still held by pods and removes what it made under the state directory', async () => {
    glusterEndpoints('glusterfs-cluster', [{ ip: hostIp }]);
    const [pod] = await glusterClaim('pv-held', { endpoints: 'glusterfs-cluster', path: volume.name }, ['web']);
    await writeFile(join((await vm.prepare(pod!)).get('code')!.hostPath, 'keep.txt'), 'on the volume');
    await vm.stop();
    expect(await mountsUnder(stateDir)).toEqual([]);
    await expect(stat(join(stateDir, 'mounts'))).rejects.toThrow(/ENOENT/);
    // Unmounting, not deleting: the file is still on the brick.
    expect(await readFile(join(volume.brickDirs[0]!, 'keep.txt'), 'utf8')).toBe('on the volume');
  });
});
