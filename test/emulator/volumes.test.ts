// The emulator's storage side on a real ObjectStore and a real state directory: binding, provisioning,
// protection, reclaim, and the kubelet's host directories. Gluster mounts are in volumes-gluster.test.ts.
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { chmod, chown, lstat, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EmulatorContext } from '../kube-emulator/context.js';
import { Faults } from '../kube-emulator/faults.js';
import { findType } from '../kube-emulator/resources.js';
import { ObjectStore, type KubeObject } from '../kube-emulator/store.js';
import { VolumeManager, addProtectionFinalizers, admit, hostpathProvisioner, parseQuantity } from '../kube-emulator/volumes.js';
import { prepareError, startVolumeManager } from './volume-helpers.js';

const T = {
  pvc: findType('', 'persistentvolumeclaims')!,
  pv: findType('', 'persistentvolumes')!,
  sc: findType('storage.k8s.io', 'storageclasses')!,
  pod: findType('', 'pods')!,
  events: findType('', 'events')!,
};

let stateDir: string;
let store: ObjectStore;
let vm: VolumeManager;
let logs: string[];

beforeEach(async () => {
  ({ stateDir, store, logs, vm } = await startVolumeManager('gkube-volumes-'));
});

afterEach(async () => {
  await vm.stop();
  // Every controller sync succeeded (a failure is logged and retried, which would hide a bug).
  expect(logs.filter((l) => l.includes('failed'))).toEqual([]);
  const mounts = await readFile('/proc/mounts', 'utf8');
  // Never remove a directory through a live mount.
  expect(mounts.includes(stateDir)).toBe(false);
  await rm(stateDir, { recursive: true, force: true });
});

function makePV(name: string, spec: KubeObject['spec'], labels?: Record<string, string>): KubeObject {
  return store.create(T.pv, {
    metadata: { name, ...(labels ? { labels } : {}) },
    spec: { accessModes: ['ReadWriteOnce'], persistentVolumeReclaimPolicy: 'Retain', volumeMode: 'Filesystem', ...spec },
  });
}

function makePVC(name: string, spec: KubeObject['spec'], namespace = 'default'): KubeObject {
  return store.create(T.pvc, {
    metadata: { name, namespace },
    spec: { accessModes: ['ReadWriteOnce'], volumeMode: 'Filesystem', ...spec },
  });
}

function makeClass(name: string, provisioner: string, extra: Record<string, unknown> = {}, annotations?: Record<string, string>): KubeObject {
  return store.create(T.sc, { metadata: { name, ...(annotations ? { annotations } : {}) }, provisioner, ...extra });
}

function makePod(name: string, volumes: Array<Record<string, unknown>>, namespace = 'default'): KubeObject {
  return store.create(T.pod, {
    metadata: { name, namespace },
    spec: { nodeName: 'emulator-node', containers: [{ name: 'app', image: 'app:1' }], volumes },
    status: { phase: 'Running' },
  });
}

const pvc = (name: string): KubeObject | undefined => store.get(T.pvc, 'default', name);
const pv = (name: string): KubeObject | undefined => store.get(T.pv, undefined, name);

function eventsOf(obj: KubeObject): string[] {
  return store
    .list(T.events, { namespace: obj.metadata.namespace ?? 'default' })
    .items.filter((e) => e['involvedObject']?.uid === obj.metadata.uid)
    // Listed by name, which ends in a random suffix: resourceVersion gives the order they were recorded in.
    .sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion))
    .map((e) => `${e['type']} ${e['reason']} ${e['message']}`);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}


