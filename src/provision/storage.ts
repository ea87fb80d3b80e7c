// The storage port: what a job's pod mounts at code.path, made when the job is provisioned and found again
// on every update. Providers: `storageclass` (a claim on a StorageClass, or the cluster's default one) and
// `none` (an emptyDir: the code lives as long as the pod, and is published again when the pod is remade).
import type { KubePort } from '../adapters/kube.js';
import type { GlusterPort } from '../adapters/gluster.js';
import type { AppConfig } from '../config/index.js';
import { GkubeError } from '../errors.js';
import type { JobNames } from '../jobs/naming.js';
import { claimManifest, glusterManifests, labelKeys, podFsGroup } from './manifests.js';
import { lookup } from 'node:dns/promises';

/** What the job's storage is, as the record names it. */
export interface StorageRef {
  /** The claim the pod mounts; undefined for provider none. */
  claim?: string;
  /** The volume behind the claim, when known. */
  volume?: string;
}

/** Makes and finds a job's storage. */
export interface StoragePort {
  /** Checks, before anything is changed, that this storage can be made on this cluster (exit 2 when not). */
  check(config: AppConfig): Promise<void>;
  /** Makes the job's storage, or adopts what an earlier (killed) run of the same job made. Idempotent. */
  ensure(names: JobNames, config: AppConfig): Promise<StorageRef & { created: boolean; detail?: string }>;
  /** Whether the storage the record names is still there (false: the job's data may be gone). */
  exists(namespace: string, ref: StorageRef): Promise<boolean>;
}

/** The port for the configured provider (`gluster` opens the pool's CLI for provider glusterfs, in-tree mode). */
export function storageFor(kube: KubePort, config: AppConfig, gluster?: () => Promise<GlusterVolumes>, stepStarting: (step: string) => void = () => undefined): StoragePort {
  switch (config.storage.provider) {
    case 'none':
      return noStorage;
    case 'storageclass':
      return new ClaimStorage(kube);
    case 'glusterfs':
      // With a Gluster CSI class, the class's provisioner makes the volume: gkube only makes the claim.
      if (config.storage.glusterfs.mode === 'storageclass') return new ClaimStorage(kube);
      if (!gluster) throw new Error('storage.provider glusterfs needs the Gluster port');
      return new GlusterStorage(kube, gluster, stepStarting);
  }
}

/** Kubernetes removed the in-tree glusterfs volume plugin in 1.26. */
export const lastInTreeGlusterMinor = 25;

const noStorage: StoragePort = {
  check: async () => undefined,
  ensure: async () => ({ created: false }),
  exists: async () => true,
};

/** A claim the job's pod mounts: made on a StorageClass here; GlusterStorage makes it on its own PV. */
class ClaimStorage implements StoragePort {
  constructor(protected readonly kube: KubePort) {}

  async check(_config: AppConfig): Promise<void> {
    // The claim's StorageClass is the cluster's business: a missing class leaves the claim Pending, which the wait reports.
  }

  async ensure(names: JobNames, config: AppConfig): Promise<StorageRef & { created: boolean }> {
    const manifest = claimManifest(names, config);
    const created = await this.kube.create(manifest);
    const claim = await this.kube.findClaim(config.namespace, names.resourceName);
    if (!claim) throw new GkubeError('OPERATION_FAILED', `persistentvolumeclaim ${config.namespace}/${names.resourceName} was created and then could not be read back`);
    requireOwned(`persistentvolumeclaim ${config.namespace}/${names.resourceName}`, claim.labels, names);
    if (claim.deleting) {
      throw new GkubeError('INCONSISTENT_STATE', `persistentvolumeclaim ${config.namespace}/${names.resourceName} is being deleted; its data is going`, {
        hint: `wait until it is gone (kubectl get pvc -n ${config.namespace} ${names.resourceName}), then deploy again`,
      });
    }
    return { claim: claim.name, ...(claim.volumeName ? { volume: claim.volumeName } : {}), created };
  }

  async exists(namespace: string, ref: StorageRef): Promise<boolean> {
    if (!ref.claim) return true;
    const claim = await this.kube.findClaim(namespace, ref.claim);
    return claim !== undefined && !claim.deleting;
  }
}

/** What GlusterStorage asks of the pool. */
export type GlusterVolumes = Pick<GlusterPort, 'volumeInfo' | 'volumeStatus' | 'createVolume' | 'setOption' | 'startVolume' | 'enableQuota' | 'limitUsage'>;

/** The option gkube sets on the volumes it makes: the job's resource name (a rerun adopts only its own). */
export const glusterMarker = 'user.gkube.job';

/**
 * The options that make the Gluster volume's root (each brick's directory) owned by a user and group. The
 * kubelet applies a pod's fsGroup to the volumes it manages, but never to a GlusterFS mount: without these
 * the root stays root's, 0755, and a non-root app cannot write its code path.
 */
export const glusterOwnerOptions = { uid: 'storage.owner-uid', gid: 'storage.owner-gid' } as const;

