import type { Context } from '../context.js';
import { timestamp } from '../clock.js';
import { describeHolder, JobLocks, type HeldLock, type LockHolder } from './lock.js';
import type { JobNames } from './naming.js';

/** This run as a lock holder, for `operation`. */
export function holderFor(ctx: Context, operation: string): LockHolder {
  const h: LockHolder = { id: ctx.identity.id, user: ctx.identity.user, host: ctx.identity.host, pid: ctx.identity.pid, operation, startedAt: timestamp(ctx.clock) };
  if (ctx.identity.buildUrl) h.buildUrl = ctx.identity.buildUrl;
  return h;
}

/**
 * Takes the job's lock for this run (JobLocks.acquire): says whom it waits for, frees at once the lock of a
 * holder that ran on this host and is gone, and stops waiting on SIGTERM.
 */
export function lockJob(ctx: Context, names: JobNames, operation: string, waitMs: number, say: (line: string) => void): Promise<HeldLock> {
  return new JobLocks(ctx.etcd(), ctx.prefix).acquire(names, holderFor(ctx, operation), {
    waitMs,
    onWait: (h) => say(`waiting for the lock of job ${names.name}, held by ${describeHolder(h)}`),
    reclaim: {
      thisHost: ctx.identity.host,
      isRunning: ctx.isRunning,
      onReclaim: (dead) => say(`the lock of job ${names.name} was held by ${describeHolder(dead)}, whose process is gone: freed it`),
    },
    signal: ctx.signal,
  });
}
