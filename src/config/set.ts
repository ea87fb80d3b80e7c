// `--set key.path=value`, as Helm reads it, with two deliberate differences: one assignment per
// --set (a comma is part of the value, never a separator, so `--set init=a, b` is one string),
// and an index is only allowed on the last key (`init[0]=x`), since no gkube key is a list of
// mappings.
//
// Values are YAML 1.2 core-schema scalars: `true`/`false` are booleans, `8080` and `0x1f` are
// numbers, `null`/`~` unsets the key (the layer below, or the default, applies), `"8080"` and
// `'on'` are strings, anything else is the text itself. `{a,b,c}` is a list of such scalars
// (`{}` is the empty list); inside it, `\,` or quotes keep a comma in one item, and items are
// trimmed.
import { parse as parseYaml } from 'yaml';
import { isKnownPath, mayHoldSecret } from './validate.js';
import { isSecretName } from '../output/redact.js';

/** A key path into gkube.yaml: mapping keys are strings, list indexes numbers. */
export type KeyPath = (string | number)[];

/** One well-formed --set: the key path, an optional list index on the last key, and the parsed value. */
export interface SetAssignment {
  /** How errors name it: `--set <key>=<value>`, with the value shown only for a known key that cannot hold a secret. */
  label: string;
  path: string[];
  /** `init[2]=x` sets item 2 of init (an index equal to the length appends). */
  index?: number;
  value: unknown;
}

/** A --set that cannot be read, with the one-line reason. */
export interface MalformedSet {
  label: string;
  rule: string;
}

const keyPath = /^([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)(?:\[([0-9]+)\])?$/;

/** Parses one --set value; returns the assignment or why it is malformed. */
export function parseSet(text: string): { ok: true; set: SetAssignment } | { ok: false; error: MalformedSet } {
  const eq = text.indexOf('=');
  if (eq < 0) {
    return { ok: false, error: { label: labelFor(text, undefined), rule: 'expected key.path=value (like --set container.port=8080)' } };
  }
  const key = text.slice(0, eq).trim();
  const raw = text.slice(eq + 1);
  const label = labelFor(key, raw);
  if (key === '') return { ok: false, error: { label, rule: 'the key before = is empty (expected key.path=value)' } };
  const match = keyPath.exec(key);
  if (!match) {
    return { ok: false, error: { label, rule: `"${key}" is not a key path like container.port or init[0]` } };
  }
  const index = match[2] === undefined ? undefined : Number(match[2]);
  if (index !== undefined && !Number.isSafeInteger(index)) return { ok: false, error: { label, rule: `[${match[2]}] is not a usable list index` } };
  const set: SetAssignment = { label, path: match[1]!.split('.'), value: parseSetValue(raw) };
  if (index !== undefined) set.index = index;
  return { ok: true, set };
}

/** Reads a --set value: a YAML core-schema scalar, or `{a,b}` for a list of them. */
export function parseSetValue(raw: string): unknown {
  if (raw.startsWith('{') && raw.endsWith('}')) {
    const inner = raw.slice(1, -1);
    if (inner.trim() === '') return [];
    return splitList(inner).map((item) => parseScalar(item.trim()));
  }
  return parseScalar(raw);
}

const nullText = /^(?:~|null|Null|NULL)$/;
const trueText = /^(?:true|True|TRUE)$/;
const falseText = /^(?:false|False|FALSE)$/;
const decimalInt = /^[-+]?[0-9]+$/;
const octalInt = /^0o[0-7]+$/;
const hexInt = /^0x[0-9a-fA-F]+$/;
const float = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;
const infinity = /^[-+]?\.(?:inf|Inf|INF)$/;
const notANumber = /^\.(?:nan|NaN|NAN)$/;

/** One scalar by the YAML 1.2 core schema (the schema gkube.yaml itself is read with). */
function parseScalar(text: string): unknown {
  if (text === '') return '';
  const quoted = (text.startsWith('"') && text.endsWith('"')) || (text.startsWith("'") && text.endsWith("'"));
  if (quoted && text.length >= 2) {
    try {
      const value: unknown = parseYaml(text, { logLevel: 'error' });
      if (typeof value === 'string') return value;
    } catch {
      // Not a valid YAML quoted scalar (an unescaped quote inside, say): keep the text as it is.
    }
    return text;
  }
  if (nullText.test(text)) return null;
  if (trueText.test(text)) return true;
  if (falseText.test(text)) return false;
  if (decimalInt.test(text)) return Number(text);
  if (octalInt.test(text)) return parseInt(text.slice(2), 8);
  if (hexInt.test(text)) return parseInt(text.slice(2), 16);
  if (float.test(text)) return Number(text);
  if (infinity.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  if (notANumber.test(text)) return NaN;
  return text;
}

/** Splits list items on commas outside quotes; `\,` is a literal comma. */
function splitList(inner: string): string[] {
  const items: string[] = [];
  let current = '';
  let quote: string | undefined;
  for (let i = 0; i < inner.length; i++) {
    const ch = inner[i]!;
    if (ch === '\\' && inner[i + 1] === ',' && quote === undefined) {
      current += ',';
      i++;
    } else if (quote !== undefined) {
      if (ch === quote) quote = undefined;
      current += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      current += ch;
    } else if (ch === ',') {
      items.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  items.push(current);
  return items;
}

/**
 * How errors name a --set: the key path always, the value only when the key is one the schema
 * defines and it cannot hold a secret (`--set container.port=80`). Anything else, a typo
 * (`containr.env.API_TOKEN`, `Container.env.X`) included, shows `***` for the value: a typo is
 * exactly where a secret meant for container.env ends up.
 */
function labelFor(key: string, raw: string | undefined): string {
  const k = key.trim();
  if (raw === undefined) {
    // No `=`: where the key ends and a value begins is unknown. Show the text only when it is a plain
    // key path; else the longest key path it starts with.
    if (showsValue(k)) return `--set ${k}`;
    const known = knownPrefix(k);
    return known ? `--set ${known}… (value hidden)` : '--set … (value hidden)';
  }
  return showsValue(k) ? `--set ${k}=${raw}` : `--set ${k}=***`;
}

/** True when a value set at `key` may be shown in an error: a key the schema defines, not container.env (or what holds it), not secret-named. */
function showsValue(key: string): boolean {
  const match = keyPath.exec(key);
  if (!match) return false;
  const path = match[1]!.split('.');
  return isKnownPath(path) && !mayHoldSecret(path) && !isSecretName(path[path.length - 1]!);
}

/** The longest key path the schema defines that `text` starts with, segment by segment (`container.env` of `container.env.X:y`). */
function knownPrefix(text: string): string | undefined {
  const segments: string[] = [];
  let longest: string | undefined;
  for (const segment of text.split('.')) {
    if (!/^[A-Za-z0-9_-]+$/.test(segment)) break;
    segments.push(segment);
    if (isKnownPath(segments)) longest = segments.join('.');
  }
  return longest;
}
