import type { Context } from '../context.js';
import { GkubeError } from '../errors.js';
import { JobRegistry } from './registry.js';
import type { JobRecord } from './record.js';
import type { LoadedConfig } from '../config/index.js';
import { glusterMarker } from '../provision/storage.js';
import { resolveSource } from '../deploy/source.js';
import { shortCommit } from '../output/format.js';

/** One check of `gkube doctor`. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** The exit code this failure maps to (4: unreachable, 2: configuration). */
  exitCode?: number;
  /** Not run (nothing to check), which is not a failure. */
  skipped?: boolean;
}

export interface DoctorRequest {
  /** The ref whose image is looked up in the registry (as deploy takes it: --ref, GIT_COMMIT, HEAD). */
  ref: { value: string; field: string };
}

/**
 * Checks the app configuration, reaches etcd (latency, leader, the prefix's record count), when configured the
 * Kubernetes API, in a git checkout the registry (is the image a deploy of the ref would use there?), and with
 * GlusterFS storage the pool's peers and gkube's volumes.
 */
export async function doctor(ctx: Context, request: DoctorRequest): Promise<{ checks: Check[] }> {
  const checks: Check[] = [];
  let loaded: LoadedConfig | undefined;
  try {
    loaded = await ctx.config();
    checks.push({ name: 'config', ok: true, detail: loaded.source ? `${loaded.source}: valid (${loaded.digest.slice(0, 19)}…)` : 'no gkube.yaml here; built-in defaults' });
  } catch (err) {
    checks.push(failed('config', err));
  }
  const etcd = ctx.etcd();
  let etcdOk = false;
  try {
    const status = await etcd.status();
    etcdOk = status.hasLeader;
    checks.push({ name: 'etcd', ok: status.hasLeader, detail: `${etcd.endpoints.join(',')}: etcd ${status.version}, ${status.hasLeader ? 'has a leader' : 'NO LEADER'}, ${status.latencyMs} ms` });
  } catch (err) {
    checks.push(failed('etcd', err));
  }
  let jobRecords: JobRecord[] | undefined;
  if (etcdOk) {
    try {
      const { records, unreadable } = await new JobRegistry(etcd, ctx.prefix).listAll();
      jobRecords = records;
      const detail = `${records.length} job record${records.length === 1 ? '' : 's'} under ${ctx.prefix}`;
      if (unreadable.length === 0) checks.push({ name: 'records', ok: true, detail });
      else checks.push({ name: 'records', ok: false, detail: `${detail}; ${unreadable.length} unreadable: ${unreadable[0]!.message}`, exitCode: 5 });
    } catch (err) {
      checks.push(failed('records', err));
    }
  }
  const kube = (() => {
    try {
      return ctx.kube();
    } catch (err) {
      checks.push(failed('kubernetes', err));
      return undefined;
    }
  })();
  if (kube) {
    try {
      const started = Date.now();
      const version = await kube.serverVersion();
      checks.push({ name: 'kubernetes', ok: true, detail: `${kube.server}: ${version}, ${Date.now() - started} ms` });
    } catch (err) {
      checks.push(failed('kubernetes', err));
    }
  } else if (!checks.some((c) => c.name === 'kubernetes')) {
    checks.push({ name: 'kubernetes', ok: true, skipped: true, detail: 'not configured (no --kubeconfig, KUBECONFIG or in-cluster service account)' });
  }
  if (loaded) checks.push(await imageCheck(ctx, loaded, request.ref));
  if (loaded?.config.storage.provider === 'glusterfs' && loaded.config.storage.glusterfs.mode === 'in-tree') {
    checks.push(...(await glusterChecks(ctx, loaded.config.storage.glusterfs.ssh, jobRecords)));
  }
  return { checks };
}

/** The image a deploy of the ref would use, looked up in its registry, as deploy's first steps do. */
async function imageCheck(ctx: Context, loaded: LoadedConfig, ref: DoctorRequest['ref']): Promise<Check> {
  const repository = loaded.config.image.repository;
  if (!repository) return { name: 'image', ok: true, skipped: true, detail: 'no image.repository configured (gkube.yaml, GKUBE_IMAGE or --image)' };
  try {
    await ctx.git();
  } catch (err) {
    if (err instanceof GkubeError) return { name: 'image', ok: true, skipped: true, detail: `${repository}: no git checkout here, so no image tag to look up` };
    throw err;
  }
  try {
    const source = await resolveSource(ctx, ref);
    const image = `${repository}:${source.imageTag}`;
    const of = `${ref.field} ${shortCommit(source.commit)}`;
    const started = Date.now();
    const digest = await ctx.registry().manifestDigest(image);
    if (!digest) return { name: 'image', ok: false, detail: `${image} (${of}) is not in the registry: a deploy would fail (exit 1); build and push it first`, exitCode: 1 };
    return { name: 'image', ok: true, detail: `${image} (${of}) is in the registry (${digest.slice(0, 19)}…), ${Date.now() - started} ms` };
  } catch (err) {
    return failed('image', err);
  }
}

/** The pool's peers and their state, and every volume gkube made: its state, and whether a record still names it. */
async function glusterChecks(ctx: Context, ssh: string | undefined, records: JobRecord[] | undefined): Promise<Check[]> {
  const checks: Check[] = [];
  try {
    const pool = await ctx.gluster(ssh);
    const peers = await pool.peers();
    const down = peers.filter((p) => !p.connected);
    checks.push({
      name: 'gluster peers',
      ok: down.length === 0,
      detail: `${pool.where}: ${peers.map((p) => `${p.hostname} ${p.connected ? 'connected' : 'DISCONNECTED'}`).join(', ')}`,
      ...(down.length > 0 ? { exitCode: 4 } : {}),
    });
    const named = new Set((records ?? []).map((r) => r.status.volume).filter(Boolean));
    const ours = (await pool.volumeInfos()).filter((v) => v.options[glusterMarker] !== undefined);
    const orphans = records ? ours.filter((v) => !named.has(v.name)) : [];
    const notStarted = ours.filter((v) => v.status !== 'Started' && named.has(v.name));
    const list = ours.map((v) => `${v.name} ${v.status}${records && !named.has(v.name) ? ' (no record names it)' : ''}`).join(', ');
    checks.push({
      name: 'gluster volumes',
      ok: notStarted.length === 0,
      detail: ours.length === 0 ? 'no volumes made by gkube' : `${ours.length} made by gkube: ${list}${orphans.length > 0 ? `; ${orphans.length} no record names (kept by delete --keep-storage, or left by a removed record)` : ''}`,
      ...(notStarted.length > 0 ? { exitCode: 1 } : {}),
    });
  } catch (err) {
    checks.push(failed('gluster', err));
  }
  return checks;
}

function failed(name: string, err: unknown): Check {
  if (err instanceof GkubeError) return { name, ok: false, detail: err.message, exitCode: err.exitCode };
  throw err;
}
