// The emulator's storage side, as Kubernetes 1.31 splits it between processes:
// - the PersistentVolume controller (kube-controller-manager): PVC↔PV binding, phases, reclaim;
// - the pvc-protection and pv-protection controllers, and the StorageObjectInUseProtection and
//   DefaultStorageClass admission plugins (`admit`, also applied by the controller as a fallback);
// - an external provisioner for the StorageClass provisioner `emulator.gkube.dev/hostpath` (directories
//   under ctx.stateDir, with the csi-provisioner's events, annotations and finalizer);
// - the scheduler's VolumeBinding step (WaitForFirstConsumer claims get a node, or a matching PV);
// - the kubelet's volume manager (`prepare`/`release`): host directories for a pod's volumes, with a
//   GlusterFS PV really FUSE-mounted once per node and shared by the pods that use it.
//
// Controllers run from a work queue, after the store has delivered the change to every listener (never
// inside the store's emit), and each sync reads the current state from the store, so they are idempotent
// and do not care in which order changes arrive.
//
// Known differences from a real 1.31 cluster (kept on purpose, see the report in the commit):
// - the in-tree glusterfs volume plugin was removed in 1.26; the emulator keeps mounting `spec.glusterfs`
//   PVs (and inline pod glusterfs volumes) the way the 1.25 kubelet did, because gkube targets it;
// - reclaimPolicy Delete on a PV the emulator did not provision (glusterfs, local, hostPath) deletes the
//   PV object only (a real controller reports VolumeFailedDelete: glusterfs deletion needed heketi); a
//   hostPath directory is removed only when it lies under ctx.stateDir;
// - a pod that uses a claim blocks the claim's deletion while it is not Succeeded/Failed, scheduled or not;
// - configMap, secret, projected and downwardAPI volumes are empty per-pod directories (the emulator serves
//   no ConfigMaps or Secrets); emptyDir with medium Memory is a plain directory.
//
// fsGroup (pod.spec.securityContext.fsGroup, fsGroupChangePolicy): applied as the kubelet's
// SetVolumeOwnership does (group set to fsGroup, g+rw, g+x and setgid on directories, recursively; with
// OnRootMismatch skipped when the root already fits) to the volume types whose plugin does it: emptyDir,
// configMap, secret, projected, downwardAPI (read-only: g+r) and the emulator provisioner's volumes, which
// stand for a CSI driver with fsGroupPolicy File (not when the claim is mounted read-only). Never to
// hostPath or local volumes, nor to GlusterFS ones (the in-tree plugin leaves a mount's root as the Gluster
// volume has it: storage.owner-uid/storage.owner-gid). A PV's `pv.beta.kubernetes.io/gid` annotation
// becomes a supplementary group of the pod's containers.
import { chmod, chown, lstat, mkdir, readFile, readdir, realpath, rm, rmdir, stat, open } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import type { Stats } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { execa } from 'execa';
import type { EmulatorContext, HostVolume, VolumePort } from './context.js';
import { ApiError } from './errors.js';
import { recordEvent } from './events.js';
import { findType, type ResourceType } from './resources.js';
import { matchesLabels, type LabelSelector } from './selectors.js';
import { now, type KubeObject, type ObjectStore, type StoreChange } from './store.js';

/** The StorageClass provisioner the emulator implements: a directory under ctx.stateDir per claim. */
export const hostpathProvisioner = 'emulator.gkube.dev/hostpath';

/** Annotations and finalizers with the names Kubernetes uses. */
export const storageAnnotations = {
  bindCompleted: 'pv.kubernetes.io/bind-completed',
  boundByController: 'pv.kubernetes.io/bound-by-controller',
  provisionedBy: 'pv.kubernetes.io/provisioned-by',
  storageProvisioner: 'volume.kubernetes.io/storage-provisioner',
  betaStorageProvisioner: 'volume.beta.kubernetes.io/storage-provisioner',
  selectedNode: 'volume.kubernetes.io/selected-node',
  betaStorageClass: 'volume.beta.kubernetes.io/storage-class',
  isDefaultClass: 'storageclass.kubernetes.io/is-default-class',
  betaIsDefaultClass: 'storageclass.beta.kubernetes.io/is-default-class',
} as const;

/** Finalizers the storage controllers own. */
export const storageFinalizers = {
  pvcProtection: 'kubernetes.io/pvc-protection',
  pvProtection: 'kubernetes.io/pv-protection',
  /** Added by the external provisioner (HonorPVReclaimPolicy) to the PVs it provisions. */
  provisioner: 'external-provisioner.volume.kubernetes.io/finalizer',
} as const;

/** Options of the volume manager. */
export interface VolumeManagerOptions {
  /** The node the emulator's kubelet is (the selected-node of WaitForFirstConsumer claims). Default `emulator-node`. */
  nodeName?: string;
  /** Periodic re-sync of every claim and volume, as the PV controller's 15 s resync. 0 disables it. */
  resyncMs?: number;
  /** Deadline of one `mount`/`umount` call. */
  mountTimeoutMs?: number;
}

/** Why prepare failed, with the event a real cluster records for it (FailedScheduling by the scheduler, FailedMount by the kubelet). */
export class VolumeSetupError extends Error {
  constructor(
    message: string,
    readonly reason: 'FailedScheduling' | 'FailedMount',
    /** The event message: for FailedScheduling the scheduler's full `0/1 nodes are available: …` line. */
    readonly eventMessage: string,
  ) {
    super(message);
    this.name = 'VolumeSetupError';
  }

  /** The component that records the event. */
  get component(): string {
    return this.reason === 'FailedScheduling' ? 'default-scheduler' : 'kubelet';
  }
}

const pvcType = findType('', 'persistentvolumeclaims')!;
const pvType = findType('', 'persistentvolumes')!;
const scType = findType('storage.k8s.io', 'storageclasses')!;
const endpointsType = findType('', 'endpoints')!;
const podType = findType('', 'pods')!;

const controllerComponent = 'persistentvolume-controller';
const noProvisioner = 'kubernetes.io/no-provisioner';
const defaultNode = 'emulator-node';

/** Layout of what the manager owns under ctx.stateDir. */
const dirs = { mounts: 'mounts', podVolumes: 'pod-volumes', provisioned: 'provisioned', glusterLogs: 'gluster-logs' } as const;

/**
 * The StorageObjectInUseProtection admission plugin: a PVC gets `kubernetes.io/pvc-protection` and a PV
 * `kubernetes.io/pv-protection` when created. Mutates and returns `obj`; other kinds are left alone.
 */
export function addProtectionFinalizers(obj: KubeObject): KubeObject {
  if (obj.metadata.deletionTimestamp) return obj;
  if (obj.kind === 'PersistentVolumeClaim') addFinalizer(obj, storageFinalizers.pvcProtection);
  if (obj.kind === 'PersistentVolume') addFinalizer(obj, storageFinalizers.pvProtection);
  return obj;
}

/**
 * The storage admission plugins for a create, for the API server to call before storing `obj`:
 * protection finalizers, and DefaultStorageClass (a PVC without storageClassName gets the default class).
 */
export function admit(store: ObjectStore, type: ResourceType, obj: KubeObject): void {
  if (type === pvcType || type === pvType) {
    obj.kind ??= type.kind;
    addProtectionFinalizers(obj);
  }
  if (type === pvcType && !claimHasClass(obj)) {
    const def = defaultClass(store);
    if (def) {
      obj['spec'] ??= {};
      obj['spec'].storageClassName = def.metadata.name;
    }
  }
}

/** The default StorageClass as DefaultStorageClass admission picks it: the newest annotated one, then by name. */
export function defaultClass(store: ObjectStore): KubeObject | undefined {
  const defaults = store
    .list(scType)
    .items.filter((c) => c.metadata.annotations?.[storageAnnotations.isDefaultClass] === 'true' || c.metadata.annotations?.[storageAnnotations.betaIsDefaultClass] === 'true');
  defaults.sort((a, b) => {
    const ta = a.metadata.creationTimestamp ?? '';
    const tb = b.metadata.creationTimestamp ?? '';
    if (ta !== tb) return ta < tb ? 1 : -1;
    return a.metadata.name! < b.metadata.name! ? -1 : 1;
  });
  return defaults[0];
}

