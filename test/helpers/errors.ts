// Shared by the suites: the GkubeError an operation fails with.
import { GkubeError } from '../../src/errors.js';

/** Awaits `promise`, which must reject with a GkubeError, and returns that error (anything else fails the test). */
export async function gkubeErrorOf(promise: Promise<unknown>): Promise<GkubeError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof GkubeError) return err;
    throw err;
  }
  throw new Error('expected a GkubeError, got a result');
}

/** Runs `fn`, which must throw a GkubeError, and returns that error. */
export function gkubeErrorFrom(fn: () => unknown): GkubeError {
  try {
    fn();
  } catch (err) {
    if (err instanceof GkubeError) return err;
    throw err;
  }
  throw new Error('expected a GkubeError, got a result');
}
