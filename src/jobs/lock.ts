import { GkubeError } from '../errors.js';
import type { EtcdPort, LeaseHandle } from '../adapters/etcd.js';
import { formatDuration } from '../config/duration.js';
import { jobKeys } from './keys.js';
import type { JobNames } from './naming.js';
import type { Fence } from './registry.js';

/** Who holds a job lock, as stored in the lock key. */
export interface LockHolder {
  /** BUILD_TAG in Jenkins (`jenkins-team-app-42`), else `user@host:pid`. */
  id: string;
  user: string;
  host: string;
  pid: number;
  operation: string;
  buildUrl?: string;
  startedAt: string;
}

/** A held job lock. Writes made under it pass `fence` so that a holder whose lease expired cannot write. */
export interface HeldLock {
  fence: Fence;
  holder: LockHolder;
  /** True once the lease could not be kept alive. */
  readonly lost: boolean;
  onLost(listener: (err: Error) => void): void;
  /** Throws LOCK_LOST once the lease is lost (`stopped`: what stopped; `hint`: how to finish): another run may hold the job. */
  assertHeld(stopped: string, hint: string): void;
  /** Deletes the lock key (if still ours) and revokes the lease. */
  release(): Promise<void>;
}

/** How to wait for a job's lock. */
export interface AcquireOptions {
  waitMs: number;
  /** Called once, when the lock is found held, with its holder. */
  onWait?: (current: LockHolder) => void;
  reclaim?: { thisHost: string; isRunning: (pid: number) => boolean; onReclaim?: (dead: LockHolder) => void };
  signal?: AbortSignal;
}

/** The current holder of a job's lock. */
export interface LockState {
  holder: LockHolder;
  lease: string;
  /** Seconds left on the holder's lease; it is renewed every few seconds while the holder lives. */
  leaseSecondsLeft: number;
}

/** Lease-backed job locks: one key per job, created only when absent, bound to the holder's lease. */
export class JobLocks {
  constructor(
    private readonly etcd: EtcdPort,
    private readonly prefix: string,
    private readonly ttlSeconds = 10,
  ) {}

  /**
   * Takes the job's lock, waiting up to `waitMs` for another holder to finish (a watch on the key, not
   * polling). Past the wait it throws JOB_LOCKED (exit 3) naming the holder; nothing was changed. An abort of
   * `signal` (SIGTERM) ends the wait at once (ABORTED).
   * With `reclaim`, a holder that ran on this host and whose process is gone (a killed build on the same
   * agent) has its lease revoked at once instead of being waited out; `onReclaim` says so.
   */
  async acquire(names: JobNames, holder: LockHolder, options: AcquireOptions): Promise<HeldLock> {
    const key = jobKeys(this.prefix, names).lock;
    const { waitMs, onWait, reclaim, signal } = options;
    let lease = await this.etcd.grantLease(this.ttlSeconds);
    const deadline = Date.now() + waitMs;
    let announced = false;
    try {
      for (;;) {
        if (signal?.aborted) throw new GkubeError('ABORTED', `stopped while waiting for the lock of job ${names.name}; nothing was changed`);
        // A long wait may outlive our own lease (etcd away for a while): wait on with a new one.
        if (lease.lost) {
          await lease.revoke().catch(() => undefined);
          lease = await this.etcd.grantLease(this.ttlSeconds);
        }
        const attempt = await this.etcd.txn([{ key, target: 'Create', op: '==', value: 0 }], [{ put: key, value: JSON.stringify(holder), lease: lease.id }]);
        if (attempt.succeeded) return held(this.etcd, names, key, attempt.revision, holder, lease);
        const found = attempt.failureValues[0];
        const current = parseHolder(found?.value);
        const dead = found && current && reclaim && found.lease !== '0' && current.host === reclaim.thisHost && current.pid !== holder.pid && !reclaim.isRunning(current.pid);
        if (dead) {
          // Only the dead holder's own lease is revoked: a newer holder has a lease of its own and is never hit.
          await this.etcd.revokeLease(found.lease);
          reclaim.onReclaim?.(current);
          continue;
        }
        if (Date.now() >= deadline) throw busy(names, current, waitMs);
        if (!announced && current) {
          onWait?.(current);
          announced = true;
        }
        await this.waitForRelease(key, deadline, signal);
      }
    } catch (err) {
      await lease.revoke().catch(() => undefined);
      throw err;
    }
  }

