import type { Context } from '../context.js';
import { timestamp } from '../clock.js';
import type { LockHolder } from './lock.js';

/** This run as a lock holder, for `operation`. */
export function holderFor(ctx: Context, operation: string): LockHolder {
  const h: LockHolder = { id: ctx.identity.id, user: ctx.identity.user, host: ctx.identity.host, pid: ctx.identity.pid, operation, startedAt: timestamp(ctx.clock) };
  if (ctx.identity.buildUrl) h.buildUrl = ctx.identity.buildUrl;
  return h;
}
