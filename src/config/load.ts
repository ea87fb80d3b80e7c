// Loads gkube's app configuration from its sources and validates it.
//
// Precedence, lowest to highest (a higher source wins key by key; mappings merge, lists and
// scalars replace):
//   1. built-in defaults (schema.ts)
//   2. the file: --config FILE (must exist), else <cwd>/gkube.yaml (may be absent)
//   3. environment variables: GKUBE_NAMESPACE → namespace, GKUBE_IMAGE → image.repository,
//      GKUBE_TAG_POLICY → image.tagPolicy (an empty variable counts as unset)
//   4. --set key.path=value, in the order given (a later --set wins over an earlier one)
//   5. the dedicated flags: --namespace, --image, --tag-policy
// A `null` value in the file or a --set (`--set storage.storageClassName=null`) unsets the key,
// so the source below it, or the default, applies. health.http.port defaults to container.port.
//
// Each source is first validated on its own, so an error names the source that holds the bad
// value; rules that tie keys together (and required keys) are checked on the merged result and
// name the source of the key the rule is about. Errors are one line,
// `<source>: <key.path>: <rule>`, thrown as GkubeError('INVALID_CONFIG') (exit 2): the first in a
// stable order (file order within the file, then env, --set and flags in the order above), with
// the number of further problems in the hint.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { GkubeError } from '../errors.js';
import { defaults, quantityKeys, type AppConfig } from './schema.js';
import { parseSet, type KeyPath } from './set.js';
import { checkKnownPaths, describeValue, formatPath, mayHoldSecret, resourceProblems, validateConfig, type Problem } from './validate.js';

/** What loadConfig reads: an explicit --config, the working directory, the environment, --set values and the dedicated flags. */
export interface LoadConfigInput {
  /** --config FILE (relative to cwd); it must exist. Absent: `<cwd>/gkube.yaml`, which may be missing. */
  file?: string | undefined;
  cwd: string;
  env: Readonly<Record<string, string | undefined>>;
  /** --set values, in command-line order. */
  sets: readonly string[];
  flags: Partial<Record<ConfigFlag, string | undefined>>;
}

/** The configuration gkube runs with, where it came from, and a digest for the job record. */
export interface LoadedConfig {
  /** Fully defaulted and validated. */
  config: AppConfig;
  /** Absolute path of the file read, or undefined when no file was used. */
  source: string | undefined;
  /** `sha256:<hex>` of the canonical JSON of `config` (keys sorted): equal configs, equal digests. */
  digest: string;
}

/** The flags that set configuration keys directly. */
export type ConfigFlag = 'namespace' | 'imageRepository' | 'tagPolicy';

/** The environment variables loadConfig reads, and the key each sets (in precedence order). */
export const configEnvVars: Readonly<Record<string, string>> = Object.freeze({
  GKUBE_NAMESPACE: 'namespace',
  GKUBE_IMAGE: 'image.repository',
  GKUBE_TAG_POLICY: 'image.tagPolicy',
});

/** The dedicated flags: how errors name each, and the key each sets (in precedence order). */
export const configFlags: Readonly<Record<ConfigFlag, { flag: string; key: string }>> = Object.freeze({
  namespace: { flag: '--namespace', key: 'namespace' },
  imageRepository: { flag: '--image', key: 'image.repository' },
  tagPolicy: { flag: '--tag-policy', key: 'image.tagPolicy' },
});

/** The file read when no --config is given, relative to the working directory. */
export const defaultConfigFile = 'gkube.yaml';

/** gkube.yaml describes one app; anything larger than this is refused unread. */
export const maxConfigFileBytes = 1024 * 1024;

/** One line of trouble: `<label>: <key.path>: <rule>`. */
interface Issue {
  label: string;
  path?: KeyPath;
  rule: string;
  hint?: string;
}

/** A source of configuration, as errors name it. */
interface Source {
  label: string;
  /** Whether "(got …)" may quote its values: not for --set, whose label already shows the value. */
  echo: boolean;
}