describe('PersistentVolume controller: static binding', () => {
  test('a new PV goes Available and gets the pv-protection finalizer', async () => {
    makePV('pv-a', { capacity: { storage: '1Gi' }, hostPath: { path: join(stateDir, 'data-a') } });
    await vm.idle();
    expect(pv('pv-a')!['status'].phase).toBe('Available');
    expect(pv('pv-a')!.metadata.finalizers).toEqual(['kubernetes.io/pv-protection']);
  });

  test('a claim naming a volume binds to it: claimRef, phases, capacity, annotations as the controller writes them', async () => {
    makePV('pv-a', { capacity: { storage: '1Gi' }, hostPath: { path: join(stateDir, 'data-a') } });
    const claim = makePVC('data', { volumeName: 'pv-a', storageClassName: '', resources: { requests: { storage: '500Mi' } } });
    await vm.idle();
    const c = pvc('data')!;
    const v = pv('pv-a')!;
    expect(c['status']).toEqual({ phase: 'Bound', accessModes: ['ReadWriteOnce'], capacity: { storage: '1Gi' } });
    expect(c.metadata.finalizers).toEqual(['kubernetes.io/pvc-protection']);
    // The user named the volume: only bind-completed on the claim; the controller wrote the PV's claimRef.
    expect(c.metadata.annotations).toEqual({ 'pv.kubernetes.io/bind-completed': 'yes' });
    expect(v.metadata.annotations).toEqual({ 'pv.kubernetes.io/bound-by-controller': 'yes' });
    expect(v['spec'].claimRef).toEqual({
      kind: 'PersistentVolumeClaim',
      namespace: 'default',
      name: 'data',
      uid: claim.metadata.uid,
      apiVersion: 'v1',
      resourceVersion: expect.any(String),
    });
    expect(v['status'].phase).toBe('Bound');
    expect(v['status'].lastPhaseTransitionTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  test('a PV pre-bound to a claim by claimRef (no uid) is taken by that claim only', async () => {
    makePV('big', { capacity: { storage: '10Gi' }, hostPath: { path: join(stateDir, 'big') }, claimRef: { namespace: 'default', name: 'wanted' } });
    makePV('fits', { capacity: { storage: '1Gi' }, hostPath: { path: join(stateDir, 'fits') } });
    await vm.idle();
    expect(pv('big')!['status'].phase).toBe('Available');
    makePVC('other', { storageClassName: '', resources: { requests: { storage: '1Gi' } } });
    await vm.idle();
    expect(pvc('other')!['spec'].volumeName).toBe('fits');
    const wanted = makePVC('wanted', { storageClassName: '', resources: { requests: { storage: '1Gi' } } });
    await vm.idle();
    expect(pvc('wanted')!['spec'].volumeName).toBe('big');
    expect(pv('big')!['spec'].claimRef.uid).toBe(wanted.metadata.uid);
    // The user reserved it: the controller only completed the claimRef.
    expect(pv('big')!.metadata.annotations).toBeUndefined();
    expect(pvc('wanted')!.metadata.annotations).toEqual({ 'pv.kubernetes.io/bind-completed': 'yes', 'pv.kubernetes.io/bound-by-controller': 'yes' });
  });

  test('a claim naming a volume that is too small stays Pending with VolumeMismatch', async () => {
    makePV('pv-small', { capacity: { storage: '100Mi' }, hostPath: { path: join(stateDir, 'small') } });
    makePVC('data', { volumeName: 'pv-small', storageClassName: '', resources: { requests: { storage: '1Gi' } } });
    await vm.idle();
    expect(pvc('data')!['status'].phase).toBe('Pending');
    expect(eventsOf(pvc('data')!)).toContain('Warning VolumeMismatch Cannot bind to requested volume "pv-small": requested PV is too small');
    expect(pv('pv-small')!['status'].phase).toBe('Available');
  });

  test('a selector picks the smallest Available volume that fits, of the same class and access modes', async () => {
    const mk = (name: string, size: string, labels: Record<string, string>, extra: KubeObject['spec'] = {}): void => {
      makePV(name, { capacity: { storage: size }, hostPath: { path: join(stateDir, name) }, ...extra }, labels);
    };
    mk('gold-5g', '5Gi', { tier: 'gold' });
    mk('gold-2g', '2Gi', { tier: 'gold', zone: 'a' });
    mk('gold-500m', '500Mi', { tier: 'gold' }); // too small
    mk('gold-1g-rox', '1Gi', { tier: 'gold' }, { accessModes: ['ReadOnlyMany'] }); // wrong access modes
    mk('gold-1g-fast', '1Gi', { tier: 'gold' }, { storageClassName: 'fast' }); // another class
    mk('silver-1g', '1Gi', { tier: 'silver' });
    makePVC('gold', { storageClassName: '', selector: { matchLabels: { tier: 'gold' } }, resources: { requests: { storage: '1Gi' } } });
    await vm.idle();
    const c = pvc('gold')!;
    expect(c['spec'].volumeName).toBe('gold-2g');
    expect(c['status'].capacity).toEqual({ storage: '2Gi' });
    // The controller chose the volume: bound-by-controller on both sides.
    expect(c.metadata.annotations).toEqual({ 'pv.kubernetes.io/bind-completed': 'yes', 'pv.kubernetes.io/bound-by-controller': 'yes' });
    expect(pv('gold-2g')!.metadata.annotations).toEqual({ 'pv.kubernetes.io/bound-by-controller': 'yes' });
    expect(pv('gold-5g')!['status'].phase).toBe('Available');

    makePVC('expr', {
      storageClassName: '',
      selector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['gold', 'silver'] }, { key: 'zone', operator: 'DoesNotExist' }] },
      resources: { requests: { storage: '1Gi' } },
    });
    await vm.idle();
    expect(pvc('expr')!['spec'].volumeName).toBe('silver-1g');
  });

  test('an unmatched claim without a class stays Pending with FailedBinding, then binds when a volume appears', async () => {
    makePVC('data', { storageClassName: '', resources: { requests: { storage: '1Gi' } } });
    await vm.idle();
    expect(pvc('data')!['status'].phase).toBe('Pending');
    expect(eventsOf(pvc('data')!)).toContain('Normal FailedBinding no persistent volumes available for this claim and no storage class is set');
    makePV('late', { capacity: { storage: '1Gi' }, hostPath: { path: join(stateDir, 'late') } });
    await vm.idle();
    expect(pvc('data')!['status'].phase).toBe('Bound');
    expect(pvc('data')!['spec'].volumeName).toBe('late');
  });

  test('objects already in the store are reconciled on start', async () => {
    await vm.stop();
    makePV('pv-a', { capacity: { storage: '1Gi' }, hostPath: { path: join(stateDir, 'a') } });
    makePVC('data', { storageClassName: '', resources: { requests: { storage: '1Gi' } } });
    const ctx: EmulatorContext = { store, stateDir, faults: new Faults(), log: () => undefined };
    vm = new VolumeManager(ctx, { resyncMs: 0 });
    vm.start();
    await vm.idle();
    expect(pvc('data')!['status'].phase).toBe('Bound');
    expect(pv('pv-a')!['status'].phase).toBe('Bound');
  });

  test('a bound claim whose volume disappears is Lost', async () => {
    makePV('pv-a', { capacity: { storage: '1Gi' }, hostPath: { path: join(stateDir, 'a') } });
    makePVC('data', { storageClassName: '', resources: { requests: { storage: '1Gi' } } });
    await vm.idle();
    store.remove(T.pv, undefined, 'pv-a');
    await vm.idle();
    expect(pvc('data')!['status'].phase).toBe('Lost');
    expect(eventsOf(pvc('data')!)).toContain('Warning ClaimLost Bound claim has lost its PersistentVolume. Data on the volume is lost!');
  });
});

