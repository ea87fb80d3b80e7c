import { createHash } from 'node:crypto';
import { GkubeError } from '../errors.js';

/** The longest Jenkins job name gkube accepts, in UTF-8 bytes (Jenkins' own full names stay far below). */
export const maxJobNameBytes = 1024;

/** How one Jenkins job is named in etcd and in Kubernetes. */
export interface JobNames {
  /** The job name as given (Unicode NFC), e.g. `team/app folder/deploy`. */
  name: string;
  /** A single etcd key segment (no `/`), reversible: `encodeURIComponent` of the name. */
  key: string;
  /** A DNS-1123 label of at most 63 characters that starts with a letter, with a hash suffix so that two jobs never share it. */
  resourceName: string;
}

/**
 * Names a job from Jenkins' JOB_NAME (folders `a/b/c`, spaces, `%2F`, unicode, any length up to 1 KiB).
 * The same name always maps the same way; different names never share a key, and share a resource
 * name only on a 48-bit hash collision.
 */
export function jobNames(jobName: string, field = 'job'): JobNames {
  const name = validJobName(jobName, field);
  return { name, key: encodeURIComponent(name), resourceName: resourceNameOf(name) };
}

/** The job name from an etcd key segment (the inverse of JobNames.key). */
export function jobNameFromKey(key: string): string {
  return decodeURIComponent(key);
}

function validJobName(raw: string, field: string): string {
  const name = raw.normalize('NFC');
  if (name.trim() === '') {
    throw new GkubeError('INVALID_INPUT', `${field}: the job name is empty`, { hint: 'name the job, or run inside Jenkins where JOB_NAME is set' });
  }
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > maxJobNameBytes) {
    throw new GkubeError('INVALID_INPUT', `${field}: the job name is ${bytes} bytes long; at most ${maxJobNameBytes} are allowed`);
  }
  // Control characters never come from Jenkins and would corrupt terminal output and logs.
  if (/[\u0000-\u001f\u007f]/.test(name)) {
    throw new GkubeError('INVALID_INPUT', `${field}: the job name contains a control character (newline, tab, …)`);
  }
  if (name !== name.trim()) throw new GkubeError('INVALID_INPUT', `${field}: the job name starts or ends with white space`);
  return name;
}

const hashLength = 12;
const maxResourceName = 63;

/**
 * A DNS-1123 label of at most 63 characters for one of the job's objects other than its pod and claim,
 * `<prefix>-<readable name>-<hash>`: like the resource name, cut in the readable part, never in the hash.
 */
export function prefixedResourceName(names: JobNames, prefix: string): string {
  return resourceNameOf(names.name, prefix);
}

function resourceNameOf(name: string, prefix?: string): string {
  const hash = createHash('sha256').update(name, 'utf8').digest('hex').slice(0, hashLength);
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '') // drop the accents NFKD split off: ü → u
    .toLowerCase()
    .replace(/%2f/g, '-')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  // Start with a letter so the name is also a valid Service name (DNS-1035).
  const lead = prefix ? `${prefix}-${slug}`.replace(/-+$/, '') : /^[a-z]/.test(slug) ? slug : `j-${slug}`.replace(/-+$/, '');
  const room = maxResourceName - hash.length - 1;
  const trimmed = lead.slice(0, room).replace(/-+$/, '');
  return `${trimmed}-${hash}`;
}
