// The exec subresource's WebSocket channel protocol (channel.k8s.io, v2–v5), served over an upgraded
// `ws` socket for a process the kubelet started in a container.
//
// Every binary message starts with its channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error/status,
// 4 resize. v5 adds a client frame [255, channel] that closes that stream (half-close of stdin).
// The server never sends channel 255 (client-node crashes on it). On exit, v4 and v5 send one
// metav1.Status JSON on channel 3; v1–v3 send only a failure's text there. Then a normal close.
//
// Status wording, as Kubernetes 1.31 produces it:
// - v5 goes through the API server's stream translator, whose non-zero status wraps client-go's
//   exit error: "command terminated with non-zero exit code: command terminated with exit code N".
// - v4 and older reach the runtime's streaming server (containerd), whose exit error reads
//   "command terminated with non-zero exit code: error executing command [cmd args], exit code N".
// - A process that cannot start (executable missing) is an InternalError status:
//   "Internal error occurred: error executing command in container: failed to exec in container: …".
import type { ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { WebSocket } from 'ws';

const stdinChannel = 0;
const stdoutChannel = 1;
const stderrChannel = 2;
const errorChannel = 3;
const resizeChannel = 4;
const closeChannel = 255;

/** High and low water marks for output waiting in the socket (back-pressure on the process). */
const outputHighWater = 1 << 20;
const outputLowWater = 256 << 10;

/** Whether the negotiated subprotocol carries a JSON status on channel 3 (v4 and v5). */
function jsonStatus(protocol: string): boolean {
  return protocol === 'v4.channel.k8s.io' || protocol === 'v5.channel.k8s.io';
}

/** The metav1.Status a finished exec reports for `exitCode` under `protocol`. */
export function exitStatus(protocol: string, command: string[], exitCode: number): Record<string, unknown> {
  if (exitCode === 0) return { metadata: {}, status: 'Success' };
  const inner = protocol === 'v5.channel.k8s.io' ? `command terminated with exit code ${exitCode}` : `error executing command [${command.join(' ')}], exit code ${exitCode}`;
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: ${inner}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  };
}

/** An InternalError status, as the API server wraps errors on the exec stream. */
export function internalErrorStatus(inner: string): Record<string, unknown> {
  return {
    metadata: {},
    status: 'Failure',
    message: `Internal error occurred: ${inner}`,
    reason: 'InternalError',
    details: { causes: [{ message: inner }] },
    code: 500,
  };
}