/** Parses a Kubernetes quantity (`1Gi`, `500M`, `1.5e3`) into a number; NaN when it is not one. */
export function parseQuantity(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string') return Number.NaN;
  const m = value.trim().match(/^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/);
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  const suffix = m[2] ?? '';
  const binary: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
  const decimal: Record<string, number> = { '': 1, n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
  if (suffix in binary) return n * binary[suffix]!;
  if (suffix in decimal) return n * decimal[suffix]!;
  return n * 10 ** Number(suffix.slice(1));
}

/** A mount made by the manager: one per PV (or inline pod volume), shared by the pods that hold it. */
interface FuseMount {
  dir: string;
  source: string;
  pods: Set<string>;
}

/** The emulator's PV controller, protection controllers, hostpath provisioner and kubelet volume manager. */
export class VolumeManager implements VolumePort {
  private readonly nodeName: string;
  private readonly resyncMs: number;
  private readonly mountTimeoutMs: number;
  private readonly provisionerIdentity: string;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private readonly attempts = new Map<string, number>();
  private readonly queue = new Set<string>();
  private draining: Promise<void> | undefined;
  private readonly locks = new Map<string, Promise<void>>();
  private readonly mounts = new Map<string, FuseMount>();
  /** Mount keys each pod holds. */
  private readonly podMounts = new Map<string, Set<string>>();
  /** Claims each pod was prepared with: a running pod keeps its volumes when its claim starts terminating. */
  private readonly podClaims = new Map<string, Set<string>>();
  private rootDir: string | undefined;

  constructor(
    private readonly ctx: EmulatorContext,
    options: VolumeManagerOptions = {},
  ) {
    this.nodeName = options.nodeName ?? defaultNode;
    this.resyncMs = options.resyncMs ?? 15_000;
    this.mountTimeoutMs = options.mountTimeoutMs ?? 30_000;
    this.provisionerIdentity = `${hostpathProvisioner}_${this.nodeName}_${randomUUID()}`;
  }

  private get store(): ObjectStore {
    return this.ctx.store;
  }

  /** Subscribes to the store and reconciles the objects already there. */
  start(): void {
    if (this.unsubscribe) return;
    this.stopped = false;
    this.unsubscribe = this.store.subscribe((change) => this.onChange(change));
    this.enqueueAll();
    if (this.resyncMs > 0) {
      this.resyncTimer = setInterval(() => this.enqueueAll(), this.resyncMs);
      this.resyncTimer.unref();
    }
  }

  /** Resolves once the controllers have handled every change made so far (and whatever that caused). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /**
   * Stops the controllers, unmounts every FUSE mount the manager made (umount, then umount -l) and removes
   * the directories it created under ctx.stateDir. Nothing is removed while a mount below it is still live.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.resyncTimer = undefined;
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
    this.queue.clear();
    await this.draining?.catch(() => undefined);
    // A prepare that is mounting right now finishes first (later ones see `stopped` and refuse).
    await Promise.all([...this.locks.values()].map((p) => p.catch(() => undefined)));
    for (const key of [...this.mounts.keys()]) {
      await this.withLock(`mount:${key}`, async () => {
        const m = this.mounts.get(key);
        if (m && (await this.unmount(m.dir))) this.mounts.delete(key);
      });
    }
    this.podMounts.clear();
    this.podClaims.clear();
    const root = await this.existingRoot();
    if (!root) return;
    // Mounts left by an earlier run in the same state directory are this manager's too.
    const mountsRoot = join(root, dirs.mounts);
    for (const point of await mountPoints()) if (isWithin(mountsRoot, point)) await this.unmount(point);
    for (const sub of Object.values(dirs)) {
      try {
        await this.removeUnder(join(root, sub));
      } catch (err) {
        this.ctx.log(`volumes: not removing ${join(root, sub)}: ${messageOf(err)}`);
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Kubelet side

  /** Resolves every volume of the pod to a host directory, checking claims as the scheduler and kubelet do. */
  async prepare(pod: KubeObject): Promise<Map<string, HostVolume>> {
    if (this.stopped) throw new Error('the volume manager is stopped');
    await this.idle();
    const podKey = podKeyOf(pod);
    const volumes: KubeObject[] = pod['spec']?.volumes ?? [];
    await this.checkClaimsForScheduling(pod, podKey);

    const held = this.podMounts.get(podKey) ?? new Set<string>();
    this.podMounts.set(podKey, held);
    const heldBefore = new Set(held);
    const createdDirs: string[] = [];
    const result = new Map<string, HostVolume>();
    try {
      for (const volume of volumes) result.set(volume['name'], await this.setUp(pod, podKey, volume, held, createdDirs));
    } catch (err) {
      // Nothing this call took stays held: the kubelet retries prepare from scratch.
      for (const key of [...held]) {
        if (heldBefore.has(key)) continue;
        held.delete(key);
        await this.dropMount(key, podKey);
      }
      if (held.size === 0) this.podMounts.delete(podKey);
      for (const dir of createdDirs.reverse()) await this.removeUnder(dir).catch((e: unknown) => this.ctx.log(`volumes: ${messageOf(e)}`));
      throw err;
    }
    this.podClaims.set(podKey, new Set(claimNamesOf(pod)));
    return result;
  }

  /** Releases what prepare set up for the pod: its mount references (unmounting unused mounts) and its own directories. */
  async release(pod: KubeObject): Promise<void> {
    const podKey = podKeyOf(pod);
    const held = this.podMounts.get(podKey);
    this.podMounts.delete(podKey);
    this.podClaims.delete(podKey);
    for (const key of held ?? []) await this.dropMount(key, podKey);
    const root = await this.existingRoot();
    if (root) await this.removeUnder(join(root, dirs.podVolumes, podKey));
    // The claims it used may now be deletable.
    for (const name of claimNamesOf(pod)) this.enqueue(`claim/${pod.metadata.namespace ?? 'default'}/${name}`);
  }

  /** The scheduler's checks of a pod's claims (VolumeBinding PreFilter/Filter/PreBind), in its words. */
  private async checkClaimsForScheduling(pod: KubeObject, podKey: string): Promise<void> {
    const namespace = pod.metadata.namespace ?? 'default';
    let unboundImmediate = false;
    for (const name of claimNamesOf(pod)) {
      let claim = this.store.get(pvcType, namespace, name);
      if (!claim) throw schedulingError(`persistentvolumeclaim "${name}" not found`);
      if (claim.metadata.deletionTimestamp && !this.podClaims.get(podKey)?.has(name)) {
        throw schedulingError(`persistentvolumeclaim "${name}" is being deleted`);
      }
      if (claim['spec']?.volumeName) {
        if (!this.store.get(pvType, undefined, claim['spec'].volumeName)) {
          throw schedulingError('node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)');
        }
        continue;
      }
      if (!this.isDelayBinding(claim)) {
        unboundImmediate = true;
        continue;
      }
      // WaitForFirstConsumer: this pod is the consumer; bind or provision now and wait for it.
      this.bindPodClaims(pod);
      this.enqueue(`claim/${namespace}/${name}`);
      await this.idle();
      claim = this.store.get(pvcType, namespace, name);
      if (!claim?.['spec']?.volumeName) {
        if (claim && !claim.metadata.annotations?.[storageAnnotations.selectedNode]) {
          throw schedulingError("1 node(s) didn't find available persistent volumes to bind");
        }
        throw schedulingError(`running PreBind plugin "VolumeBinding": binding volumes: persistentvolumeclaim "${name}" is not bound yet (waiting for its volume to be provisioned)`, false);
      }
    }
    if (unboundImmediate) throw schedulingError('pod has unbound immediate PersistentVolumeClaims');
  }

  /** One pod volume → its host directory. */
  private async setUp(pod: KubeObject, podKey: string, volume: KubeObject, held: Set<string>, createdDirs: string[]): Promise<HostVolume> {
    const name: string = volume['name'];
    const namespace = pod.metadata.namespace ?? 'default';
    if (volume['persistentVolumeClaim']) {
      const source = volume['persistentVolumeClaim'];
      const claimName: string = source.claimName;
      const claim = this.store.get(pvcType, namespace, claimName);
      const fail = (why: string): VolumeSetupError => mountError(`error processing PVC ${namespace}/${claimName}: ${why}`);
      if (!claim) throw fail(`persistentvolumeclaims "${claimName}" not found`);
      const volumeName: string | undefined = claim['spec']?.volumeName;
      if (claim['status']?.phase !== 'Bound' || !volumeName) {
        throw fail(`PVC ${namespace}/${claimName} has non-bound phase ("${claim['status']?.phase ?? ''}") or empty pvc.Spec.VolumeName ("${volumeName ?? ''}")`);
      }
      const pv = this.store.get(pvType, undefined, volumeName);
      if (!pv) throw fail(`failed to fetch PV ${volumeName} from API server: persistentvolumes "${volumeName}" not found`);
      if (pv['spec']?.claimRef?.uid !== claim.metadata.uid) {
        throw fail(`found PV object ${volumeName} but it has a ClaimRef that does not point to the claim (uid ${claim.metadata.uid})`);
      }
      return this.setUpPersistentVolume(pod, podKey, pv, Boolean(source.readOnly), held);
    }
    if (volume['hostPath']) {
      const path: string = volume['hostPath'].path;
      await checkHostPathType(name, path, volume['hostPath'].type);
      // The hostPath plugin does no ownership management: fsGroup leaves it alone.
      return { hostPath: path, readOnly: false };
    }
    if (volume['glusterfs']) {
      const dir = await this.mountGluster(pod, podKey, name, `inline~${podKey}~${name}`, volume['glusterfs'], held);
      return { hostPath: dir, readOnly: Boolean(volume['glusterfs'].readOnly) };
    }
    const plugins: Array<[string, string, boolean]> = [
      ['emptyDir', 'kubernetes.io~empty-dir', false],
      ['configMap', 'kubernetes.io~configmap', true],
      ['secret', 'kubernetes.io~secret', true],
      ['projected', 'kubernetes.io~projected', true],
      ['downwardAPI', 'kubernetes.io~downward-api', true],
    ];
    for (const [field, plugin, readOnly] of plugins) {
      if (!volume[field]) continue;
      const dir = join(await this.root(), dirs.podVolumes, podKey, plugin, name);
      const created = await mkdir(dir, { recursive: true, mode: 0o777 });
      if (created) {
        await chmod(dir, 0o777);
        createdDirs.push(dir);
      }
      // These plugins pass no fsGroupChangePolicy: always the whole tree (the atomic writer's are read-only).
      await this.applyFsGroup(pod, dir, readOnly, true);
      return { hostPath: dir, readOnly };
    }
    const kinds = Object.keys(volume).filter((k) => k !== 'name');
    throw mountError(`MountVolume.SetUp failed for volume "${name}" : the Kubernetes API emulator does not implement volume source ${kinds.join(', ') || '(none)'}`);
  }

  private async setUpPersistentVolume(pod: KubeObject, podKey: string, pv: KubeObject, claimReadOnly: boolean, held: Set<string>): Promise<HostVolume> {
    const hostVolume = await this.setUpPersistentVolumeSource(pod, podKey, pv, claimReadOnly, held);
    const gid = volumeGid(pv);
    return gid === undefined ? hostVolume : { ...hostVolume, supplementalGroups: [gid] };
  }

  private async setUpPersistentVolumeSource(pod: KubeObject, podKey: string, pv: KubeObject, claimReadOnly: boolean, held: Set<string>): Promise<HostVolume> {
    const name = pv.metadata.name!;
    const spec = pv['spec'] ?? {};
    if (spec.hostPath) {
      await checkHostPathType(name, spec.hostPath.path, spec.hostPath.type);
      // The emulator provisioner's volumes are hostPath PVs standing for a CSI driver with fsGroupPolicy
      // File: the kubelet applies fsGroup to them unless mounted read-only. A hand-made hostPath PV: never.
      if (pv.metadata.annotations?.[storageAnnotations.provisionedBy] === hostpathProvisioner && !claimReadOnly) {
        await this.applyFsGroup(pod, spec.hostPath.path, false, false);
      }
      return { hostPath: spec.hostPath.path, readOnly: claimReadOnly };
    }
    if (spec.local) {
      const path: string = spec.local.path;
      const info = await stat(path).catch(() => undefined);
      if (!info) throw mountError(`MountVolume.NewMounter initialization failed for volume "${name}" : path "${path}" does not exist`);
      return { hostPath: path, readOnly: claimReadOnly };
    }
    if (spec.glusterfs) {
      // The in-tree glusterfs plugin does no ownership management: the mount's root is as the Gluster volume has it.
      const dir = await this.mountGluster(pod, podKey, name, name, spec.glusterfs, held);
      return { hostPath: dir, readOnly: claimReadOnly || Boolean(spec.glusterfs.readOnly) };
    }
    const kinds = Object.keys(spec).filter((k) => !['capacity', 'accessModes', 'claimRef', 'persistentVolumeReclaimPolicy', 'storageClassName', 'mountOptions', 'volumeMode', 'nodeAffinity', 'volumeAttributesClassName'].includes(k));
    throw mountError(`MountVolume.SetUp failed for volume "${name}" : the Kubernetes API emulator does not implement persistent volume source ${kinds.join(', ') || '(none)'}`);
  }

  /**
   * The kubelet's SetVolumeOwnership for the pod's fsGroup: nothing without one; `ignorePolicy` for the
   * plugins that pass no fsGroupChangePolicy. Errors on single files are logged and skipped, as the
   * kubelet does.
   */
  private async applyFsGroup(pod: KubeObject, dir: string, readOnly: boolean, ignorePolicy: boolean): Promise<void> {
    const podSc = (pod['spec']?.securityContext ?? {}) as { fsGroup?: unknown; fsGroupChangePolicy?: unknown };
    if (typeof podSc.fsGroup !== 'number') return;
    const policy = ignorePolicy ? undefined : podSc.fsGroupChangePolicy;
    await setVolumeOwnership(dir, podSc.fsGroup, readOnly, policy === 'OnRootMismatch', (line) => this.ctx.log(`volumes: ${line}`));
  }

  /**
   * FUSE-mounts a Gluster volume once for all pods (the 1.25 in-tree plugin's way: the Endpoints object
   * names the servers; each address is tried until one mounts; the others are backup volfile servers).
   */
  private async mountGluster(pod: KubeObject, podKey: string, volumeName: string, key: string, source: KubeObject, held: Set<string>): Promise<string> {
    return this.withLock(`mount:${key}`, async () => {
      if (this.stopped) throw new Error('the volume manager is stopped');
      let m = this.mounts.get(key);
      if (m && !(await isMountPoint(m.dir))) {
        // The FUSE process went away (or someone unmounted it): mount again for everyone that holds it.
        this.ctx.log(`volumes: ${m.dir} is no longer mounted; mounting again`);
        m.source = (await this.doMountGluster(pod, volumeName, key, source)).sourceText;
      }
      if (!m) {
        const { dir, sourceText } = await this.doMountGluster(pod, volumeName, key, source);
        m = { dir, source: sourceText, pods: new Set() };
        this.mounts.set(key, m);
      }
      m.pods.add(podKey);
      held.add(key);
      return m.dir;
    });
  }

  private async doMountGluster(pod: KubeObject, volumeName: string, key: string, source: KubeObject): Promise<{ dir: string; sourceText: string }> {
    const epName: string = source['endpoints'];
    const epNamespace: string = source['endpointsNamespace'] || pod.metadata.namespace || 'default';
    const endpoints = this.store.get(endpointsType, epNamespace, epName);
    if (!endpoints) throw mountError(`MountVolume.NewMounter initialization failed for volume "${volumeName}" : endpoints "${epName}" not found`);
    const hosts = endpointAddresses(endpoints);
    if (hosts.length === 0) throw mountError(`MountVolume.SetUp failed for volume "${volumeName}" : failed to get any endpoints from endpoints "${epNamespace}/${epName}"`);
    const root = await this.root();
    const dir = join(root, dirs.mounts, key);
    const logDir = join(root, dirs.glusterLogs);
    await mkdir(dir, { recursive: true });
    await mkdir(logDir, { recursive: true });
    if (await isMountPoint(dir)) await this.unmount(dir, false); // a stale mount from an earlier run
    const logFile = join(logDir, `${key}.log`);
    const path = String(source['path'] ?? '').replace(/^\/+/, '');
    let lastFailure = '';
    for (const host of hosts) {
      const options = ['auto_unmount', 'log-level=ERROR', `log-file=${logFile}`];
      const backups = hosts.filter((h) => h !== host);
      if (backups.length) options.push(`backup-volfile-servers=${backups.join(':')}`);
      if (source['readOnly']) options.push('ro');
      const args = ['-t', 'glusterfs', '-o', options.join(','), `${host}:/${path}`, dir];
      const r = await execa('mount', args, { reject: false, timeout: this.mountTimeoutMs, all: true });
      if (r.exitCode === 0 && (await isMountPoint(dir))) {
        this.ctx.log(`volumes: mounted ${host}:/${path} on ${dir}`);
        return { dir, sourceText: `${host}:/${path}` };
      }
      const status = r.timedOut ? `timed out after ${this.mountTimeoutMs} ms` : `exit status ${r.exitCode ?? r.signal ?? 'unknown'}`;
      lastFailure = `mount failed: ${status}\nMounting command: mount\nMounting arguments: ${args.join(' ')}\nOutput: ${tail(String(r.all ?? ''), 10)}\n`;
    }
    await this.removeFailedMountDir(dir);
    const log = await readFile(logFile, 'utf8').catch(() => '');
    const fromLog = tail(log, 2);
    const detail = fromLog ? `${lastFailure}, the following error information was pulled from the glusterfs log to help diagnose this issue: ${fromLog}` : lastFailure;
    throw mountError(`MountVolume.SetUp failed for volume "${volumeName}" : mount failed: ${detail}`);
  }

  /**
   * Removes the directory of a mount that failed. The glusterfs client of a failed mount may still be tearing
   * its FUSE mount down (auto_unmount), which keeps the directory busy for a moment: wait for it.
   */
  private async removeFailedMountDir(dir: string): Promise<void> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      if (await isMountPoint(dir)) await execa('umount', ['-l', dir], { reject: false });
      try {
        await rmdir(dir);
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return;
        if (Date.now() > deadline) {
          this.ctx.log(`volumes: could not remove ${dir} after a failed mount: ${code}`);
          return;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Drops a pod's reference to a mount; the last one out unmounts it and removes the mount directory. */
  private async dropMount(key: string, podKey: string): Promise<void> {
    await this.withLock(`mount:${key}`, async () => {
      const m = this.mounts.get(key);
      if (!m) return;
      m.pods.delete(podKey);
      if (m.pods.size > 0) return;
      if (await this.unmount(m.dir)) this.mounts.delete(key);
    });
  }

  /** umount, then lazy umount; removes the (empty) mount directory once nothing is mounted there. */
  private async unmount(dir: string, removeDir = true): Promise<boolean> {
    if (await isMountPoint(dir)) {
      const r = await execa('umount', [dir], { reject: false, timeout: this.mountTimeoutMs, all: true });
      if (r.exitCode !== 0 || (await isMountPoint(dir))) {
        this.ctx.log(`volumes: umount ${dir} failed (${tail(String(r.all ?? ''), 3)}); trying umount -l`);
        await execa('umount', ['-l', dir], { reject: false, timeout: this.mountTimeoutMs });
      }
      if (await isMountPoint(dir)) {
        this.ctx.log(`volumes: ${dir} is still mounted`);
        return false;
      }
    }
    // rmdir, never a recursive removal: a mount directory holds nothing of its own.
    if (removeDir) await rmdir(dir).catch(() => undefined);
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Work queue

  private onChange(change: StoreChange): void {
    if (this.stopped) return;
    const obj = change.event.object;
    const previous = change.previous;
    if (change.type === pvcType) {
      const namespace = obj.metadata.namespace ?? 'default';
      this.enqueue(`claim/${namespace}/${obj.metadata.name}`);
      for (const o of [obj, previous]) if (o?.['spec']?.volumeName) this.enqueue(`volume/${o['spec'].volumeName}`);
      if (change.event.type === 'DELETED') {
        for (const pv of this.store.list(pvType).items) {
          const ref = pv['spec']?.claimRef;
          if (ref && ref.namespace === namespace && ref.name === obj.metadata.name) this.enqueue(`volume/${pv.metadata.name}`);
        }
      }
    } else if (change.type === pvType) {
      this.enqueue(`volume/${obj.metadata.name}`);
      for (const o of [obj, previous]) {
        const ref = o?.['spec']?.claimRef;
        if (ref?.name) this.enqueue(`claim/${ref.namespace ?? 'default'}/${ref.name}`);
      }
      // A volume that became Available may satisfy a waiting claim (the real controller finds it on its next resync).
      const becameAvailable = obj['status']?.phase === 'Available' && previous?.['status']?.phase !== 'Available';
      if (change.event.type === 'ADDED' || becameAvailable) this.enqueueUnboundClaims();
    } else if (change.type === scType) {
      this.enqueueUnboundClaims();
    } else if (change.type === podType) {
      const namespace = obj.metadata.namespace ?? 'default';
      if (change.event.type !== 'DELETED') this.enqueue(`pod/${namespace}/${obj.metadata.name}`);
      for (const o of [obj, previous]) if (o) for (const name of claimNamesOf(o)) this.enqueue(`claim/${namespace}/${name}`);
    }
  }

  private enqueueAll(): void {
    for (const c of this.store.list(pvcType).items) this.enqueue(`claim/${c.metadata.namespace}/${c.metadata.name}`);
    for (const v of this.store.list(pvType).items) this.enqueue(`volume/${v.metadata.name}`);
    for (const p of this.store.list(podType).items) if (claimNamesOf(p).length) this.enqueue(`pod/${p.metadata.namespace}/${p.metadata.name}`);
  }

  private enqueueUnboundClaims(): void {
    for (const c of this.store.list(pvcType).items) {
      if (!c['spec']?.volumeName || c['status']?.phase !== 'Bound') this.enqueue(`claim/${c.metadata.namespace}/${c.metadata.name}`);
    }
  }

  private enqueue(key: string): void {
    if (this.stopped) return;
    this.queue.add(key);
    if (!this.draining) this.draining = this.drain();
  }

  private async drain(): Promise<void> {
    // Leave the store's emit first: other listeners (watches) must see this change before ours.
    await Promise.resolve();
    try {
      for (;;) {
        const key = this.queue.values().next().value;
        if (key === undefined || this.stopped) break;
        this.queue.delete(key);
        try {
          await this.sync(key);
          this.attempts.delete(key);
        } catch (err) {
          this.retry(key, err);
        }
      }
    } finally {
      this.draining = undefined;
    }
  }

  private retry(key: string, err: unknown): void {
    const n = (this.attempts.get(key) ?? 0) + 1;
    this.attempts.set(key, n);
    const delay = Math.min(100 * 2 ** (n - 1), 5_000);
    this.ctx.log(`volumes: syncing ${key} failed (attempt ${n}, retrying in ${delay} ms): ${messageOf(err)}`);
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      this.enqueue(key);
    }, delay);
    timer.unref();
    this.retryTimers.add(timer);
  }

  private async sync(key: string): Promise<void> {
    const [kind, a, b] = key.split('/');
    if (kind === 'claim') await this.syncClaim(a!, b!);
    else if (kind === 'volume') await this.syncVolume(a!);
    else if (kind === 'pod') this.syncPod(a!, b!);
  }

  // ---------------------------------------------------------------------------------------------
  // Claims (PV controller syncClaim, pvc-protection, DefaultStorageClass)

  private async syncClaim(namespace: string, name: string): Promise<void> {
    let claim = this.store.get(pvcType, namespace, name);
    if (!claim) return;

    // pvc-protection: the finalizer on live claims; off once no pod uses a terminating one.
    if (!claim.metadata.deletionTimestamp && !hasFinalizer(claim, storageFinalizers.pvcProtection)) {
      claim = this.store.mutate(pvcType, namespace, name, (c) => addFinalizer(c, storageFinalizers.pvcProtection));
      if (!claim) return;
    }
    if (claim.metadata.deletionTimestamp && hasFinalizer(claim, storageFinalizers.pvcProtection) && this.podsUsingClaim(claim).length === 0) {
      this.store.mutate(pvcType, namespace, name, (c) => removeFinalizer(c, storageFinalizers.pvcProtection));
      claim = this.store.get(pvcType, namespace, name);
      if (!claim) return;
    }

    // DefaultStorageClass admission, applied here when the API server did not (and retroactively, as 1.28+ does).
    if (!claimHasClass(claim)) {
      const def = defaultClass(this.store);
      if (def) {
        claim = this.store.mutate(pvcType, namespace, name, (c) => {
          c['spec'] ??= {};
          c['spec'].storageClassName = def.metadata.name;
        });
        if (!claim) return;
      }
    }
    if (!claim['status']?.phase) {
      claim = this.store.mutate(pvcType, namespace, name, (c) => {
        c['status'] = { ...(c['status'] ?? {}), phase: 'Pending' };
      });
      if (!claim) return;
    }

    if (claim.metadata.annotations?.[storageAnnotations.bindCompleted]) this.syncBoundClaim(claim);
    else if (!claim.metadata.deletionTimestamp) await this.syncUnboundClaim(claim);
  }

  private syncBoundClaim(claim: KubeObject): void {
    const volumeName: string | undefined = claim['spec']?.volumeName;
    if (!volumeName) {
      this.updateClaimStatusWithEvent(claim, 'Lost', undefined, 'Warning', 'ClaimLost', 'Bound claim has lost reference to PersistentVolume. Data on the volume is lost!');
      return;
    }
    const volume = this.store.get(pvType, undefined, volumeName);
    if (!volume) {
      this.updateClaimStatusWithEvent(claim, 'Lost', undefined, 'Warning', 'ClaimLost', 'Bound claim has lost its PersistentVolume. Data on the volume is lost!');
      return;
    }
    if (!volume['spec']?.claimRef || isBoundToClaim(volume, claim)) {
      this.bind(volume, claim);
      return;
    }
    this.updateClaimStatusWithEvent(claim, 'Lost', undefined, 'Warning', 'ClaimMisbound', 'Two claims are bound to the same volume, this one is bound incorrectly');
  }

  private async syncUnboundClaim(claim: KubeObject): Promise<void> {
    const volumeName: string | undefined = claim['spec']?.volumeName;
    if (!volumeName) {
      const delay = this.isDelayBinding(claim);
      const volume = this.findBestMatch(claim, delay, false);
      if (volume) {
        this.bind(volume, claim);
        return;
      }
      if (delay) {
        const waiting = this.podsUsingClaim(claim).filter((p) => !p['spec']?.nodeName);
        if (waiting.length === 0) this.event(claim, 'Normal', 'WaitForFirstConsumer', 'waiting for first consumer to be created before binding');
        else this.event(claim, 'Normal', 'WaitForPodScheduled', `waiting for ${waiting.length > 1 ? 'pods' : 'pod'} ${waiting.map((p) => p.metadata.name).join(',')} to be scheduled`);
      } else if (claimClass(claim) !== '') {
        await this.provisionClaim(claim);
        return;
      } else {
        this.event(claim, 'Normal', 'FailedBinding', 'no persistent volumes available for this claim and no storage class is set');
      }
      this.updateClaimStatus(claim, 'Pending', undefined);
      return;
    }
    // Pre-bound by the user to a named volume.
    const volume = this.store.get(pvType, undefined, volumeName);
    if (!volume) {
      this.updateClaimStatus(claim, 'Pending', undefined);
      return;
    }
    if (!volume['spec']?.claimRef) {
      const mismatch = checkVolumeSatisfiesClaim(volume, claim);
      if (mismatch) {
        this.event(claim, 'Warning', 'VolumeMismatch', `Cannot bind to requested volume "${volumeName}": ${mismatch}`);
        this.updateClaimStatus(claim, 'Pending', undefined);
        return;
      }
      this.bind(volume, claim);
      return;
    }
    if (isBoundToClaim(volume, claim)) {
      this.bind(volume, claim);
      return;
    }
    if (!claim.metadata.annotations?.[storageAnnotations.boundByController]) {
      this.event(claim, 'Warning', 'FailedBinding', `volume "${volumeName}" already bound to a different claim.`);
    }
    this.updateClaimStatus(claim, 'Pending', undefined);
  }

  /** The PV controller's provisionClaim (external provisioners only in 1.31), then this emulator's provisioner. */
  private async provisionClaim(claim: KubeObject): Promise<void> {
    const className = claimClass(claim);
    const sc = this.store.get(scType, undefined, className);
    if (!sc) {
      this.event(claim, 'Warning', 'ProvisioningFailed', `storageclass.storage.k8s.io "${className}" not found`);
      return;
    }
    const provisioner: string = sc['provisioner'] ?? '';
    if (provisioner.startsWith('kubernetes.io/')) {
      // No in-tree provisioner is left in 1.31 (kubernetes.io/no-provisioner is the usual one).
      this.event(claim, 'Warning', 'ProvisioningFailed', `no volume plugin matched name: ${provisioner}`);
      return;
    }
    const updated = this.store.mutate(pvcType, claim.metadata.namespace, claim.metadata.name!, (c) => {
      setAnnotation(c, storageAnnotations.betaStorageProvisioner, provisioner);
      setAnnotation(c, storageAnnotations.storageProvisioner, provisioner);
    });
    if (!updated) return;
    this.event(
      updated,
      'Normal',
      'ExternalProvisioning',
      `Waiting for a volume to be created either by the external provisioner '${provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.`,
    );
    if (provisioner === hostpathProvisioner) await this.provisionHostPath(updated, sc);
  }

  /** The emulator's external provisioner: a directory under ctx.stateDir and a hostPath PV pre-bound to the claim. */
  private async provisionHostPath(claim: KubeObject, sc: KubeObject): Promise<void> {
    const namespace = claim.metadata.namespace!;
    const pvName = `pvc-${claim.metadata.uid}`;
    if (this.store.get(pvType, undefined, pvName)) return; // already provisioned; the controller binds it
    const spec = claim['spec'] ?? {};
    const fail = (why: string): void =>
      this.event(claim, 'Warning', 'ProvisioningFailed', `failed to provision volume with StorageClass "${sc.metadata.name}": ${why}`, this.provisionerIdentity);
    if (spec.selector) return fail('claim Selector is not supported');
    if (spec.volumeMode === 'Block') return fail('rpc error: code = InvalidArgument desc = block volumes are not supported by the emulator hostpath provisioner');
    const request = spec.resources?.requests?.storage;
    if (request === undefined) return fail('claim does not request any storage (spec.resources.requests.storage)');
    this.event(claim, 'Normal', 'Provisioning', `External provisioner is provisioning volume for claim "${namespace}/${claim.metadata.name}"`, this.provisionerIdentity);
    const dir = join(await this.root(), dirs.provisioned, pvName);
    // A new volume's root is root's, 0755, as a fresh filesystem's (or csi-driver-host-path's directory under
    // its umask): only a pod's fsGroup, applied by the kubelet at mount time, opens it to a non-root user.
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await chmod(dir, 0o755);
    const at = now();
    const pv: KubeObject = {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: {
        name: pvName,
        annotations: { [storageAnnotations.provisionedBy]: hostpathProvisioner },
        finalizers: [storageFinalizers.pvProtection, storageFinalizers.provisioner],
      },
      spec: {
        accessModes: [...(spec.accessModes ?? ['ReadWriteOnce'])],
        capacity: { storage: String(request) },
        claimRef: claimRefOf(claim),
        hostPath: { path: dir, type: 'DirectoryOrCreate' },
        persistentVolumeReclaimPolicy: sc['reclaimPolicy'] ?? 'Delete',
        storageClassName: sc.metadata.name,
        volumeMode: spec.volumeMode ?? 'Filesystem',
        ...(sc['mountOptions'] ? { mountOptions: [...sc['mountOptions']] } : {}),
      },
      status: { phase: 'Pending', lastPhaseTransitionTime: at },
    };
    try {
      this.store.create(pvType, pv);
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
      return;
    }
    this.event(claim, 'Normal', 'ProvisioningSucceeded', `Successfully provisioned volume ${pvName}`, this.provisionerIdentity);
  }

  // ---------------------------------------------------------------------------------------------
  // Volumes (PV controller syncVolume, pv-protection, reclaim)

  private async syncVolume(name: string): Promise<void> {
    let volume = this.store.get(pvType, undefined, name);
    if (!volume) return;
    if (!volume.metadata.deletionTimestamp && !hasFinalizer(volume, storageFinalizers.pvProtection)) {
      volume = this.store.mutate(pvType, undefined, name, (v) => addFinalizer(v, storageFinalizers.pvProtection));
      if (!volume) return;
    }
    if (volume.metadata.deletionTimestamp && hasFinalizer(volume, storageFinalizers.pvProtection) && volume['status']?.phase !== 'Bound') {
      this.store.mutate(pvType, undefined, name, (v) => removeFinalizer(v, storageFinalizers.pvProtection));
      volume = this.store.get(pvType, undefined, name);
      if (!volume) return;
    }

    const ref = volume['spec']?.claimRef;
    if (!ref || !ref.uid) {
      // Unbound, or pre-bound by the user to a claim that does not have it yet.
      this.updateVolumePhase(name, 'Available');
    } else {
      let claim = this.store.get(pvcType, ref.namespace, ref.name);
      if (claim && claim.metadata.uid !== ref.uid) claim = undefined;
      if (!claim) {
        const phase = volume['status']?.phase;
        if (phase !== 'Released' && phase !== 'Failed') this.updateVolumePhase(name, 'Released');
        await this.reclaim(name);
      } else if (!claim['spec']?.volumeName) {
        // The claim's sync finishes the binding (a provisioned volume, or a scheduler's choice).
        this.enqueue(`claim/${claim.metadata.namespace}/${claim.metadata.name}`);
      } else if (claim['spec'].volumeName === name) {
        this.updateVolumePhase(name, 'Bound');
      } else if (volume.metadata.annotations?.[storageAnnotations.provisionedBy] && volume['spec']?.persistentVolumeReclaimPolicy === 'Delete') {
        // Provisioned for a claim that got bound elsewhere: not needed.
        const phase = volume['status']?.phase;
        if (phase !== 'Released' && phase !== 'Failed') this.updateVolumePhase(name, 'Released');
        await this.reclaim(name);
      } else {
        this.unbindVolume(name);
      }
    }

    // The external provisioner's finalizer on a deleted volume: storage goes first (Delete), then the finalizer.
    volume = this.store.get(pvType, undefined, name);
    if (volume?.metadata.deletionTimestamp && hasFinalizer(volume, storageFinalizers.provisioner) && volume['status']?.phase !== 'Bound') {
      if ((volume['spec']?.persistentVolumeReclaimPolicy ?? 'Retain') === 'Delete') await this.removeProvisionedDir(volume);
      this.store.mutate(pvType, undefined, name, (v) => removeFinalizer(v, storageFinalizers.provisioner));
    }
  }

  /** The reclaim policy of a Released volume. */
  private async reclaim(name: string): Promise<void> {
    const volume = this.store.get(pvType, undefined, name);
    if (!volume) return;
    const policy: string = volume['spec']?.persistentVolumeReclaimPolicy ?? 'Retain';
    if (policy === 'Retain') return;
    if (policy === 'Recycle') {
      await this.recycle(volume);
      return;
    }
    if (policy !== 'Delete') {
      this.updateVolumePhaseWithEvent(volume, 'Failed', 'Warning', 'VolumeUnknownReclaimPolicy', 'Volume has unrecognized PersistentVolumeReclaimPolicy');
      return;
    }
    const provisionedBy = volume.metadata.annotations?.[storageAnnotations.provisionedBy];
    if (provisionedBy === hostpathProvisioner) {
      // The external provisioner's job: delete the storage, drop its finalizer, delete the PV.
      await this.removeProvisionedDir(volume);
      this.store.mutate(pvType, undefined, name, (v) => removeFinalizer(v, storageFinalizers.provisioner));
      this.deleteVolumeObject(name);
      return;
    }
    if (provisionedBy) return; // another external provisioner's volume: it deletes it
    // A volume made by hand (glusterfs, local, hostPath): the emulator deletes the PV object; storage it does
    // not own is left alone (a hostPath under the emulator's state directory is removed).
    const path: string | undefined = volume['spec']?.hostPath?.path;
    if (path) {
      const root = await this.existingRoot();
      if (root && isWithin(root, resolve(path))) await this.removeUnder(resolve(path));
    }
    this.deleteVolumeObject(name);
  }

  private async recycle(volume: KubeObject): Promise<void> {
    const name = volume.metadata.name!;
    const path: string | undefined = volume['spec']?.hostPath?.path;
    const root = await this.existingRoot();
    if (!path || !root || !isWithin(root, resolve(path))) {
      this.updateVolumePhaseWithEvent(volume, 'Failed', 'Warning', 'VolumeFailedRecycle', 'No recycler plugin found for the volume!');
      return;
    }
    // The recycler pod's `rm -rf /scrub/..?* /scrub/.[!.]* /scrub/*`.
    for (const entry of await readdir(path).catch(() => [] as string[])) await this.removeUnder(join(resolve(path), entry));
    this.unbindVolume(name);
    const after = this.store.get(pvType, undefined, name);
    if (after) this.event(after, 'Normal', 'VolumeRecycled', 'Volume recycled');
  }

  private async removeProvisionedDir(volume: KubeObject): Promise<void> {
    const path: string | undefined = volume['spec']?.hostPath?.path;
    const root = await this.existingRoot();
    if (path && root && isWithin(join(root, dirs.provisioned), resolve(path))) await this.removeUnder(resolve(path));
  }

  private deleteVolumeObject(name: string): void {
    try {
      this.store.delete(pvType, undefined, name);
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 404)) throw err;
    }
  }

  private unbindVolume(name: string): void {
    this.store.mutate(pvType, undefined, name, (v) => {
      if (v.metadata.annotations?.[storageAnnotations.boundByController]) {
        delete v['spec'].claimRef;
        delete v.metadata.annotations[storageAnnotations.boundByController];
        if (Object.keys(v.metadata.annotations).length === 0) delete v.metadata.annotations;
      } else if (v['spec']?.claimRef) {
        // Pre-bound by the user: keep the reservation, forget the claim that is gone.
        delete v['spec'].claimRef.uid;
        delete v['spec'].claimRef.resourceVersion;
      }
    });
    this.updateVolumePhase(name, 'Available');
  }

  // ---------------------------------------------------------------------------------------------
  // Pods (the scheduler's VolumeBinding for WaitForFirstConsumer claims)

  private syncPod(namespace: string, name: string): void {
    const pod = this.store.get(podType, namespace, name);
    if (!pod || pod.metadata.deletionTimestamp || isTerminated(pod)) return;
    this.bindPodClaims(pod);
  }

  /** For each unbound WaitForFirstConsumer claim of the pod: a matching PV gets its claimRef, else the claim its node. */
  private bindPodClaims(pod: KubeObject): void {
    const namespace = pod.metadata.namespace ?? 'default';
    for (const claimName of claimNamesOf(pod)) {
      const claim = this.store.get(pvcType, namespace, claimName);
      if (!claim || claim['spec']?.volumeName || claim.metadata.deletionTimestamp) continue;
      if (!this.isDelayBinding(claim)) continue;
      const volume = this.findBestMatch(claim, false, true);
      if (volume) {
        // BindPodVolumes: the scheduler writes the claimRef; the PV controller completes the binding.
        this.store.mutate(pvType, undefined, volume.metadata.name!, (v) => {
          v['spec'].claimRef = claimRefOf(claim);
          setAnnotation(v, storageAnnotations.boundByController, 'yes');
        });
        continue;
      }
      const sc = this.store.get(scType, undefined, claimClass(claim));
      if (sc && sc['provisioner'] && sc['provisioner'] !== noProvisioner) {
        this.store.mutate(pvcType, namespace, claimName, (c) => setAnnotation(c, storageAnnotations.selectedNode, pod['spec']?.nodeName || this.nodeName));
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Shared helpers

  /** WaitForFirstConsumer class and no node chosen yet. */
  private isDelayBinding(claim: KubeObject): boolean {
    if (claim.metadata.annotations?.[storageAnnotations.selectedNode]) return false;
    const className = claimClass(claim);
    if (!className) return false;
    const sc = this.store.get(scType, undefined, className);
    return sc?.['volumeBindingMode'] === 'WaitForFirstConsumer';
  }

  /**
   * The PV controller's findBestMatchForClaim: volumes indexed by access modes, the groups with the fewest
   * modes first; in a group, a volume pre-bound to the claim wins, else the smallest Available one that fits.
   */
  private findBestMatch(claim: KubeObject, delayBinding: boolean, scheduling: boolean): KubeObject | undefined {
    const wanted: string[] = claim['spec']?.accessModes ?? [];
    const groups = new Map<string, KubeObject[]>();
    for (const volume of this.store.list(pvType).items) {
      const modes = [...new Set<string>(volume['spec']?.accessModes ?? [])].sort();
      if (!wanted.every((m) => modes.includes(m))) continue;
      const key = modes.join(',');
      groups.set(key, [...(groups.get(key) ?? []), volume]);
    }
    const ordered = [...groups.entries()].sort(([a], [b]) => a.split(',').length - b.split(',').length);
    const selector = selectorOf(claim['spec']?.selector);
    for (const [, volumes] of ordered) {
      const found = findMatchingVolume(claim, volumes, selector, delayBinding, scheduling);
      if (found) return found;
    }
    return undefined;
  }

  private bind(volume: KubeObject, claim: KubeObject): void {
    const name = volume.metadata.name!;
    const namespace = claim.metadata.namespace!;
    const claimName = claim.metadata.name!;
    const ref = volume['spec']?.claimRef;
    let bound: KubeObject | undefined = volume;
    if (!ref || ref.name !== claimName || ref.namespace !== namespace || ref.uid !== claim.metadata.uid) {
      const byController = !isBoundToClaim(volume, claim);
      bound = this.store.mutate(pvType, undefined, name, (v) => {
        v['spec'] ??= {};
        v['spec'].claimRef = claimRefOf(claim);
        if (byController) setAnnotation(v, storageAnnotations.boundByController, 'yes');
      });
      if (!bound) return;
    }
    this.updateVolumePhase(name, 'Bound');
    const updated = this.store.mutate(pvcType, namespace, claimName, (c) => {
      c['spec'] ??= {};
      if (c['spec'].volumeName !== name) {
        c['spec'].volumeName = name;
        setAnnotation(c, storageAnnotations.boundByController, 'yes');
      }
      setAnnotation(c, storageAnnotations.bindCompleted, 'yes');
    });
    if (updated) this.updateClaimStatus(updated, 'Bound', bound);
  }

  private updateClaimStatus(claim: KubeObject, phase: string, volume: KubeObject | undefined): void {
    this.store.mutate(pvcType, claim.metadata.namespace, claim.metadata.name!, (c) => {
      const status = (c['status'] ??= {});
      const wasPhase = status.phase;
      if (status.phase !== phase) status.phase = phase;
      if (!volume) {
        delete status.accessModes;
        delete status.capacity;
        return;
      }
      const modes = volume['spec']?.accessModes;
      if (JSON.stringify(status.accessModes) !== JSON.stringify(modes)) status.accessModes = modes === undefined ? undefined : [...modes];
      // Capacity is taken when the claim becomes Bound, and never shrunk (a claim being expanded keeps its own).
      if (wasPhase !== phase) {
        const volumeCap = parseQuantity(volume['spec']?.capacity?.storage);
        const claimCap = parseQuantity(status.capacity?.storage);
        if (status.capacity?.storage === undefined || volumeCap > claimCap) status.capacity = { ...(volume['spec']?.capacity ?? {}) };
      }
    });
  }

  private updateClaimStatusWithEvent(claim: KubeObject, phase: string, volume: KubeObject | undefined, type: 'Normal' | 'Warning', reason: string, message: string): void {
    if (claim['status']?.phase === phase) return;
    this.updateClaimStatus(claim, phase, volume);
    const updated = this.store.get(pvcType, claim.metadata.namespace, claim.metadata.name!);
    if (updated) this.event(updated, type, reason, message);
  }

  private updateVolumePhase(name: string, phase: string, message?: string): void {
    this.store.mutate(pvType, undefined, name, (v) => {
      const status = (v['status'] ??= {});
      if (status.phase !== phase) {
        status.phase = phase;
        status.lastPhaseTransitionTime = now();
      }
      if (message) {
        if (status.message !== message) status.message = message;
      } else delete status.message;
    });
  }

  private updateVolumePhaseWithEvent(volume: KubeObject, phase: string, type: 'Normal' | 'Warning', reason: string, message: string): void {
    if (volume['status']?.phase === phase) return;
    this.updateVolumePhase(volume.metadata.name!, phase, message);
    const updated = this.store.get(pvType, undefined, volume.metadata.name!);
    if (updated) this.event(updated, type, reason, message);
  }

  /** Pods that hold a claim against deletion: in its namespace, naming it, not Succeeded/Failed. */
  private podsUsingClaim(claim: KubeObject): KubeObject[] {
    return this.store
      .list(podType, { namespace: claim.metadata.namespace })
      .items.filter((p) => !isTerminated(p) && claimNamesOf(p).includes(claim.metadata.name!));
  }

  private event(involved: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string, component = controllerComponent): void {
    recordEvent(this.store, involved, type, reason, message, component);
  }

  private async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chained = previous.then(() => mine);
    this.locks.set(key, chained);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(key) === chained) this.locks.delete(key);
    }
  }

  /** ctx.stateDir, created and resolved to its real path (as /proc/mounts shows mount points). */
  private async root(): Promise<string> {
    if (!this.rootDir) {
      await mkdir(this.ctx.stateDir, { recursive: true });
      this.rootDir = await realpath(this.ctx.stateDir);
    }
    return this.rootDir;
  }

  /** Like root(), but undefined (and nothing created) when the state directory does not exist. */
  private async existingRoot(): Promise<string | undefined> {
    if (this.rootDir) return this.rootDir;
    const real = await realpath(this.ctx.stateDir).catch(() => undefined);
    if (real) this.rootDir = real;
    return real;
  }

  /**
   * Recursive removal, only strictly inside ctx.stateDir and never through a live mount: mounts below the
   * path that are the manager's own are unmounted first; any other live mount there refuses the removal.
   */
  private async removeUnder(path: string): Promise<void> {
    const root = await this.existingRoot();
    const target = resolve(path);
    if (!root || !isWithin(root, target)) throw new Error(`refusing to remove ${target}: not inside the emulator state directory ${this.ctx.stateDir}`);
    const mountsRoot = join(root, dirs.mounts);
    for (const point of await mountPoints()) {
      if (point !== target && !isWithin(target, point)) continue;
      if (!isWithin(mountsRoot, point) || !(await this.unmount(point, false))) {
        throw new Error(`refusing to remove ${target}: ${point} is still mounted`);
      }
    }
    await rm(target, { recursive: true, force: true });
  }
}

