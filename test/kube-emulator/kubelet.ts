// The emulator's kubelet (and the scheduler and node-lifecycle parts a one-node cluster needs).
//
// It watches pods in the store, binds unscheduled ones to its node, "pulls" images by asking the
// registry (images.ts), runs every container as a real process tree in its own namespaces with the
// pod's volumes at their mountPaths (runtime.ts), probes them, restarts them with back-off, and
// writes status and events as Kubernetes 1.31 reports them. exec (exec.ts), logs and the proxy
// address are served for the API server through KubeletPort.
//
// Emulator choices, where a real cluster has no single answer:
// - Time constants are scaled down and configurable (KubeletOptions): image-pull back-off 1 s
//   doubling to 10 s, crash-loop back-off 0 (first restart), then 1 s doubling to 10 s.
// - Unbound or missing PVCs keep a pod unscheduled (FailedScheduling, with the scheduler's words);
//   an error from VolumePort.prepare on a scheduled pod is a FailedMount, retried.
// - Lost node (Faults.loseNode): as the node lifecycle controller does, each pod's Ready condition
//   goes False (MarkPodsNotReady; reason kept) and the kubelet stops reporting. After
//   `nodeLostEvictionMs` the taint-eviction controller evicts pods not tolerating
//   node.kubernetes.io/unreachable forever: DisruptionTarget=True (DeletionByTaintManager), event
//   TaintManagerEviction, a graceful delete, status.reason NodeLost ("Node X which was running pod Y is
//   unresponsive", which kubectl shows as Unknown). A real cluster would then keep the pod
//   Terminating until the node returns; the emulator has no way back, so it kills the processes,
//   releases the volumes and removes the pod. New pods stay Pending: the node has the unreachable taint.
// - Users (securityContext): containers run as the effective runAsUser/runAsGroup (the container's over
//   the pod's), with the supplementary groups containerd gives them (the primary group, the user's groups
//   in /etc/group, then fsGroup, the volumes' pv.beta.kubernetes.io/gid and supplementalGroups). The
//   emulator's images have no filesystem or USER of their own: without runAsUser a container runs as root
//   (so runAsNonRoot without runAsUser is refused, as for an image without USER), and a user is looked up
//   in the host's /etc/passwd and /etc/group, the /etc every container sees (group and HOME from there,
//   else group 0 and HOME "/", as containerd and runc do).
// - podAddress returns the pod IP whenever the pod has one; connecting to a pod whose container is
//   not listening is refused, which the API server reports as 503 "error trying to reach service:
//   dial tcp IP:PORT: connect: connection refused". A pod without an IP gets 400 "address not allowed".
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, realpathSync, rmdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, open, readFile, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, posix } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { EmulatorContext, ExecRequest, HostVolume, KubeletPort, LogRequest, VolumePort } from './context.js';
import { ApiError, badRequest, notFound } from './errors.js';
import { recordEvent } from './events.js';
import { findType } from './resources.js';
import { now, type KubeObject, type StoreChange } from './store.js';
import { goDuration, ImagePullError, parseImageReference, pullImage, type PulledImage } from './images.js';
import { ContainerProcess, defaultPath, killTree, preparePodRoot, removeTree, spawnInContainer, startLine, type ContainerExit, type ContainerMount, type ContainerUser } from './runtime.js';
import { errorStatus, internalErrorStatus, sendStatusAndClose, serveExec } from './exec.js';
import { parseQuantity } from './volumes.js';
import { isRunning } from '../../src/process.js';

const podsType = findType('', 'pods')!;
const pvcType = findType('', 'persistentvolumeclaims')!;

/** Tunables; every time constant is in milliseconds of the emulator (tests lower them). */
export interface KubeletOptions {
  /** The node pods are bound to. */
  nodeName?: string;
  /** First image-pull back-off; doubles on each failure up to imagePullBackOffMaxMs (Kubernetes: 10 s → 300 s). */
  imagePullBackOffInitialMs?: number;
  imagePullBackOffMaxMs?: number;
  /** Crash-loop back-off after the first (immediate) restart; doubles up to crashLoopBackOffMaxMs (Kubernetes: 10 s → 300 s). */
  crashLoopBackOffInitialMs?: number;
  crashLoopBackOffMaxMs?: number;
  /** How often an unschedulable pod, or one whose volumes failed to mount, is retried. */
  schedulingRetryMs?: number;
  /** Multiplies every probe's seconds (initialDelay, period, timeout): 0.1 makes a 1 s period 100 ms. */
  probeTimeScale?: number;
  /** Multiplies grace periods (deletion, liveness kills, definition changes). */
  terminationGraceScale?: number;
  /** Grace given to containers by stop() before SIGKILL. */
  stopGraceMs?: number;
  /** How long after the node is lost its pods are evicted (Kubernetes: 40 s grace + 300 s toleration). */
  nodeLostEvictionMs?: number;
  /** Timeout of one registry lookup. */
  registryTimeoutMs?: number;
}

/** The defaults of KubeletOptions. */
export const kubeletDefaults: Required<KubeletOptions> = {
  nodeName: 'emulator-node',
  imagePullBackOffInitialMs: 1_000,
  imagePullBackOffMaxMs: 10_000,
  crashLoopBackOffInitialMs: 1_000,
  crashLoopBackOffMaxMs: 10_000,
  schedulingRetryMs: 1_000,
  probeTimeScale: 1,
  terminationGraceScale: 1,
  stopGraceMs: 1_000,
  nodeLostEvictionMs: 5_000,
  registryTimeoutMs: 10_000,
};

const hostIP = '127.0.0.1';

/** A container's state, as containerStatuses[].state shows it. */
type ContainerState = Record<string, Record<string, unknown>>;

/** One running or finished instance of a container. */
interface Instance {
  id: string;
  containerID: string;
  logPath: string;
  proc?: ContainerProcess;
  env: Array<[string, string]>;
  workingDir: string;
  workDir: string;
  /** The credentials its command, exec sessions and exec probes run with. */
  user: ContainerUser;
}

/** What the kubelet knows about one container of a pod. */
interface ContainerRecord {
  name: string;
  init: boolean;
  state: ContainerState;
  lastState: ContainerState;
  restartCount: number;
  ready: boolean;
  started: boolean;
  image: string;
  imageID: string;
  containerID?: string;
  /** The instance now running, if any. */
  current?: Instance;
  /** Every instance by containerID (for logs and previous logs). */
  instances: Map<string, Instance>;
  created: number;
  done: boolean;
  definitionChanged: boolean;
  pullBackOffMs: number;
  crashBackOffMs: number;
  prober?: Prober;
}

/** A container spec problem that keeps it from being created (CreateContainerConfigError / CreateContainerError). */
class ContainerConfigError extends Error {
  constructor(
    readonly reason: 'CreateContainerConfigError' | 'CreateContainerError',
    message: string,
  ) {
    super(message);
  }
}

/** Sleeps `ms`, waking early (without error) when `signal` aborts or `wake` resolves. */
function sleep(ms: number, signal?: AbortSignal, wake?: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
    void wake?.then(done, done);
  });
}

/**
 * Hands out pod IPs in 127.1.0.0/16, one per pod (Linux answers on all of 127/8, so each pod gets its own
 * address). Pod IPs are unique in a cluster; here every emulator on the machine shares the loopback network,
 * so an address is claimed machine-wide with a file named after it (created exclusively, holding the
 * claiming process's pid): two emulators at once, such as two test workers, never give one address to two
 * pods. A claim whose process is gone (killed) is taken over.
 */
class PodIPs {
  private readonly used = new Set<string>();
  private next: number;
  private static readonly dir = join(tmpdir(), 'gkube-emulator-pod-ips');

  constructor() {
    // Start where another kubelet (another jest worker) is unlikely to be.
    this.next = ((process.pid * 97) % 250) * 256;
    mkdirSync(PodIPs.dir, { recursive: true, mode: 0o755 });
  }

  allocate(): string {
    for (let i = 0; i < 65_536; i++) {
      const n = (this.next + i) % 65_536;
      const x = n >> 8;
      const y = n & 0xff;
      if (y === 0 || y === 255 || y === 1) continue;
      const ip = `127.1.${x}.${y}`;
      if (this.used.has(ip) || !PodIPs.claim(ip)) continue;
      this.used.add(ip);
      this.next = n + 1;
      return ip;
    }
    throw new Error('no pod IPs left in 127.1.0.0/16');
  }

  release(ip: string | undefined): void {
    if (!ip || !this.used.delete(ip)) return;
    try {
      unlinkSync(join(PodIPs.dir, ip));
    } catch {
      // Already gone: nothing to give back.
    }
  }

  /** Every address still held (the kubelet stopping). */
  releaseAll(): void {
    for (const ip of [...this.used]) this.release(ip);
  }

  private static claim(ip: string): boolean {
    const file = join(PodIPs.dir, ip);
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (PodIPs.holderRuns(file)) return false;
    // The holder is gone. Two kubelets may find that at once: only the one that makes the takeover
    // directory (an atomic mkdir) replaces the file, after reading it again, so neither can remove the
    // other's fresh claim. A takeover directory left by a killed process only costs that one address.
    const takeover = `${file}.takeover`;
    try {
      mkdirSync(takeover);
    } catch {
      return false;
    }
    try {
      if (PodIPs.holderRuns(file)) return false;
      writeFileSync(file, String(process.pid));
      return true;
    } finally {
      rmdirSync(takeover);
    }
  }

  /** Whether the claim's process still runs. An empty claim is one being written: held, unless it is old. */
  private static holderRuns(file: string): boolean {
    const text = readFileSyncOr(file).trim();
    if (text === '') {
      try {
        return Date.now() - statSync(file).mtimeMs < 10_000;
      } catch {
        return false;
      }
    }
    const holder = Number(text);
    return Number.isInteger(holder) && holder > 0 && isRunning(holder);
  }
}

function readFileSyncOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The emulator's kubelet: see the top of this file. */
export class Kubelet implements KubeletPort {
  readonly options: Required<KubeletOptions>;
  readonly nodeName: string;
  /** Where the kubelet keeps pod roots and logs (under ctx.stateDir). */
  readonly dir: string;
  /** @internal */ readonly workers = new Map<string, PodWorker>();
  /** @internal */ readonly ips = new PodIPs();
  /** @internal */ readonly pulledImages = new Set<string>();
  /** @internal */ readonly execChildren = new Set<ChildProcess>();
  /** @internal */ nodeLost = false;
  /** @internal */ stopped = false;
  private unsubscribe: (() => void) | undefined;
  private nodeLostHooked = false;