/** Loads, merges, defaults and validates the configuration; throws GkubeError('INVALID_CONFIG') naming the first problem. */
export async function loadConfig(input: LoadConfigInput): Promise<LoadedConfig> {
  const issues: Issue[] = [];
  const merged: Record<string, unknown> = {};
  const sources: Source[] = [];
  // Which source last set each key path (formatted), to name the source of an error found after merging.
  const origin = new Map<string, number>();

  const take = (source: Source, data: Record<string, unknown>, sort?: (path: KeyPath) => number): void => {
    quantitiesAsText(data);
    const problems = [...checkKnownPaths(nullPaths(data)), ...validateConfig(withoutNulls(data), 'source')];
    if (problems.length > 0) {
      const found = problems.map((p) => issueFor(source, p));
      if (sort) found.sort((a, b) => sort(a.path ?? []) - sort(b.path ?? []));
      issues.push(...found);
      return;
    }
    const index = sources.push(source) - 1;
    mergeInto(merged, data, [], (path) => {
      const key = formatPath(path);
      for (const known of [...origin.keys()]) if (known.startsWith(`${key}.`) || known.startsWith(`${key}[`)) origin.delete(known);
      origin.set(key, index);
    });
  };

  // 2. the file
  const file = await readConfigFile(input, issues);
  if (file) take({ label: file.label, echo: true }, file.data, file.position);

  // 3. environment variables
  for (const [name, key] of Object.entries(configEnvVars)) {
    const value = input.env[name];
    if (value === undefined || value === '') continue;
    take({ label: name, echo: true }, setAt({}, key.split('.'), value));
  }

  // 4. --set, each applied on top of everything before it (an index needs the list so far)
  for (const text of input.sets) {
    const parsed = parseSet(text);
    if (!parsed.ok) {
      issues.push({ label: parsed.error.label, rule: parsed.error.rule });
      continue;
    }
    const { set } = parsed;
    let value = set.value;
    if (set.index !== undefined) {
      const current = getAt(merged, set.path) ?? getAt(defaults, set.path);
      const list = Array.isArray(current) ? [...(current as unknown[])] : [];
      if (set.index > list.length) {
        const items = `${list.length} item${list.length === 1 ? '' : 's'}`;
        issues.push({ label: set.label, path: [...set.path, set.index], rule: `is out of range: the list has ${items}, so use an index from 0 to ${list.length}` });
        continue;
      }
      list[set.index] = value;
      value = list;
    }
    take({ label: set.label, echo: false }, setAt({}, set.path, value));
  }

  // 5. dedicated flags
  for (const [name, { flag, key }] of Object.entries(configFlags) as [ConfigFlag, { flag: string; key: string }][]) {
    const value = input.flags[name];
    if (value === undefined) continue;
    take({ label: flag, echo: true }, setAt({}, key.split('.'), value));
  }

  if (issues.length === 0) {
    // 1. defaults under everything, then the rules that need the whole picture.
    const complete = withDefaults(merged);
    const problems = validateConfig(complete, 'merged');
    // Requests above limits, once the rest holds (their quantities are then well formed).
    if (problems.length === 0) problems.push(...resourceProblems(complete));
    for (const problem of problems) {
      const candidates = (problem.blame ?? [problem.path]).map((path) => originOf(origin, path)).filter((i): i is number => i !== undefined);
      const index = candidates.length > 0 ? Math.max(...candidates) : undefined;
      const source = index === undefined ? { label: file?.label ?? defaultConfigFile, echo: true } : sources[index]!;
      issues.push(issueFor(source, problem));
    }
    if (issues.length === 0) {
      const config = complete as unknown as AppConfig;
      return { config, source: file?.absolute, digest: configDigest(config) };
    }
  }
  throw toError(issues);
}

/** `sha256:<hex>` of a configuration's canonical JSON: stable across key order, different when any value differs. */
export function configDigest(config: AppConfig): string {
  return `sha256:${createHash('sha256').update(canonicalJson(config)).digest('hex')}`;
}

/** JSON with object keys sorted at every level and undefined members left out. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

// ---- the file ----

interface ConfigFile {
  label: string;
  absolute: string;
  data: Record<string, unknown>;
  /** Where a key path sits in the file, to report problems in file order. */
  position: (path: KeyPath) => number;
}