describe('dynamic provisioning with the emulator hostpath provisioner', () => {
  test('an Immediate class provisions pvc-<uid>: a hostPath directory, the class reclaim policy, the provisioner events', async () => {
    makeClass('local', hostpathProvisioner);
    const claim = makePVC('data', { storageClassName: 'local', resources: { requests: { storage: '2Gi' } } });
    await vm.idle();
    const name = `pvc-${claim.metadata.uid}`;
    const v = pv(name)!;
    expect(v.metadata.annotations).toEqual({ 'pv.kubernetes.io/provisioned-by': hostpathProvisioner });
    expect(v.metadata.finalizers).toEqual(['kubernetes.io/pv-protection', 'external-provisioner.volume.kubernetes.io/finalizer']);
    expect(v['spec']).toMatchObject({
      accessModes: ['ReadWriteOnce'],
      capacity: { storage: '2Gi' },
      persistentVolumeReclaimPolicy: 'Delete',
      storageClassName: 'local',
      volumeMode: 'Filesystem',
      claimRef: { kind: 'PersistentVolumeClaim', namespace: 'default', name: 'data', uid: claim.metadata.uid, apiVersion: 'v1' },
      hostPath: { type: 'DirectoryOrCreate' },
    });
    expect(v['spec'].hostPath.path.startsWith(stateDir)).toBe(true);
    expect((await stat(v['spec'].hostPath.path)).isDirectory()).toBe(true);
    expect(v['status'].phase).toBe('Bound');
    // The provisioner wrote the claimRef, so only the claim carries bound-by-controller.
    expect(v.metadata.annotations?.['pv.kubernetes.io/bound-by-controller']).toBeUndefined();
    const c = pvc('data')!;
    expect(c['status']).toEqual({ phase: 'Bound', accessModes: ['ReadWriteOnce'], capacity: { storage: '2Gi' } });
    expect(c.metadata.annotations).toEqual({
      'pv.kubernetes.io/bind-completed': 'yes',
      'pv.kubernetes.io/bound-by-controller': 'yes',
      'volume.beta.kubernetes.io/storage-provisioner': hostpathProvisioner,
      'volume.kubernetes.io/storage-provisioner': hostpathProvisioner,
    });
    expect(eventsOf(c)).toEqual([
      `Normal ExternalProvisioning Waiting for a volume to be created either by the external provisioner '${hostpathProvisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.`,
      'Normal Provisioning External provisioner is provisioning volume for claim "default/data"',
      `Normal ProvisioningSucceeded Successfully provisioned volume ${name}`,
    ]);
    const provisioning = store.list(T.events, { namespace: 'default' }).items.find((e) => e['reason'] === 'Provisioning')!;
    expect(provisioning['source'].component).toMatch(new RegExp(`^${hostpathProvisioner}_emulator-node_`));
  });

  test('WaitForFirstConsumer: nothing until a pod uses the claim, then a node is selected, the volume provisioned and mounted', async () => {
    makeClass('wait', hostpathProvisioner, { volumeBindingMode: 'WaitForFirstConsumer', reclaimPolicy: 'Retain' });
    const claim = makePVC('data', { storageClassName: 'wait', resources: { requests: { storage: '1Gi' } } });
    await vm.idle();
    expect(pvc('data')!['status'].phase).toBe('Pending');
    expect(pv(`pvc-${claim.metadata.uid}`)).toBeUndefined();
    expect(eventsOf(pvc('data')!)).toEqual(['Normal WaitForFirstConsumer waiting for first consumer to be created before binding']);

    const pod = makePod('web', [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }]);
    await vm.idle();
    const c = pvc('data')!;
    expect(c.metadata.annotations?.['volume.kubernetes.io/selected-node']).toBe('emulator-node');
    expect(c['status'].phase).toBe('Bound');
    const v = pv(`pvc-${claim.metadata.uid}`)!;
    expect(v['spec'].persistentVolumeReclaimPolicy).toBe('Retain');
    const volumes = await vm.prepare(pod);
    expect(volumes.get('data')).toEqual({ hostPath: v['spec'].hostPath.path, readOnly: false });
  });

  test('WaitForFirstConsumer with an Available PV: the consumer pod gets it bound (scheduler path)', async () => {
    makeClass('manual', 'kubernetes.io/no-provisioner', { volumeBindingMode: 'WaitForFirstConsumer' });
    makePV('pv-m', { capacity: { storage: '1Gi' }, storageClassName: 'manual', hostPath: { path: join(stateDir, 'm'), type: 'DirectoryOrCreate' } });
    makePVC('data', { storageClassName: 'manual', resources: { requests: { storage: '1Gi' } } });
    await vm.idle();
    expect(pvc('data')!['status'].phase).toBe('Pending');
    const pod = makePod('web', [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }]);
    const volumes = await vm.prepare(pod);
    expect(volumes.get('data')!.hostPath).toBe(join(stateDir, 'm'));
    expect(pvc('data')!['spec'].volumeName).toBe('pv-m');
    expect(pv('pv-m')!.metadata.annotations).toEqual({ 'pv.kubernetes.io/bound-by-controller': 'yes' });
  });

  test('a claim without a class gets the default class (DefaultStorageClass) and is provisioned', async () => {
    makeClass('other', hostpathProvisioner);
    makeClass('standard', hostpathProvisioner, {}, { 'storageclass.kubernetes.io/is-default-class': 'true' });
    const claim = makePVC('data', { resources: { requests: { storage: '1Gi' } } });
    await vm.idle();
    expect(pvc('data')!['spec'].storageClassName).toBe('standard');
    expect(pvc('data')!['status'].phase).toBe('Bound');
    expect(pv(`pvc-${claim.metadata.uid}`)!['spec'].storageClassName).toBe('standard');
    // An explicit '' means "no class": never defaulted.
    makePVC('none', { storageClassName: '', resources: { requests: { storage: '1Gi' } } });
    await vm.idle();
    expect(pvc('none')!['spec'].storageClassName).toBe('');
    expect(pvc('none')!['status'].phase).toBe('Pending');
  });

  test('a class whose provisioner the emulator does not run leaves the claim Pending with ExternalProvisioning', async () => {
    makeClass('ebs', 'ebs.csi.aws.com');
    makeClass('none', 'kubernetes.io/no-provisioner');
    makePVC('data', { storageClassName: 'ebs', resources: { requests: { storage: '1Gi' } } });
    makePVC('local', { storageClassName: 'none', resources: { requests: { storage: '1Gi' } } });
    makePVC('ghost', { storageClassName: 'missing', resources: { requests: { storage: '1Gi' } } });
    await vm.idle();
    expect(pvc('data')!['status'].phase).toBe('Pending');
    expect(pvc('data')!.metadata.annotations?.['volume.kubernetes.io/storage-provisioner']).toBe('ebs.csi.aws.com');
    expect(eventsOf(pvc('data')!)).toEqual([
      "Normal ExternalProvisioning Waiting for a volume to be created either by the external provisioner 'ebs.csi.aws.com' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.",
    ]);
    expect(eventsOf(pvc('local')!)).toEqual(['Warning ProvisioningFailed no volume plugin matched name: kubernetes.io/no-provisioner']);
    expect(eventsOf(pvc('ghost')!)).toEqual(['Warning ProvisioningFailed storageclass.storage.k8s.io "missing" not found']);
    expect(store.list(T.pv).items).toHaveLength(0);
  });
});