  /** Who holds the job's lock, or undefined when it is free. */
  async state(names: JobNames): Promise<LockState | undefined> {
    const kv = await this.etcd.get(jobKeys(this.prefix, names).lock);
    const holder = parseHolder(kv?.value);
    if (!kv || !holder) return undefined;
    return { holder, lease: kv.lease, leaseSecondsLeft: await this.etcd.leaseTimeToLive(kv.lease) };
  }

  /**
   * Frees a lock whose holder is gone: on this host, its process no longer runs. With `force`, frees the lock
   * of the named holder even though it looks alive (the holder id must match, so a newer holder is never hit).
   */
  async unlock(names: JobNames, options: { force?: string; thisHost: string; isRunning: (pid: number) => boolean }): Promise<{ freed?: LockHolder }> {
    const state = await this.state(names);
    if (!state) return {};
    const { holder } = state;
    if (options.force !== undefined) {
      if (options.force !== holder.id) {
        throw new GkubeError('REFUSED', `job ${names.name} is locked by ${holder.id}, not by ${options.force}; nothing was changed`, { hint: `to free it anyway: gkube unlock ${quote(names.name)} --force ${quote(holder.id)}` });
      }
    } else if (holder.host !== options.thisHost || options.isRunning(holder.pid)) {
      const where = holder.host === options.thisHost ? `process ${holder.pid} is still running` : `it runs on ${holder.host}, so gkube cannot see whether it is alive`;
      throw new GkubeError('JOB_LOCKED', `job ${names.name} is locked by ${describeHolder(holder)}; ${where}; nothing was changed`, {
        hint: `a holder that died frees the lock within ${state.leaseSecondsLeft > 0 ? state.leaseSecondsLeft : this.ttlSeconds}s by itself; to free it now: gkube unlock ${quote(names.name)} --force ${quote(holder.id)}`,
      });
    }
    // Revoking the lease deletes the key with it, so a holder that comes back cannot write (its fence fails).
    await this.etcd.revokeLease(state.lease);
    return { freed: holder };
  }

  private async waitForRelease(key: string, deadline: number, signal: AbortSignal | undefined): Promise<void> {
    let wake: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (wake = resolve));
    // The wait's end and an abort are armed first, so neither waits for the watch to start.
    const timer = setTimeout(wake, Math.max(0, deadline - Date.now()));
    signal?.addEventListener('abort', wake, { once: true });
    let cancel: (() => Promise<void>) | undefined;
    try {
      cancel = await this.etcd.watchKey(key, (event) => event === 'delete' && wake());
      // The holder may have let go between our attempt and the watch starting.
      if (!(await this.etcd.get(key))) return;
      await released;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', wake);
      await cancel?.();
    }
  }
}

function held(etcd: EtcdPort, names: JobNames, key: string, createRevision: string, holder: LockHolder, lease: LeaseHandle): HeldLock {
  return {
    fence: { key, createRevision },
    holder,
    get lost() {
      return lease.lost;
    },
    onLost: (listener) => lease.onLost(listener),
    assertHeld: (stopped, hint) => {
      if (lease.lost) throw new GkubeError('LOCK_LOST', `the lock on job ${names.name} was lost (etcd did not renew its lease); ${stopped}`, { hint: `check etcd (gkube doctor), then ${hint}` });
    },
    release: async () => {
      // Delete only our own key; then the lease goes (and with it anything else bound to it).
      await etcd.txn([{ key, target: 'Create', op: '==', value: createRevision }], [{ delete: key }]).catch(() => undefined);
      await lease.revoke();
    },
  };
}

function busy(names: JobNames, holder: LockHolder | undefined, waitMs: number): GkubeError {
  const who = holder ? describeHolder(holder) : 'another run';
  return new GkubeError('JOB_LOCKED', `job ${names.name} is locked by ${who}; waited ${formatDuration(waitMs)}; nothing was changed`, {
    hint: `${holder?.buildUrl ? `see ${holder.buildUrl}; ` : ''}wait longer with --wait-lock; a run that died frees the lock within seconds by itself; to free it now: gkube unlock ${quote(names.name)}${holder ? ` --force ${quote(holder.id)}` : ''}`,
  });
}

/** `jenkins-team-app-42 (deploy, pid 4242 on agent-3, since 2026-11-22T10:00:00Z)`. */
export function describeHolder(h: LockHolder): string {
  return `${h.id} (${h.operation}, pid ${h.pid} on ${h.host}, since ${h.startedAt})`;
}

function parseHolder(value: Buffer | undefined): LockHolder | undefined {
  if (!value) return undefined;
  try {
    return JSON.parse(value.toString('utf8')) as LockHolder;
  } catch {
    return undefined;
  }
}

function quote(s: string): string {
  return /^[A-Za-z0-9_./@:%-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
