import { GkubeError, ExitCode, type ExitCodeValue } from '../errors.js';
import { redact } from './redact.js';
import type { OutputStreams } from './streams.js';

/** Prints an error as `error: <message>` (+ `hint: …`) with secrets masked, and returns the exit code to set. */
export function reportError(err: unknown, streams: OutputStreams, verbose: boolean): ExitCodeValue {
  if (err instanceof GkubeError) {
    streams.stderr.write(`error: ${redact(err.message)}\n`);
    if (err.hint) streams.stderr.write(`hint: ${redact(err.hint)}\n`);
    if (verbose && err.cause instanceof Error) streams.stderr.write(`cause: ${redact(err.cause.stack ?? err.cause.message)}\n`);
    return err.exitCode;
  }
  // Anything else is a bug in gkube: say so plainly rather than dress it up.
  const message = err instanceof Error ? err.message : String(err);
  streams.stderr.write(`error: internal error: ${redact(message)}\n`);
  if (verbose && err instanceof Error && err.stack) streams.stderr.write(`${redact(err.stack)}\n`);
  else streams.stderr.write('hint: rerun with --verbose for the stack trace, and report it\n');
  return ExitCode.failed;
}
