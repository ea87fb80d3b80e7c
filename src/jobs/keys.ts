import type { JobNames } from './naming.js';

/** The etcd keys of one job under a prefix (default /gkube/v1). */
export interface JobKeys {
  record: string;
  historyPrefix: string;
  lock: string;
}

/** The default etcd prefix. */
export const defaultPrefix = '/gkube/v1';

/** Keys of the job named `names` under `prefix`. */
export function jobKeys(prefix: string, names: JobNames): JobKeys {
  return {
    record: `${prefix}/jobs/${names.key}`,
    historyPrefix: `${prefix}/jobs/${names.key}/history/`,
    lock: `${prefix}/locks/${names.key}`,
  };
}

/** History keys are zero-padded so that etcd's byte order is revision order. */
export function historyKey(keys: JobKeys, revision: number): string {
  return `${keys.historyPrefix}${String(revision).padStart(10, '0')}`;
}

/** The prefix under which every job record (and its history) lives. */
export function jobsPrefix(prefix: string): string {
  return `${prefix}/jobs/`;
}
