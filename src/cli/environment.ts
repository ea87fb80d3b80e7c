import type { OutputStreams } from '../output/streams.js';

/** Everything the command line reads from the outside world; `process` is touched only in entry.ts. */
export interface CliEnvironment extends OutputStreams {
  env: Record<string, string | undefined>;
  /** The working directory (a Jenkins workspace), where gkube.yaml is looked for. */
  cwd: string;
  /** Fires on SIGTERM/SIGINT: long commands stop at their next safe point. */
  signal?: AbortSignal;
}
