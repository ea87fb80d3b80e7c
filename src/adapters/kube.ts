// The Kubernetes edge: verb-shaped calls over @kubernetes/client-node. A lookup returns undefined only for a
// 404; everything else is an error.
import * as k8s from '@kubernetes/client-node';
import { GkubeError } from '../errors.js';

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
  ip?: string;
  node?: string;
  images: string[];
  restarts: number;
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
  events(namespace: string, name: string): Promise<EventSummary[]>;
  serverVersion(): Promise<string>;
  /** Creates an object from a manifest (Pod or PersistentVolumeClaim); false when one of that name exists. */
  create(manifest: Record<string, unknown>): Promise<boolean>;
  /**
   * Waits until the pod is Ready. Fails fast (OPERATION_FAILED) when a container waits in ImagePullBackOff,
   * ErrImagePull, CrashLoopBackOff or a create error, with the reason, the message and the last log lines;
   * calls `onChange` with a one-line state whenever it changes.
   */
  waitForReady(namespace: string, name: string, timeoutMs: number, onChange?: (state: string) => void): Promise<PodSummary>;
  /** The last `lines` lines of the pod's log ('' when there is none yet). */
  logTail(namespace: string, name: string, lines: number): Promise<string>;
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
    config: k8s.KubeConfig,
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
      else throw new Error(`gkube does not create ${String(manifest['kind'])} objects`);
      return true;
    } catch (err) {
      if (err instanceof k8s.ApiException && err.code === 409) return false;
      throw err;
    }
  }

  async waitForReady(namespace: string, name: string, timeoutMs: number, onChange?: (state: string) => void): Promise<PodSummary> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      const pod = await this.findPod(namespace, name);
      const state = pod ? `${pod.phase}${pod.ready ? ', ready' : ''}${pod.waitingReason ? ` (${pod.waitingReason})` : ''}` : 'not created yet';
      if (state !== last) onChange?.(state);
      last = state;
      if (pod?.ready && !pod.deleting) return pod;
      if (pod?.waitingReason && hopelessReasons.has(pod.waitingReason)) {
        const tail = await this.logTail(namespace, name, 20).catch(() => '');
        throw new GkubeError('OPERATION_FAILED', `pod ${namespace}/${name} cannot start: ${pod.waitingReason}${pod.waitingMessage ? `: ${pod.waitingMessage}` : ''}`, {
          hint: tail ? `last log lines:\n${tail}` : `see kubectl describe pod -n ${namespace} ${name}`,
        });
      }
      if (Date.now() >= deadline) {
        throw new GkubeError('OPERATION_FAILED', `pod ${namespace}/${name} was not ready within ${Math.round(timeoutMs / 1000)}s (last state: ${state})`, { hint: 'raise --timeout, or see gkube describe' });
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  async logTail(namespace: string, name: string, lines: number): Promise<string> {
    const text = await this.optional(() => this.core.readNamespacedPodLog({ name, namespace, tailLines: lines }));
    return typeof text === 'string' ? text.trimEnd() : '';
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

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new GkubeError('DEPENDENCY_UNREACHABLE', `the Kubernetes API at ${this.server} did not answer within ${Math.round(this.timeoutMs / 1000)}s`)), this.timeoutMs);
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
    images: (pod.spec?.containers ?? []).map((c) => c.image ?? ''),
    restarts: statuses.reduce((n, s) => n + s.restartCount, 0),
    labels: pod.metadata?.labels ?? {},
    annotations: pod.metadata?.annotations ?? {},
    deleting: pod.metadata?.deletionTimestamp !== undefined,
  };
  if (pod.status?.podIP) summary.ip = pod.status.podIP;
  if (pod.spec?.nodeName) summary.node = pod.spec.nodeName;
  const reason = notReady?.state?.waiting?.reason ?? notReady?.state?.terminated?.reason;
  if (reason) summary.waitingReason = reason;
  const message = notReady?.state?.waiting?.message ?? notReady?.state?.terminated?.message;
  if (message) summary.waitingMessage = message;
  return summary;
}

function toIso(value: Date | string | undefined): string {
  if (!value) return '';
  return (value instanceof Date ? value.toISOString() : String(value)).replace(/\.\d{3}Z$/, 'Z');
}