  constructor(
    readonly ctx: EmulatorContext,
    readonly volumes: VolumePort,
    options: KubeletOptions = {},
  ) {
    this.options = { ...kubeletDefaults, ...stripUndefined(options) };
    this.nodeName = this.options.nodeName;
    this.dir = join(ctx.stateDir, 'kubelet');
  }

  /** Starts reconciling: every pod now in the store, and every change from here on. */
  start(): void {
    if (this.unsubscribe) return;
    this.stopped = false;
    this.unsubscribe = this.ctx.store.subscribe((change) => this.onChange(change));
    if (!this.nodeLostHooked) {
      this.nodeLostHooked = true;
      this.ctx.faults.onNodeLost(() => {
        if (!this.stopped) this.loseNode();
      });
    }
    for (const pod of this.ctx.store.list(podsType).items) this.observe(pod);
  }

  /** Kills every container (SIGTERM, SIGKILL after stopGraceMs), waits for them, and removes the kubelet's files. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const child of this.execChildren) if (child.pid) killTree(child.pid);
    await Promise.all([...this.workers.values()].map((w) => w.shutdown(this.options.stopGraceMs)));
    this.workers.clear();
    this.ips.releaseAll();
    if (!(await removeTree(this.dir, this.ctx.stateDir)) && existsSync(this.dir)) {
      this.ctx.log(`kubelet: left ${this.dir} in place: something is still mounted below it`);
    }
  }

  private onChange(change: StoreChange): void {
    if (change.type !== podsType || this.stopped) return;
    const pod = change.event.object;
    if (change.event.type === 'DELETED') {
      this.workers.get(pod.metadata.uid!)?.deleted(pod);
      return;
    }
    this.observe(pod);
  }

  private observe(pod: KubeObject): void {
    const uid = pod.metadata.uid!;
    const existing = this.workers.get(uid);
    if (existing) {
      existing.observe(pod);
      return;
    }
    const phase = pod['status']?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') return;
    const nodeName = pod['spec']?.nodeName;
    if (nodeName && nodeName !== this.nodeName) return;
    const scheduler = pod['spec']?.schedulerName;
    if (!nodeName && scheduler && scheduler !== 'default-scheduler') return;
    if (pod.metadata.deletionTimestamp && !nodeName) return;
    const worker = new PodWorker(this, pod);
    this.workers.set(uid, worker);
    queueMicrotask(() => worker.begin());
  }

  private loseNode(): void {
    if (this.nodeLost) return;
    this.nodeLost = true;
    this.ctx.log(`kubelet: node ${this.nodeName} lost`);
    for (const w of this.workers.values()) w.nodeLost();
  }

  /** Resolves the container a request names, as the API server validates it (400 otherwise). */
  resolveContainer(pod: KubeObject, container: string | undefined): string {
    const name = pod.metadata.name!;
    const containers: Array<{ name: string }> = pod['spec']?.containers ?? [];
    const inits: Array<{ name: string }> = pod['spec']?.initContainers ?? [];
    if (!container) {
      if (containers.length === 1) return containers[0]!.name;
      if (containers.length === 0) throw badRequest(`pod ${name} does not have a container`);
      throw badRequest(`a container name must be specified for pod ${name}, choose one of: [${[...inits, ...containers].map((c) => c.name).join(' ')}]`);
    }
    if (![...inits, ...containers].some((c) => c.name === container)) throw badRequest(`container ${container} is not valid for pod ${name}`);
    return container;
  }

  /**
   * The checks the API server makes before it upgrades an exec request (404 pod, 400 container or
   * unscheduled pod), for a server that wants to answer them as plain HTTP errors. exec() makes them too.
   */
  checkExec(namespace: string, podName: string, container: string | undefined, command: string[] = ['sh']): string {
    const pod = this.ctx.store.get(podsType, namespace, podName);
    if (!pod) throw notFound('pods', '', podName);
    const name = this.resolveContainer(pod, container);
    if (command.length === 0) throw badRequest('you must specify at least 1 command');
    if (!pod['spec']?.nodeName) throw badRequest(`pod ${podName} does not have a host assigned`);
    return name;
  }

  /** KubeletPort.exec: runs the command in the container's view and bridges the socket to it. */
  exec(request: ExecRequest): void {
    void this.serveExecRequest(request).catch((err: unknown) => {
      this.ctx.log(`kubelet: exec failed: ${(err as Error).stack ?? String(err)}`);
      sendStatusAndClose(request.socket, request.protocol, internalErrorStatus(`error executing command in container: ${(err as Error).message}`));
    });
  }

  private async serveExecRequest(request: ExecRequest): Promise<void> {
    const { socket, protocol } = request;
    let name: string;
    try {
      name = this.checkExec(request.namespace, request.pod, request.container, request.command);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      sendStatusAndClose(socket, protocol, errorStatus(err.code, err.reason, err.message, err.details as Record<string, unknown> | undefined));
      return;
    }
    const pod = this.ctx.store.get(podsType, request.namespace, request.pod)!;
    const instance = this.workers.get(pod.metadata.uid!)?.records.get(name)?.current;
    const pid = instance?.proc?.running ? instance.proc.initPid : undefined;
    if (!instance || !pid) {
      sendStatusAndClose(socket, protocol, internalErrorStatus(`unable to upgrade connection: container not found ("${name}")`));
      return;
    }
    const child = spawnInContainer(pid, instance.user, instance.env, instance.workingDir, request.command);
    this.execChildren.add(child);
    child.once('close', () => this.execChildren.delete(child));
    const cut = this.ctx.faults.takeExecCut();
    await serveExec({
      socket,
      protocol,
      stdin: request.stdin,
      stdout: request.stdout,
      stderr: request.stderr,
      tty: request.tty,
      command: request.command,
      child,
      started: startLine(child),
      containerId: instance.id,
      ...(cut !== undefined ? { cutAfterBytes: cut } : {}),
    });
  }

  /** KubeletPort.logs: a container's log with the log subresource's options. */
  async logs(request: LogRequest, write: (chunk: Buffer) => void, signal: AbortSignal): Promise<void> {
    const pod = this.ctx.store.get(podsType, request.namespace, request.pod);
    if (!pod) throw notFound('pods', '', request.pod);
    const name = this.resolveContainer(pod, request.container);
    if (!pod['spec']?.nodeName) return;
    const record = this.workers.get(pod.metadata.uid!)?.records.get(name);
    if (!record) throw badRequest(`container "${name}" in pod "${request.pod}" is waiting to start: ContainerCreating`);
    const instance = selectLogInstance(record, request.previous, request.pod);
    await streamLog(instance, request, write, signal);
  }