// -----------------------------------------------------------------------------------------------
// Pure helpers

function schedulingError(reason: string, unresolvable = true): VolumeSetupError {
  const preemption = unresolvable ? ' preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.' : '';
  const eventMessage = reason.startsWith('running PreBind') ? reason : `0/1 nodes are available: ${reason}.${preemption}`;
  return new VolumeSetupError(reason, 'FailedScheduling', eventMessage);
}

function mountError(message: string): VolumeSetupError {
  return new VolumeSetupError(message, 'FailedMount', message);
}

/** A PV's `pv.beta.kubernetes.io/gid` annotation as a group id, as the kubelet's volume manager parses it. */
function volumeGid(pv: KubeObject): number | undefined {
  const value = pv.metadata.annotations?.['pv.beta.kubernetes.io/gid'];
  if (value === undefined || !/^\+?\d+$/.test(value)) return undefined;
  const gid = Number(value);
  return Number.isSafeInteger(gid) ? gid : undefined;
}

const rwMask = 0o660;
const roMask = 0o440;
const execMask = 0o110;
const setgidBit = 0o2000;

/**
 * pkg/volume/volume_linux.go SetVolumeOwnership: every file and directory below `dir` (symbolic links
 * skipped and not followed, children before their directory) gets group `fsGroup` and g+rw (g+r when
 * read-only); directories also g+x and setgid, so that what is made there later is the group's too.
 * `onRootMismatch` skips it all when the root already has that group, those bits and setgid.
 */