/** Reads and parses the config file; a problem with it becomes an issue and the file is skipped. */
async function readConfigFile(input: LoadConfigInput, issues: Issue[]): Promise<ConfigFile | undefined> {
  if (input.file === '') {
    issues.push({ label: '--config', rule: 'is empty (expected a file path)' });
    return undefined;
  }
  const explicit = input.file !== undefined;
  const given = input.file ?? defaultConfigFile;
  const absolute = isAbsolute(given) ? given : resolve(input.cwd, given);
  const label = given;
  const fail = (rule: string, hint?: string): undefined => {
    issues.push(hint === undefined ? { label, rule } : { label, rule, hint });
    return undefined;
  };

  let handle: FileHandle;
  try {
    // O_NONBLOCK: a FIFO at this path must not hang the run; it is refused below as not a regular file.
    handle = await open(absolute, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !explicit) return undefined;
    if (code === 'ENOENT') return fail('file not found (given with --config)', `relative paths are resolved against ${input.cwd}`);
    return fail(`cannot be read: ${describeFsError(code)}`);
  }
  let text: string;
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) return fail('is a directory, not a file');
    if (!stat.isFile()) return fail('is not a regular file');
    if (stat.size > maxConfigFileBytes) {
      return fail(`is ${formatBytes(stat.size)}; a gkube.yaml may be at most 1 MiB`, 'is --config pointing at the right file?');
    }
    // Read one byte past the limit in case the file grew after stat.
    const buffer = Buffer.alloc(maxConfigFileBytes + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead > maxConfigFileBytes) return fail('is larger than 1 MiB; a gkube.yaml may be at most 1 MiB');
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(buffer.subarray(0, bytesRead));
    } catch {
      return fail('is not UTF-8 text');
    }
  } catch (err) {
    return fail(`cannot be read: ${describeFsError((err as NodeJS.ErrnoException).code)}`);
  } finally {
    await handle.close();
  }

  // uniqueKeys: a key written twice is an error, not a silent last-one-wins.
  const doc = parseDocument(text, { version: '1.2', schema: 'core', uniqueKeys: true, prettyErrors: true, logLevel: 'error' });
  const yamlError = doc.errors[0];
  if (yamlError) {
    // yaml's message ends with a code frame of the file (which may hold secrets): keep the first clause only.
    const where = yamlError.linePos?.[0] ? `line ${yamlError.linePos[0].line}, column ${yamlError.linePos[0].col}: ` : '';
    return fail(`${where}not valid YAML: ${yamlReason(yamlError.code, yamlError.message)}`);
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // Unresolved aliases and alias bombs surface here, without a position.
    return fail(`not valid YAML: ${firstClause(err instanceof Error ? err.message : String(err))}`);
  }
  if (data === null || data === undefined) data = {}; // empty, or comments only
  if (!isPlainObject(data)) {
    // Name the kind only: a --config pointing at a token file must not print the token.
    return fail(`must be a mapping of keys (image, namespace, container, …) at the top level (got ${kindOf(data)})`);
  }
  return { label, absolute, data, position: (path) => positionOf(doc, path) };
}

function kindOf(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'number') return 'a number';
  if (typeof value === 'boolean') return 'true or false';
  return 'something else';
}

function yamlReason(code: string, message: string): string {
  if (code === 'MULTIPLE_DOCS') return 'holds more than one YAML document; gkube.yaml is one mapping';
  if (code === 'DUPLICATE_KEY') return 'a key appears twice in the same mapping';
  return firstClause(message);
}

/** The message without yaml's " at line N, column M:" and code frame, starting lowercase. */
function firstClause(message: string): string {
  const head = message.split('\n')[0]!.replace(/ at line \d+, column \d+:?\s*$/, '').replace(/:$/, '');
  return head.charAt(0).toLowerCase() + head.slice(1);
}

/** Offset of the key (or list item) at `path` in the file; the deepest existing ancestor when it is absent. */
function positionOf(doc: Document.Parsed, path: KeyPath): number {
  let node: unknown = doc.contents;
  let position = 0;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) break;
      position = (isScalar(pair.key) ? pair.key.range?.[0] : undefined) ?? position;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item: unknown = node.items[segment];
      const range = (item as { range?: [number, number, number] } | undefined)?.range;
      if (!range) break;
      position = range[0];
      node = item;
    } else {
      break;
    }
  }
  return position;
}

function describeFsError(code: string | undefined): string {
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    case 'ELOOP':
      return 'too many symbolic links';
    default:
      return code ?? 'unknown error';
  }
}

function formatBytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

// ---- merging ----

function issueFor(source: Source, problem: Problem): Issue {
  let rule = problem.rule;
  if (problem.got && source.echo && !mayHoldSecret(problem.path)) {
    const got = describeValue(problem.got.value);
    if (got) rule = `${rule} ${got}`;
  }
  return problem.hint === undefined ? { label: source.label, path: problem.path, rule } : { label: source.label, path: problem.path, rule, hint: problem.hint };
}

function toError(issues: Issue[]): GkubeError {
  const first = issues[0]!;
  const message = first.path && first.path.length > 0 ? `${first.label}: ${formatPath(first.path)}: ${first.rule}` : `${first.label}: ${first.rule}`;
  const more = issues.length - 1;
  const hints = [first.hint, more > 0 ? `${more} more configuration problem${more === 1 ? '' : 's'} after this one` : undefined].filter(
    (h): h is string => h !== undefined,
  );
  return new GkubeError('INVALID_CONFIG', message, hints.length > 0 ? { hint: hints.join('; ') } : {});
}

