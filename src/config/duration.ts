// Durations as Go writes them (`90s`, `10m`, `1h30m`, `1.5h`) plus `d` for days, since TTLs of
// ad-hoc environments are naturally counted in days. Units: ns, us (also µs), ms, s, m, h, d.
// A bare `0` is accepted as zero, as in Go; any other number needs a unit. Signs are refused:
// no gkube setting wants a negative time. Nothing longer than 24 days is accepted: Node's timers
// hold at most 2^31-1 ms (about 24.8 days) and fire a longer delay after 1 ms, so a longer wait
// would become a tight loop and a longer deadline would pass at once.
import { GkubeError } from '../errors.js';

/** Options of parseDuration: whether zero is acceptable and which error code a refusal carries. */
export interface DurationOptions {
  /** Accept `0`/`0s` (default false: the duration must be positive). */
  allowZero?: boolean;
  /** `INVALID_INPUT` for flags (the default), `INVALID_CONFIG` for gkube.yaml values. */
  code?: 'INVALID_INPUT' | 'INVALID_CONFIG';
}

const msPer: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  '\u00b5s': 1e-3, // micro sign, as Go accepts
  '\u03bcs': 1e-3, // Greek small letter mu, as Go accepts
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** The longest duration gkube accepts, 24 days in milliseconds: below the 2^31-1 ms a Node timer can wait. */
export const maxDurationMs = 24 * 86_400_000;

/** The rule a duration longer than maxDurationMs breaks, as errors word it after the value. */
export const tooLongRule = 'is longer than 24d, the longest duration gkube can wait';

const examples = 'like 90s, 10m, 1h30m';
// Longer units first inside the alternation so that `ms` is not read as `m` followed by garbage.
const term = /([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h|d)/y;
const numberOnly = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/;

/** Parses a duration such as `90s`, `10m`, `1h30m` or `2d` into milliseconds; refuses empty, negative, zero (unless allowed), longer than 24d and garbage with a GkubeError naming the field. */
export function parseDuration(text: string, field: string, options: DurationOptions = {}): number {
  const read = readDuration(text, options.allowZero ?? false);
  if ('rule' in read) throw new GkubeError(options.code ?? 'INVALID_INPUT', `${field}: ${quote(text.trim())} ${read.rule}`);
  return read.ms;
}

/** True when `text` is a duration parseDuration accepts as positive (so at most 24d); for validators that must not throw. */
export function isPositiveDuration(text: string): boolean {
  return durationRule(text) === undefined;
}

/** Why parseDuration refuses `text` as a positive duration (the rule its error gives after the value, like tooLongRule), or undefined when it accepts it. */
export function durationRule(text: string): string | undefined {
  const read = readDuration(text, false);
  return 'rule' in read ? read.rule : undefined;
}

/** The milliseconds `text` stands for, or the rule it breaks. */
function readDuration(text: string, allowZero: boolean): { ms: number } | { rule: string } {
  const kind = allowZero ? 'a duration of zero or more' : 'a positive duration';
  const trimmed = text.trim();

  if (trimmed === '') return { rule: `is not a duration (${examples})` };
  if (trimmed.startsWith('-')) return { rule: `is not ${kind} (${examples})` };
  if (/^0+(?:\.0*)?$/.test(trimmed)) return allowZero ? { ms: 0 } : { rule: `is not ${kind} (${examples})` };
  if (numberOnly.test(trimmed)) return { rule: `has no unit (${examples})` };

  let total = 0;
  term.lastIndex = 0;
  while (term.lastIndex < trimmed.length) {
    const start = term.lastIndex;
    const match = term.exec(trimmed);
    if (!match) {
      const rest = trimmed.slice(start);
      return { rule: numberOnly.test(rest) ? `has a number without a unit (${examples})` : `is not a duration (${examples}; units ns, us, ms, s, m, h, d)` };
    }
    total += Number(match[1]) * msPer[match[2]!]!;
  }
  // Round away float noise (1.1s → 1100.0000000000002) at nanosecond precision.
  total = Math.round(total * 1e6) / 1e6;
  // `!(… <= …)` also refuses a total that overflowed to Infinity.
  if (!(total <= maxDurationMs)) return { rule: tooLongRule };
  if (total === 0 && !allowZero) return { rule: `is not ${kind} (${examples})` };
  return { ms: total };
}

/** Formats milliseconds compactly in the units parseDuration reads: `1h30m`, `2d4h`, `1.5s`, `250ms`, `0s`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms === 0) return '0s';
  if (ms < 1_000) return `${decimal(ms)}ms`;
  let rest = ms;
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000]] as const) {
    const count = Math.floor(rest / size);
    if (count > 0) parts.push(`${count}${unit}`);
    rest -= count * size;
  }
  if (rest > 0) parts.push(`${decimal(rest / 1_000)}s`);
  return parts.join('');
}

/** Up to three decimals, without trailing zeros. */
function decimal(n: number): string {
  return String(Math.round(n * 1_000) / 1_000);
}

function quote(text: string): string {
  const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
  return JSON.stringify(shown);
}