/** Who owns the root of the job's Gluster volume: the app's user, and the group the pod gets as its fsGroup. */
export function glusterOwner(config: Pick<AppConfig, 'container'>): { uid: number; gid: number } {
  return { uid: config.container.runAsUser, gid: podFsGroup(config) };
}

/**
 * The pool's addresses for the in-tree Endpoints, as the cluster's nodes will reach them. The API server
 * refuses loopback, unspecified and link-local addresses there, so such a server is refused before anything
 * is made (exit 2), naming it.
 */
export async function glusterAddresses(servers: readonly string[]): Promise<string[]> {
  return Promise.all(
    servers.map(async (server) => {
      let address: string;
      try {
        ({ address } = await lookup(server));
      } catch (err) {
        throw new GkubeError('INVALID_CONFIG', `storage.glusterfs.servers: ${server} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'lookup failed'}); nothing was changed`, { hint: 'name the Gluster servers by host names or addresses this machine and the cluster\'s nodes resolve', cause: err });
      }
      const special = specialAddress(address);
      if (special) {
        throw new GkubeError('INVALID_CONFIG', `storage.glusterfs.servers: ${server} is ${address}, a ${special} address, which Kubernetes refuses in the volume's Endpoints; nothing was changed`, {
          hint: 'name each Gluster server by an address the cluster\'s nodes reach it at (not localhost or a name that resolves to 127.x)',
        });
      }
      return address;
    }),
  );
}

/** Why an address cannot be an Endpoints address (ValidateNonSpecialIP), or undefined. */
function specialAddress(address: string): string | undefined {
  const a = address.toLowerCase();
  if (/^127\./.test(a) || a === '::1' || /^::ffff:127\./.test(a)) return 'loopback';
  if (a === '0.0.0.0' || a === '::') return 'unspecified';
  if (/^169\.254\./.test(a) || /^fe[89ab][0-9a-f]:/.test(a)) return 'link-local';
  return undefined;
}

/** The Gluster volume a job gets: its name and where its bricks go. */
export function glusterLayout(names: JobNames, config: AppConfig): { volume: string; bricks: string[] } {
  const g = config.storage.glusterfs;
  // With an arbiter (replica 3 only), the third brick is the arbiter: still three bricks.
  const count = g.replica;
  // Directly under brickRoot (which the pool's admin prepares on every server): gluster makes a brick's own
  // directory, not its parents.
  const bricks = Array.from({ length: count }, (_, i) => `${g.servers[i % g.servers.length]}:${g.brickRoot.replace(/\/+$/, '')}/${names.resourceName}-b${i}`);
  return { volume: names.resourceName, bricks };
}

/**
 * storage.size as a Gluster quota limit. Gluster's units are binary (`1Gi` → `1GB`); a decimal size is
 * given in bytes (`10G` → `10000000000`), so the quota is the claim's capacity, not 7% more.
 */
export function glusterQuota(size: string): string {
  const m = /^(\d+)(Ki|Mi|Gi|Ti|Pi|K|M|G|T|P)?$/.exec(size);
  if (!m) throw new GkubeError('INVALID_CONFIG', `storage.size: ${JSON.stringify(size)} cannot be a Gluster quota (use a whole number with Ki, Mi, Gi or Ti)`);
  const digits = m[1]!;
  const unit = m[2] ?? '';
  const binary = { Ki: 'KB', Mi: 'MB', Gi: 'GB', Ti: 'TB', Pi: 'PB' }[unit];
  if (binary) return `${digits}${binary}`;
  const power = { K: 3n, M: 6n, G: 9n, T: 12n, P: 15n }[unit] ?? 0n;
  return String(BigInt(digits) * 10n ** power);
}

/** A Gluster volume per job, handed to Kubernetes through the in-tree glusterfs plugin (Kubernetes ≤ 1.25). */
class GlusterStorage extends ClaimStorage {
  private addresses: Promise<string[]> | undefined;

  constructor(
    kube: KubePort,
    private readonly gluster: () => Promise<GlusterVolumes>,
    /** Called as each sub-step begins (gluster-create, gluster-start, gluster-objects, gluster-claim): the test kill hook. */
    private readonly stepStarting: (step: string) => void,
  ) {
    super(kube);
  }

  override async check(config: AppConfig): Promise<void> {
    const version = await this.kube.serverVersion();
    const minor = /^v?(\d+)\.(\d+)/.exec(version);
    if (minor && (Number(minor[1]) > 1 || Number(minor[2]) > lastInTreeGlusterMinor)) {
      throw new GkubeError('INVALID_CONFIG', `storage.glusterfs.mode: in-tree needs Kubernetes 1.${lastInTreeGlusterMinor} or older (the glusterfs volume plugin was removed in 1.26), and this cluster is ${version}; nothing was changed`, {
        hint: 'set storage.glusterfs.mode: storageclass and storage.glusterfs.storageClassName to a Gluster CSI driver\'s class (for example Kadalu\'s external mode)',
      });
    }
    await this.poolAddresses(config);
  }

