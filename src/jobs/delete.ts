import type { Context } from '../context.js';
import { timestamp } from '../clock.js';
import { GkubeError, stoppedMidway } from '../errors.js';
import { lockJob } from './holder.js';
import type { HeldLock } from './lock.js';
import type { JobNames } from './naming.js';
import { notFound } from './read.js';
import { JobRegistry, type StoredRecord } from './registry.js';
import type { JobRecord } from './record.js';
import type { KubePort } from '../adapters/kube.js';
import { glusterObjectNames, labelKeys } from '../provision/manifests.js';
import { glusterMarker } from '../provision/storage.js';
import { rm } from 'node:fs/promises';
import { basename } from 'node:path';
import { hostname, networkInterfaces } from 'node:os';

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
  // Checked before waiting for the lock, and again under it (a deploy may have made a pod meanwhile).
  clusterFor(ctx, names, first.record);

  const lock = await lockJob(ctx, names, 'delete', options.waitLockMs, (line) => ctx.progress(line));
  // Nothing is removed once the lock's lease is lost: another run may hold the job by then.
  const held = () => lock.assertHeld('gkube delete stopped', `run gkube delete ${names.name} again`);
  try {
    let stored = await registry.get(names);
    if (!stored) throw notFound(names);
    const { record } = stored;
    const keep = options.keepStorage || record.spec.storage.retain === true;
    const kube = clusterFor(ctx, names, record);
    stored = await registry.write(names, stored, { ...record, status: { ...record.status, phase: 'deleting', reason: `gkube delete by ${ctx.identity.id}`, updatedAt: timestamp(ctx.clock) } }, { fence: lock.fence });
    return await removeAll(ctx, registry, lock, held, names, stored, keep, kube).catch((err: unknown) => {
      // From here on something may have been removed: the record says deleting, and the next delete finishes.
      if (err instanceof GkubeError && err.code !== 'OPERATION_FAILED') throw stoppedMidway(err, `job ${names.name} is left in phase deleting`, `run gkube delete ${names.name} again`);
      throw err;
    });
  } finally {
    // What was removed stays removed even if etcd stopped answering here; the lease then lapses by itself.
    await lock.release().catch(() => undefined);
  }
}

/** Under the lock, with the record marked deleting: the pod, the claim, the Gluster storage, then the record. */
async function removeAll(ctx: Context, registry: JobRegistry, lock: HeldLock, held: () => void, names: JobNames, stored: StoredRecord, keep: boolean, kube: KubePort | undefined): Promise<DeleteResult> {
  const { record } = stored;
  const result: DeleteResult = { job: names.name, removed: [], kept: [], alreadyGone: [] };
  const ns = record.spec.namespace;
  if (record.status.pod) {
    const what = `pod ${ns}/${record.status.pod}`;
    held();
    if (await kube!.deletePod(ns, record.status.pod)) {
      result.removed.push(what);
      ctx.progress(`deleted ${what}`);
    } else result.alreadyGone.push(what);
  }
  if (record.status.pvc) {
    const what = `persistentvolumeclaim ${ns}/${record.status.pvc}`;
    held();
    if (keep) result.kept.push(what);
    else if (await kube!.deleteClaim(ns, record.status.pvc)) {
      // Kubernetes removes the claim once the pod is gone (pvc-protection), and its volume by the class's reclaim policy.
      result.removed.push(what);
      ctx.progress(`deleted ${what}`);
    } else result.alreadyGone.push(what);
  }
  const gluster = record.spec.storage.provider === 'glusterfs' && record.spec.storage.glusterfs?.mode !== 'storageclass';
  if (gluster && keep) result.kept.push(...glusterObjectsOf(names, ns).map((o) => o.what), ...(record.status.volume ? [`Gluster volume ${record.status.volume}`] : []));
  else if (gluster) {
    try {
      await removeGlusterStorage(ctx, kube!, names, record, result, held);
    } catch (err) {
      if (err instanceof GkubeError && err.code === 'LOCK_LOST') throw err;
      // The record stays `deleting` with the reason: the next gkube delete picks up from here.
      const reason = `gkube delete stopped: ${(err as Error).message}`;
      await registry.write(names, stored, { ...record, status: { ...record.status, phase: 'deleting', reason, updatedAt: timestamp(ctx.clock) } }, { fence: lock.fence }).catch(() => undefined);
      throw new GkubeError('OPERATION_FAILED', `job ${names.name} was not removed completely: ${(err as Error).message}; the record is left in phase deleting`, {
        hint: `run gkube delete ${names.name} again once the pool answers`,
        cause: err,
      });
    }
  } else if (record.status.volume && keep) result.kept.push(`volume ${record.status.volume}`);
  await registry.remove(names, stored, lock.fence);
  result.removed.push(`record and history of job ${names.name}`);
  return result;
}