describe('protection and reclaim', () => {
  test('a claim in use stays Terminating until the pod is gone; then Delete removes the PV and its directory', async () => {
    makeClass('local', hostpathProvisioner);
    const claim = makePVC('data', { storageClassName: 'local', resources: { requests: { storage: '1Gi' } } });
    await vm.idle();
    const pvName = `pvc-${claim.metadata.uid}`;
    const dir: string = pv(pvName)!['spec'].hostPath.path;
    const pod = makePod('web', [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }]);
    const volumes = await vm.prepare(pod);
    await writeFile(join(volumes.get('data')!.hostPath, 'index.html'), 'v1');

    store.delete(T.pvc, 'default', 'data');
    await vm.idle();
    const terminating = pvc('data')!;
    expect(terminating.metadata.deletionTimestamp).toBeDefined();
    expect(terminating.metadata.finalizers).toEqual(['kubernetes.io/pvc-protection']);
    expect(terminating['status'].phase).toBe('Bound');
    expect(pv(pvName)!['status'].phase).toBe('Bound');
    // The running pod keeps its volumes; a new pod may not start with the claim.
    expect((await vm.prepare(pod)).get('data')!.hostPath).toBe(dir);
    const other = makePod('other', [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }]);
    const err = await prepareError(vm, other);
    expect(err.message).toBe('persistentvolumeclaim "data" is being deleted');
    expect(err.reason).toBe('FailedScheduling');
    store.remove(T.pod, 'default', 'other');

    await vm.release(pod);
    store.remove(T.pod, 'default', 'web');
    await vm.idle();
    expect(pvc('data')).toBeUndefined();
    expect(pv(pvName)).toBeUndefined();
    expect(await exists(dir)).toBe(false);
  });

  test('Retain: the volume is Released with its claimRef and data kept', async () => {
    makeClass('keep', hostpathProvisioner, { reclaimPolicy: 'Retain' });
    const claim = makePVC('data', { storageClassName: 'keep', resources: { requests: { storage: '1Gi' } } });
    await vm.idle();
    const pvName = `pvc-${claim.metadata.uid}`;
    const dir: string = pv(pvName)!['spec'].hostPath.path;
    await writeFile(join(dir, 'db.sqlite'), 'precious');
    store.delete(T.pvc, 'default', 'data');
    await vm.idle();
    expect(pvc('data')).toBeUndefined();
    const v = pv(pvName)!;
    expect(v['status'].phase).toBe('Released');
    expect(v['spec'].claimRef).toMatchObject({ name: 'data', uid: claim.metadata.uid });
    expect(await readFile(join(dir, 'db.sqlite'), 'utf8')).toBe('precious');
    // A new claim of the same name does not get it back: the claimRef names the old uid.
    makePVC('data', { storageClassName: 'keep', volumeName: pvName, resources: { requests: { storage: '1Gi' } } });
    await vm.idle();
    expect(pvc('data')!['status'].phase).toBe('Pending');
    expect(eventsOf(pvc('data')!)).toContain(`Warning FailedBinding volume "${pvName}" already bound to a different claim.`);
  });

  test('Delete on a hand-made PV deletes the PV object', async () => {
    makePV('manual', { capacity: { storage: '1Gi' }, persistentVolumeReclaimPolicy: 'Delete', hostPath: { path: join(stateDir, 'manual'), type: 'DirectoryOrCreate' } });
    makePVC('data', { storageClassName: '', resources: { requests: { storage: '1Gi' } } });
    await vm.idle();
    expect(pv('manual')!['status'].phase).toBe('Bound');
    store.delete(T.pvc, 'default', 'data');
    await vm.idle();
    expect(pv('manual')).toBeUndefined();
  });

  test('a bound PV that is deleted stays Terminating until its claim is gone', async () => {
    makePV('pv-a', { capacity: { storage: '1Gi' }, hostPath: { path: join(stateDir, 'a') } });
    makePVC('data', { storageClassName: '', resources: { requests: { storage: '1Gi' } } });
    await vm.idle();
    store.delete(T.pv, undefined, 'pv-a');
    await vm.idle();
    expect(pv('pv-a')!.metadata.deletionTimestamp).toBeDefined();
    expect(pv('pv-a')!['status'].phase).toBe('Bound');
    store.delete(T.pvc, 'default', 'data');
    await vm.idle();
    expect(pvc('data')).toBeUndefined();
    expect(pv('pv-a')).toBeUndefined();
  });

  test('admission helpers add the protection finalizers and the default class', () => {
    makeClass('standard', hostpathProvisioner, {}, { 'storageclass.kubernetes.io/is-default-class': 'true' });
    const claim: KubeObject = { kind: 'PersistentVolumeClaim', metadata: { name: 'x', namespace: 'default' }, spec: {} };
    admit(store, T.pvc, claim);
    expect(claim.metadata.finalizers).toEqual(['kubernetes.io/pvc-protection']);
    expect(claim['spec'].storageClassName).toBe('standard');
    const volume: KubeObject = { kind: 'PersistentVolume', metadata: { name: 'v', finalizers: ['other'] } };
    expect(addProtectionFinalizers(volume).metadata.finalizers).toEqual(['other', 'kubernetes.io/pv-protection']);
    expect(parseQuantity('1Gi')).toBe(2 ** 30);
    expect(parseQuantity('1G')).toBe(1e9);
    expect(parseQuantity('500m')).toBe(0.5);
    expect(parseQuantity('1e3')).toBe(1000);
    expect(Number.isNaN(parseQuantity('lots'))).toBe(true);
  });
});

