import { describe, expect, test } from '@jest/globals';
import { GkubeError } from '../../src/errors.js';
import { formatDuration, isPositiveDuration, parseDuration } from '../../src/config/index.js';
import { durationRule, maxDurationMs, tooLongRule } from '../../src/config/duration.js';

/** The GkubeError parseDuration throws, or a failure if it returns. */
function refusal(run: () => unknown): GkubeError {
  try {
    run();
  } catch (err) {
    if (err instanceof GkubeError) return err;
    throw err;
  }
  throw new Error('expected a GkubeError');
}

describe('parseDuration accepts Go durations plus d', () => {
  test.each([
    ['90s', 90_000],
    ['10m', 600_000],
    ['1h30m', 5_400_000],
    ['8h', 28_800_000],
    ['2d', 172_800_000],
    ['1d12h', 129_600_000],
    ['1.5h', 5_400_000],
    ['.5s', 500],
    ['1.1s', 1_100],
    ['250ms', 250],
    ['1500us', 1.5],
    ['1500µs', 1.5], // micro sign
    ['1500μs', 1.5], // Greek mu
    ['2000000ns', 2],
    ['1h1m1s1ms', 3_661_001],
    ['24d', 2_073_600_000], // the longest accepted, below the 2^31-1 ms a Node timer can wait
    ['576h', 2_073_600_000],
    [' 5m ', 300_000],
  ])('%s → %d ms', (text, ms) => {
    expect(parseDuration(text, '--timeout')).toBe(ms);
  });

  test('zero only when allowed', () => {
    expect(parseDuration('0', '--stale', { allowZero: true })).toBe(0);
    expect(parseDuration('0s', '--stale', { allowZero: true })).toBe(0);
    expect(parseDuration('0h0m', '--stale', { allowZero: true })).toBe(0);
  });
});

describe('parseDuration refuses with one line naming the field and the rule', () => {
  test.each([
    ['-5m', {}, '--wait-lock: "-5m" is not a positive duration (like 90s, 10m, 1h30m)'],
    ['0', {}, '--wait-lock: "0" is not a positive duration (like 90s, 10m, 1h30m)'],
    ['0s', {}, '--wait-lock: "0s" is not a positive duration (like 90s, 10m, 1h30m)'],
    ['0m0s', {}, '--wait-lock: "0m0s" is not a positive duration (like 90s, 10m, 1h30m)'],
    ['-5m', { allowZero: true }, '--wait-lock: "-5m" is not a duration of zero or more (like 90s, 10m, 1h30m)'],
    ['', {}, '--wait-lock: "" is not a duration (like 90s, 10m, 1h30m)'],
    ['   ', {}, '--wait-lock: "" is not a duration (like 90s, 10m, 1h30m)'],
    ['90', {}, '--wait-lock: "90" has no unit (like 90s, 10m, 1h30m)'],
    ['1h30', {}, '--wait-lock: "1h30" has a number without a unit (like 90s, 10m, 1h30m)'],
    ['soon', {}, '--wait-lock: "soon" is not a duration (like 90s, 10m, 1h30m; units ns, us, ms, s, m, h, d)'],
    ['10M', {}, '--wait-lock: "10M" is not a duration (like 90s, 10m, 1h30m; units ns, us, ms, s, m, h, d)'],
    ['1h 30m', {}, '--wait-lock: "1h 30m" is not a duration (like 90s, 10m, 1h30m; units ns, us, ms, s, m, h, d)'],
    ['+5m', {}, '--wait-lock: "+5m" is not a duration (like 90s, 10m, 1h30m; units ns, us, ms, s, m, h, d)'],
    ['1w', {}, '--wait-lock: "1w" is not a duration (like 90s, 10m, 1h30m; units ns, us, ms, s, m, h, d)'],
    ['99999999999999999999h', {}, '--wait-lock: "99999999999999999999h" is longer than 24d, the longest duration gkube can wait'],
    ['30d', {}, '--wait-lock: "30d" is longer than 24d, the longest duration gkube can wait'],
    ['30d', { allowZero: true }, '--wait-lock: "30d" is longer than 24d, the longest duration gkube can wait'],
    ['24d1ms', {}, '--wait-lock: "24d1ms" is longer than 24d, the longest duration gkube can wait'],
    ['577h', {}, '--wait-lock: "577h" is longer than 24d, the longest duration gkube can wait'],
    ['2147483648ms', {}, '--wait-lock: "2147483648ms" is longer than 24d, the longest duration gkube can wait'],
  ])('%j %j', (text, options, message) => {
    const err = refusal(() => parseDuration(text, '--wait-lock', options));
    expect(err.message).toBe(message);
    expect(err.code).toBe('INVALID_INPUT');
    expect(err.exitCode).toBe(2);
  });

  test('the caller chooses the error code', () => {
    const err = refusal(() => parseDuration('soon', 'ttl', { code: 'INVALID_CONFIG' }));
    expect(err.code).toBe('INVALID_CONFIG');
    expect(err.exitCode).toBe(2);
  });

  test('a long value is cut in the message', () => {
    const err = refusal(() => parseDuration('x'.repeat(500), '--ttl'));
    expect(err.message).toBe(`--ttl: "${'x'.repeat(40)}…" is not a duration (like 90s, 10m, 1h30m; units ns, us, ms, s, m, h, d)`);
  });

  test.each([
    ['90s', true],
    ['0s', false],
    ['-1s', false],
    ['x', false],
    ['24d', true],
    ['25d', false],
  ])('isPositiveDuration(%j) is %s', (text, expected) => {
    expect(isPositiveDuration(text)).toBe(expected);
  });
});

describe('the longest duration', () => {
  test('is below what a Node timer can wait (2^31-1 ms)', () => {
    expect(maxDurationMs).toBe(24 * 86_400_000);
    expect(maxDurationMs).toBeLessThanOrEqual(2 ** 31 - 1);
  });

  test.each([
    ['30d', tooLongRule],
    ['24d', undefined],
    ['0s', 'is not a positive duration (like 90s, 10m, 1h30m)'],
  ])('durationRule(%j) is %j', (text, rule) => {
    expect(durationRule(text)).toBe(rule);
  });
});

describe('formatDuration', () => {
  test.each([
    [0, '0s'],
    [250, '250ms'],
    [1.5, '1.5ms'],
    [1_500, '1.5s'],
    [90_000, '1m30s'],
    [600_000, '10m'],
    [5_400_000, '1h30m'],
    [28_800_000, '8h'],
    [86_400_000, '1d'],
    [93_784_005, '1d2h3m4.005s'],
    [-90_000, '-1m30s'],
  ])('%d ms → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  test.each([1, 999, 1_000, 61_001, 3_600_000, 90_061_001, 7 * 86_400_000])('parseDuration(formatDuration(%d)) round-trips', (ms) => {
    expect(parseDuration(formatDuration(ms), 'x')).toBe(ms);
  });
});
