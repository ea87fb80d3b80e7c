/** Exit codes of the command-line contract (see README "Exit codes"). */
export const ExitCode = {
  ok: 0,
  failed: 1,
  invalid: 2,
  busy: 3,
  unreachable: 4,
  inconsistent: 5,
  refused: 6,
  /** Stopped by SIGTERM (128 + 15), as a shell reports a terminated command. */
  aborted: 143,
} as const;

/** One of the documented exit codes. */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Stable machine-readable error codes; scripts may branch on these, never on message text. */
export type ErrorCode =
  | 'USAGE'
  | 'NOT_BUILT'
  | 'INVALID_INPUT'
  | 'INVALID_CONFIG'
  | 'JOB_NOT_FOUND'
  | 'OPERATION_FAILED'
  | 'WRITE_CONFLICT'
  | 'LOCK_LOST'
  | 'JOB_LOCKED'
  | 'DEPENDENCY_UNREACHABLE'
  | 'OUTCOME_UNKNOWN'
  | 'ABORTED'
  | 'INCONSISTENT_STATE'
  | 'REFUSED'
  | 'INTERNAL';

const exitCodeFor: Record<ErrorCode, ExitCodeValue> = {
  USAGE: ExitCode.invalid,
  NOT_BUILT: ExitCode.invalid,
  INVALID_INPUT: ExitCode.invalid,
  INVALID_CONFIG: ExitCode.invalid,
  JOB_NOT_FOUND: ExitCode.invalid,
  OPERATION_FAILED: ExitCode.failed,
  WRITE_CONFLICT: ExitCode.failed,
  LOCK_LOST: ExitCode.failed,
  JOB_LOCKED: ExitCode.busy,
  DEPENDENCY_UNREACHABLE: ExitCode.unreachable,
  OUTCOME_UNKNOWN: ExitCode.unreachable,
  ABORTED: ExitCode.aborted,
  INCONSISTENT_STATE: ExitCode.inconsistent,
  REFUSED: ExitCode.refused,
  INTERNAL: ExitCode.failed,
};

/** Options of a GkubeError beyond its code and message. */
export interface GkubeErrorOptions {
  /** What the user can do about it, printed on its own line after the message. */
  hint?: string;
  /** The underlying error, kept for `--verbose`. */
  cause?: unknown;
}

/** The one error type gkube raises on purpose: a code, a one-line message, a hint and an exit code. */
export class GkubeError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly exitCode: ExitCodeValue;

  constructor(code: ErrorCode, message: string, options: GkubeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GkubeError';
    this.code = code;
    this.hint = options.hint;
    this.exitCode = exitCodeFor[code];
  }
}

/**
 * An error met in the middle of a change: an adapter's "nothing was changed" no longer holds, so the message
 * says what was changed instead, with what to do. The code (and so the exit code) stays.
 */
export function stoppedMidway(err: GkubeError, changed: string, hint: string): GkubeError {
  const message = `${err.message.replace(/; nothing was (changed|written)$/, '')}; ${changed}`;
  return new GkubeError(err.code, message, { hint: err.hint ? `${err.hint}; then ${hint}` : hint, cause: err });
}