describe('kubelet side: prepare and release', () => {
  test('a missing or unbound claim fails with the scheduler messages', async () => {
    const missing = makePod('a', [{ name: 'data', persistentVolumeClaim: { claimName: 'nope' } }]);
    const err = await prepareError(vm, missing);
    expect(err.message).toBe('persistentvolumeclaim "nope" not found');
    expect(err.eventMessage).toBe('0/1 nodes are available: persistentvolumeclaim "nope" not found. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.');
    makePVC('pending', { storageClassName: '', resources: { requests: { storage: '1Gi' } } });
    const unbound = makePod('b', [{ name: 'data', persistentVolumeClaim: { claimName: 'pending' } }]);
    expect((await prepareError(vm, unbound)).message).toBe('pod has unbound immediate PersistentVolumeClaims');
  });

  test('emptyDir, hostPath, configMap volumes; release removes the per-pod directories', async () => {
    const host = join(stateDir, 'host-data');
    const pod = makePod('web', [
      { name: 'scratch', emptyDir: {} },
      { name: 'host', hostPath: { path: host, type: 'DirectoryOrCreate' } },
      { name: 'config', configMap: { name: 'app-config' } },
    ]);
    const volumes = await vm.prepare(pod);
    const scratch = volumes.get('scratch')!;
    expect(scratch.readOnly).toBe(false);
    expect(scratch.hostPath.startsWith(stateDir)).toBe(true);
    expect(scratch.hostPath).toContain(pod.metadata.uid);
    expect(volumes.get('host')).toEqual({ hostPath: host, readOnly: false });
    expect((await stat(host)).isDirectory()).toBe(true);
    expect(volumes.get('config')!.readOnly).toBe(true);
    await writeFile(join(scratch.hostPath, 'tmp.txt'), 'x');
    // Preparing again (a container restart) keeps the emptyDir's contents.
    expect((await vm.prepare(pod)).get('scratch')!.hostPath).toBe(scratch.hostPath);
    expect(await readFile(join(scratch.hostPath, 'tmp.txt'), 'utf8')).toBe('x');
    await vm.release(pod);
    expect(await exists(scratch.hostPath)).toBe(false);
    expect(await exists(volumes.get('config')!.hostPath)).toBe(false);
    expect(await exists(host)).toBe(true); // hostPath data is the host's, never removed
  });

  test('hostPath type checks fail as the kubelet reports them, and a failed prepare keeps nothing', async () => {
    const file = join(stateDir, 'a-file');
    await writeFile(file, '');
    const pod = makePod('web', [
      { name: 'scratch', emptyDir: {} },
      { name: 'missing', hostPath: { path: join(stateDir, 'does-not-exist'), type: 'Directory' } },
    ]);
    const err = await prepareError(vm, pod);
    expect(err.reason).toBe('FailedMount');
    expect(err.message).toBe(`MountVolume.SetUp failed for volume "missing" : hostPath type check failed: ${join(stateDir, 'does-not-exist')} is not a directory`);
    expect(await exists(join(stateDir, 'pod-volumes', pod.metadata.uid!, 'kubernetes.io~empty-dir', 'scratch'))).toBe(false);
    const notDir = makePod('web2', [{ name: 'f', hostPath: { path: file, type: 'DirectoryOrCreate' } }]);
    expect((await prepareError(vm, notDir)).message).toContain(`hostPath type check failed: ${file} is not a directory`);
    const fileOk = makePod('web3', [{ name: 'f', hostPath: { path: file, type: 'File' } }]);
    expect((await vm.prepare(fileOk)).get('f')!.hostPath).toBe(file);
  });

  test('a PV hostPath and the claim readOnly flag reach the pod', async () => {
    const dir = join(stateDir, 'existing');
    await mkdir(dir);
    makePV('pv-ro', { capacity: { storage: '1Gi' }, accessModes: ['ReadOnlyMany'], hostPath: { path: dir, type: 'Directory' } });
    makePVC('ro', { storageClassName: '', accessModes: ['ReadOnlyMany'], resources: { requests: { storage: '1Gi' } } });
    await vm.idle();
    const pod = makePod('reader', [{ name: 'data', persistentVolumeClaim: { claimName: 'ro', readOnly: true } }]);
    expect((await vm.prepare(pod)).get('data')).toEqual({ hostPath: dir, readOnly: true });
  });

  test('a volume source the emulator does not implement is a FailedMount', async () => {
    const pod = makePod('nfs', [{ name: 'share', nfs: { server: 'nfs.example', path: '/export' } }]);
    const err = await prepareError(vm, pod);
    expect(err.message).toBe('MountVolume.SetUp failed for volume "share" : the Kubernetes API emulator does not implement volume source nfs');
  });
});