  /** The pool's addresses, looked up once per run (check, then ensure). */
  private poolAddresses(config: AppConfig): Promise<string[]> {
    return (this.addresses ??= glusterAddresses(config.storage.glusterfs.servers));
  }

  override async ensure(names: JobNames, config: AppConfig): Promise<StorageRef & { created: boolean; detail?: string }> {
    const g = config.storage.glusterfs;
    const { volume, bricks } = glusterLayout(names, config);
    const pool = await this.gluster();
    let info = await pool.volumeInfo(volume);
    let created = false;
    if (info) {
      const ours = info.options[glusterMarker] === names.resourceName;
      // A run killed between create and marking left the volume unmarked: it is ours when its bricks are exactly the ones we ask for.
      const sameBricks = info.bricks.map((b) => `${b.host}:${b.path}`).join(' ') === bricks.join(' ');
      if (!ours && !sameBricks) {
        throw new GkubeError('REFUSED', `Gluster volume ${volume} exists and was not made by gkube for job ${names.name}; nothing was changed`, { hint: `gluster volume info ${volume}` });
      }
    } else {
      this.stepStarting('gluster-create');
      // force: bricks may sit on a root filesystem or share a host (small pools); a brick in use is still refused.
      await pool.createVolume(volume, { bricks, replica: g.replica, arbiter: g.arbiter, force: true });
      created = true;
      info = await pool.volumeInfo(volume);
    }
    if (info?.options[glusterMarker] !== names.resourceName) await pool.setOption(volume, glusterMarker, names.resourceName);
    // Before the volume is started (or, for one an earlier run left, whenever they differ): the bricks'
    // roots are chowned as the options are set, so the pod's user can write its code path from the start.
    const owner = glusterOwner(config);
    for (const [key, value] of [[glusterOwnerOptions.uid, String(owner.uid)], [glusterOwnerOptions.gid, String(owner.gid)]] as const) {
      if (info?.options[key] !== value) await pool.setOption(volume, key, value);
    }
    this.stepStarting('gluster-start');
    if (info?.status !== 'Started') await pool.startVolume(volume);
    await this.waitForBricks(pool, volume);
    await pool.enableQuota(volume);
    await pool.limitUsage(volume, '/', glusterQuota(config.storage.size));

    const addresses = await this.poolAddresses(config);
    for (const manifest of glusterManifests(names, config, { volume, addresses })) {
      this.stepStarting(manifest['kind'] === 'PersistentVolumeClaim' ? 'gluster-claim' : manifest['kind'] === 'PersistentVolume' ? 'gluster-pv' : 'gluster-objects');
      if (!(await this.kube.create(manifest))) await this.checkOwned(manifest, names);
    }
    return {
      claim: names.resourceName,
      volume,
      created,
      detail: `Gluster volume ${volume}, its root owned by ${owner.uid}:${owner.gid} (${glusterOwnerOptions.uid}, ${glusterOwnerOptions.gid})`,
    };
  }

  /** Readiness: every brick process of the started volume is online (a brick that cannot start fails here, not at mount time). */
  private async waitForBricks(pool: GlusterVolumes, volume: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const status = await pool.volumeStatus(volume);
      const offline = (status?.bricks ?? []).filter((b) => !b.online);
      if (status?.started && status.bricks.length > 0 && offline.length === 0) return;
      if (Date.now() > deadline) {
        const which = offline.map((b) => `${b.host}:${b.path}`).join(', ') || 'no brick reported';
        throw new GkubeError('OPERATION_FAILED', `Gluster volume ${volume} was started but its bricks are not online after 30 s (${which})`, {
          hint: `gluster volume status ${volume}; check the brick hosts' glusterfsd logs`,
        });
      }
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }

  /** An object of that name that gkube did not make for this job is refused, never adopted. */
  private async checkOwned(manifest: Record<string, unknown>, names: JobNames): Promise<void> {
    const meta = manifest['metadata'] as { name: string; namespace?: string };
    const kind = String(manifest['kind']);
    let labels: Record<string, string> | undefined;
    if (kind === 'PersistentVolume') labels = (await this.kube.findPersistentVolume(meta.name))?.labels;
    else if (kind === 'PersistentVolumeClaim') labels = (await this.kube.findClaim(meta.namespace!, meta.name))?.labels;
    else return; // Endpoints and Service carry no data; the PV names them, and its own label is checked.
    requireOwned(`${kind.toLowerCase()} ${meta.namespace ? `${meta.namespace}/` : ''}${meta.name}`, labels ?? {}, names);
  }
}

/** An object of the job's name that gkube did not make for this job is someone else's data: never adopted. */
function requireOwned(what: string, labels: Record<string, string>, names: JobNames): void {
  if (labels[labelKeys.job] !== names.resourceName) {
    throw new GkubeError('REFUSED', `${what} exists and was not made by gkube for job ${names.name} (label ${labelKeys.job} differs); nothing was changed`, {
      hint: 'rename or remove it, or deploy the job into another namespace',
    });
  }
}
