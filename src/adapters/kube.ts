// The Kubernetes edge: verb-shaped calls over @kubernetes/client-node. A lookup returns undefined only for a
// 404; everything else is an error.
import { setTimeout as delay } from 'node:timers/promises';
import * as k8s from '@kubernetes/client-node';
import { GkubeError } from '../errors.js';
import { execInPod, type ExecRequest, type ExecResult } from './kube-exec.js';

/** Where the kubeconfig comes from. */
export interface KubeConnection {
  /** A kubeconfig file; undefined means in-cluster (service account) configuration. */
  kubeconfig?: string;
  context?: string;
  /** Deadline of each call. */
  callTimeoutMs: number;
}

/** What gkube reads of a pod. */
export interface PodSummary {
  name: string;
  namespace: string;
  uid: string;
  phase: string;
  ready: boolean;
  /** Every container's state is running (its process started and has not ended). */
  running: boolean;
  /** The images the containers' statuses report (what actually runs), in container order. */
  runningImages: string[];
  /** When the most recently started running container started (the API server's clock). */
  startedAt?: string;
  ip?: string;
  node?: string;
  images: string[];
  restarts: number;
  /** How the most recently ended container ended, as `kubectl describe` shows Last State: "exit code 1 (Error) at …". */
  lastEnd?: string;
  /** Why the first not-ready container waits or ended, e.g. ImagePullBackOff. */
  waitingReason?: string;
  /** The kubelet's message with that reason. */
  waitingMessage?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  deleting: boolean;
}

/** One event about an object. */
export interface EventSummary {
  type: string;
  reason: string;
  message: string;
  count: number;
  lastSeen: string;
}