/** The source index that last set `path`, an ancestor of it, or (failing those) any key under it. */
function originOf(origin: ReadonlyMap<string, number>, path: KeyPath): number | undefined {
  for (let length = path.length; length > 0; length--) {
    const found = origin.get(formatPath(path.slice(0, length)));
    if (found !== undefined) return found;
  }
  const prefix = formatPath(path);
  let latest: number | undefined;
  for (const [key, index] of origin) {
    if (prefix === '' || key.startsWith(`${prefix}.`) || key.startsWith(`${prefix}[`)) latest = Math.max(latest ?? -1, index);
  }
  return latest;
}

/** Merges `patch` into `target`: mappings merge, everything else replaces, null deletes; reports each key it sets. */
function mergeInto(target: Record<string, unknown>, patch: Record<string, unknown>, path: string[], onSet: (path: KeyPath) => void): void {
  for (const [key, value] of Object.entries(patch)) {
    const here = [...path, key];
    const current = Object.hasOwn(target, key) ? target[key] : undefined;
    if (value === null) {
      delete target[key];
      onSet(here);
    } else if (isPlainObject(value)) {
      // Merge into a fresh mapping when there is none yet, so that nulls inside unset rather than land.
      const into = isPlainObject(current) ? current : {};
      if (into !== current) defineKey(target, key, into);
      mergeInto(into, value, here, onSet);
    } else {
      defineKey(target, key, clone(value));
      onSet(here);
    }
  }
}

/** A copy of `config` with every absent key filled from the defaults, and health.http.port from container.port. */
function withDefaults(config: Record<string, unknown>): Record<string, unknown> {
  const fill = (target: Record<string, unknown>, fallback: Record<string, unknown>): Record<string, unknown> => {
    for (const [key, value] of Object.entries(fallback)) {
      const current = Object.hasOwn(target, key) ? target[key] : undefined;
      if (current === undefined) defineKey(target, key, clone(value));
      else if (isPlainObject(current) && isPlainObject(value)) fill(current, value);
    }
    return target;
  };
  const complete = fill(clone(config), defaults as unknown as Record<string, unknown>);
  const http = getAt(complete, ['health', 'http']);
  if (isPlainObject(http) && http['port'] === undefined) http['port'] = getAt(complete, ['container', 'port']);
  return complete;
}

/** Turns numbers at quantity keys into their text, in place: `size: 1` means "1", as in Kubernetes. */
function quantitiesAsText(data: Record<string, unknown>): void {
  for (const path of quantityKeys) {
    const parent = getAt(data, path.slice(0, -1));
    const key = path[path.length - 1]!;
    if (isPlainObject(parent) && typeof parent[key] === 'number') defineKey(parent, key, String(parent[key]));
  }
}

/** The data without its null-valued keys (nulls unset keys; they are merged, not validated). */
function withoutNulls(data: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) {
    if (value === null) continue;
    defineKey(out, key, isPlainObject(value) ? withoutNulls(value) : value);
  }
  return out;
}

/** The key paths whose value is null, so unknown keys are caught even when they only unset. */
function nullPaths(data: Record<string, unknown>, prefix: string[] = []): KeyPath[] {
  const found: KeyPath[] = [];
  for (const [key, value] of Object.entries(data)) {
    if (value === null) found.push([...prefix, key]);
    else if (isPlainObject(value)) found.push(...nullPaths(value, [...prefix, key]));
  }
  return found;
}

function setAt(target: Record<string, unknown>, path: readonly string[], value: unknown): Record<string, unknown> {
  let node = target;
  path.forEach((key, i) => {
    const next = i === path.length - 1 ? value : {};
    defineKey(node, key, next);
    node = next as Record<string, unknown>;
  });
  return target;
}

/** Sets an own property even for a key such as `__proto__`, which then fails validation as an unknown key instead of changing a prototype. */
function defineKey(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

function getAt(source: unknown, path: readonly (string | number)[]): unknown {
  let node = source;
  for (const key of path) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key as string];
  }
  return node;
}

/** A mapping as YAML and JSON make them (not a list, Buffer or class instance); checked by tag, so it holds across realms. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  return Object.prototype.toString.call(value) === '[object Object]';
}

/** A deep copy of plain data (mappings, lists, scalars); other objects are shared, as nothing mutates them. */
function clone<T>(value: T): T {
  if (Array.isArray(value)) return value.map((item: unknown) => clone(item)) as T;
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) defineKey(out, key, clone(inner));
    return out as T;
  }
  return value;
}
