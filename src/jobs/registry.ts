import { randomBytes } from 'node:crypto';
import { GkubeError } from '../errors.js';
import type { Compare, EtcdPort, TxnOp } from '../adapters/etcd.js';
import { historyKey, jobKeys, jobsPrefix } from './keys.js';
import type { JobNames } from './naming.js';
import { decodeHistory, decodeRecord, type HistoryEntry, type JobRecord } from './record.js';

/** A record with the etcd mod revision it was read at (the compare-and-swap token). */
export interface StoredRecord {
  record: JobRecord;
  modRevision: string;
}

/** Proof of holding the job lock: writes also compare the lock key's create revision. */
export interface Fence {
  key: string;
  createRevision: string;
}

/** Options of a record write. */
export interface WriteOptions {
  fence?: Fence;
  /** A history entry written in the same transaction (its revision must be record.status.revision). */
  history?: HistoryEntry;
}

/** Job records and their history in etcd. Every write is a compare-and-swap; none is blind. */
export class JobRegistry {
  constructor(
    private readonly etcd: EtcdPort,
    readonly prefix: string,
  ) {}

  /** The job's record, or undefined when the job has none. */
  async get(names: JobNames): Promise<StoredRecord | undefined> {
    const kv = await this.etcd.get(jobKeys(this.prefix, names).record);
    return kv ? { record: decodeRecord(kv.key, kv.value), modRevision: kv.modRevision } : undefined;
  }

  /** Every job record under the prefix, sorted by job name; a record gkube cannot read makes it throw. */
  async list(): Promise<JobRecord[]> {
    const { records, unreadable } = await this.listAll();
    if (unreadable[0]) throw unreadable[0];
    return records;
  }

  /** Every readable job record, sorted by job name, and an error for each key that holds no readable record. */
  async listAll(): Promise<{ records: JobRecord[]; unreadable: GkubeError[] }> {
    const base = jobsPrefix(this.prefix);
    const kvs = await this.etcd.list(base);
    const records: JobRecord[] = [];
    const unreadable: GkubeError[] = [];
    for (const kv of kvs) {
      if (kv.key.slice(base.length).includes('/')) continue;
      try {
        records.push(decodeRecord(kv.key, kv.value));
      } catch (err) {
        if (!(err instanceof GkubeError)) throw err;
        unreadable.push(err);
      }
    }
    records.sort((a, b) => (a.job < b.job ? -1 : a.job > b.job ? 1 : 0));
    return { records, unreadable };
  }

  /** The job's history, oldest first. */
  async history(names: JobNames): Promise<HistoryEntry[]> {
    const kvs = await this.etcd.list(jobKeys(this.prefix, names).historyPrefix);
    return kvs.map((kv) => decodeHistory(kv.key, kv.value)).sort((a, b) => a.revision - b.revision);
  }

  /**
   * Writes `next` if the stored record is still `expected` (absent when `expected` is undefined).
   * A conflict throws WRITE_CONFLICT; a fence that no longer holds throws LOCK_LOST. When etcd's answer is
   * lost, the record is read back: the write counts only if the stored writeId is this write's.
   */
  async write(names: JobNames, expected: StoredRecord | undefined, next: JobRecord, options: WriteOptions = {}): Promise<StoredRecord> {
    const keys = jobKeys(this.prefix, names);
    const record: JobRecord = { ...next, writeId: randomBytes(8).toString('hex') };
    const compares: Compare[] = [expected ? { key: keys.record, target: 'Mod', op: '==', value: expected.modRevision } : { key: keys.record, target: 'Create', op: '==', value: 0 }];
    if (options.fence) compares.push({ key: options.fence.key, target: 'Create', op: '==', value: options.fence.createRevision });
    const ops: TxnOp[] = [{ put: keys.record, value: JSON.stringify(record) }];
    if (options.history) {
      if (options.history.revision !== record.status.revision) throw new Error('history revision must match the record revision');
      ops.push({ put: historyKey(keys, options.history.revision), value: JSON.stringify(options.history) });
    }
    let result;
    try {
      result = await this.etcd.txn(compares, ops);
    } catch (err) {
      if (!(err instanceof GkubeError && err.code === 'DEPENDENCY_UNREACHABLE')) throw err;
      // The reply was lost, not necessarily the write. A linearizable read once etcd answers again tells.
      const landed = await this.readBack(names, err);
      if (landed?.record.writeId === record.writeId) return landed;
      throw err;
    }
    if (!result.succeeded) throw this.failure(names, options.fence, result.failureValues);
    return { record, modRevision: result.revision };
  }

  /**
   * Read-modify-write until it lands: `change` gets the current record (or undefined) and returns the
   * next one, or undefined to write nothing. Conflicting writers are retried; nothing is lost.
   */
  async modify(names: JobNames, change: (current: StoredRecord | undefined) => JobRecord | undefined, options: WriteOptions = {}): Promise<StoredRecord | undefined> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(names);
      const next = change(current);
      if (!next) return current;
      try {
        return await this.write(names, current, next, options);
      } catch (err) {
        if (!(err instanceof GkubeError && err.code === 'WRITE_CONFLICT') || attempt >= 200) throw err;
        // Back off a little so a crowd of writers spreads out.
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 + attempt * 2)));
      }
    }
  }

  /** Deletes the record and its whole history if the record is still `expected`. */
  async remove(names: JobNames, expected: StoredRecord, fence?: Fence): Promise<void> {
    const keys = jobKeys(this.prefix, names);
    const compares: Compare[] = [{ key: keys.record, target: 'Mod', op: '==', value: expected.modRevision }];
    if (fence) compares.push({ key: fence.key, target: 'Create', op: '==', value: fence.createRevision });
    let result;
    try {
      result = await this.etcd.txn(compares, [{ delete: keys.record }, { deletePrefix: keys.historyPrefix }]);
    } catch (err) {
      if (!(err instanceof GkubeError && err.code === 'DEPENDENCY_UNREACHABLE')) throw err;
      // The reply was lost, not necessarily the delete: a record that is gone now was removed by it.
      if ((await this.readBack(names, err)) === undefined) return;
      throw err;
    }
    if (!result.succeeded) throw this.failure(names, fence, result.failureValues);
  }

  private async readBack(names: JobNames, original: GkubeError): Promise<StoredRecord | undefined> {
    // Long enough for an election after a leader dies; short enough that a dead etcd still ends the run soon.
    const deadline = Date.now() + 8_000;
    for (;;) {
      try {
        return await this.get(names);
      } catch (err) {
        if (!(err instanceof GkubeError && err.code === 'DEPENDENCY_UNREACHABLE')) throw err;
        if (Date.now() > deadline) {
          throw new GkubeError('OUTCOME_UNKNOWN', `etcd stopped answering while gkube wrote the record of job ${names.name}; the write may or may not have landed`, {
            hint: 'rerun once etcd answers: gkube reads the record before it writes again',
            cause: original,
          });
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  private failure(names: JobNames, fence: Fence | undefined, seen: Array<{ createRevision: string } | undefined>): GkubeError {
    const lock = fence ? seen[1] : undefined;
    if (fence && lock?.createRevision !== fence.createRevision) {
      return new GkubeError('LOCK_LOST', `the lock on job ${names.name} was lost (its lease expired); nothing was written`, {
        hint: 'another run may hold the job now; check with gkube describe, then rerun',
      });
    }
    return new GkubeError('WRITE_CONFLICT', `the record of job ${names.name} changed while gkube was writing it; nothing was written`, { hint: 'rerun: gkube re-reads the record first' });
  }
}