/** What the rest of gkube may do with the cluster. */
export interface KubePort {
  readonly server: string;
  findPod(namespace: string, name: string): Promise<PodSummary | undefined>;
  /** Deletes a pod; false when it was already gone. */
  deletePod(namespace: string, name: string): Promise<boolean>;
  /** Deletes a claim; false when it was already gone. */
  deleteClaim(namespace: string, name: string): Promise<boolean>;
  /**
   * Deletes the object if it carries every one of `labels` ('foreign' when it does not: it is left alone),
   * with its uid as a precondition so that an object made again meanwhile is never hit.
   */
  deleteObject(kind: 'PersistentVolume' | 'Endpoints' | 'Service', namespace: string, name: string, labels: Record<string, string>): Promise<'deleted' | 'absent' | 'foreign'>;
  /** A PersistentVolume's phase, labels and Gluster path, or undefined when it does not exist. */
  findPersistentVolume(name: string): Promise<{ name: string; phase: string; labels: Record<string, string>; glusterPath?: string } | undefined>;
  events(namespace: string, name: string): Promise<EventSummary[]>;
  serverVersion(): Promise<string>;
  /** Creates an object from a manifest (Pod, PersistentVolumeClaim, PersistentVolume, Endpoints, Service); false when one of that name exists. */
  create(manifest: Record<string, unknown>): Promise<boolean>;
  /**
   * Waits until the pod is Ready (see waitForPod).
   */
  waitForReady(namespace: string, name: string, timeoutMs: number, onChange?: (state: string) => void): Promise<PodSummary>;
  /**
   * Waits until the pod's containers run (`until: 'running'`) or the pod is Ready, and the state has held
   * for `settleMs` with no restart (a crashing command is briefly "running" too). Fails fast
   * (OPERATION_FAILED) when a container waits in ImagePullBackOff, ErrImagePull, CrashLoopBackOff or a create
   * error, with the reason, the message and the last log lines; calls `onChange` with a one-line state
   * whenever it changes; stops with ABORTED when `signal` fires.
   */
  waitForPod(namespace: string, name: string, options: WaitOptions): Promise<PodSummary>;
  /** Waits until no pod of that name exists (a deleted pod first terminates); false at the deadline. */
  waitForPodGone(namespace: string, name: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
  /** Sets the container's image (the one pod spec field Kubernetes changes in place) and merges annotations. */
  patchPod(namespace: string, name: string, change: { container?: string; image?: string; annotations?: Record<string, string> }): Promise<void>;
  /** The claim's phase and labels, or undefined when it does not exist. */
  findClaim(namespace: string, name: string): Promise<ClaimSummary | undefined>;
  /** GET through the API server's pod proxy: the app's answer, whatever its status. */
  proxyGet(namespace: string, pod: string, port: number, path: string, timeoutMs: number): Promise<{ status: number; body: string }>;
  /** Runs a command in a container (see kube-exec.ts). */
  exec(request: ExecRequest): Promise<ExecResult>;
  /**
   * The last `lines` lines of the pod's log ('' when there is none yet); with `previous`, of the container
   * that ran before its last restart ('' when it never restarted), as `kubectl logs --previous`.
   */
  logTail(namespace: string, name: string, lines: number, previous?: boolean): Promise<string>;
}

/** How waitForPod waits. */
export interface WaitOptions {
  until: 'running' | 'ready';
  timeoutMs: number;
  /** Also wait until the containers' statuses report this image (after an image change). */
  image?: string;
  /** How long the state must hold with no restart; 1.5 s by default. */
  settleMs?: number;
  signal?: AbortSignal;
  onChange?: (state: string) => void;
}

/** What gkube reads of a claim. */
export interface ClaimSummary {
  name: string;
  phase: string;
  volumeName?: string;
  labels: Record<string, string>;
  deleting: boolean;
}

/** Reasons a container can wait in that will not resolve by waiting longer. */
export const hopelessReasons = new Set(['ImagePullBackOff', 'ErrImagePull', 'CrashLoopBackOff', 'CreateContainerError', 'CreateContainerConfigError', 'InvalidImageName', 'RunContainerError']);

/** Loads the kubeconfig (or the in-cluster configuration) and returns the port; no request is made yet. */
export function connectKube(connection: KubeConnection): KubePort {
  const config = new k8s.KubeConfig();
  try {
    if (connection.kubeconfig) config.loadFromFile(connection.kubeconfig);
    else config.loadFromCluster();
    if (connection.context) config.setCurrentContext(connection.context);
  } catch (err) {
    throw new GkubeError('INVALID_CONFIG', `kubeconfig ${connection.kubeconfig ?? '(in-cluster)'} could not be read: ${(err as Error).message}`, {
      hint: 'pass --kubeconfig FILE or set KUBECONFIG',
      cause: err,
    });
  }
  const cluster = config.getCurrentCluster();
  if (!cluster) throw new GkubeError('INVALID_CONFIG', `kubeconfig ${connection.kubeconfig ?? '(in-cluster)'} names no cluster for context ${config.getCurrentContext() || '(none)'}`);
  return new ClientNodePort(config, cluster.server, connection.callTimeoutMs);
}

class ClientNodePort implements KubePort {
  private readonly core: k8s.CoreV1Api;
  private readonly version: k8s.VersionApi;

  constructor(
    private readonly config: k8s.KubeConfig,
    readonly server: string,
    private readonly timeoutMs: number,
  ) {
    this.core = config.makeApiClient(k8s.CoreV1Api);
    this.version = config.makeApiClient(k8s.VersionApi);
  }

  async findPod(namespace: string, name: string): Promise<PodSummary | undefined> {
    const pod = await this.optional(() => this.core.readNamespacedPod({ name, namespace }));
    return pod ? summarisePod(pod) : undefined;
  }

  async deletePod(namespace: string, name: string): Promise<boolean> {
    return (await this.optional(() => this.core.deleteNamespacedPod({ name, namespace }))) !== undefined;
  }

  async deleteClaim(namespace: string, name: string): Promise<boolean> {
    return (await this.optional(() => this.core.deleteNamespacedPersistentVolumeClaim({ name, namespace }))) !== undefined;
  }