async function setVolumeOwnership(dir: string, fsGroup: number, readOnly: boolean, onRootMismatch: boolean, log: (line: string) => void): Promise<void> {
  const mask = readOnly ? roMask : rwMask;
  if (onRootMismatch) {
    const root = await stat(dir).catch(() => undefined);
    const perms = mask | execMask;
    if (root && root.gid === fsGroup && root.isDirectory() && (root.mode & perms) === perms && (root.mode & setgidBit) !== 0) return;
  }
  const change = async (path: string, info: Stats): Promise<void> => {
    if (info.isSymbolicLink()) return;
    try {
      await chown(path, info.uid, fsGroup);
    } catch (err) {
      log(`chown failed on ${path}: ${messageOf(err)}`);
    }
    // Read before the chown, which clears setuid/setgid on files: the old bits are put back with the new ones.
    const bits = mask | (info.isDirectory() ? setgidBit | execMask : 0);
    try {
      await chmod(path, (info.mode & 0o7777) | bits);
    } catch (err) {
      log(`chmod failed on ${path}: ${messageOf(err)}`);
    }
  };
  const walk = async (path: string, info: Stats): Promise<void> => {
    if (info.isDirectory()) {
      for (const name of await readdir(path)) {
        const child = join(path, name);
        const childInfo = await lstat(child).catch(() => undefined);
        if (childInfo) await walk(child, childInfo);
      }
    }
    await change(path, info);
  };
  const rootInfo = await lstat(dir).catch(() => undefined);
  if (rootInfo) await walk(dir, rootInfo);
}

