// Running a command in a pod's container over the exec subresource (client-node's Exec, WebSocket channel
// protocol), with the semantics gkube relies on:
// - the exit status is always read from the status channel (3): Success is 0, NonZeroExitCode carries the
//   code in its ExitCode cause; any other Failure (the command could not start…) is an error;
// - a stream that closes without a status frame is a failure, never a success;
// - client-node's Exec.exec() resolves when the socket opens, so the outcome is awaited separately;
// - stdin is streamed by this module (client-node's own stdin pump ignores back-pressure) and then
//   half-closed with the v5 close frame [255, 0]; stdin therefore needs v5.channel.k8s.io (Kubernetes
//   1.30+), because with v4 the only way to end stdin is closing the socket, which loses the status;
// - a deadline covers the whole call: when it passes the socket is destroyed and the call fails;
// - stdout and stderr keep only their last maxOutputBytes (a tail), so a chatty command cannot
//   exhaust memory.
import { PassThrough, Writable, type Readable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { GkubeError } from '../errors.js';

/** One command to run in a container. */
export interface ExecRequest {
  namespace: string;
  pod: string;
  container: string;
  /** argv; no shell is involved unless the command is one (`['sh', '-c', script, 'sh', ...args]`). */
  command: string[];
  /**
   * Fed to the command's stdin and then closed; without it the command's stdin is closed at once. A stream is
   * destroyed when the call settles, so a producer stops when the command ended early or the call failed.
   */
  stdin?: Readable | Buffer;
  /** Deadline of the whole call (connect, stdin, run); the stream is destroyed when it passes. */
  timeoutMs: number;
  /** How much of the end of stdout and of stderr is kept; 64 KiB by default. */
  maxOutputBytes?: number;
}

/** How the command ended, with the tails of its output. */
export interface ExecResult {
  exitCode: number;
  /** The last maxOutputBytes of stdout, as UTF-8. */
  stdout: string;
  /** The last maxOutputBytes of stderr, as UTF-8. */
  stderr: string;
  /** True when stdout was longer than maxOutputBytes (its beginning was dropped). */
  stdoutTruncated: boolean;
  /** True when stderr was longer than maxOutputBytes (its beginning was dropped). */
  stderrTruncated: boolean;
}

/** Runs commands in pods: the port the rest of gkube uses (tests may pass any function of this shape). */
export type PodExec = (request: ExecRequest) => Promise<ExecResult>;

/** The default tail kept of stdout and of stderr. */
export const defaultMaxOutputBytes = 64 * 1024;

const v5Protocol = 'v5.channel.k8s.io';
const v4Protocol = 'v4.channel.k8s.io';
const stdinChannel = 0;
const closeChannel = 255;
/** Largest stdin payload per WebSocket frame. */
const maxFramePayload = 64 * 1024;
/** Stdin waits while more than this is queued in the socket (back-pressure from the pod's process). */
const stdinHighWater = 1024 * 1024;

type ExecSocket = Awaited<ReturnType<k8s.Exec['exec']>>;

/** Loads a kubeconfig file (or the in-cluster configuration) and returns an exec port over it; no request is made yet. */
export function kubeExecFrom(kubeconfigFile: string | undefined, context: string | undefined): PodExec {
  const config = new k8s.KubeConfig();
  try {
    if (kubeconfigFile) config.loadFromFile(kubeconfigFile);
    else config.loadFromCluster();
    if (context) config.setCurrentContext(context);
  } catch (err) {
    throw new GkubeError('INVALID_CONFIG', `kubeconfig ${kubeconfigFile ?? '(in-cluster)'} could not be read: ${(err as Error).message}`, {
      hint: 'pass --kubeconfig FILE or set KUBECONFIG',
      cause: err,
    });
  }
  if (!config.getCurrentCluster()) {
    throw new GkubeError('INVALID_CONFIG', `kubeconfig ${kubeconfigFile ?? '(in-cluster)'} names no cluster for context ${config.getCurrentContext() || '(none)'}`);
  }
  return (request) => execInPod(config, request);
}

/** Runs `request.command` in the container and resolves when its exit status arrives; see the file header for the rules. */
export function execInPod(config: k8s.KubeConfig, request: ExecRequest): Promise<ExecResult> {
  const where = `exec in pod ${request.namespace}/${request.pod}`;
  if (request.command.length === 0) return Promise.reject(new GkubeError('INTERNAL', `${where}: no command given`));
  if (!(request.timeoutMs > 0)) return Promise.reject(new GkubeError('INTERNAL', `${where}: the deadline must be positive, not ${request.timeoutMs}`));
  const limit = request.maxOutputBytes ?? defaultMaxOutputBytes;
  const stdout = new TailSink(limit);
  const stderr = new TailSink(limit);
  // Exec asks the API server for a stdin stream only when it is given one. This placeholder is never
  // written to nor ended, so client-node sends nothing on it; the real input is pumped below.
  const placeholder = request.stdin === undefined ? null : new PassThrough();
  const server = config.getCurrentCluster()?.server ?? '(no server)';

  return new Promise<ExecResult>((resolve, reject) => {
    let socket: ExecSocket | undefined;
    let settled = false;
    let status: k8s.V1Status | undefined;

    const finish = (err: Error | undefined, result?: ExecResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      placeholder?.destroy();
      // Input that was not (all) sent is not wanted any more: ending it lets its producer (git archive) stop.
      if (request.stdin !== undefined && !Buffer.isBuffer(request.stdin)) request.stdin.destroy();
      // After a status the server closes the stream itself; on a failure nothing more is wanted from it.
      if (err && socket && socket.readyState !== socket.CLOSED) socket.terminate();
      if (err) reject(err);
      else resolve(result!);
    };

    const timer = setTimeout(() => {
      finish(new GkubeError('OPERATION_FAILED', `${where}: the command did not finish within ${formatMs(request.timeoutMs)}; the stream was closed`, {
        hint: 'the pod or the API server may be overloaded; run again, or raise the deadline',
      }));
    }, request.timeoutMs);

    const onStatus = (s: k8s.V1Status): void => {
      status = s;
      try {
        const exitCode = exitCodeOf(s, where);
        finish(undefined, { exitCode, stdout: stdout.text(), stderr: stderr.text(), stdoutTruncated: stdout.truncated, stderrTruncated: stderr.truncated });
      } catch (err) {
        finish(err as Error);
      }
    };

    const onClose = (): void => {
      if (status === undefined) finish(new GkubeError('OPERATION_FAILED', `${where}: the stream ended without an exit status`));
    };

    new k8s.Exec(config)
      .exec(request.namespace, request.pod, request.container, request.command, stdout, stderr, placeholder, false, onStatus)
      .then(
        (ws) => {
          socket = ws;
          if (settled) {
            // The deadline passed while connecting, or the status came with the opening bytes.
            if (status === undefined) ws.terminate();
            return;
          }
          // Only v4 and v5 report the exit status as JSON; client-node's parser would throw on anything else.
          if (ws.protocol !== v5Protocol && (ws.protocol !== v4Protocol || request.stdin !== undefined)) {
            const needs = request.stdin !== undefined ? v5Protocol : `${v5Protocol} or ${v4Protocol}`;
            finish(new GkubeError('OPERATION_FAILED', `${where}: the API server ${server} offered the exec protocol ${JSON.stringify(ws.protocol)}; gkube needs ${needs}`, {
              hint: 'stdin with a reliable exit status needs Kubernetes 1.30 or newer',
            }));
            return;
          }
          // 'close' is emitted once, after readyState turns CLOSED: check first, then listen.
          if (ws.readyState === ws.CLOSED) onClose();
          else ws.once('close', onClose);
          if (request.stdin !== undefined) {
            pumpStdin(ws, request.stdin, () => settled).catch((err: unknown) => {
              finish(err instanceof GkubeError ? err : new GkubeError('OPERATION_FAILED', `${where}: reading the command's input failed: ${(err as Error).message}`, { cause: err }));
            });
          }
        },
        (err: unknown) => finish(connectError(err, where, server)),
      );
  });
}

/** Sends `input` on the stdin channel, waiting whenever the socket has too much queued, then half-closes stdin. */
async function pumpStdin(ws: ExecSocket, input: Readable | Buffer, stopped: () => boolean): Promise<void> {
  const chunks: AsyncIterable<Buffer | string> | Iterable<Buffer> = Buffer.isBuffer(input) ? [input] : input;
  try {
    for await (const raw of chunks) {
      const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
      for (let offset = 0; offset < chunk.length; offset += maxFramePayload) {
        // The command ended (or the call failed): the rest of the input is not wanted.
        if (stopped() || ws.readyState !== ws.OPEN) return;
        const payload = chunk.subarray(offset, offset + maxFramePayload);
        const frame = Buffer.allocUnsafe(payload.length + 1);
        frame[0] = stdinChannel;
        payload.copy(frame, 1);
        await send(ws, frame);
      }
    }
    if (!stopped() && ws.readyState === ws.OPEN) ws.send(Buffer.from([closeChannel, stdinChannel]));
  } finally {
    // Ends the source when the loop stopped early (a Readable given in; a no-op once it ended).
    if (!Buffer.isBuffer(input)) input.destroy();
  }
}

/** Queues a frame; when the socket's queue is over the high-water mark, resolves only once it has been written out. */
function send(ws: ExecSocket, frame: Buffer): Promise<void> {
  if (ws.bufferedAmount + frame.length < stdinHighWater) {
    ws.send(frame);
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const closed = (): void => resolve();
    ws.once('close', closed);
    // The callback runs when the frame (and so everything before it) left for the network, or with an error on close.
    ws.send(frame, () => {
      ws.off('close', closed);
      resolve();
    });
  });
}

