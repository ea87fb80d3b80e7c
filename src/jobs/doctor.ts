import type { Context } from '../context.js';
import { GkubeError } from '../errors.js';
import { JobRegistry } from './registry.js';

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

/** Checks the app configuration, reaches etcd (latency, leader, the prefix's record count) and, when configured, the Kubernetes API. */
export async function doctor(ctx: Context): Promise<{ checks: Check[] }> {
  const checks: Check[] = [];
  try {
    const loaded = await ctx.config();
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
  if (etcdOk) {
    try {
      const { records, unreadable } = await new JobRegistry(etcd, ctx.prefix).listAll();
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
  return { checks };
}

function failed(name: string, err: unknown): Check {
  if (err instanceof GkubeError) return { name, ok: false, detail: err.message, exitCode: err.exitCode };
  throw err;
}