  /** KubeletPort.podAddress: the pod's IP for the proxy subresource. */
  podAddress(namespace: string, name: string): { ip: string } {
    const pod = this.ctx.store.get(podsType, namespace, name);
    if (!pod) throw notFound('pods', '', name);
    const ip = pod['status']?.podIP as string | undefined;
    if (!ip) throw badRequest('address not allowed');
    return { ip };
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Picks the instance whose log a request reads, with the kubelet's errors (validateContainerLogStatus). */
function selectLogInstance(record: ContainerRecord, previous: boolean, podName: string): Instance | undefined {
  const { name, state, lastState } = record;
  const lastTerminated = lastState['terminated'] as { containerID?: string } | undefined;
  let id: string | undefined;
  if (previous) {
    if (!lastTerminated?.containerID) throw badRequest(`previous terminated container "${name}" in pod "${podName}" not found`);
    id = lastTerminated.containerID;
  } else if (state['running']) id = record.containerID;
  else if (state['terminated']) {
    id = (state['terminated'] as { containerID?: string }).containerID || lastTerminated?.containerID;
    if (!id) throw badRequest(`container "${name}" in pod "${podName}" is terminated`);
  } else if (lastTerminated) {
    id = lastTerminated.containerID;
    if (!id) throw badRequest(`container "${name}" in pod "${podName}" is terminated`);
  } else if (state['waiting']) {
    const reason = String(state['waiting']['reason'] ?? '');
    if (reason === 'ErrImagePull') throw badRequest(`container "${name}" in pod "${podName}" is waiting to start: image can't be pulled`);
    if (reason === 'ImagePullBackOff') throw badRequest(`container "${name}" in pod "${podName}" is waiting to start: trying and failing to pull image`);
    throw badRequest(`container "${name}" in pod "${podName}" is waiting to start: ${reason}`);
  } else throw badRequest(`container "${name}" in pod "${podName}" is waiting to start - no logs yet`);
  return id ? record.instances.get(id) : undefined;
}

interface LogRecord {
  time: string;
  ms: number;
  tag: string;
  msg: string;
}

function parseLogLine(line: string): LogRecord | undefined {
  const a = line.indexOf(' ');
  const b = line.indexOf(' ', a + 1);
  const c = line.indexOf(' ', b + 1);
  if (a < 0 || b < 0 || c < 0) return undefined;
  const time = line.slice(0, a);
  return { time, ms: Date.parse(time), tag: line.slice(b + 1, c), msg: line.slice(c + 1) };
}

/** Writes a log file's records with tailLines/sinceSeconds/timestamps/limitBytes, following it when asked. */
async function streamLog(instance: Instance | undefined, request: LogRequest, write: (chunk: Buffer) => void, signal: AbortSignal): Promise<void> {
  if (!instance || !existsSync(instance.logPath)) return;
  let remaining = request.limitBytes && request.limitBytes > 0 ? request.limitBytes : Infinity;
  const since = request.sinceSeconds && request.sinceSeconds > 0 ? Date.now() - request.sinceSeconds * 1000 : -Infinity;
  const emit = (records: LogRecord[]): void => {
    for (const r of records) {
      if (remaining <= 0) return;
      if (r.ms < since) continue;
      let out = Buffer.from(`${request.timestamps ? `${r.time} ` : ''}${r.msg}${r.tag === 'F' ? '\n' : ''}`, 'utf8');
      if (out.length > remaining) out = out.subarray(0, remaining);
      remaining -= out.length;
      write(out);
    }
  };
  const file = await open(instance.logPath, 'r');
  try {
    let offset = 0;
    let carry = '';
    const readMore = async (): Promise<LogRecord[]> => {
      const records: LogRecord[] = [];
      for (;;) {
        const buf = Buffer.alloc(64 * 1024);
        const { bytesRead } = await file.read(buf, 0, buf.length, offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
        carry += buf.subarray(0, bytesRead).toString('utf8');
        const lines = carry.split('\n');
        carry = lines.pop() ?? '';
        for (const l of lines) {
          const r = parseLogLine(l);
          if (r) records.push(r);
        }
      }
      return records;
    };
    let records = await readMore();
    if (request.tailLines !== undefined && request.tailLines >= 0) records = records.slice(Math.max(0, records.length - request.tailLines));
    emit(records);
    const proc = instance.proc;
    if (!request.follow || !proc) return;
    while (!signal.aborted && remaining > 0) {
      const wasRunning = proc.running;
      const wake = new Promise<void>((resolve) => {
        const done = (): void => {
          proc.log.off('data', done);
          resolve();
        };
        proc.log.on('data', done);
        setTimeout(done, 250);
      });
      emit(await readMore());
      if (!wasRunning) return;
      await sleep(1_000, signal, Promise.race([wake, proc.exited]));
    }
  } finally {
    await file.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Quantities and QoS

/** A resource quantity in base units, or undefined when absent or unparseable. */
function quantity(q: unknown): number | undefined {
  const n = parseQuantity(q);
  return Number.isNaN(n) ? undefined : n;
}

/** The pod's QoS class from its containers' requests and limits (v1 qos.GetPodQOS). */
export function qosClass(pod: KubeObject): 'Guaranteed' | 'Burstable' | 'BestEffort' {
  const all = [...(pod['spec']?.initContainers ?? []), ...(pod['spec']?.containers ?? [])] as Array<{ resources?: { requests?: Record<string, string>; limits?: Record<string, string> } }>;
  const supported = ['cpu', 'memory'];
  let any = false;
  let guaranteed = true;
  for (const c of all) {
    const requests = c.resources?.requests ?? {};
    const limits = c.resources?.limits ?? {};
    for (const r of supported) {
      const req = quantity(requests[r]);
      const lim = quantity(limits[r]);
      if ((req ?? 0) > 0 || (lim ?? 0) > 0) any = true;
      if (lim === undefined) guaranteed = false;
      else if (req !== undefined && req !== lim) guaranteed = false;
    }
  }
  if (!any) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

/** Expands $(VAR) references as Kubernetes does for env values, command, args and subPathExpr. */
export function expandVars(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  for (let i = 0; i < input.length; i++) {
    const ch = input[i];
    if (ch === '$' && i + 1 < input.length) {
      const next = input[i + 1];
      if (next === '$') {
        out += '$';
        i++;
        continue;
      }
      if (next === '(') {
        const close = input.indexOf(')', i + 2);
        if (close >= 0) {
          const name = input.slice(i + 2, close);
          const value = lookup(name);
          out += value !== undefined ? value : `$(${name})`;
          i = close;
          continue;
        }
      }
    }
    out += ch;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The per-pod worker

interface ProbeSpec {
  exec?: { command?: string[] };
  httpGet?: { path?: string; port: number | string; host?: string; scheme?: string; httpHeaders?: Array<{ name: string; value: string }> };
  tcpSocket?: { port: number | string; host?: string };
  grpc?: { port: number; service?: string };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
  terminationGracePeriodSeconds?: number;
}

/** Runs one pod from binding to removal. */
class PodWorker {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  pod: KubeObject;
  readonly records = new Map<string, ContainerRecord>();
  private readonly lifecycle = new AbortController();
  private readonly podDir: string;
  private readonly rootDir: string;
  /** The pod's IP once its sandbox exists. */
  ip: string | undefined;
  private startTime: string | undefined;
  private scheduled = false;
  private sandboxReady = false;
  private terminalPhase: 'Succeeded' | 'Failed' | undefined;
  private statusReason: { reason: string; message: string } | undefined;
  private frozen = false;
  private disruption: { reason: string; message: string } | undefined;
  private isDeleted = false;
  private ending: Promise<void> | undefined;
  private released = false;
  private loops: Array<Promise<void>> = [];
  private main: Promise<void> = Promise.resolve();
  private specWaiters: Array<() => void> = [];
  private deadlineTimer: NodeJS.Timeout | undefined;
  private evictionTimer: NodeJS.Timeout | undefined;
  private volumes: Map<string, HostVolume> | undefined;

  constructor(
    readonly kubelet: Kubelet,
    pod: KubeObject,
  ) {
    this.pod = pod;
    this.uid = pod.metadata.uid!;
    this.namespace = pod.metadata.namespace ?? 'default';
    this.name = pod.metadata.name!;
    this.podDir = join(kubelet.dir, 'pods', this.uid);
    this.rootDir = join(this.podDir, 'root');
  }

  private get ctx(): EmulatorContext {
    return this.kubelet.ctx;
  }

  private get options(): Required<KubeletOptions> {
    return this.kubelet.options;
  }

  private get signal(): AbortSignal {
    return this.lifecycle.signal;
  }

  /** Starts the worker (after the store write that announced the pod has finished). */
  begin(): void {
    if (this.pod.metadata.deletionTimestamp && this.pod['spec']?.nodeName) {
      // Already being deleted when first seen: nothing of ours runs; finish the deletion.
      void this.end('deleted-graceful');
      return;
    }
    this.main = this.run().catch((err: unknown) => this.ctx.log(`kubelet: pod ${this.namespace}/${this.name}: ${(err as Error).stack ?? String(err)}`));
  }

  /** A new version of the pod from the store. */
  observe(pod: KubeObject): void {
    const before = this.pod;
    this.pod = pod;
    if (pod.metadata.deletionTimestamp && !before.metadata.deletionTimestamp) {
      queueMicrotask(() => void this.end('deleted-graceful'));
      return;
    }
    if (JSON.stringify(before['spec']) === JSON.stringify(pod['spec'])) return;
    const waiters = this.specWaiters.splice(0);
    for (const w of waiters) w();
    if (before['spec']?.activeDeadlineSeconds !== pod['spec']?.activeDeadlineSeconds) this.armDeadline();
    // A changed image is the one container change a live pod allows: restart that container.
    const oldImages = new Map<string, string>(((before['spec']?.containers ?? []) as Array<{ name: string; image: string }>).map((c) => [c.name, c.image]));
    for (const c of (pod['spec']?.containers ?? []) as Array<{ name: string; image: string }>) {
      const old = oldImages.get(c.name);
      if (old !== undefined && old !== c.image) queueMicrotask(() => this.definitionChanged(c.name));
    }
  }

  /** The pod object is gone from the store. */
  deleted(pod: KubeObject): void {
    this.pod = pod;
    this.isDeleted = true;
    if (this.ending) {
      // Deleted while we were still stopping it gracefully (or as our own final write): hurry up.
      for (const r of this.records.values()) r.current?.proc?.kill();
      return;
    }
    void this.end('deleted-now');
  }

  /** The node was declared lost: pods go not-ready, the kubelet stops reporting, eviction follows. */
  nodeLost(): void {
    if (!this.scheduled || this.ending) return;
    const pod = this.ctx.store.mutate(podsType, this.namespace, this.name, (obj) => {
      if (obj.metadata.uid !== this.uid) return;
      for (const cond of obj['status']?.conditions ?? []) {
        if (cond.type === 'Ready' && cond.status !== 'False') {
          cond.status = 'False';
          cond.lastTransitionTime = now();
        }
      }
    });
    this.frozen = true;
    if (pod) this.pod = pod;
    const tolerations = (this.pod['spec']?.tolerations ?? []) as Array<{ key?: string; operator?: string; effect?: string; tolerationSeconds?: number }>;
    const forever = tolerations.some(
      (t) => (t.key === 'node.kubernetes.io/unreachable' || (t.operator === 'Exists' && !t.key)) && (!t.effect || t.effect === 'NoExecute') && t.tolerationSeconds === undefined,
    );
    if (forever) return;
    this.evictionTimer = setTimeout(() => void this.evict(), this.options.nodeLostEvictionMs);
  }

  private async evict(): Promise<void> {
    if (this.ending || this.kubelet.stopped) return;
    const { store } = this.ctx;
    this.disruption = { reason: 'DeletionByTaintManager', message: 'Taint manager: deleting due to NoExecute taint' };
    store.mutate(podsType, this.namespace, this.name, (obj) => {
      if (obj.metadata.uid !== this.uid) return;
      const conditions = (obj['status'] ??= {}).conditions ?? (obj['status'].conditions = []);
      conditions.push({ type: 'DisruptionTarget', status: 'True', lastProbeTime: null, lastTransitionTime: now(), reason: this.disruption!.reason, message: this.disruption!.message });
    });
    recordEvent(store, this.pod, 'Normal', 'TaintManagerEviction', `Marking for deletion Pod ${this.namespace}/${this.name}`, 'taint-eviction-controller');
    try {
      store.delete(podsType, this.namespace, this.name, { uid: this.uid });
    } catch {
      // already gone
    }
    store.mutate(podsType, this.namespace, this.name, (obj) => {
      if (obj.metadata.uid !== this.uid) return;
      obj['status'].reason = 'NodeLost';
      obj['status'].message = `Node ${this.kubelet.nodeName} which was running pod ${this.name} is unresponsive`;
    });
    await this.end('evicted');
  }

  // --- the pod's life ---------------------------------------------------------------------

  private async run(): Promise<void> {
    if (!this.pod['spec']?.nodeName) {
      if (!(await this.schedule())) return;
    } else this.scheduled = true;
    if (this.signal.aborted) return;
    this.startTime = now();
    this.makeRecords();
    this.publish();
    this.armDeadline();
    if (this.kubelet.nodeLost) this.nodeLost();
    if (!(await this.prepareVolumes())) return;
    await this.createSandbox();
    if (this.signal.aborted) return;
    this.publish();
    if (!(await this.runInitContainers())) return;
    this.publish();
    this.loops = [...this.records.values()].filter((r) => !r.init).map((r) => this.containerLoop(r));
    await Promise.all(this.loops);
  }

  /** The scheduler's part: wait until the pod fits (claims bound, node reachable), then bind it. */
  private async schedule(): Promise<boolean> {
    const { store } = this.ctx;
    let reported = '';
    while (!this.signal.aborted) {
      const problem = this.unschedulable();
      if (!problem) {
        const bound = store.mutate(podsType, this.namespace, this.name, (obj) => {
          if (obj.metadata.uid !== this.uid) return;
          obj['spec'].nodeName = this.kubelet.nodeName;
          const status = (obj['status'] ??= {});
          status.phase ??= 'Pending';
          status.conditions = upsertCondition(status.conditions, { type: 'PodScheduled', status: 'True' });
        });
        if (!bound) return false;
        this.pod = bound;
        this.scheduled = true;
        recordEvent(store, bound, 'Normal', 'Scheduled', `Successfully assigned ${this.namespace}/${this.name} to ${this.kubelet.nodeName}`, 'default-scheduler');
        return true;
      }
      if (problem !== reported) {
        const updated = store.mutate(podsType, this.namespace, this.name, (obj) => {
          if (obj.metadata.uid !== this.uid) return;
          const status = (obj['status'] ??= {});
          status.phase = 'Pending';
          status.conditions = upsertCondition(status.conditions, { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: problem });
        });
        if (updated) this.pod = updated;
        reported = problem;
      }
      recordEvent(store, this.pod, 'Warning', 'FailedScheduling', problem, 'default-scheduler');
      await sleep(this.options.schedulingRetryMs, this.signal);
    }
    return false;
  }

  /** Why the pod cannot be scheduled now, in the scheduler's words; undefined when it can. */
  private unschedulable(): string | undefined {
    const tail = 'preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.';
    if (this.kubelet.nodeLost) return `0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }. ${tail}`;
    for (const v of (this.pod['spec']?.volumes ?? []) as Array<{ persistentVolumeClaim?: { claimName: string } }>) {
      const claimName = v.persistentVolumeClaim?.claimName;
      if (!claimName) continue;
      const claim = this.ctx.store.get(pvcType, this.namespace, claimName);
      if (!claim) return `0/1 nodes are available: persistentvolumeclaim "${claimName}" not found. ${tail}`;
      if (claim.metadata.deletionTimestamp) return `0/1 nodes are available: persistentvolumeclaim "${claimName}" is being deleted. ${tail}`;
      if (claim['status']?.phase !== 'Bound') return `0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. ${tail}`;
    }
    return undefined;
  }

  private makeRecords(): void {
    const spec = this.pod['spec'] ?? {};
    const hasInit = (spec.initContainers ?? []).length > 0;
    const make = (c: { name: string; image: string }, init: boolean): ContainerRecord => ({
      name: c.name,
      init,
      state: { waiting: { reason: hasInit ? 'PodInitializing' : 'ContainerCreating' } },
      lastState: {},
      restartCount: 0,
      ready: false,
      started: false,
      image: c.image,
      imageID: '',
      instances: new Map(),
      created: 0,
      done: false,
      definitionChanged: false,
      pullBackOffMs: 0,
      crashBackOffMs: 0,
    });
    for (const c of spec.initContainers ?? []) this.records.set(c.name, make(c, true));
    for (const c of spec.containers ?? []) this.records.set(c.name, make(c, false));
  }

  private async prepareVolumes(): Promise<boolean> {
    while (!this.signal.aborted) {
      try {
        this.volumes = await this.kubelet.volumes.prepare(this.pod);
        return !this.signal.aborted;
      } catch (err) {
        if (this.signal.aborted) return false;
        this.event('Warning', 'FailedMount', (err as Error).message);
        await sleep(this.options.schedulingRetryMs, this.signal);
      }
    }
    return false;
  }

  /** The pod's sandbox: its IP, root directory and /etc/hosts. */
  private async createSandbox(): Promise<void> {
    this.ip = this.kubelet.ips.allocate();
    await preparePodRoot(this.rootDir);
    const hostname = this.hostname();
    const hosts = [
      '# Kubernetes-managed hosts file.',
      '127.0.0.1\tlocalhost',
      '::1\tlocalhost ip6-localhost ip6-loopback',
      'fe00::0\tip6-localnet',
      'fe00::0\tip6-mcastprefix',
      'fe00::1\tip6-allnodes',
      'fe00::2\tip6-allrouters',
      `${this.ip}\t${hostname}`,
      '',
    ].join('\n');
    await writeFile(join(this.podDir, 'etc-hosts'), hosts);
    await writeFile(join(this.podDir, 'etc-hostname'), `${hostname}\n`);
    this.sandboxReady = true;
  }

  private hostname(): string {
    return String(this.pod['spec']?.hostname ?? this.name).slice(0, 63);
  }

  private async runInitContainers(): Promise<boolean> {
    for (const rec of [...this.records.values()].filter((r) => r.init)) {
      while (!this.signal.aborted && this.containerSpec(rec)) {
        const exit = await this.runOnce(rec);
        if (this.signal.aborted) return false;
        if (!exit) continue;
        if (exit.exitCode === 0 && !exit.startError) {
          rec.done = true;
          rec.ready = true;
          this.publish();
          break;
        }
        if (this.restartPolicy() === 'Never') {
          this.terminalPhase = 'Failed';
          this.sandboxReady = false;
          this.publish();
          return false;
        }
        if (!(await this.crashLoopWait(rec))) return false;
      }
      if (this.signal.aborted) return false;
    }
    return !this.signal.aborted;
  }

  private restartPolicy(): 'Always' | 'OnFailure' | 'Never' {
    return this.pod['spec']?.restartPolicy ?? 'Always';
  }

  /** A regular container: run it, and restart it as the restart policy and back-off say. */
  private async containerLoop(rec: ContainerRecord): Promise<void> {
    while (!this.signal.aborted && this.containerSpec(rec)) {
      const exit = await this.runOnce(rec);
      if (this.signal.aborted) return;
      if (!exit) continue;
      if (rec.definitionChanged) {
        rec.definitionChanged = false;
        continue;
      }
      const policy = this.restartPolicy();
      const restart = policy === 'Always' || (policy === 'OnFailure' && exit.exitCode !== 0);
      if (!restart) {
        rec.done = true;
        this.maybeFinish();
        return;
      }
      if (!(await this.crashLoopWait(rec))) return;
    }
  }

  /** All regular containers are done for good: the pod reaches its terminal phase. */
  private maybeFinish(): void {
    const regular = [...this.records.values()].filter((r) => !r.init);
    if (!regular.every((r) => r.done)) return;
    this.terminalPhase = regular.every((r) => (r.state['terminated']?.['exitCode'] ?? 1) === 0) ? 'Succeeded' : 'Failed';
    this.sandboxReady = false;
    this.publish();
  }

  /**
   * One instance of a container: pull, create, start, wait for it to end. Resolves with how it ended,
   * or undefined when it could not be created (then it has already waited its back-off).
   */
  private async runOnce(rec: ContainerRecord): Promise<ContainerExit | undefined> {
    const pulled = await this.ensureImage(rec);
    if (!pulled || this.signal.aborted) return undefined;
    const spec = this.containerSpec(rec);
    if (!spec) return undefined;
    const fieldPath = this.fieldPath(rec);
    const id = randomBytes(32).toString('hex');
    let launch;
    try {
      launch = await this.buildLaunch(rec, spec, pulled, id);
    } catch (err) {
      if (!(err instanceof ContainerConfigError)) throw err;
      rec.state = { waiting: { reason: err.reason, message: err.message } };
      this.event('Warning', 'Failed', `Error: ${err.message}`, fieldPath);
      this.publish();
      await sleep(this.nextCrashDelay(rec) || this.options.crashLoopBackOffInitialMs, this.signal, this.specChange());
      return undefined;
    }
    if (this.signal.aborted) return undefined;
    if (rec.created > 0) {
      rec.restartCount += 1;
      if (rec.state['terminated']) rec.lastState = { terminated: rec.state['terminated'] };
    }
    rec.created += 1;
    const instance: Instance = {
      id,
      containerID: `containerd://${id}`,
      logPath: join(this.podDir, 'logs', rec.name, `${rec.created - 1}.log`),
      env: launch.env,
      workingDir: launch.workingDir,
      workDir: launch.workDir,
      user: launch.user,
    };
    rec.instances.set(instance.containerID, instance);
    rec.image = pulled.ref.display;
    rec.imageID = pulled.imageID;
    rec.containerID = instance.containerID;
    const proc = await ContainerProcess.start({ ...launch, logPath: instance.logPath }, (line) => this.ctx.log(`kubelet: ${this.namespace}/${this.name}/${rec.name}: ${line}`));
    instance.proc = proc;
    // The pod began to end while this container was starting: it must not outlive the pod.
    if (this.signal.aborted) proc.kill();
    this.event('Normal', 'Created', `Created container ${rec.name}`, fieldPath);
    if (proc.startError) {
      const message = `failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: ${proc.startError}: unknown`;
      const exit = await proc.exited;
      rec.state = {
        terminated: { exitCode: 128, reason: 'StartError', message, startedAt: '1970-01-01T00:00:00Z', finishedAt: now(exit.finishedAt), containerID: instance.containerID },
      };
      this.event('Warning', 'Failed', `Error: ${message}`, fieldPath);
      this.publish();
      return exit;
    }
    rec.current = instance;
    const startedAt = now(proc.startedAt);
    this.event('Normal', 'Started', `Started container ${rec.name}`, fieldPath);
    rec.state = { running: { startedAt } };
    rec.started = !rec.init && !spec.startupProbe;
    rec.ready = false;
    this.publish();
    if (!rec.init) {
      if (!spec.readinessProbe && rec.started) {
        rec.ready = true;
        this.publish();
      }
      if (spec.readinessProbe || spec.livenessProbe || spec.startupProbe) {
        rec.prober = new Prober(this, rec, instance, spec);
        rec.prober.start();
      }
    }
    const exit = await proc.exited;
    rec.prober?.stop();
    rec.prober = undefined;
    rec.current = undefined;
    rec.ready = false;
    rec.started = false;
    const message = await this.terminationMessage(spec, instance, exit);
    rec.state = {
      terminated: {
        exitCode: exit.exitCode,
        reason: exit.exitCode === 0 ? 'Completed' : 'Error',
        ...(message ? { message } : {}),
        startedAt,
        finishedAt: now(exit.finishedAt),
        containerID: instance.containerID,
      },
    };
    if (exit.finishedAt.getTime() - proc.startedAt.getTime() > 2 * this.options.crashLoopBackOffMaxMs) rec.crashBackOffMs = 0;
    this.publish();
    return exit;
  }

  private async terminationMessage(spec: Record<string, unknown>, instance: Instance, exit: ContainerExit): Promise<string> {
    let message = '';
    try {
      message = (await readFile(join(instance.workDir, 'termination-log'), 'utf8')).slice(0, 4096);
    } catch {
      // none written
    }
    if (!message && exit.exitCode !== 0 && spec['terminationMessagePolicy'] === 'FallbackToLogsOnError') {
      try {
        const lines = (await readFile(instance.logPath, 'utf8')).split('\n').filter(Boolean).map(parseLogLine);
        message = lines
          .slice(-80)
          .map((r) => (r ? r.msg + (r.tag === 'F' ? '\n' : '') : ''))
          .join('')
          .slice(-2048);
      } catch {
        // no log
      }
    }
    return message;
  }

  /** The crash-loop back-off before a restart (none before the first). False if the pod ended meanwhile. */
  private async crashLoopWait(rec: ContainerRecord): Promise<boolean> {
    const delay = this.nextCrashDelay(rec);
    if (delay === 0) return !this.signal.aborted;
    if (rec.state['terminated']) rec.lastState = { terminated: rec.state['terminated'] };
    const podRef = `${this.name}_${this.namespace}(${this.uid})`;
    rec.state = { waiting: { reason: 'CrashLoopBackOff', message: `back-off ${goDuration(delay)} restarting failed container=${rec.name} pod=${podRef}` } };
    this.event('Warning', 'BackOff', `Back-off restarting failed container ${rec.name} in pod ${podRef}`, this.fieldPath(rec));
    this.publish();
    // A new image is a new container definition: it is not in back-off.
    const image = this.containerSpec(rec)?.['image'];
    const until = Date.now() + delay;
    while (!this.signal.aborted && Date.now() < until && this.containerSpec(rec)?.['image'] === image) {
      await sleep(until - Date.now(), this.signal, this.specChange());
    }
    return !this.signal.aborted;
  }

  private nextCrashDelay(rec: ContainerRecord): number {
    if (rec.crashBackOffMs === 0) {
      rec.crashBackOffMs = this.options.crashLoopBackOffInitialMs;
      return 0;
    }
    const delay = rec.crashBackOffMs;
    rec.crashBackOffMs = Math.min(delay * 2, this.options.crashLoopBackOffMaxMs);
    return delay;
  }

  /** Looks the container's image up in the registry, with ErrImagePull / ImagePullBackOff and back-off. */
  private async ensureImage(rec: ContainerRecord): Promise<PulledImage | undefined> {
    const fieldPath = this.fieldPath(rec);
    while (!this.signal.aborted) {
      const spec = this.containerSpec(rec);
      if (!spec) return undefined;
      const image = String(spec['image'] ?? '');
      let display: string;
      try {
        display = parseImageReference(image).display;
      } catch (err) {
        const message = (err as Error).message;
        rec.state = { waiting: { reason: 'InvalidImageName', message } };
        this.event('Warning', 'InspectFailed', message, fieldPath);
        this.event('Warning', 'Failed', 'Error: InvalidImageName', fieldPath);
        this.publish();
        await sleep(3_600_000, this.signal, this.specChange());
        continue;
      }
      const ref = parseImageReference(image);
      const policy = spec['imagePullPolicy'] ?? (ref.tag && ref.tag !== 'latest' ? 'IfNotPresent' : ref.digest ? 'IfNotPresent' : 'Always');
      const present = policy !== 'Always' && this.kubelet.pulledImages.has(display);
      if (!present) this.event('Normal', 'Pulling', `Pulling image "${display}"`, fieldPath);
      const t0 = performance.now();
      try {
        const pulled = await pullImage(this.ctx.registryUrl, image, { signal: this.signal, timeoutMs: this.options.registryTimeoutMs });
        if (this.signal.aborted) return undefined;
        const took = goDuration(performance.now() - t0);
        this.event(
          'Normal',
          'Pulled',
          present ? `Container image "${display}" already present on machine` : `Successfully pulled image "${display}" in ${took} (${took} including waiting). Image size: ${pulled.size} bytes.`,
          fieldPath,
        );
        this.kubelet.pulledImages.add(display);
        rec.pullBackOffMs = 0;
        return pulled;
      } catch (err) {
        if (this.signal.aborted) return undefined;
        const message = err instanceof ImagePullError ? err.message : `rpc error: code = Unknown desc = ${(err as Error).message}`;
        this.event('Warning', 'Failed', `Failed to pull image "${display}": ${message}`, fieldPath);
        this.event('Warning', 'Failed', 'Error: ErrImagePull', fieldPath);
        rec.state = { waiting: { reason: 'ErrImagePull', message } };
        this.publish();
        const delay = rec.pullBackOffMs ? Math.min(rec.pullBackOffMs * 2, this.options.imagePullBackOffMaxMs) : this.options.imagePullBackOffInitialMs;
        rec.pullBackOffMs = delay;
        // ErrImagePull shows until the next sync, which finds the image in back-off.
        const shown = Math.min(250, delay / 4);
        const changed = this.specChange();
        await sleep(shown, this.signal, changed);
        if (this.signal.aborted) return undefined;
        if (this.containerSpec(rec)?.['image'] !== image) continue;
        this.event('Normal', 'BackOff', `Back-off pulling image "${display}"`, fieldPath);
        this.event('Warning', 'Failed', 'Error: ImagePullBackOff', fieldPath);
        rec.state = { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${display}"` } };
        this.publish();
        await sleep(delay - shown, this.signal, changed);
      }
    }
    return undefined;
  }

  /** The container's spec, from the latest pod. */
  containerSpec(rec: ContainerRecord): Record<string, any> | undefined {
    const list = (rec.init ? this.pod['spec']?.initContainers : this.pod['spec']?.containers) as Array<Record<string, any>> | undefined;
    return list?.find((c) => c['name'] === rec.name);
  }

  private fieldPath(rec: ContainerRecord): string {
    return `spec.${rec.init ? 'initContainers' : 'containers'}{${rec.name}}`;
  }

  /** Resolves on the next change to the pod's spec. */
  private specChange(): Promise<void> {
    return new Promise((resolve) => this.specWaiters.push(resolve));
  }

  /** containers[*].image changed on the live pod: kill that container; its loop pulls the new image and starts it again. */
  private definitionChanged(name: string): void {
    const rec = this.records.get(name);
    if (!rec || rec.init || this.ending) return;
    const proc = rec.current?.proc;
    if (!proc?.running) return;
    rec.definitionChanged = true;
    this.event('Normal', 'Killing', `Container ${name} definition changed, will be restarted`, this.fieldPath(rec));
    void proc.stop(this.graceMs(this.pod['spec']?.terminationGracePeriodSeconds));
  }

  private graceMs(seconds: number | undefined): number {
    return (seconds ?? 30) * 1000 * this.options.terminationGraceScale;
  }

  /**
   * The process, environment, mounts and user of one container instance, in the order the kubelet's
   * generateContainerConfig meets its errors: environment, mounts (subPaths are created here), the
   * runAsNonRoot check; a missing command is the runtime's error, after all of them.
   */
  private async buildLaunch(rec: ContainerRecord, spec: Record<string, any>, pulled: PulledImage, id: string) {
    const security = effectiveSecurityContext(this.pod, spec);
    // containerd: runAsUser, else the image's user (the emulator's images have none: root); the group is
    // runAsGroup, else the user's group in the container's /etc/passwd, else 0.
    const uid = security.runAsUser ?? 0;
    const account = lookupAccount(uid);
    const env = this.containerEnv(spec, pulled, account?.home ?? '/');
    const lookup = new Map(env);
    const expand = (s: string): string => expandVars(s, (n) => lookup.get(n));
    const command = (spec['command'] as string[] | undefined)?.map(expand);
    const args = (spec['args'] as string[] | undefined)?.map(expand);
    let argv: string[];
    if (command && command.length > 0) argv = [...command, ...(args ?? [])];
    else argv = [...(pulled.config.entrypoint ?? []), ...(args ?? pulled.config.cmd ?? [])];
    const workingDir = normalizeAbsolute(String(spec['workingDir'] || pulled.config.workingDir || '/'));
    const workDir = join(this.podDir, 'containers', rec.name, id.slice(0, 12));
    await mkdir(workDir, { recursive: true });
    const mounts: ContainerMount[] = [];
    for (const vm of (spec['volumeMounts'] ?? []) as Array<{ name: string; mountPath: string; subPath?: string; subPathExpr?: string; readOnly?: boolean }>) {
      const vol = this.volumes?.get(vm.name);
      if (!vol) throw new ContainerConfigError('CreateContainerConfigError', `cannot find volume "${vm.name}" to mount into container "${rec.name}"`);
      const sub = vm.subPathExpr ? expand(vm.subPathExpr) : (vm.subPath ?? '');
      const source = await resolveSubPath(vol.hostPath, sub, vm.name, rec.name);
      mounts.push({ source, target: normalizeAbsolute(vm.mountPath), readOnly: Boolean(vm.readOnly) || vol.readOnly });
    }
    const refused = verifyRunAsNonRoot(security, `${this.name}_${this.namespace}(${this.uid})`, rec.name);
    if (refused) throw new ContainerConfigError('CreateContainerConfigError', refused);
    if (argv.length === 0) {
      throw new ContainerConfigError(
        'CreateContainerError',
        `failed to generate container "${id}" spec: failed to generate spec: no command specified (the Kubernetes emulator runs containers on the host's filesystem and cannot use an image's contents: give the container a command, or the image an Entrypoint/Cmd)`,
      );
    }
    // The kubelet's own files: /etc/hosts, /etc/hostname and the termination log.
    if (!mounts.some((m) => m.target === '/etc/hosts')) mounts.push({ source: join(this.podDir, 'etc-hosts'), target: '/etc/hosts', readOnly: false });
    if (!mounts.some((m) => m.target === '/etc/hostname')) mounts.push({ source: join(this.podDir, 'etc-hostname'), target: '/etc/hostname', readOnly: false });
    const terminationPath = normalizeAbsolute(String(spec['terminationMessagePath'] || '/dev/termination-log'));
    const terminationLog = join(workDir, 'termination-log');
    await writeFile(terminationLog, '');
    // As the kubelet does, whatever the umask: any container user may write its termination message.
    await chmod(terminationLog, 0o666);
    mounts.push({ source: terminationLog, target: terminationPath, readOnly: false });
    const gid = security.runAsGroup ?? account?.gid ?? 0;
    const user: ContainerUser = {
      uid,
      gid,
      groups: this.supplementaryGroups(gid, account?.name),
      noNewPrivs: spec['securityContext']?.allowPrivilegeEscalation === false,
    };
    return { id, rootDir: this.rootDir, workDir, hostname: this.hostname(), argv, env, workingDir, user, mounts, logPath: '' };
  }

  /**
   * The groups a container's processes hold, in the order containerd sets them: the primary group, the
   * groups the container's /etc/group lists the user in, then what the kubelet passes: fsGroup, the
   * pod's volumes' `pv.beta.kubernetes.io/gid`, supplementalGroups.
   */
  private supplementaryGroups(gid: number, userName: string | undefined): number[] {
    const podSecurity = (this.pod['spec']?.securityContext ?? {}) as { fsGroup?: number; supplementalGroups?: number[] };
    const supplemental = podSecurity.supplementalGroups ?? [];
    const volumeGroups = [...(this.volumes?.values() ?? [])]
      .flatMap((v) => v.supplementalGroups ?? [])
      // The kubelet's volume manager skips a volume's gid that supplementalGroups already holds.
      .filter((g) => !supplemental.includes(g));
    const all = [gid, ...(userName ? memberGroups(userName) : []), ...(podSecurity.fsGroup !== undefined ? [podSecurity.fsGroup] : []), ...volumeGroups, ...supplemental];
    return [...new Set(all)];
  }

  /** The container's environment: the image's, then HOSTNAME, then the spec's env and envFrom, HOME last (runc: the user's home). */
  private containerEnv(spec: Record<string, any>, pulled: PulledImage, home: string): Array<[string, string]> {
    const env = new Map<string, string>();
    for (const kv of pulled.config.env ?? []) {
      const eq = kv.indexOf('=');
      if (eq > 0) env.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
    if (!env.has('PATH')) env.set('PATH', defaultPath);
    env.set('HOSTNAME', this.hostname());
    const declared = new Map<string, string>();
    for (const from of (spec['envFrom'] ?? []) as Array<{ configMapRef?: { name: string; optional?: boolean }; secretRef?: { name: string; optional?: boolean } }>) {
      const ref = from.configMapRef ?? from.secretRef;
      if (ref && !ref.optional) throw new ContainerConfigError('CreateContainerConfigError', `${from.configMapRef ? 'configmap' : 'secret'} "${ref.name}" not found`);
    }
    for (const e of (spec['env'] ?? []) as Array<{ name: string; value?: string; valueFrom?: Record<string, any> }>) {
      let value: string | undefined;
      if (e.valueFrom) value = this.envValueFrom(e.valueFrom, spec);
      else value = expandVars(e.value ?? '', (n) => declared.get(n));
      if (value === undefined) continue;
      declared.set(e.name, value);
      env.set(e.name, value);
    }
    if (!env.has('HOME')) env.set('HOME', home);
    return [...env.entries()];
  }

  private envValueFrom(from: Record<string, any>, spec: Record<string, any>): string | undefined {
    if (from['fieldRef']) return this.fieldValue(String(from['fieldRef'].fieldPath));
    if (from['resourceFieldRef']) {
      const { resource, divisor, containerName } = from['resourceFieldRef'] as { resource: string; divisor?: string; containerName?: string };
      const target = containerName ? ((this.pod['spec']?.containers ?? []) as Array<Record<string, any>>).find((c) => c['name'] === containerName) : spec;
      const [kind, name] = resource.split('.') as [string, string];
      let value = quantity(target?.['resources']?.[kind]?.[name]);
      if (value === undefined && kind === 'limits') value = name === 'cpu' ? cpus().length : name === 'memory' ? totalmem() : undefined;
      if (value === undefined) value = 0;
      const div = quantity(divisor) ?? 1;
      return String(Math.ceil(value / div));
    }
    const ref = (from['configMapKeyRef'] ?? from['secretKeyRef']) as { name: string; key: string; optional?: boolean } | undefined;
    if (ref) {
      if (ref.optional) return undefined;
      throw new ContainerConfigError('CreateContainerConfigError', `${from['configMapKeyRef'] ? 'configmap' : 'secret'} "${ref.name}" not found`);
    }
    return undefined;
  }

  /** The downward API's field values. */
  fieldValue(path: string): string {
    const meta = this.pod.metadata;
    const m = path.match(/^metadata\.(labels|annotations)\['(.*)'\]$/);
    if (m) return String((meta[m[1] as 'labels' | 'annotations'] ?? {})[m[2]!] ?? '');
    switch (path) {
      case 'metadata.name':
        return meta.name ?? '';
      case 'metadata.namespace':
        return this.namespace;
      case 'metadata.uid':
        return this.uid;
      case 'spec.nodeName':
        return this.kubelet.nodeName;
      case 'spec.serviceAccountName':
        return String(this.pod['spec']?.serviceAccountName ?? 'default');
      case 'status.hostIP':
      case 'status.hostIPs':
        return hostIP;
      case 'status.podIP':
      case 'status.podIPs':
        return this.ip ?? '';
      default:
        throw new ContainerConfigError('CreateContainerConfigError', `unsupported fieldPath: ${path}`);
    }
  }

  private armDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    const seconds = this.pod['spec']?.activeDeadlineSeconds as number | undefined;
    if (seconds === undefined || !this.startTime || this.terminalPhase) return;
    const at = Date.parse(this.startTime) + seconds * 1000;
    this.deadlineTimer = setTimeout(() => void this.deadlineExceeded(), Math.max(0, at - Date.now()));
  }

  private async deadlineExceeded(): Promise<void> {
    if (this.ending || this.terminalPhase) return;
    const message = 'Pod was active on the node longer than the specified deadline';
    this.event('Normal', 'DeadlineExceeded', message);
    this.statusReason = { reason: 'DeadlineExceeded', message };
    this.lifecycle.abort();
    await this.killAll(this.graceMs(this.pod['spec']?.terminationGracePeriodSeconds));
    this.terminalPhase = 'Failed';
    this.sandboxReady = false;
    this.publish();
  }

  // --- ending ----------------------------------------------------------------------------------

  /** Stops every container, announcing it with Killing events. */
  private async killAll(graceMs: number): Promise<void> {
    const running = [...this.records.values()].filter((r) => r.current?.proc?.running);
    for (const r of running) this.event('Normal', 'Killing', `Stopping container ${r.name}`, this.fieldPath(r));
    await Promise.all(running.map((r) => r.current!.proc!.stop(graceMs)));
  }

  /**
   * The end of the pod on this node. 'deleted-graceful': deletionTimestamp set (stop with the grace
   * period, report the terminal status, release volumes, remove the object). 'deleted-now': the object
   * is already gone. 'evicted': the node is lost (kill at once, release, remove).
   */
  end(how: 'deleted-graceful' | 'deleted-now' | 'evicted'): Promise<void> {
    if (!this.ending) this.ending = this.finish(how);
    return this.ending;
  }

  private async finish(how: 'deleted-graceful' | 'deleted-now' | 'evicted'): Promise<void> {
    this.lifecycle.abort();
    for (const w of this.specWaiters.splice(0)) w();
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    if (this.evictionTimer) clearTimeout(this.evictionTimer);
    // A force-deleted pod (gone from the store) and an evicted one are killed at once.
    const graceSeconds = how === 'deleted-graceful' ? (this.pod.metadata.deletionGracePeriodSeconds ?? this.pod['spec']?.terminationGracePeriodSeconds ?? 30) : 0;
    if (how === 'evicted') this.frozen = true;
    await this.killAll(this.graceMs(graceSeconds));
    await this.main;
    for (const r of this.records.values()) r.prober?.stop();
    if (!this.terminalPhase && this.scheduled && this.startTime) {
      const regular = [...this.records.values()].filter((r) => !r.init);
      this.terminalPhase = regular.length > 0 && regular.every((r) => r.state['terminated']?.['exitCode'] === 0) ? 'Succeeded' : 'Failed';
    }
    this.sandboxReady = false;
    // As the real kubelet, reclaim everything (volumes, files, the IP) before the final status and removal.
    await this.release();
    await this.cleanup();
    if (!this.isDeleted && !this.kubelet.stopped) {
      this.publish();
      const current = this.ctx.store.get(podsType, this.namespace, this.name);
      if (current && current.metadata.uid === this.uid && (current.metadata.finalizers ?? []).length === 0) this.ctx.store.remove(podsType, this.namespace, this.name);
    }
    if (this.kubelet.workers.get(this.uid) === this) this.kubelet.workers.delete(this.uid);
  }

  private async release(): Promise<void> {
    if (this.released || !this.scheduled) return;
    this.released = true;
    try {
      await this.kubelet.volumes.release(this.pod);
    } catch (err) {
      this.ctx.log(`kubelet: releasing volumes of ${this.namespace}/${this.name}: ${(err as Error).message}`);
    }
  }

  private async cleanup(): Promise<void> {
    this.kubelet.ips.release(this.ip);
    if (!(await removeTree(this.podDir, this.ctx.stateDir)) && existsSync(this.podDir)) {
      this.ctx.log(`kubelet: left ${this.podDir} in place: something is still mounted below it`);
    }
  }

  /** For Kubelet.stop(): kill everything without reporting, keep the pod object as it is. */
  async shutdown(graceMs: number): Promise<void> {
    this.frozen = true;
    this.lifecycle.abort();
    for (const w of this.specWaiters.splice(0)) w();
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    if (this.evictionTimer) clearTimeout(this.evictionTimer);
    const procs = [...this.records.values()].flatMap((r) => [...r.instances.values()].map((i) => i.proc).filter((p): p is ContainerProcess => Boolean(p?.running)));
    await Promise.all(procs.map((p) => p.stop(graceMs)));
    for (const r of this.records.values()) r.prober?.stop();
    const giveUp = new AbortController();
    await Promise.race([Promise.allSettled([this.main, ...this.loops, this.ending]), sleep(graceMs + 2_000, giveUp.signal)]);
    giveUp.abort();
    // An instance may have been starting while we stopped: kill whatever is still there.
    const late = [...this.records.values()].flatMap((r) => [...r.instances.values()].map((i) => i.proc).filter((p): p is ContainerProcess => Boolean(p?.running)));
    for (const p of late) p.kill();
    await Promise.all(late.map((p) => p.exited));
    await this.release();
    this.kubelet.ips.release(this.ip);
  }

  // --- status ------------------------------------------------------------------------------------

  /** Records an event about the pod. */
  event(type: 'Normal' | 'Warning', reason: string, message: string, fieldPath?: string): void {
    if (this.frozen || this.kubelet.stopped) return;
    recordEvent(this.ctx.store, this.pod, type, reason, message, 'kubelet', fieldPath);
  }

  /** Writes the pod's status as the kubelet sees it now (one store write; none if nothing changed). */
  publish(): void {
    if (this.frozen || this.isDeleted || this.kubelet.stopped || !this.scheduled) return;
    const updated = this.ctx.store.mutate(podsType, this.namespace, this.name, (obj) => {
      if (obj.metadata.uid !== this.uid) return;
      obj['status'] = this.buildStatus(obj['status'] ?? {});
    });
    if (updated) this.pod = updated;
  }

  private buildStatus(previous: Record<string, any>): Record<string, any> {
    const records = [...this.records.values()];
    const inits = records.filter((r) => r.init);
    const regular = records.filter((r) => !r.init);
    const phase = this.terminalPhase ?? podPhase(this.pod, inits, regular);
    const conditions = this.conditions(previous['conditions'] ?? [], phase, inits, regular);
    const status: Record<string, any> = {
      phase,
      conditions,
      ...(this.statusReason ? { reason: this.statusReason.reason, message: this.statusReason.message } : {}),
      hostIP,
      hostIPs: [{ ip: hostIP }],
      ...(this.ip ? { podIP: this.ip, podIPs: [{ ip: this.ip }] } : {}),
      ...(this.startTime ? { startTime: this.startTime } : {}),
      ...(inits.length > 0 ? { initContainerStatuses: inits.map((r) => this.containerStatus(r)) } : {}),
      containerStatuses: regular.map((r) => this.containerStatus(r)),
      qosClass: qosClass(this.pod),
    };
    return status;
  }

  private containerStatus(rec: ContainerRecord): Record<string, any> {
    const spec = this.containerSpec(rec);
    const mounts = ((spec?.['volumeMounts'] ?? []) as Array<{ name: string; mountPath: string; readOnly?: boolean }>).map((m) => ({
      name: m.name,
      mountPath: m.mountPath,
      ...(m.readOnly ? { readOnly: true, recursiveReadOnly: 'Disabled' } : {}),
    }));
    return {
      name: rec.name,
      state: rec.state,
      lastState: rec.lastState,
      ready: rec.ready,
      restartCount: rec.restartCount,
      image: rec.image,
      imageID: rec.imageID,
      ...(rec.containerID ? { containerID: rec.containerID } : {}),
      started: rec.init ? Boolean(rec.state['running']) : rec.started && Boolean(rec.state['running']),
      ...(mounts.length > 0 ? { volumeMounts: mounts } : {}),
    };
  }

  private conditions(previous: Array<Record<string, any>>, phase: string, inits: ContainerRecord[], regular: ContainerRecord[]): Array<Record<string, any>> {
    const list: Array<Record<string, any>> = [];
    const add = (type: string, ok: boolean, reason?: string, message?: string): void => {
      const before = previous.find((c) => c['type'] === type);
      const status = ok ? 'True' : 'False';
      list.push({
        type,
        status,
        lastProbeTime: null,
        lastTransitionTime: before && before['status'] === status ? before['lastTransitionTime'] : now(),
        ...(reason ? { reason } : {}),
        ...(message ? { message } : {}),
      });
    };
    const terminal = phase === 'Succeeded' || phase === 'Failed';
    add('PodReadyToStartContainers', this.sandboxReady);
    const incomplete = inits.filter((r) => !r.done).map((r) => r.name);
    if (incomplete.length === 0) add('Initialized', true);
    else add('Initialized', false, 'ContainersNotInitialized', `containers with incomplete status: [${incomplete.join(' ')}]`);
    const unready = regular.filter((r) => !r.ready).map((r) => r.name);
    let reason: string | undefined;
    let message: string | undefined;
    if (phase === 'Succeeded') reason = 'PodCompleted';
    else if (phase === 'Failed') reason = 'PodFailed';
    else if (unready.length > 0) {
      reason = 'ContainersNotReady';
      message = `containers with unready status: [${unready.join(' ')}]`;
    }
    const ready = !terminal && unready.length === 0;
    add('Ready', ready, reason, message);
    add('ContainersReady', ready, reason, message);
    add('PodScheduled', true);
    if (this.disruption) add('DisruptionTarget', true, this.disruption.reason, this.disruption.message);
    return list;
  }
}

/** kubelet getPhase: the pod's phase from its containers' states (restartable init containers not modelled). */
function podPhase(pod: KubeObject, inits: ContainerRecord[], regular: ContainerRecord[]): string {
  const policy = pod['spec']?.restartPolicy ?? 'Always';
  let pendingInit = 0;
  let failedInit = 0;
  for (const r of inits) {
    if (r.state['running']) pendingInit++;
    else if (r.state['terminated']) {
      if (r.state['terminated']['exitCode'] !== 0) failedInit++;
    } else if (r.state['waiting']) {
      if (r.lastState['terminated']) {
        if (r.lastState['terminated']['exitCode'] !== 0) failedInit++;
      } else pendingInit++;
    } else pendingInit++;
  }
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const r of regular) {
    if (r.state['running']) running++;
    else if (r.state['terminated']) {
      stopped++;
      if (r.state['terminated']['exitCode'] === 0) succeeded++;
    } else if (r.state['waiting']) {
      if (r.lastState['terminated']) stopped++;
      else waiting++;
    }
  }
  if (failedInit > 0 && policy === 'Never') return 'Failed';
  const anyStarted = regular.some((r) => r.created > 0);
  if ((pendingInit > 0 && !anyStarted) || waiting > 0) return 'Pending';
  if (running > 0) return 'Running';
  if (running === 0 && stopped > 0) {
    if (policy === 'Always') return 'Running';
    if (stopped === succeeded) return 'Succeeded';
    if (policy === 'Never') return 'Failed';
    return 'Running';
  }
  return 'Pending';
}

function upsertCondition(conditions: Array<Record<string, any>> | undefined, cond: { type: string; status: string; reason?: string; message?: string }): Array<Record<string, any>> {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c['type'] === cond.type);
  const before = i >= 0 ? list[i] : undefined;
  const next = {
    type: cond.type,
    status: cond.status,
    lastProbeTime: null,
    lastTransitionTime: before && before['status'] === cond.status ? before['lastTransitionTime'] : now(),
    ...(cond.reason ? { reason: cond.reason } : {}),
    ...(cond.message ? { message: cond.message } : {}),
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

/** `/a/b/` → `/a/b`; relative paths are made absolute. */
function normalizeAbsolute(p: string): string {
  const n = posix.normalize(p.startsWith('/') ? p : `/${p}`);
  return n.length > 1 ? n.replace(/\/+$/, '') : n;
}

/**
 * The host path of a volume's subPath, refusing paths that leave the volume. A missing one is made as
 * the kubelet's makeMounts makes it (SafeMakeDir): by root, each new directory with the volume root's
 * mode (setgid included, whatever the umask), so that an fsGroup volume's subPath is the group's too.
 */
async function resolveSubPath(volumePath: string, subPath: string, mountName: string, containerName: string): Promise<string> {
  if (!subPath) return volumePath;
  if (posix.isAbsolute(subPath) || subPath.split('/').includes('..')) {
    throw new ContainerConfigError('CreateContainerConfigError', `failed to prepare subPath for volumeMount: invalid subpath "${subPath}"`);
  }
  const base = realpathSync(volumePath);
  const outside = (real: string): ContainerConfigError =>
    new ContainerConfigError('CreateContainerConfigError', `failed to prepare subPath for volumeMount: subpath "${real}" not within volume path "${base}"`);
  const target = join(base, subPath);
  if (!existsSync(target) && !isSymlink(target)) {
    const perm = (await stat(volumePath)).mode & 0o7777;
    const parts = subPath.split('/').filter((p) => p !== '' && p !== '.');
    let existing = base;
    let i = 0;
    while (i < parts.length && (existsSync(join(existing, parts[i]!)) || isSymlink(join(existing, parts[i]!)))) existing = join(existing, parts[i++]!);
    try {
      // The directories already there must not lead out of the volume before anything is made below them.
      let at = realpathSync(existing);
      if (at !== base && !at.startsWith(base + '/')) throw new Error(`path ${at} is outside of allowed base ${base}`);
      for (const part of parts.slice(i)) {
        at = join(at, part);
        await mkdir(at);
        await chmod(at, perm);
      }
    } catch {
      // The kubelet words it so (the details could tell the user about the host's filesystem).
      throw new ContainerConfigError('CreateContainerConfigError', `failed to create subPath directory for volumeMount "${mountName}" of container "${containerName}"`);
    }
  }
  const real = realpathSync(target);
  if (real !== base && !real.startsWith(base + '/')) throw outside(real);
  return real;
}

/** The securityContext fields that pod and container both have, the container's winning (DetermineEffectiveSecurityContext). */
interface EffectiveSecurity {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
}

function effectiveSecurityContext(pod: KubeObject, container: Record<string, any>): EffectiveSecurity {
  const podSc = (pod['spec']?.securityContext ?? {}) as Record<string, unknown>;
  const sc = (container['securityContext'] ?? {}) as Record<string, unknown>;
  const pick = <T>(key: string, type: 'number' | 'boolean'): T | undefined => {
    const v = typeof sc[key] === type ? sc[key] : podSc[key];
    return typeof v === type ? (v as T) : undefined;
  };
  const out: EffectiveSecurity = {};
  const runAsUser = pick<number>('runAsUser', 'number');
  const runAsGroup = pick<number>('runAsGroup', 'number');
  const runAsNonRoot = pick<boolean>('runAsNonRoot', 'boolean');
  if (runAsUser !== undefined) out.runAsUser = runAsUser;
  if (runAsGroup !== undefined) out.runAsGroup = runAsGroup;
  if (runAsNonRoot !== undefined) out.runAsNonRoot = runAsNonRoot;
  return out;
}

/**
 * The kubelet's verifyRunAsNonRoot (pkg/kubelet/kuberuntime/security_context_others.go): the message of
 * a CreateContainerConfigError, or undefined when the container may run. The emulator's images have no
 * user of their own, so without runAsUser a container runs as root, as an image without USER does.
 */
function verifyRunAsNonRoot(sc: EffectiveSecurity, podDesc: string, containerName: string): string | undefined {
  if (sc.runAsNonRoot !== true) return undefined;
  if (sc.runAsUser !== undefined) {
    return sc.runAsUser === 0 ? `container's runAsUser breaks non-root policy (pod: ${JSON.stringify(podDesc)}, container: ${containerName})` : undefined;
  }
  return `container has runAsNonRoot and image will run as root (pod: ${JSON.stringify(podDesc)}, container: ${containerName})`;
}

/** A user of the container's /etc/passwd (the host's /etc, which every container sees). */
interface Account {
  name: string;
  gid: number;
  home: string;
}

/** The first /etc/passwd entry with this uid, as containerd and runc look the user up; undefined when none. */
function lookupAccount(uid: number): Account | undefined {
  for (const line of readLines('/etc/passwd')) {
    const f = line.split(':');
    if (f.length < 7 || Number(f[2]) !== uid || !/^\d+$/.test(f[2]!)) continue;
    return { name: f[0]!, gid: /^\d+$/.test(f[3]!) ? Number(f[3]) : 0, home: f[5] || '/' };
  }
  return undefined;
}

/** The gids of /etc/group entries that list `user` as a member (containerd's WithAdditionalGIDs). */
function memberGroups(user: string): number[] {
  const gids: number[] = [];
  for (const line of readLines('/etc/group')) {
    const f = line.split(':');
    if (f.length < 4 || f[0] === user || !/^\d+$/.test(f[2]!)) continue;
    if (f[3]!.split(',').includes(user)) gids.push(Number(f[2]));
  }
  return gids;
}

function readLines(file: string): string[] {
  return readFileSyncOr(file).split('\n').filter((l) => l && !l.startsWith('#'));
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Probes

type ProbeKind = 'startup' | 'readiness' | 'liveness';
const probeTitle: Record<ProbeKind, string> = { startup: 'Startup', readiness: 'Readiness', liveness: 'Liveness' };

/** Runs a container instance's probes and applies their results. */
class Prober {
  private readonly abort = new AbortController();

  constructor(
    private readonly worker: PodWorker,
    private readonly rec: ContainerRecord,
    private readonly instance: Instance,
    private readonly spec: Record<string, any>,
  ) {}

  start(): void {
    for (const kind of ['startup', 'readiness', 'liveness'] as const) {
      const probe = this.spec[`${kind}Probe`] as ProbeSpec | undefined;
      if (probe) void this.loop(kind, probe);
    }
  }

  stop(): void {
    this.abort.abort();
  }

  private get scale(): number {
    return this.worker.kubelet.options.probeTimeScale;
  }

  private async loop(kind: ProbeKind, probe: ProbeSpec): Promise<void> {
    const signal = this.abort.signal;
    const period = Math.max(10, (probe.periodSeconds ?? 10) * 1000 * this.scale);
    const timeout = Math.max(10, (probe.timeoutSeconds ?? 1) * 1000 * this.scale);
    const successThreshold = probe.successThreshold ?? 1;
    const failureThreshold = probe.failureThreshold ?? 3;
    await sleep((probe.initialDelaySeconds ?? 0) * 1000 * this.scale, signal);
    let successes = 0;
    let failures = 0;
    while (!signal.aborted) {
      if (kind !== 'startup' && this.spec['startupProbe'] && !this.rec.started) {
        await sleep(period, signal);
        continue;
      }
      if (kind === 'startup' && this.rec.started) return;
      const result = await this.runProbe(probe, timeout);
      if (signal.aborted) return;
      const fieldPath = `spec.containers{${this.rec.name}}`;
      if (!result.ok) {
        this.worker.event('Warning', 'Unhealthy', `${probeTitle[kind]} probe ${result.errored ? 'errored' : 'failed'}: ${result.output}`, fieldPath);
        failures++;
        successes = 0;
      } else {
        successes++;
        failures = 0;
      }
      if (kind === 'readiness') {
        if (result.ok && successes >= successThreshold && !this.rec.ready) {
          this.rec.ready = true;
          this.worker.publish();
        } else if (!result.ok && failures >= failureThreshold && this.rec.ready) {
          this.rec.ready = false;
          this.worker.publish();
        }
      } else if (kind === 'startup') {
        if (result.ok) {
          this.rec.started = true;
          this.worker.publish();
          if (!this.spec['readinessProbe']) {
            this.rec.ready = true;
            this.worker.publish();
          }
          return;
        }
        if (failures >= failureThreshold) return this.restart(kind, probe);
      } else if (!result.ok && failures >= failureThreshold) return this.restart(kind, probe);
      await sleep(period, signal);
    }
  }

  private restart(kind: ProbeKind, probe: ProbeSpec): void {
    this.worker.event('Normal', 'Killing', `Container ${this.rec.name} failed ${kind} probe, will be restarted`, `spec.containers{${this.rec.name}}`);
    this.stop();
    const seconds = probe.terminationGracePeriodSeconds ?? this.worker.pod['spec']?.terminationGracePeriodSeconds ?? 30;
    void this.instance.proc?.stop(seconds * 1000 * this.worker.kubelet.options.terminationGraceScale);
  }

  private async runProbe(probe: ProbeSpec, timeoutMs: number): Promise<{ ok: boolean; output: string; errored?: boolean }> {
    try {
      if (probe.exec) return await this.execProbe(probe.exec.command ?? [], timeoutMs);
      if (probe.httpGet) return await this.httpProbe(probe.httpGet, timeoutMs);
      if (probe.tcpSocket) return await this.tcpProbe(probe.tcpSocket, timeoutMs);
      return { ok: false, errored: true, output: 'the Kubernetes emulator does not support this probe type' };
    } catch (err) {
      return { ok: false, errored: true, output: (err as Error).message };
    }
  }

  private async execProbe(command: string[], timeoutMs: number): Promise<{ ok: boolean; output: string; errored?: boolean }> {
    const pid = this.instance.proc?.initPid;
    if (!pid) return { ok: false, errored: true, output: 'rpc error: code = NotFound desc = failed to exec in container: container is in CONTAINER_EXITED state' };
    const env = new Map(this.instance.env);
    const argv = command.map((c) => expandVars(c, (n) => env.get(n)));
    const child = spawnInContainer(pid, this.instance.user, this.instance.env, this.instance.workingDir, argv);
    this.worker.kubelet.execChildren.add(child);
    child.stdin?.end();
    let output = '';
    const collect = (c: Buffer): void => {
      if (output.length < 10 * 1024) output += c.toString('utf8');
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    const started = startLine(child);
    const result = await new Promise<{ code: number | null; timedOut: boolean }>((resolve) => {
      const timer = setTimeout(() => {
        if (child.pid) killTree(child.pid);
        resolve({ code: null, timedOut: true });
      }, timeoutMs);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, timedOut: false });
      });
    });
    this.worker.kubelet.execChildren.delete(child);
    if (result.timedOut) return { ok: false, output: `command "${argv.join(' ')}" timed out` };
    const line = await started;
    if (line !== 'started') {
      return {
        ok: false,
        errored: true,
        output: `rpc error: code = Unknown desc = failed to exec in container: failed to start exec "${randomBytes(32).toString('hex')}": OCI runtime exec failed: exec failed: unable to start container process: ${line}: unknown`,
      };
    }
    return { ok: result.code === 0, output: output.slice(0, 10 * 1024) };
  }

  private port(port: number | string): number {
    if (typeof port === 'number') return port;
    if (/^\d+$/.test(port)) return Number(port);
    const found = ((this.spec['ports'] ?? []) as Array<{ name?: string; containerPort: number }>).find((p) => p.name === port);
    if (!found) throw new Error(`unable to find port "${port}"`);
    return found.containerPort;
  }

  private async httpProbe(get: NonNullable<ProbeSpec['httpGet']>, timeoutMs: number): Promise<{ ok: boolean; output: string }> {
    const host = get.host || this.worker.ip || '127.0.0.1';
    const scheme = (get.scheme ?? 'HTTP').toLowerCase();
    const path = get.path ? (get.path.startsWith('/') ? get.path : `/${get.path}`) : '/';
    const url = `${scheme}://${host}:${this.port(get.port)}${path}`;
    const headers: Record<string, string> = { 'user-agent': 'kube-probe/1.31', accept: '*/*' };
    for (const h of get.httpHeaders ?? []) headers[h.name.toLowerCase()] = h.value;
    try {
      const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
      await res.body?.cancel();
      if (res.status >= 200 && res.status < 400) return { ok: true, output: '' };
      return { ok: false, output: `HTTP probe failed with statuscode: ${res.status}` };
    } catch (err) {
      const e = err as { name?: string; cause?: { code?: string } };
      if (e.name === 'TimeoutError' || e.name === 'AbortError') return { ok: false, output: `Get "${url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)` };
      const code = e.cause?.code;
      const detail = code === 'ECONNREFUSED' ? 'connect: connection refused' : (code ?? (err as Error).message);
      return { ok: false, output: `Get "${url}": dial tcp ${host}:${this.port(get.port)}: ${detail}` };
    }
  }

  private tcpProbe(tcp: NonNullable<ProbeSpec['tcpSocket']>, timeoutMs: number): Promise<{ ok: boolean; output: string }> {
    const host = tcp.host || this.worker.ip || '127.0.0.1';
    const port = this.port(tcp.port);
    return new Promise((resolve) => {
      const socket = connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        resolve({ ok: false, output: `dial tcp ${host}:${port}: i/o timeout` });
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.destroy();
        resolve({ ok: true, output: '' });
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve({ ok: false, output: `dial tcp ${host}:${port}: ${err.code === 'ECONNREFUSED' ? 'connect: connection refused' : err.message}` });
      });
    });
  }
}