/** The kubelet's hostPath type checks, with its messages. */
async function checkHostPathType(volumeName: string, path: string, type: string | undefined): Promise<void> {
  const fail = (why: string): VolumeSetupError => mountError(`MountVolume.SetUp failed for volume "${volumeName}" : ${why}`);
  let info = await stat(path).catch(() => undefined);
  if (type === 'DirectoryOrCreate' && !info) {
    await mkdir(path, { recursive: true, mode: 0o755 });
    return;
  }
  if (type === 'FileOrCreate' && !info) {
    try {
      await (await open(path, 'a', 0o644)).close();
    } catch (err) {
      throw fail(`hostPath type check failed: ${messageOf(err)}`);
    }
    info = await stat(path).catch(() => undefined);
  }
  switch (type ?? '') {
    case '':
      return;
    case 'DirectoryOrCreate':
    case 'Directory':
      if (!info?.isDirectory()) throw fail(`hostPath type check failed: ${path} is not a directory`);
      return;
    case 'FileOrCreate':
    case 'File':
      if (!info?.isFile()) throw fail(`hostPath type check failed: ${path} is not a file`);
      return;
    case 'Socket':
      if (!info?.isSocket()) throw fail(`hostPath type check failed: ${path} is not a socket file`);
      return;
    case 'CharDevice':
      if (!info?.isCharacterDevice()) throw fail(`hostPath type check failed: ${path} is not a character device`);
      return;
    case 'BlockDevice':
      if (!info?.isBlockDevice()) throw fail(`hostPath type check failed: ${path} is not a block device`);
      return;
    default:
      throw fail(`${type} is an invalid volume type`);
  }
}

