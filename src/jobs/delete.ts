import type { Context } from '../context.js';
import { timestamp } from '../clock.js';
import { GkubeError } from '../errors.js';
import { holderFor } from './holder.js';
import { describeHolder, JobLocks } from './lock.js';
import type { JobNames } from './naming.js';
import { notFound } from './read.js';
import { JobRegistry } from './registry.js';

/** What `gkube delete` removed, kept, and found already gone. */
export interface DeleteResult {
  job: string;
  removed: string[];
  kept: string[];
  alreadyGone: string[];
}

/**
 * Removes a job: under the job lock, marks the record `deleting` (so a killed run is finished by the next
 * `gkube delete`), deletes the pod, then the claim unless storage is kept, then the record and its history.
 */
export async function deleteJob(ctx: Context, names: JobNames, options: { keepStorage: boolean; waitLockMs: number }): Promise<DeleteResult> {
  const registry = new JobRegistry(ctx.etcd(), ctx.prefix);
  const first = await registry.get(names);
  if (!first) throw notFound(names);
  const keep = options.keepStorage || first.record.spec.storage.retain === true;
  if (first.record.spec.storage.provider === 'glusterfs' && first.record.status.volume && !keep) {
    throw new GkubeError('NOT_BUILT', `job ${names.name} has GlusterFS volume ${first.record.status.volume}, and removing GlusterFS volumes is not in this version of gkube; nothing was changed`, {
      hint: `rerun with --keep-storage to remove the job and keep its volume`,
    });
  }
  const needsCluster = Boolean(first.record.status.pod || first.record.status.pvc);
  const kube = needsCluster ? ctx.kube() : undefined;
  if (needsCluster && !kube) {
    throw new GkubeError('INVALID_CONFIG', `job ${names.name} has resources in Kubernetes and gkube has no cluster configuration; nothing was changed`, { hint: 'pass --kubeconfig FILE or set KUBECONFIG' });
  }

  const lock = await new JobLocks(ctx.etcd(), ctx.prefix).acquire(names, holderFor(ctx, 'delete'), options.waitLockMs, (h) => ctx.progress(`waiting for the lock of job ${names.name}, held by ${describeHolder(h)}`));
  try {
    let stored = await registry.get(names);
    if (!stored) throw notFound(names);
    const { record } = stored;
    stored = await registry.write(names, stored, { ...record, status: { ...record.status, phase: 'deleting', reason: `gkube delete by ${ctx.identity.id}`, updatedAt: timestamp(ctx.clock) } }, { fence: lock.fence });
    const result: DeleteResult = { job: names.name, removed: [], kept: [], alreadyGone: [] };
    const ns = record.spec.namespace;
    if (record.status.pod) {
      const what = `pod ${ns}/${record.status.pod}`;
      if (await kube!.deletePod(ns, record.status.pod)) {
        result.removed.push(what);
        ctx.progress(`deleted ${what}`);
      } else result.alreadyGone.push(what);
    }
    if (record.status.pvc) {
      const what = `persistentvolumeclaim ${ns}/${record.status.pvc}`;
      if (keep) result.kept.push(what);
      else if (await kube!.deleteClaim(ns, record.status.pvc)) {
        // Kubernetes removes the claim once the pod is gone (pvc-protection), and its volume by the class's reclaim policy.
        result.removed.push(what);
        ctx.progress(`deleted ${what}`);
      } else result.alreadyGone.push(what);
    }
    if (record.status.volume && keep) result.kept.push(`volume ${record.status.volume}`);
    await registry.remove(names, stored, lock.fence);
    result.removed.push(`record and history of job ${names.name}`);
    return result;
  } finally {
    await lock.release();
  }
}