  async deleteObject(kind: 'PersistentVolume' | 'Endpoints' | 'Service', namespace: string, name: string, labels: Record<string, string>): Promise<'deleted' | 'absent' | 'foreign'> {
    type Api = { read: () => Promise<{ metadata?: k8s.V1ObjectMeta }>; remove: (body: k8s.V1DeleteOptions) => Promise<unknown> };
    const apis: Record<typeof kind, Api> = {
      PersistentVolume: { read: () => this.core.readPersistentVolume({ name }), remove: (body) => this.core.deletePersistentVolume({ name, body }) },
      Endpoints: { read: () => this.core.readNamespacedEndpoints({ name, namespace }), remove: (body) => this.core.deleteNamespacedEndpoints({ name, namespace, body }) },
      Service: { read: () => this.core.readNamespacedService({ name, namespace }), remove: (body) => this.core.deleteNamespacedService({ name, namespace, body }) },
    };
    const api = apis[kind];
    const found = await this.optional(api.read);
    if (!found) return 'absent';
    const have = found.metadata?.labels ?? {};
    if (Object.entries(labels).some(([k, v]) => have[k] !== v)) return 'foreign';
    const deleted = await this.optional(() => api.remove({ preconditions: { uid: found.metadata?.uid ?? '' } }));
    return deleted === undefined ? 'absent' : 'deleted';
  }

  async findPersistentVolume(name: string): Promise<{ name: string; phase: string; labels: Record<string, string>; glusterPath?: string } | undefined> {
    const pv = await this.optional(() => this.core.readPersistentVolume({ name }));
    if (!pv) return undefined;
    return { name, phase: pv.status?.phase ?? 'Pending', labels: pv.metadata?.labels ?? {}, ...(pv.spec?.glusterfs?.path ? { glusterPath: pv.spec.glusterfs.path } : {}) };
  }