/** findMatchingVolume from k8s.io/component-helpers/storage/volume, for one access-mode group. */
function findMatchingVolume(claim: KubeObject, volumes: KubeObject[], selector: LabelSelector | undefined, delayBinding: boolean, scheduling: boolean): KubeObject | undefined {
  const requested = parseQuantity(claim['spec']?.resources?.requests?.storage ?? '0');
  const requestedClass = claimClass(claim);
  let best: KubeObject | undefined;
  let bestSize = Number.POSITIVE_INFINITY;
  for (const volume of volumes) {
    if (volume['spec']?.claimRef && !isBoundToClaim(volume, claim)) continue;
    const size = parseQuantity(volume['spec']?.capacity?.storage);
    if (!(size >= requested)) continue;
    if (volumeModeOf(volume) !== claimVolumeModeOf(claim)) continue;
    if (volume.metadata.deletionTimestamp) continue;
    if (isBoundToClaim(volume, claim)) return volume;
    if (!scheduling && delayBinding) continue; // the scheduler binds these
    if (volume['status']?.phase !== 'Available') continue;
    if (selector && !matchesLabels(selector, volume.metadata.labels)) continue;
    if (volumeClass(volume) !== requestedClass) continue;
    if (size < bestSize) {
      best = volume;
      bestSize = size;
    }
  }
  return best;
}