describe('kubelet side: fsGroup and volume groups', () => {
  const modeOf = async (path: string): Promise<{ uid: number; gid: number; mode: string }> => {
    const st = await lstat(path);
    return { uid: st.uid, gid: st.gid, mode: (st.mode & 0o7777).toString(8) };
  };
  const withFsGroup = (pod: KubeObject, securityContext: Record<string, unknown>): KubeObject =>
    store.mutate(T.pod, 'default', pod.metadata.name!, (p) => {
      p['spec'].securityContext = securityContext;
    })!;

  async function provisionedClaim(name: string): Promise<string> {
    if (!store.get(T.sc, undefined, 'local')) makeClass('local', hostpathProvisioner);
    const claim = makePVC(name, { storageClassName: 'local', resources: { requests: { storage: '1Gi' } } });
    await vm.idle();
    return pv(`pvc-${claim.metadata.uid}`)!['spec'].hostPath.path;
  }

  test('emptyDir and configMap directories get the fsGroup: group-owned, g+rw(x) and setgid', async () => {
    const pod = withFsGroup(makePod('web', [{ name: 'scratch', emptyDir: {} }, { name: 'config', configMap: { name: 'c' } }]), { fsGroup: 4000 });
    const volumes = await vm.prepare(pod);
    expect(await modeOf(volumes.get('scratch')!.hostPath)).toEqual({ uid: 0, gid: 4000, mode: '2777' });
    expect(await modeOf(volumes.get('config')!.hostPath)).toEqual({ uid: 0, gid: 4000, mode: '2777' });
    await vm.release(pod);
  });

  test('a provisioned volume (a CSI driver with fsGroupPolicy File) is changed recursively; symbolic links are not followed', async () => {
    const dir = await provisionedClaim('data');
    expect(await modeOf(dir)).toEqual({ uid: 0, gid: 0, mode: '755' });
    await mkdir(join(dir, 'sub'), { mode: 0o700 });
    await chmod(join(dir, 'sub'), 0o700);
    await writeFile(join(dir, 'sub', 'file'), 'x');
    await chmod(join(dir, 'sub', 'file'), 0o600);
    const outside = join(stateDir, 'outside.txt');
    await writeFile(outside, 'not the volume\'s');
    await chmod(outside, 0o600);
    await symlink(outside, join(dir, 'link'));
    const pod = withFsGroup(makePod('web', [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }]), { fsGroup: 4000 });
    expect((await vm.prepare(pod)).get('data')).toEqual({ hostPath: dir, readOnly: false });
    expect(await modeOf(dir)).toEqual({ uid: 0, gid: 4000, mode: '2775' });
    expect(await modeOf(join(dir, 'sub'))).toEqual({ uid: 0, gid: 4000, mode: '2770' });
    expect(await modeOf(join(dir, 'sub', 'file'))).toEqual({ uid: 0, gid: 4000, mode: '660' });
    expect(await modeOf(outside)).toEqual({ uid: 0, gid: 0, mode: '600' });
  });

  test('fsGroupChangePolicy OnRootMismatch skips a volume whose root already fits, and changes one whose root does not', async () => {
    const dir = await provisionedClaim('data');
    await writeFile(join(dir, 'file'), 'x');
    await chmod(join(dir, 'file'), 0o600);
    const pod = withFsGroup(makePod('web', [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }]), { fsGroup: 4000, fsGroupChangePolicy: 'OnRootMismatch' });
    await vm.prepare(pod);
    expect(await modeOf(join(dir, 'file'))).toEqual({ uid: 0, gid: 4000, mode: '660' });
    await vm.release(pod);
    // The root fits now: a file the pod's group does not own stays as it is.
    await chown(join(dir, 'file'), 0, 0);
    await chmod(join(dir, 'file'), 0o600);
    await vm.prepare(pod);
    expect(await modeOf(join(dir, 'file'))).toEqual({ uid: 0, gid: 0, mode: '600' });
  });

  test('hostPath volumes, hand-made hostPath and local PVs and read-only claims are never changed; a PV gid annotation is a supplementary group', async () => {
    const inline = join(stateDir, 'inline');
    const handMade = join(stateDir, 'hand-made');
    const local = join(stateDir, 'local');
    for (const d of [inline, handMade, local]) {
      await mkdir(d);
      await chmod(d, 0o755);
    }
    makePV('pv-host', { capacity: { storage: '1Gi' }, hostPath: { path: handMade, type: 'Directory' } });
    store.mutate(T.pv, undefined, 'pv-host', (v) => {
      v.metadata.annotations = { 'pv.beta.kubernetes.io/gid': '5555' };
    });
    makePV('pv-local', { capacity: { storage: '1Gi' }, local: { path: local }, nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['emulator-node'] }] }] } } });
    store.mutate(T.pv, undefined, 'pv-local', (v) => {
      v.metadata.annotations = { 'pv.beta.kubernetes.io/gid': 'not-a-number' };
    });
    makePVC('host', { storageClassName: '', volumeName: 'pv-host', resources: { requests: { storage: '1Gi' } } });
    makePVC('local', { storageClassName: '', volumeName: 'pv-local', resources: { requests: { storage: '1Gi' } } });
    const provisioned = await provisionedClaim('ro');
    const pod = withFsGroup(
      makePod('web', [
        { name: 'inline', hostPath: { path: inline } },
        { name: 'host', persistentVolumeClaim: { claimName: 'host' } },
        { name: 'local', persistentVolumeClaim: { claimName: 'local' } },
        { name: 'ro', persistentVolumeClaim: { claimName: 'ro', readOnly: true } },
      ]),
      { fsGroup: 4000 },
    );
    const volumes = await vm.prepare(pod);
    for (const d of [inline, handMade, local, provisioned]) expect(await modeOf(d)).toEqual({ uid: 0, gid: 0, mode: '755' });
    expect(volumes.get('host')).toEqual({ hostPath: handMade, readOnly: false, supplementalGroups: [5555] });
    expect(volumes.get('local')).toEqual({ hostPath: local, readOnly: false });
    expect(volumes.get('ro')).toEqual({ hostPath: provisioned, readOnly: true });
  });

  test('without fsGroup nothing is changed', async () => {
    const dir = await provisionedClaim('data');
    const pod = makePod('web', [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }, { name: 'scratch', emptyDir: {} }]);
    const volumes = await vm.prepare(pod);
    expect(await modeOf(dir)).toEqual({ uid: 0, gid: 0, mode: '755' });
    expect(await modeOf(volumes.get('scratch')!.hostPath)).toEqual({ uid: 0, gid: 0, mode: '777' });
  });
});
