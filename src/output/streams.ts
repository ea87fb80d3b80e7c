/** The streams and terminal facts every command writes through; injected so tests can capture them. */
export interface OutputStreams {
  stdout: { write(chunk: string): unknown; isTTY?: boolean };
  stderr: { write(chunk: string): unknown; isTTY?: boolean };
}

/** Whether human output may use colour and redraws: only on a TTY, and never with --no-color or NO_COLOR. */
export function useColor(stream: { isTTY?: boolean }, noColorFlag: boolean, env: Record<string, string | undefined>): boolean {
  return Boolean(stream.isTTY) && !noColorFlag && env['NO_COLOR'] === undefined;
}
