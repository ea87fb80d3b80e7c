// The read-only job actions: list, get, describe, history.
import type { EventSummary, PodSummary } from '../adapters/kube.js';
import type { Context } from '../context.js';
import { GkubeError } from '../errors.js';
import { JobLocks, type LockState } from './lock.js';
import type { JobNames } from './naming.js';
import type { HistoryEntry, JobRecord } from './record.js';
import { JobRegistry } from './registry.js';

/** A record as gkube shows it (`get -o json`): the stored record without its internal write nonce. */
export type JobView = Omit<JobRecord, 'writeId'>;

/** One row of `gkube list`. */
export interface JobSummary {
  job: string;
  kind: JobRecord['kind'];
  phase: JobRecord['status']['phase'];
  namespace: string;
  pod: string | null;
  imageTag: string | null;
  gitTag: string | null;
  commit: string | null;
  revision: number;
  updatedAt: string;
  expiresAt: string | null;
}

/** `gkube describe`: the record, the lock, recent history and what the cluster says. */
export interface JobDescription {
  record: JobView;
  lock: { holder: LockState['holder']; leaseSecondsLeft: number } | null;
  history: HistoryEntry[];
  pod: PodSummary | null;
  events: EventSummary[];
  /** Why the cluster part is missing, when it is. */
  clusterNote: string | null;
}

/** Every job gkube knows, by name. */
export async function listJobs(ctx: Context): Promise<{ jobs: JobSummary[]; unreadable: string[] }> {
  // One damaged key must not hide every other job: list the readable ones and name the rest.
  const { records, unreadable } = await new JobRegistry(ctx.etcd(), ctx.prefix).listAll();
  for (const err of unreadable) ctx.progress(`warning: ${err.message}`);
  return {
    unreadable: unreadable.map((e) => e.message),
    jobs: records.map((r) => ({
      job: r.job,
      kind: r.kind,
      phase: r.status.phase,
      namespace: r.spec.namespace,
      pod: r.status.pod ?? null,
      imageTag: r.status.imageTag ?? null,
      gitTag: r.status.gitTag ?? null,
      commit: r.status.commit ?? null,
      revision: r.status.revision,
      updatedAt: r.status.updatedAt,
      expiresAt: r.status.expiresAt ?? null,
    })),
  };
}

/** One job's record; JOB_NOT_FOUND (exit 2) when gkube has none. */
export async function getJob(ctx: Context, names: JobNames): Promise<JobView> {
  const stored = await new JobRegistry(ctx.etcd(), ctx.prefix).get(names);
  if (!stored) throw notFound(names);
  return view(stored.record);
}

/** A job's history, oldest first. */
export async function jobHistory(ctx: Context, names: JobNames): Promise<{ job: string; entries: HistoryEntry[] }> {
  const registry = new JobRegistry(ctx.etcd(), ctx.prefix);
  const [stored, entries] = await Promise.all([registry.get(names), registry.history(names)]);
  if (!stored && entries.length === 0) throw notFound(names);
  return { job: names.name, entries };
}

/** The record, its lock, the last five deploys, and the pod and its events when a cluster is configured. */
export async function describeJob(ctx: Context, names: JobNames): Promise<JobDescription> {
  const registry = new JobRegistry(ctx.etcd(), ctx.prefix);
  const [stored, history, lock] = await Promise.all([registry.get(names), registry.history(names), new JobLocks(ctx.etcd(), ctx.prefix).state(names)]);
  if (!stored) throw notFound(names);
  const record = stored.record;
  const description: JobDescription = {
    record: view(record),
    lock: lock ? { holder: lock.holder, leaseSecondsLeft: lock.leaseSecondsLeft } : null,
    history: history.slice(-5),
    pod: null,
    events: [],
    clusterNote: null,
  };
  const kube = ctx.kube();
  if (!kube) description.clusterNote = 'no Kubernetes configuration (--kubeconfig, KUBECONFIG or in-cluster)';
  else if (!record.status.pod) description.clusterNote = 'the record names no pod yet';
  else {
    description.pod = (await kube.findPod(record.spec.namespace, record.status.pod)) ?? null;
    if (!description.pod) description.clusterNote = `pod ${record.spec.namespace}/${record.status.pod} does not exist`;
    description.events = (await kube.events(record.spec.namespace, record.status.pod)).slice(-10);
  }
  return description;
}

/** The record without its write nonce. */
export function view(record: JobRecord): JobView {
  const { writeId: _nonce, ...rest } = record;
  return rest;
}

/** JOB_NOT_FOUND for a job gkube has no record of. */
export function notFound(names: JobNames): GkubeError {
  return new GkubeError('JOB_NOT_FOUND', `gkube has no record of job ${names.name}`, { hint: 'gkube list shows the jobs gkube knows; check --etcd-prefix if you expected it' });
}
