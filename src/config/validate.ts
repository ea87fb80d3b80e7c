// Runs the gkube.yaml schema through ajv and turns each ajv error into a Problem: a key path and
// a rule in gkube's own words. ajv's raw text ("must NOT have additional properties") is never
// shown. The rule comes from the schema node's `x-rule` annotation when it has one.
import { Ajv, type ErrorObject, type SchemaObject, type ValidateFunction } from 'ajv';
import { durationRule, isPositiveDuration, tooLongRule } from './duration.js';
import { configSchema } from './schema.js';
import type { KeyPath } from './set.js';

/** One broken rule: where, which rule, and what may be said about the value found. */
export interface Problem {
  path: KeyPath;
  rule: string;
  /** Present (possibly `undefined`-valued) when the value found may be quoted as "(got …)". */
  got?: { value: unknown };
  /** For a cross-field rule: the keys it ties together; the error names the source that set the last of them. */
  blame?: KeyPath[];
  /** True for rules that only make sense once every source is merged (cross-field, required keys). */
  whole: boolean;
  /** What to do about it, when the rule alone does not say. */
  hint?: string;
}

/** What is being validated: one source on its own (file, an env var, a --set, a flag), or the merged result. */
export type ValidationScope = 'source' | 'merged';

let compiled: ValidateFunction | undefined;

/** The compiled schema, built on first use (compiling costs a few milliseconds; --help never pays it). */
function validator(): ValidateFunction {
  if (!compiled) {
    const ajv = new Ajv({
      allErrors: true,
      verbose: true, // errors carry parentSchema, where the x-rule annotations live
      strict: true,
      strictTypes: false, // cross-field `then` branches use minItems/const without repeating the type
      strictRequired: false,
      allowUnionTypes: true, // quantities are strings or numbers, as in Kubernetes
      logger: false, // nothing under src/ prints
    });
    ajv.addKeyword({ keyword: 'x-rule', schemaType: 'string' });
    ajv.addKeyword({ keyword: 'x-blame', schemaType: 'string' });
    ajv.addFormat('gkube-duration', { type: 'string', validate: isPositiveDuration });
    compiled = ajv.compile(configSchema);
  }
  return compiled;
}

/** Validates data against the schema; returns the problems, one per key path, in a stable order. */
export function validateConfig(data: unknown, scope: ValidationScope): Problem[] {
  const validate = validator();
  const problems: Problem[] = [];
  if (!validate(data)) {
    for (const error of validate.errors ?? []) {
      const problem = toProblem(error, data);
      if (problem && (scope === 'merged' || !problem.whole)) problems.push(problem);
    }
  }
  return dedupe(problems);
}

/** Checks that each path (where a source set `null` to unset a key) names a key the schema knows. */
export function checkKnownPaths(paths: KeyPath[]): Problem[] {
  const problems: Problem[] = [];
  for (const path of paths) {
    let node: SchemaObject | undefined = configSchema;
    for (let i = 0; i < path.length && node; i++) {
      const key = path[i]!;
      const properties = node['properties'] as Record<string, SchemaObject> | undefined;
      if (typeof key === 'string' && properties?.[key]) {
        node = properties[key];
      } else if (typeof key === 'string' && isSchema(node['additionalProperties'])) {
        node = node['additionalProperties'];
      } else {
        problems.push({ path: path.slice(0, i + 1), rule: unknownKeyRule(String(key), path.slice(0, i), node), whole: false });
        node = undefined;
      }
    }
  }
  return dedupe(problems);
}

/** `container.env.API_TOKEN`, `init[1]`: a key path as messages show it. */
export function formatPath(path: KeyPath): string {
  let text = '';
  for (const segment of path) text += typeof segment === 'number' ? `[${segment}]` : text === '' ? segment : `.${segment}`;
  return text;
}

/** True for container.env, its values and its parents: values there may be secrets and are never echoed. */
export function mayHoldSecret(path: KeyPath): boolean {
  if (path[0] !== 'container') return false;
  return path.length === 1 || path[1] === 'env';
}