/** The exit code a status reports; throws for a failure that is not a non-zero exit. */
function exitCodeOf(status: k8s.V1Status, where: string): number {
  if (status.status === 'Success') return 0;
  if (status.reason === 'NonZeroExitCode') {
    const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
    const code = Number(cause?.message);
    if (Number.isInteger(code) && code > 0) return code;
  }
  throw new GkubeError('OPERATION_FAILED', `${where}: ${status.message ?? status.reason ?? 'the command failed without a reason'}`, {
    hint: 'check that the container is running and has the command',
  });
}

/** Maps a failure to open the exec stream: the API server unreachable (exit 4) or refusing the request. */
function connectError(err: unknown, where: string, server: string): GkubeError {
  if (err instanceof GkubeError) return err;
  // ws reports through an ErrorEvent-like object; the underlying Error is in .error when there is one.
  const inner = (err as { error?: unknown }).error instanceof Error ? ((err as { error: Error }).error) : err instanceof Error ? err : undefined;
  const message = inner?.message ?? (err as { message?: string }).message ?? String(err);
  const httpStatus = /Unexpected server response: (\d+)/.exec(message)?.[1];
  if (httpStatus) {
    const hints: Record<string, string> = {
      '400': 'the container may not exist or may not be running yet',
      '401': 'the kubeconfig\'s credentials were refused',
      '403': 'the account needs "create" on pods/exec in this namespace',
      '404': 'the pod does not exist (any more)',
    };
    return new GkubeError('OPERATION_FAILED', `${where}: the API server ${server} refused the exec with HTTP ${httpStatus}`, {
      hint: hints[httpStatus] ?? 'see the API server\'s logs',
      cause: err,
    });
  }
  return new GkubeError('DEPENDENCY_UNREACHABLE', `${where}: the Kubernetes API at ${server} is unreachable: ${message}`, {
    hint: 'check --kubeconfig / KUBECONFIG and --context',
    cause: err,
  });
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** A Writable that keeps only the last `limit` bytes written to it. */
class TailSink extends Writable {
  private chunks: Buffer[] = [];
  private size = 0;
  /** True once bytes were dropped from the front. */
  truncated = false;

  constructor(private readonly limit: number) {
    super();
  }

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.add(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    callback();
  }

  private add(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit) {
      this.truncated = true;
      const first = this.chunks[0]!;
      const excess = this.size - this.limit;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
      }
    }
  }

  /** The kept bytes as UTF-8. */
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}
