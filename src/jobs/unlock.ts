import type { Context } from '../context.js';
import { JobLocks, type LockHolder } from './lock.js';
import type { JobNames } from './naming.js';

/** Frees a job lock whose holder is gone, or (with `force` naming the holder) one whose holder looks alive. */
export async function unlockJob(ctx: Context, names: JobNames, options: { force?: string }): Promise<{ job: string; freed: LockHolder | null }> {
  const locks = new JobLocks(ctx.etcd(), ctx.prefix);
  const unlockOptions: { force?: string; thisHost: string; isRunning: (pid: number) => boolean } = { thisHost: ctx.identity.host, isRunning: ctx.isRunning };
  if (options.force !== undefined) unlockOptions.force = options.force;
  const { freed } = await locks.unlock(names, unlockOptions);
  return { job: names.name, freed: freed ?? null };
}
