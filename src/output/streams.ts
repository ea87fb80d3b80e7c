/** The streams and terminal facts every command writes through; injected so tests can capture them. */
export interface OutputStreams {
  stdout: { write(chunk: string): unknown; isTTY?: boolean };
  stderr: { write(chunk: string): unknown; isTTY?: boolean };
}