  async events(namespace: string, name: string): Promise<EventSummary[]> {
    const list = await this.call(() => this.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` }));
    return list.items
      .map((e) => ({ type: e.type ?? '', reason: e.reason ?? '', message: e.message ?? '', count: e.count ?? 1, lastSeen: toIso(e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp) }))
      .sort((a, b) => (a.lastSeen < b.lastSeen ? -1 : 1));
  }

  async create(manifest: Record<string, unknown>): Promise<boolean> {
    const meta = manifest['metadata'] as { namespace: string };
    try {
      if (manifest['kind'] === 'Pod') await this.call(() => this.core.createNamespacedPod({ namespace: meta.namespace, body: manifest as k8s.V1Pod }));
      else if (manifest['kind'] === 'PersistentVolumeClaim') await this.call(() => this.core.createNamespacedPersistentVolumeClaim({ namespace: meta.namespace, body: manifest as k8s.V1PersistentVolumeClaim }));
      else if (manifest['kind'] === 'PersistentVolume') await this.call(() => this.core.createPersistentVolume({ body: manifest as k8s.V1PersistentVolume }));
      else if (manifest['kind'] === 'Endpoints') await this.call(() => this.core.createNamespacedEndpoints({ namespace: meta.namespace, body: manifest as k8s.V1Endpoints }));
      else if (manifest['kind'] === 'Service') await this.call(() => this.core.createNamespacedService({ namespace: meta.namespace, body: manifest as k8s.V1Service }));
      else throw new Error(`gkube does not create ${String(manifest['kind'])} objects`);
      return true;
    } catch (err) {
      if (err instanceof k8s.ApiException && err.code === 409) return false;
      throw err;
    }
  }

  waitForReady(namespace: string, name: string, timeoutMs: number, onChange?: (state: string) => void): Promise<PodSummary> {
    return this.waitForPod(namespace, name, { until: 'ready', timeoutMs, ...(onChange ? { onChange } : {}) });
  }

  async waitForPod(namespace: string, name: string, options: WaitOptions): Promise<PodSummary> {
    const deadline = Date.now() + options.timeoutMs;
    const settleMs = options.settleMs ?? 1_500;
    let last = '';
    // When the wanted state was first seen, and the restart count then: it must hold, restart-free, for settleMs.
    let heldSince: { at: number; restarts: number } | undefined;
    for (;;) {
      throwIfAborted(options.signal, `waiting for pod ${namespace}/${name}`);
      const pod = await this.findPod(namespace, name);
      const state = pod ? describeState(pod) : 'not created yet';
      if (state !== last) options.onChange?.(state);
      last = state;
      const wanted = pod !== undefined && !pod.deleting && (options.until === 'ready' ? pod.ready && pod.running : pod.running) && (options.image === undefined || pod.runningImages.every((i) => sameImage(i, options.image!)));
      if (wanted) {
        // A container that has run for a while already held its state: no need to watch it for settleMs again.
        // (startedAt has whole seconds: the second after it is the earliest the container surely ran.)
        if (!heldSince || heldSince.restarts !== pod.restarts) heldSince = { at: Math.min(Date.now(), pod.startedAt ? Date.parse(pod.startedAt) + 1_000 || Date.now() : Date.now()), restarts: pod.restarts };
        if (Date.now() - heldSince.at >= settleMs) return pod;
      } else heldSince = undefined;
      if (pod?.waitingReason && hopelessReasons.has(pod.waitingReason)) {
        const tail = await this.logTail(namespace, name, 20).catch(() => '');
        throw new GkubeError('OPERATION_FAILED', `pod ${namespace}/${name} cannot start: ${pod.waitingReason}${pod.waitingMessage ? `: ${pod.waitingMessage}` : ''}`, {
          hint: tail ? `last log lines:\n${tail}` : `see kubectl describe pod -n ${namespace} ${name}`,
        });
      }
      if (Date.now() >= deadline) {
        throw new GkubeError('OPERATION_FAILED', `pod ${namespace}/${name} was not ${options.until} within ${Math.round(options.timeoutMs / 1000)}s (last state: ${state})`, { hint: 'raise --timeout, or see gkube describe' });
      }
      await sleep(500, options.signal);
    }
  }

  async waitForPodGone(namespace: string, name: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      throwIfAborted(signal, `waiting for pod ${namespace}/${name} to go`);
      if (!(await this.findPod(namespace, name))) return true;
      if (Date.now() >= deadline) return false;
      await sleep(500, signal);
    }
  }

  async patchPod(namespace: string, name: string, change: { container?: string; image?: string; annotations?: Record<string, string> }): Promise<void> {
    const body: Record<string, unknown> = {};
    if (change.annotations) body['metadata'] = { annotations: change.annotations };
    if (change.image) body['spec'] = { containers: [{ name: change.container ?? 'app', image: change.image }] };
    await this.call(() => this.core.patchNamespacedPod({ name, namespace, body }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch)));
  }

  async findClaim(namespace: string, name: string): Promise<ClaimSummary | undefined> {
    const claim = await this.optional(() => this.core.readNamespacedPersistentVolumeClaim({ name, namespace }));
    if (!claim) return undefined;
    const summary: ClaimSummary = { name, phase: claim.status?.phase ?? 'Pending', labels: claim.metadata?.labels ?? {}, deleting: claim.metadata?.deletionTimestamp !== undefined };
    if (claim.spec?.volumeName) summary.volumeName = claim.spec.volumeName;
    return summary;
  }

  async proxyGet(namespace: string, pod: string, port: number, path: string, timeoutMs: number): Promise<{ status: number; body: string }> {
    const relative = path.replace(/^\/+/, '');
    try {
      const body = await this.call(() => this.core.connectGetNamespacedPodProxyWithPath({ name: `${pod}:${port}`, namespace, path: relative }), timeoutMs);
      return { status: 200, body: typeof body === 'string' ? body : JSON.stringify(body) };
    } catch (err) {
      if (err instanceof k8s.ApiException) return { status: err.code, body: typeof err.body === 'string' ? err.body : JSON.stringify(err.body ?? '') };
      throw err;
    }
  }

  exec(request: ExecRequest): Promise<ExecResult> {
    return execInPod(this.config, request);
  }

  async logTail(namespace: string, name: string, lines: number, previous = false): Promise<string> {
    try {
      const text = await this.optional(() => this.core.readNamespacedPodLog({ name, namespace, tailLines: lines, ...(previous ? { previous } : {}) }));
      return typeof text === 'string' ? text.trimEnd() : '';
    } catch (err) {
      // The API server answers 400 "previous terminated container ... not found" when there was no restart.
      if (previous && err instanceof k8s.ApiException && err.code === 400) return '';
      throw err;
    }
  }

  async serverVersion(): Promise<string> {
    const v = await this.call(() => this.version.getCode());
    return v.gitVersion;
  }

  private async optional<T>(fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await this.call(fn);
    } catch (err) {
      if (err instanceof k8s.ApiException && err.code === 404) return undefined;
      throw err;
    }
  }

  private async call<T>(fn: () => Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new GkubeError('DEPENDENCY_UNREACHABLE', `the Kubernetes API at ${this.server} did not answer within ${Math.round(timeoutMs / 1000)}s`)), timeoutMs);
    });
    try {
      return await Promise.race([fn(), deadline]);
    } catch (err) {
      if (err instanceof k8s.ApiException || err instanceof GkubeError) throw err;
      throw new GkubeError('DEPENDENCY_UNREACHABLE', `the Kubernetes API at ${this.server} is unreachable: ${(err as Error).message}`, { hint: 'check --kubeconfig / KUBECONFIG and --context', cause: err });
    } finally {
      clearTimeout(timer);
    }
  }
}

function summarisePod(pod: k8s.V1Pod): PodSummary {
  const statuses = pod.status?.containerStatuses ?? [];
  const notReady = statuses.find((s) => !s.ready);
  const summary: PodSummary = {
    name: pod.metadata?.name ?? '',
    namespace: pod.metadata?.namespace ?? '',
    uid: pod.metadata?.uid ?? '',
    phase: pod.status?.phase ?? 'Unknown',
    ready: pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    running: statuses.length > 0 && statuses.length === (pod.spec?.containers ?? []).length && statuses.every((s) => s.state?.running !== undefined),
    runningImages: statuses.map((s) => s.image),
    images: (pod.spec?.containers ?? []).map((c) => c.image ?? ''),
    restarts: statuses.reduce((n, s) => n + s.restartCount, 0),
    labels: pod.metadata?.labels ?? {},
    annotations: pod.metadata?.annotations ?? {},
    deleting: pod.metadata?.deletionTimestamp !== undefined,
  };
  const started = statuses.map((s) => s.state?.running?.startedAt).filter((t): t is Date => t !== undefined).map((t) => toIso(t)).sort().at(-1);
  if (started) summary.startedAt = started;
  if (pod.status?.podIP) summary.ip = pod.status.podIP;
  if (pod.spec?.nodeName) summary.node = pod.spec.nodeName;
  const reason = notReady?.state?.waiting?.reason ?? notReady?.state?.terminated?.reason;
  if (reason) summary.waitingReason = reason;
  const message = notReady?.state?.waiting?.message ?? notReady?.state?.terminated?.message;
  if (message) summary.waitingMessage = message;
  const ends = statuses
    .flatMap((s) => [s.state?.terminated, s.lastState?.terminated])
    .filter((t): t is k8s.V1ContainerStateTerminated => t !== undefined)
    .sort((a, b) => (a.finishedAt ? toIso(a.finishedAt) : '').localeCompare(b.finishedAt ? toIso(b.finishedAt) : ''));
  const last = ends.at(-1);
  if (last) summary.lastEnd = `exit code ${last.exitCode}${last.signal ? `, signal ${last.signal}` : ''}${last.reason ? ` (${last.reason})` : ''}${last.finishedAt ? ` at ${toIso(last.finishedAt)}` : ''}`;
  return summary;
}

function describeState(pod: PodSummary): string {
  const what = pod.deleting ? 'Terminating' : pod.phase;
  return `${what}${pod.ready ? ', ready' : pod.running ? ', running' : ''}${pod.waitingReason ? ` (${pod.waitingReason})` : ''}${pod.restarts > 0 ? `, ${pod.restarts} restart${pod.restarts === 1 ? '' : 's'}` : ''}`;
}

/** Whether a status's image is the spec's (the kubelet may report `docker.io/library/x:1` for `x:1`). */
function sameImage(reported: string, wanted: string): boolean {
  return reported === wanted || reported.endsWith(`/${wanted}`) || reported.replace(/^docker\.io\/(library\/)?/, '') === wanted;
}

function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new GkubeError('ABORTED', `stopped while ${what}`);
}

/** Waits `ms`, or less when `signal` fires (the caller then checks it). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return delay(ms, undefined, signal ? { signal } : {}).catch(() => undefined);
}

function toIso(value: Date | string | undefined): string {
  if (!value) return '';
  return (value instanceof Date ? value.toISOString() : String(value)).replace(/\.\d{3}Z$/, 'Z');
}
