import { GkubeError } from '../errors.js';

/** The version of the record layout this gkube reads and writes. */
export const recordVersion = 1;

/** Where a job is in its life. */
export type JobPhase = 'provisioning' | 'ready' | 'updating' | 'failed' | 'deleting' | 'aborted';

/** A Jenkins build that touched the job. */
export interface BuildRef {
  number?: string;
  url?: string;
  /** Jenkins' BUILD_TAG, or user@host for a run outside Jenkins. */
  tag?: string;
}

/** What the job should look like (from gkube.yaml and flags). */
export interface JobSpec {
  namespace: string;
  imageRepository?: string;
  storage: {
    provider: 'glusterfs' | 'storageclass' | 'none';
    size?: string;
    storageClassName?: string;
    retain?: boolean;
    /** Provider glusterfs: how the volume reaches Kubernetes, and the pool member to run the gluster CLI on. */
    glusterfs?: { mode: 'in-tree' | 'storageclass'; ssh?: string };
  };
  /** sha256 of the app configuration the job was last deployed with. */
  configDigest?: string;
}

/** What the job looks like now. */
export interface JobStatus {
  phase: JobPhase;
  pod?: string;
  pvc?: string;
  /** The storage volume (a Gluster volume name, or a PV). */
  volume?: string;
  imageTag?: string;
  image?: string;
  gitTag?: string;
  commit?: string;
  build?: BuildRef;
  /** The newest history revision (0 before the first deploy finishes). */
  revision: number;
  /** Why the job is failed, aborted or deleting. */
  reason?: string;
  /**
   * Phase failed only: the failed change was undone, and the commit and image above are live again and
   * passed their health check (a rebuild of them is a no-op).
   */
  rolledBack?: boolean;
  createdAt: string;
  updatedAt: string;
  /** Ad-hoc environments only: when cleanup may remove it. */
  expiresAt?: string;
}

/** A job's record in etcd at `<prefix>/jobs/<key>`. */
export interface JobRecord {
  version: typeof recordVersion;
  /** The Jenkins job name. */
  job: string;
  /** DNS-1123 name used for the job's pod, claim and volume. */
  resourceName: string;
  kind: 'job' | 'env';
  spec: JobSpec;
  status: JobStatus;
  /** A nonce per write, so that a write whose reply was lost can be recognised on re-read. */
  writeId: string;
}

/** One deploy, at `<prefix>/jobs/<key>/history/<revision>`. */
export interface HistoryEntry {
  version: typeof recordVersion;
  revision: number;
  action: 'provision' | 'update' | 'rollback';
  result: 'succeeded' | 'failed' | 'rolled-back' | 'aborted';
  commit?: string;
  gitTag?: string;
  imageTag?: string;
  image?: string;
  build?: BuildRef;
  startedAt: string;
  finishedAt: string;
  reason?: string;
  /** The pod's last log lines and events when the deploy failed. */
  diagnostics?: string;
}

/** Parses a stored record, refusing layouts this gkube does not know. */
export function decodeRecord(key: string, value: Buffer): JobRecord {
  const r = decode(key, value) as Record<string, any>;
  const problem =
    typeof r['job'] !== 'string' ? 'job' :
    typeof r['resourceName'] !== 'string' ? 'resourceName' :
    r['kind'] !== 'job' && r['kind'] !== 'env' ? 'kind' :
    typeof r['spec']?.namespace !== 'string' ? 'spec.namespace' :
    typeof r['spec']?.storage?.provider !== 'string' ? 'spec.storage.provider' :
    typeof r['status']?.phase !== 'string' ? 'status.phase' :
    typeof r['status']?.revision !== 'number' ? 'status.revision' :
    undefined;
  if (problem) {
    throw new GkubeError('INCONSISTENT_STATE', `etcd key ${key} is not a complete job record (${problem} is missing or of the wrong type); gkube will not act on it`, {
      hint: 'inspect it with etcdctl get; if no gkube wrote it, remove it',
    });
  }
  return r as JobRecord;
}

/** Parses a stored history entry, refusing layouts this gkube does not know. */
export function decodeHistory(key: string, value: Buffer): HistoryEntry {
  return decode(key, value) as unknown as HistoryEntry;
}

function decode(key: string, value: Buffer): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('utf8'));
  } catch {
    throw new GkubeError('INCONSISTENT_STATE', `etcd key ${key} does not hold JSON; gkube will not touch it`, { hint: 'inspect it with etcdctl get, and remove it if it is not gkube\'s' });
  }
  const version = (parsed as { version?: unknown } | null)?.version;
  if (version !== recordVersion) {
    throw new GkubeError('INCONSISTENT_STATE', `etcd key ${key} has record version ${JSON.stringify(version)}; this gkube reads version ${recordVersion}`, {
      hint: 'a newer gkube wrote it: upgrade gkube on this Jenkins agent',
    });
  }
  return parsed as Record<string, unknown>;
}