/** checkVolumeSatisfyClaim: why a volume named by the claim cannot be bound to it, or undefined. */
function checkVolumeSatisfiesClaim(volume: KubeObject, claim: KubeObject): string | undefined {
  if (volume.metadata.deletionTimestamp) return `the volume is marked for deletion "${volume.metadata.name}"`;
  const requested = parseQuantity(claim['spec']?.resources?.requests?.storage ?? '0');
  if (!(parseQuantity(volume['spec']?.capacity?.storage) >= requested)) return 'requested PV is too small';
  if (volumeClass(volume) !== claimClass(claim)) return 'storageClassName does not match';
  if (volumeModeOf(volume) !== claimVolumeModeOf(claim)) return 'incompatible volumeMode';
  const modes: string[] = volume['spec']?.accessModes ?? [];
  if (!((claim['spec']?.accessModes ?? []) as string[]).every((m) => modes.includes(m))) return 'incompatible accessMode';
  return undefined;
}

/** A claim's LabelSelector (matchLabels and matchExpressions) in the emulator's selector form. */
function selectorOf(selector: KubeObject | undefined): LabelSelector | undefined {
  if (!selector) return undefined;
  const reqs: LabelSelector = [];
  for (const [key, value] of Object.entries((selector['matchLabels'] ?? {}) as Record<string, string>)) reqs.push({ op: 'eq', key, value: String(value) });
  for (const e of (selector['matchExpressions'] ?? []) as Array<{ key: string; operator: string; values?: string[] }>) {
    if (e.operator === 'In') reqs.push({ op: 'in', key: e.key, values: e.values ?? [] });
    else if (e.operator === 'NotIn') reqs.push({ op: 'notin', key: e.key, values: e.values ?? [] });
    else if (e.operator === 'Exists') reqs.push({ op: 'exists', key: e.key });
    else if (e.operator === 'DoesNotExist') reqs.push({ op: 'notexists', key: e.key });
    else throw new Error(`error creating internal label selector for claim: "${e.operator}" is not a valid label selector operator`);
  }
  return reqs;
}