/** "(got …)" for a value, or '' when it is not worth showing. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return `(got ${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)})`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return `(got ${String(value)})`;
  if (Array.isArray(value)) return '(got a list)';
  if (typeof value === 'object') return '(got a mapping)';
  return '';
}

function toProblem(error: ErrorObject, data: unknown): Problem | undefined {
  const base = pointerToPath(error.instancePath, data);
  const parent: SchemaObject = isSchema(error.parentSchema) ? error.parentSchema : {};
  const annotated = typeof parent['x-rule'] === 'string' ? (parent['x-rule'] as string) : undefined;
  const blame = typeof parent['x-blame'] === 'string' ? (parent['x-blame'] as string).split(' ').map((key) => key.split('.')) : undefined;
  const crossField = error.schemaPath.includes('/then/');
  const params = error.params as Record<string, unknown>;
  const withBlame = (problem: Problem): Problem => (blame ? { ...problem, blame } : problem);

  switch (error.keyword) {
    case 'if':
    case 'propertyNames':
      // Summaries of errors that are reported on their own, with more detail.
      return undefined;
    case 'additionalProperties': {
      const key = String(params['additionalProperty']);
      return { path: [...base, key], rule: unknownKeyRule(key, base, parent), whole: false };
    }
    case 'required': {
      const key = String(params['missingProperty']);
      const rule = annotated ?? (base.length > 0 ? `is required when ${formatPath(base)} is set` : 'is required');
      return withBlame({ path: [...base, key], rule, whole: true });
    }
  }
  // propertyNames failures: the offending key is the subject; the key itself is the value.
  if (error.propertyName !== undefined) {
    return { path: [...base, error.propertyName], rule: annotated ?? 'is not an allowed key name', whole: false };
  }
  // A list's own rule describes its shape; its length and uniqueness get their own words, except in cross-field rules.
  const listRule = (error.keyword === 'uniqueItems' || error.keyword === 'minItems') && !crossField;
  // A duration too long to wait for is well formed: say what is wrong with it rather than show its shape.
  const tooLong = error.keyword === 'format' && params['format'] === 'gkube-duration' && typeof error.data === 'string' && durationRule(error.data) === tooLongRule;
  const rule = tooLong ? tooLongRule : listRule ? genericRule(error) : (annotated ?? genericRule(error));
  const problem: Problem = { path: base, rule, whole: crossField };
  const showValue = !crossField && (error.keyword === 'type' || isScalar(error.data));
  if (showValue) problem.got = { value: error.data };
  // YAML and --set read 8080 and true as a number and a boolean; a string needs quotes.
  const freeText = parent['pattern'] === undefined && parent['format'] === undefined;
  if (error.keyword === 'type' && params['type'] === 'string' && freeText && (typeof error.data === 'number' || typeof error.data === 'boolean')) {
    problem.hint = 'put the value in quotes ("8080", "true") to make it a string';
  }
  return withBlame(problem);
}

function genericRule(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'type':
      return `must be ${typePhrase(String(params['type']))}`;
    case 'enum':
      return `must be ${orList((params['allowedValues'] as unknown[]).map(String))}`;
    case 'const':
      return `must be ${String(params['allowedValue'])}`;
    case 'minimum':
      return `must be at least ${String(params['limit'])}`;
    case 'maximum':
      return `must be at most ${String(params['limit'])}`;
    case 'minLength':
      return params['limit'] === 1 ? 'must not be empty' : `must be at least ${String(params['limit'])} characters`;
    case 'maxLength':
      return `must be at most ${String(params['limit'])} characters`;
    case 'minItems':
      return params['limit'] === 1 ? 'must list at least one item' : `must list at least ${String(params['limit'])} items`;
    case 'uniqueItems':
      return 'must not list the same item twice';
    default:
      return 'is not valid here';
  }
}

function typePhrase(type: string): string {
  const phrases: Record<string, string> = {
    string: 'a string',
    integer: 'an integer',
    number: 'a number',
    boolean: 'true or false',
    array: 'a list',
    object: 'a mapping',
    null: 'null',
  };
  return type
    .split(',')
    .map((t) => phrases[t] ?? t)
    .join(' or ');
}

function orList(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]!}`;
}

// ---- unknown keys and their near misses ----

let knownPaths: string[] | undefined;

/** True when the schema defines this key path (`container.port`, `storage.glusterfs`); container.env's own keys are free-form and not known. */
export function isKnownPath(path: readonly string[]): boolean {
  return allKnownPaths().includes(path.join('.'));
}