/** A status for an error the API server reports with `code`/`reason` (BadRequest, NotFound…). */
export function errorStatus(code: number, reason: string, message: string, details?: Record<string, unknown>): Record<string, unknown> {
  return { metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

/** Sends `status` on channel 3 as the protocol wants it, then closes the socket normally. */
export function sendStatusAndClose(socket: WebSocket, protocol: string, status: Record<string, unknown>): void {
  if (socket.readyState !== socket.OPEN) return;
  // A socket paused for stdin back-pressure could not read the client's close frame.
  if (socket.isPaused) socket.resume();
  if (jsonStatus(protocol)) socket.send(frame(errorChannel, Buffer.from(JSON.stringify(status))));
  else if (status['status'] !== 'Success') socket.send(frame(errorChannel, Buffer.from(String(status['message'] ?? ''))));
  socket.close(1000);
}

function frame(channel: number, data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(data.length + 1);
  out[0] = channel;
  data.copy(out, 1);
  return out;
}

/** What serveExec needs to know about one session. */
export interface ExecSession {
  socket: WebSocket;
  protocol: string;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
  /** The command as requested (for the v4 exit message). */
  command: string[];
  /** The process, started in the container; its fd 3 says 'started' or why it could not start. */
  child: ChildProcess;
  /** Resolves with the process's start line ('started' or the reason it could not exec). */
  started: Promise<string>;
  /** The container's id, for the start-failure message. */
  containerId: string;
  /** Fault injection: destroy the socket after this many stdin+stdout+stderr payload bytes. */
  cutAfterBytes?: number;
}

/** Bridges the socket and the process until the process ends; resolves when the session is over. */
export function serveExec(session: ExecSession): Promise<void> {
  const { socket, protocol, child } = session;
  const v5 = protocol === 'v5.channel.k8s.io';
  let passed = 0;
  let cut = false;
  let socketOpen = socket.readyState === socket.OPEN;
  const stdin = child.stdin!;
  let stdinOpen = session.stdin;
  if (!session.stdin) stdin.end();

  const count = (n: number): void => {
    passed += n;
    if (session.cutAfterBytes !== undefined && !cut && passed >= session.cutAfterBytes) {
      cut = true;
      socketOpen = false;
      socket.terminate();
      onSocketGone();
    }
  };

  const closeStdin = (): void => {
    if (!stdinOpen) return;
    stdinOpen = false;
    stdin.end();
    if (socketOpen && socket.isPaused) socket.resume();
  };

  const outputs = [child.stdout!, child.stderr!];
  const resumeOutputs = (): void => {
    for (const o of outputs) if (o.isPaused()) o.resume();
  };

  function onSocketGone(): void {
    socketOpen = false;
    // The client is gone: the process sees end of input; its output goes nowhere, as with a broken stream.
    closeStdin();
    resumeOutputs();
  }

  // Tell the client the streams are ready, as the API server does: an empty frame on the lowest writable channel.
  if (socketOpen) socket.send(frame(session.stdout ? stdoutChannel : session.stderr ? stderrChannel : errorChannel, Buffer.alloc(0)));

  socket.on('message', (raw: Buffer | ArrayBuffer | Buffer[]) => {
    const data = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
    if (data.length === 0) return;
    const channel = data[0];
    if (channel === stdinChannel) {
      if (!stdinOpen) return;
      const payload = data.subarray(1);
      if (payload.length === 0) return;
      const ok = stdin.write(payload);
      count(payload.length);
      if (!ok && socketOpen) {
        socket.pause();
        stdin.once('drain', () => {
          if (socketOpen) socket.resume();
        });
      }
    } else if (channel === closeChannel && v5) {
      if (data[1] === stdinChannel) closeStdin();
    } else if (channel === resizeChannel) {
      // Terminal size: the emulator has no terminals.
    }
  });
  socket.on('close', onSocketGone);
  socket.on('error', onSocketGone);

  const forward = (channel: number) => (chunk: Buffer) => {
    if (!socketOpen) return;
    socket.send(frame(channel, chunk), () => {
      if (socket.bufferedAmount < outputLowWater) resumeOutputs();
    });
    count(chunk.length);
    if (socketOpen && socket.bufferedAmount > outputHighWater) for (const o of outputs) o.pause();
  };
  const outChannel = session.stdout ? stdoutChannel : undefined;
  const errChannel = session.tty ? outChannel : session.stderr ? stderrChannel : undefined;
  if (outChannel !== undefined) child.stdout!.on('data', forward(outChannel));
  else child.stdout!.resume();
  if (errChannel !== undefined) child.stderr!.on('data', forward(errChannel));
  else child.stderr!.resume();

  return new Promise((done) => {
    child.once('close', (code, signal) => {
      void session.started.then((line) => {
        if (socketOpen) {
          let status: Record<string, unknown>;
          if (line !== 'started') {
            const why = line || `process exited before it started (code ${code ?? signal})`;
            status = internalErrorStatus(
              `error executing command in container: failed to exec in container: failed to start exec "${session.containerId}": OCI runtime exec failed: exec failed: unable to start container process: ${why}: unknown`,
            );
          } else {
            const exitCode = code ?? 128 + signalNumber(signal);
            status = exitStatus(protocol, session.command, exitCode);
          }
          sendStatusAndClose(socket, protocol, status);
        }
        done();
      });
    });
  });
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal ? (osConstants.signals[signal] ?? 0) : 0;
}