/** The cluster when the record names objects in it; INVALID_CONFIG (nothing changed) when none is configured. */
function clusterFor(ctx: Context, names: JobNames, record: JobRecord): KubePort | undefined {
  if (!record.status.pod && !record.status.pvc) return undefined;
  const kube = ctx.kube();
  if (!kube) throw new GkubeError('INVALID_CONFIG', `job ${names.name} has resources in Kubernetes and gkube has no cluster configuration; nothing was changed`, { hint: 'pass --kubeconfig FILE or set KUBECONFIG' });
  return kube;
}

/** The in-tree GlusterFS objects a job has besides its claim. */
function glusterObjectsOf(names: JobNames, namespace: string): Array<{ kind: 'PersistentVolume' | 'Endpoints' | 'Service'; name: string; what: string }> {
  const o = glusterObjectNames(names, namespace);
  return [
    { kind: 'PersistentVolume', name: o.persistentVolume, what: `persistentvolume ${o.persistentVolume}` },
    { kind: 'Service', name: o.endpoints, what: `service ${namespace}/${o.endpoints}` },
    { kind: 'Endpoints', name: o.endpoints, what: `endpoints ${namespace}/${o.endpoints}` },
  ];
}

/**
 * After the pod and the claim: the PV, the pool's Service and Endpoints, then (once no pod can still have it
 * mounted) the Gluster volume is stopped and deleted and its local brick directories removed.
 */
async function removeGlusterStorage(ctx: Context, kube: KubePort, names: JobNames, record: JobRecord, result: DeleteResult, held: () => void): Promise<void> {
  const ns = record.spec.namespace;
  if (record.status.pod && !(await kube.waitForPodGone(ns, record.status.pod, 120_000))) {
    throw new GkubeError('OPERATION_FAILED', `pod ${ns}/${record.status.pod} is still terminating after 2 minutes; its volume is still mounted`);
  }
  for (const o of glusterObjectsOf(names, ns)) {
    held();
    // Only what carries this job's label: an object of that name made by someone else is left alone.
    const outcome = await kube.deleteObject(o.kind, ns, o.name, { [labelKeys.job]: names.resourceName });
    if (outcome === 'deleted') {
      result.removed.push(o.what);
      ctx.progress(`deleted ${o.what}`);
    } else if (outcome === 'absent') result.alreadyGone.push(o.what);
    else result.kept.push(`${o.what} (not labelled for this job, so not gkube's to remove)`);
  }
  const volume = record.status.volume;
  if (!volume) return;
  const pool = await ctx.gluster(record.spec.storage.glusterfs?.ssh);
  const info = await pool.volumeInfo(volume);
  if (!info) {
    result.alreadyGone.push(`Gluster volume ${volume}`);
    return;
  }
  if (info.options[glusterMarker] !== undefined && info.options[glusterMarker] !== names.resourceName) {
    throw new GkubeError('REFUSED', `Gluster volume ${volume} is marked for another job (${info.options[glusterMarker]}); it was left as it is`);
  }
  held();
  await pool.stopVolume(volume);
  held();
  await pool.deleteVolume(volume);
  result.removed.push(`Gluster volume ${volume}`);
  ctx.progress(`deleted Gluster volume ${volume}`);
  // gluster leaves the brick directories (with its metadata in them); the ones on this host are removed here.
  const local = new Set([hostname(), 'localhost', ...Object.values(networkInterfaces()).flatMap((addrs) => (addrs ?? []).map((a) => a.address))]);
  for (const brick of info.bricks) {
    // Only directories gkube named for this job (<brickRoot>/<resource name>-b<n>) are removed.
    if (local.has(brick.host) && new RegExp(`^${names.resourceName}-b\\d+$`).test(basename(brick.path))) {
      await rm(brick.path, { recursive: true, force: true });
      result.removed.push(`brick directory ${brick.host}:${brick.path}`);
    } else result.kept.push(`brick directory ${brick.host}:${brick.path} (remove it on ${brick.host})`);
  }
}