/** Every key path the schema defines (container.env's keys are free-form and not listed). */
function allKnownPaths(): string[] {
  if (!knownPaths) {
    const found: string[] = [];
    const walk = (node: SchemaObject, prefix: string): void => {
      const properties = node['properties'] as Record<string, SchemaObject> | undefined;
      for (const [key, child] of Object.entries(properties ?? {})) {
        const path = prefix ? `${prefix}.${key}` : key;
        found.push(path);
        walk(child, path);
      }
    };
    walk(configSchema, '');
    knownPaths = found;
  }
  return knownPaths;
}

function unknownKeyRule(key: string, parentPath: KeyPath, parentSchema: SchemaObject | undefined): string {
  const siblings = Object.keys((parentSchema?.['properties'] as Record<string, unknown> | undefined) ?? {});
  const near = nearest(key, siblings);
  if (near) return `unknown key (did you mean ${near}?)`;
  // A key put at the wrong level: `port` at the top means container.port.
  const parentText = formatPath(parentPath);
  const elsewhere = allKnownPaths().filter((p) => {
    const last = p.slice(p.lastIndexOf('.') + 1);
    return last.toLowerCase() === key.toLowerCase() && p !== (parentText ? `${parentText}.${key}` : key);
  });
  if (elsewhere.length > 0) return `unknown key here (did you mean ${orList(elsewhere)}?)`;
  if (siblings.length > 0 && siblings.length <= 12) return `unknown key (known keys here: ${siblings.join(', ')})`;
  return 'unknown key';
}

/** The candidate closest to `word` by edit distance (case-insensitive), if it is close enough to be a typo. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps each cost 1. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) value = Math.min(value, d[i - 2]![j - 2]! + 1);
      d[i]![j] = value;
    }
  }
  return d[a.length]![b.length]!;
}

// ---- helpers ----

/** ajv's JSON pointer (`/init/1`) as a key path (`['init', 1]`), telling list indexes from keys by the data. */
function pointerToPath(pointer: string, data: unknown): KeyPath {
  if (pointer === '') return [];
  const path: KeyPath = [];
  let node: unknown = data;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) {
      const index = Number(key);
      path.push(index);
      node = node[index];
    } else {
      path.push(key);
      node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined;
    }
  }
  return path;
}

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = formatPath(p.path);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function isSchema(value: unknown): value is SchemaObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isScalar(value: unknown): boolean {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value);
}

const quantityScale: Record<string, number> = {
  n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** A Kubernetes quantity (`500m`, `1.5Gi`, `2e3`) as a number, or undefined when it is none (the schema says why). */
function quantityValue(quantity: string | number): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:([KMGTPE]i|[numkMGTPE])|[eE]([-+]?[0-9]+))?$/.exec(String(quantity));
  if (!m) return undefined;
  return Number(m[1]) * (m[3] !== undefined ? 10 ** Number(m[3]) : quantityScale[m[2] ?? '']!);
}

/**
 * Requests above limits, which the API server refuses when the pod is created (after gkube made the storage):
 * refused here, naming both keys, before anything is made.
 */
export function resourceProblems(config: { container?: { resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> } } }): Problem[] {
  const { requests = {}, limits = {} } = config.container?.resources ?? {};
  const problems: Problem[] = [];
  for (const [name, request] of Object.entries(requests)) {
    const limit = limits[name];
    if (limit === undefined) continue;
    const [r, l] = [quantityValue(request), quantityValue(limit)];
    if (r === undefined || l === undefined || r <= l) continue;
    const path: KeyPath = ['container', 'resources', 'requests', name];
    problems.push({ path, rule: `must be at most container.resources.limits.${name} (${String(limit)})`, got: { value: request }, blame: [path, ['container', 'resources', 'limits', name]], whole: true });
  }
  return problems;
}
