/** Where actions get the time from, so that tests and cleanup cut-offs can control it. */
export interface Clock {
  now(): Date;
}

/** The real clock. */
export const systemClock: Clock = { now: () => new Date() };

/** RFC 3339 UTC with seconds, as records store times. */
export function timestamp(clock: Clock): string {
  return clock.now().toISOString().replace(/\.\d{3}Z$/, 'Z');
}