function isBoundToClaim(volume: KubeObject, claim: KubeObject): boolean {
  const ref = volume['spec']?.claimRef;
  if (!ref) return false;
  if (ref.name !== claim.metadata.name || ref.namespace !== claim.metadata.namespace) return false;
  return !ref.uid || ref.uid === claim.metadata.uid;
}

function claimRefOf(claim: KubeObject): Record<string, unknown> {
  return {
    kind: 'PersistentVolumeClaim',
    namespace: claim.metadata.namespace,
    name: claim.metadata.name,
    uid: claim.metadata.uid,
    apiVersion: 'v1',
    resourceVersion: claim.metadata.resourceVersion,
  };
}

/** A claim names a class when the beta annotation or spec.storageClassName (even '') is set. */
function claimHasClass(claim: KubeObject): boolean {
  return claim.metadata.annotations?.[storageAnnotations.betaStorageClass] !== undefined || claim['spec']?.storageClassName !== undefined && claim['spec']?.storageClassName !== null;
}

function claimClass(claim: KubeObject): string {
  return claim.metadata.annotations?.[storageAnnotations.betaStorageClass] ?? claim['spec']?.storageClassName ?? '';
}

function volumeClass(volume: KubeObject): string {
  return volume.metadata.annotations?.[storageAnnotations.betaStorageClass] ?? volume['spec']?.storageClassName ?? '';
}

function volumeModeOf(volume: KubeObject): string {
  return volume['spec']?.volumeMode ?? 'Filesystem';
}

function claimVolumeModeOf(claim: KubeObject): string {
  return claim['spec']?.volumeMode ?? 'Filesystem';
}

function isTerminated(pod: KubeObject): boolean {
  const phase = pod['status']?.phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

/** The claims a pod names: persistentVolumeClaim volumes and generic ephemeral volumes (`<pod>-<volume>`). */
function claimNamesOf(pod: KubeObject): string[] {
  const names: string[] = [];
  for (const v of (pod['spec']?.volumes ?? []) as KubeObject[]) {
    if (v['persistentVolumeClaim']?.claimName) names.push(v['persistentVolumeClaim'].claimName);
    else if (v['ephemeral']) names.push(`${pod.metadata.name}-${v['name']}`);
  }
  return names;
}

/** The Endpoints' addresses in order, each IP then its hostname, without repeats. */
function endpointAddresses(endpoints: KubeObject): string[] {
  const out: string[] = [];
  for (const subset of (endpoints['subsets'] ?? []) as KubeObject[]) {
    for (const a of (subset['addresses'] ?? []) as Array<{ ip?: string; hostname?: string }>) {
      for (const h of [a.ip, a.hostname]) if (h && !out.includes(h)) out.push(h);
    }
  }
  return out;
}

function podKeyOf(pod: KubeObject): string {
  const key = pod.metadata.uid ?? `${pod.metadata.namespace ?? 'default'}_${pod.metadata.name}`;
  return key.replace(/[^A-Za-z0-9._-]/g, '_');
}

function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return (obj.metadata.finalizers ?? []).includes(finalizer);
}

function addFinalizer(obj: KubeObject, finalizer: string): void {
  const list = obj.metadata.finalizers ?? [];
  if (!list.includes(finalizer)) obj.metadata.finalizers = [...list, finalizer];
}

function removeFinalizer(obj: KubeObject, finalizer: string): void {
  const list = (obj.metadata.finalizers ?? []).filter((f) => f !== finalizer);
  if (list.length) obj.metadata.finalizers = list;
  else delete obj.metadata.finalizers;
}

function setAnnotation(obj: KubeObject, key: string, value: string): void {
  if (obj.metadata.annotations?.[key] === value) return;
  obj.metadata.annotations = { ...(obj.metadata.annotations ?? {}), [key]: value };
}

/** Mount points from /proc/mounts (octal escapes decoded). */
export async function mountPoints(): Promise<string[]> {
  const text = await readFile('/proc/mounts', 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => (line.split(' ')[1] ?? '').replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))));
}

async function isMountPoint(dir: string): Promise<boolean> {
  return (await mountPoints()).includes(resolve(dir));
}

/** Whether `path` is strictly inside `dir`. */
function isWithin(dir: string, path: string): boolean {
  const base = resolve(dir);
  const target = resolve(path);
  return target !== base && target.startsWith(base.endsWith(sep) ? base : base + sep);
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
