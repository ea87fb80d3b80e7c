// The storage port: what a job's pod mounts at code.path, made when the job is provisioned and found again
// on every update. Providers: `storageclass` (a claim on a StorageClass, or the cluster's default one) and
// `none` (an emptyDir: the code lives as long as the pod, and is published again when the pod is remade).
import type { KubePort } from '../adapters/kube.js';
import type { AppConfig } from '../config/index.js';
import { GkubeError } from '../errors.js';
import type { JobNames } from '../jobs/naming.js';
import { claimManifest, labelKeys } from './manifests.js';

/** What the job's storage is, as the record names it. */
export interface StorageRef {
  /** The claim the pod mounts; undefined for provider none. */
  claim?: string;
  /** The volume behind the claim, when known. */
  volume?: string;
}

/** Makes and finds a job's storage. */
export interface StoragePort {
  /** Makes the job's storage, or adopts what an earlier (killed) run of the same job made. Idempotent. */
  ensure(names: JobNames, config: AppConfig): Promise<StorageRef & { created: boolean }>;
  /** Whether the storage the record names is still there (false: the job's data may be gone). */
  exists(namespace: string, ref: StorageRef): Promise<boolean>;
}

/** The port for the configured provider. */
export function storageFor(kube: KubePort, config: AppConfig): StoragePort {
  switch (config.storage.provider) {
    case 'none':
      return noStorage;
    case 'storageclass':
      return new ClaimStorage(kube);
    case 'glusterfs':
      throw new GkubeError('NOT_BUILT', 'storage.provider: glusterfs is not in this version of gkube yet; use storageclass (a claim on a StorageClass) or none; nothing was changed');
  }
}

const noStorage: StoragePort = {
  ensure: async () => ({ created: false }),
  exists: async () => true,
};

class ClaimStorage implements StoragePort {
  constructor(private readonly kube: KubePort) {}

  async ensure(names: JobNames, config: AppConfig): Promise<StorageRef & { created: boolean }> {
    const manifest = claimManifest(names, config);
    const created = await this.kube.create(manifest);
    const claim = await this.kube.findClaim(config.namespace, names.resourceName);
    if (!claim) throw new GkubeError('OPERATION_FAILED', `persistentvolumeclaim ${config.namespace}/${names.resourceName} was created and then could not be read back`);
    // A claim of that name that gkube did not make for this job is someone else's data: never adopt it.
    if (claim.labels[labelKeys.job] !== names.resourceName) {
      throw new GkubeError('REFUSED', `persistentvolumeclaim ${config.namespace}/${names.resourceName} exists and was not made by gkube for job ${names.name} (label ${labelKeys.job} differs); nothing was changed`, {
        hint: 'rename or remove that claim, or deploy the job into another namespace',
      });
    }
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
