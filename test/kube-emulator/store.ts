// The emulator's object store: what etcd is to the API server. Resource versions, watches with history,
// compare-and-swap updates, graceful deletion and finalizers. Validation happens before objects get here.
import { randomUUID } from 'node:crypto';
import { alreadyExists, conflict, expired, notFound, ApiError } from './errors.js';
import { matchesFields, matchesLabels, type FieldSelector, type LabelSelector } from './selectors.js';
import { apiVersionOf, type ResourceType } from './resources.js';

/** Object metadata as the API server stores it. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: unknown[];
  [key: string]: unknown;
}

/** Any Kubernetes object. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  // Resource bodies are free-form JSON; typed access happens where they are used.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the API's objects are dynamic JSON
  [key: string]: any;
}

/** A watch event, as the API server streams it. */
export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject;
}

/** A change to the store, delivered to controllers and watches. */
export interface StoreChange {
  type: ResourceType;
  event: WatchEvent;
  /** The object before the change (absent for ADDED). */
  previous?: KubeObject;
  resourceVersion: number;
}

/** Filters for list and watch. */
export interface ListOptions {
  namespace?: string;
  labelSelector?: LabelSelector;
  fieldSelector?: FieldSelector;
  limit?: number;
  continue?: string;
}

/** A page of a list. */
export interface ListResult {
  items: KubeObject[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

const historySize = 20_000;

/** Deep copy: nothing outside the store may hold a reference to a stored object. */
export function clone<T>(value: T): T {
  return structuredClone(value);
}

/** The store. Single-threaded like everything in Node: each method is atomic. */
export class ObjectStore {
  private revision = 1000;
  private readonly objects = new Map<ResourceType, Map<string, KubeObject>>();
  private history: StoreChange[] = [];
  private compactedAt = 0;
  private readonly listeners = new Set<(change: StoreChange) => void>();

  /** The latest resource version. */
  get currentRevision(): string {
    return String(this.revision);
  }

  /** Registers a listener for every change; returns the unsubscribe function. */
  subscribe(listener: (change: StoreChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A copy of one object, or undefined. */
  get(type: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const obj = this.bucket(type).get(key(type, namespace, name));
    return obj ? clone(obj) : undefined;
  }

  /** Like get, but a 404 when absent. */
  mustGet(type: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const obj = this.get(type, namespace, name);
    if (!obj) throw notFound(type.plural, type.group, name);
    return obj;
  }

  /** Lists objects, sorted by namespace/name, with limit/continue paging. */
  list(type: ResourceType, options: ListOptions = {}): ListResult {
    let items = [...this.bucket(type).entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, o]) => ({ k, o }))
      .filter(({ o }) => this.matches(type, o, options));
    let listRevision = this.revision;
    if (options.continue) {
      const token = decodeContinue(options.continue);
      if (token.rv < this.oldestRetained()) throw expired('The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
      listRevision = token.rv;
      items = items.filter(({ k }) => k > token.start);
    }
    const result: ListResult = { items: [], resourceVersion: String(listRevision) };
    const limit = options.limit && options.limit > 0 ? options.limit : items.length;
    const page = items.slice(0, limit);
    result.items = page.map(({ o }) => clone(o));
    if (items.length > limit) {
      result.continue = encodeContinue({ rv: listRevision, start: page[page.length - 1]!.k });
      result.remainingItemCount = items.length - limit;
    }
    return result;
  }

  /** Stores a new object (metadata filled in); 409 if it exists. */
  create(type: ResourceType, input: KubeObject): KubeObject {
    const obj = clone(input);
    const meta = obj.metadata;
    if (!meta.name && meta.generateName) meta.name = generateName(meta.generateName);
    const k = key(type, meta.namespace, meta.name!);
    if (this.bucket(type).has(k)) throw alreadyExists(type.plural, type.group, meta.name!);
    obj.apiVersion = apiVersionOf(type);
    obj.kind = type.kind;
    meta.uid = randomUUID();
    meta.creationTimestamp = now();
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    meta.resourceVersion = this.nextRevision();
    this.bucket(type).set(k, obj);
    this.emit(type, 'ADDED', obj, undefined);
    return clone(obj);
  }

  /**
   * Replaces an object. A resourceVersion in the input must match (409 Conflict otherwise).
   * `keep` names the top-level fields taken from the stored object (status for a main-resource update,
   * everything but status for a status update).
   */
  update(type: ResourceType, input: KubeObject, options: { subresource?: 'status' } = {}): KubeObject {
    const namespace = type.namespaced ? input.metadata.namespace : undefined;
    const current = this.mustGetRaw(type, namespace, input.metadata.name!);
    const wanted = input.metadata.resourceVersion;
    if (wanted && wanted !== current.metadata.resourceVersion) throw conflict(type.plural, type.group, input.metadata.name!);
    let next: KubeObject;
    if (options.subresource === 'status') {
      next = clone(current);
      next['status'] = clone(input['status']);
    } else {
      next = clone(input);
      if ('status' in current) next['status'] = clone(current['status']);
      else delete next['status'];
      // Metadata the server owns cannot be changed by a client.
      for (const f of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation'] as const) {
        if (current.metadata[f] === undefined) delete next.metadata[f];
        else (next.metadata as Record<string, unknown>)[f] = current.metadata[f];
      }
    }
    return this.commit(type, current, next);
  }

  /** Applies `mutate` to the stored object (controllers' writes: no precondition). Undefined if it is gone. */
  mutate(type: ResourceType, namespace: string | undefined, name: string, mutate: (obj: KubeObject) => void): KubeObject | undefined {
    const current = this.bucket(type).get(key(type, namespace, name));
    if (!current) return undefined;
    const next = clone(current);
    mutate(next);
    if (JSON.stringify(next) === JSON.stringify(current)) return clone(current);
    return this.commit(type, current, next);
  }

  /**
   * Deletes an object as the API server does (rest.BeforeDelete and the generic registry's Delete): immediately,
   * or — for a pod bound to a node with a grace period, or an object with finalizers — by setting
   * deletionTimestamp and leaving the rest to controllers. A negative grace period counts as 1 second; deleting
   * a pod that is already terminating may only shorten its grace period, which moves deletionTimestamp earlier.
   */
  delete(type: ResourceType, namespace: string | undefined, name: string, options: { gracePeriodSeconds?: number; uid?: string; resourceVersion?: string } = {}): KubeObject {
    const current = this.mustGetRaw(type, namespace, name);
    checkDeletePreconditions(type, current, options);
    const requested = options.gracePeriodSeconds !== undefined && options.gracePeriodSeconds < 0 ? 1 : options.gracePeriodSeconds;
    const finalizers = current.metadata.finalizers ?? [];
    const pendingGrace = current.metadata.deletionGracePeriodSeconds ?? 0;
    if (type.kind === 'Pod' && current.metadata.deletionTimestamp && pendingGrace > 0) {
      // Already terminating: only a shorter grace period changes anything.
      if (requested === undefined || requested >= pendingGrace) return clone(current);
      if (requested === 0 && finalizers.length === 0) return this.remove(type, namespace, name)!;
      const next = clone(current);
      const moved = Date.parse(current.metadata.deletionTimestamp) - pendingGrace * 1000 + requested * 1000;
      next.metadata.deletionTimestamp = now(new Date(moved));
      next.metadata.deletionGracePeriodSeconds = requested;
      return this.commit(type, current, next);
    }
    const graceful = type.kind === 'Pod' && isRunningOnNode(current) ? (requested ?? current['spec']?.terminationGracePeriodSeconds ?? 0) : 0;
    if (graceful > 0 || finalizers.length > 0) {
      if (current.metadata.deletionTimestamp) return clone(current);
      const next = clone(current);
      next.metadata.deletionTimestamp = now(new Date(Date.now() + graceful * 1000));
      next.metadata.deletionGracePeriodSeconds = graceful;
      return this.commit(type, current, next);
    }
    return this.remove(type, namespace, name)!;
  }

  /** Removes an object outright (the end of a graceful deletion, or a forced one). */
  remove(type: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const k = key(type, namespace, name);
    const current = this.bucket(type).get(k);
    if (!current) return undefined;
    this.bucket(type).delete(k);
    const gone = clone(current);
    gone.metadata.resourceVersion = this.nextRevision();
    this.emit(type, 'DELETED', gone, current);
    return clone(gone);
  }

  /**
   * Starts a watch. Events after `resourceVersion` are replayed from history (410 if it is too old);
   * without one, the current objects arrive first as ADDED. A change that makes an object stop or start
   * matching the selectors arrives as DELETED or ADDED, as the API server's watch cache does.
   */
  watch(type: ResourceType, options: ListOptions & { resourceVersion?: string }, send: (event: WatchEvent) => void): () => void {
    const deliver = (change: StoreChange): void => {
      if (change.type !== type) return;
      const now = this.matches(type, change.event.object, options);
      const before = change.previous ? this.matches(type, change.previous, options) : false;
      if (change.event.type === 'MODIFIED') {
        if (now && before) send({ type: 'MODIFIED', object: clone(change.event.object) });
        else if (now) send({ type: 'ADDED', object: clone(change.event.object) });
        else if (before) send({ type: 'DELETED', object: clone(change.event.object) });
      } else if (now) send({ type: change.event.type, object: clone(change.event.object) });
    };
    const rv = options.resourceVersion;
    if (rv && rv !== '0') {
      const from = Number(rv);
      if (!Number.isFinite(from)) throw new ApiError(400, 'BadRequest', `invalid resource version: ${rv}`);
      if (from < this.oldestRetained()) throw expired(`too old resource version: ${rv} (${this.oldestRetained()})`);
      for (const change of this.history) if (change.resourceVersion > from) deliver(change);
    } else {
      for (const obj of this.list(type, { ...options, limit: 0, continue: undefined }).items) send({ type: 'ADDED', object: obj });
    }
    this.listeners.add(deliver);
    return () => this.listeners.delete(deliver);
  }

  private matches(type: ResourceType, obj: KubeObject, options: ListOptions): boolean {
    if (type.namespaced && options.namespace && obj.metadata.namespace !== options.namespace) return false;
    if (options.labelSelector && !matchesLabels(options.labelSelector, obj.metadata.labels)) return false;
    if (options.fieldSelector && !matchesFields(options.fieldSelector, obj)) return false;
    return true;
  }

  private commit(type: ResourceType, current: KubeObject, next: KubeObject): KubeObject {
    // An object being deleted whose last finalizer went away is removed (pods wait for their kubelet).
    const finalizers = next.metadata.finalizers ?? [];
    if (next.metadata.deletionTimestamp && finalizers.length === 0 && !(type.kind === 'Pod' && isRunningOnNode(next))) {
      return this.remove(type, next.metadata.namespace, next.metadata.name!)!;
    }
    next.metadata.resourceVersion = this.nextRevision();
    this.bucket(type).set(key(type, next.metadata.namespace, next.metadata.name!), next);
    this.emit(type, 'MODIFIED', next, current);
    return clone(next);
  }

  private mustGetRaw(type: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const obj = this.bucket(type).get(key(type, namespace, name));
    if (!obj) throw notFound(type.plural, type.group, name);
    return obj;
  }

  private emit(type: ResourceType, eventType: WatchEvent['type'], obj: KubeObject, previous: KubeObject | undefined): void {
    const change: StoreChange = { type, event: { type: eventType, object: obj }, resourceVersion: Number(obj.metadata.resourceVersion) };
    if (previous) change.previous = previous;
    this.history.push(change);
    if (this.history.length > historySize) this.history.shift();
    for (const l of [...this.listeners]) l(change);
  }

  /** Forgets the event history up to now, as etcd compaction does: older watches and continue tokens get 410. */
  compact(): void {
    this.history = [];
    this.compactedAt = this.revision;
  }

  private oldestRetained(): number {
    const trimmed = this.history.length >= historySize ? this.history[0]!.resourceVersion : 0;
    return Math.max(trimmed, this.compactedAt);
  }

  private nextRevision(): string {
    this.revision += 1;
    return String(this.revision);
  }

  private bucket(type: ResourceType): Map<string, KubeObject> {
    let b = this.objects.get(type);
    if (!b) this.objects.set(type, (b = new Map()));
    return b;
  }
}

function key(type: ResourceType, namespace: string | undefined, name: string): string {
  return type.namespaced ? `${namespace ?? ''}/${name}` : name;
}

/** A pod the kubelet owns (bound to the node, not finished): its deletion is graceful. */
function isRunningOnNode(pod: KubeObject): boolean {
  const phase = pod['status']?.phase;
  return Boolean(pod['spec']?.nodeName) && phase !== 'Succeeded' && phase !== 'Failed';
}

/** A time (default: now) as metav1.Time serialises it: RFC 3339 in whole seconds. */
export function now(at: Date = new Date()): string {
  return at.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** A delete's preconditions (uid, resourceVersion) against the stored object: 409 Conflict in the API server's words. */
export function checkDeletePreconditions(type: ResourceType, current: KubeObject, options: { uid?: string; resourceVersion?: string }): void {
  const name = current.metadata.name!;
  if (options.uid && options.uid !== current.metadata.uid) {
    throw conflict(type.kind, type.group, name, `the UID in the precondition (${options.uid}) does not match the UID in record (${current.metadata.uid}). The object might have been deleted and then recreated`);
  }
  if (options.resourceVersion && options.resourceVersion !== current.metadata.resourceVersion) {
    throw conflict(type.kind, type.group, name, `the ResourceVersion in the precondition (${options.resourceVersion}) does not match the ResourceVersion in record (${current.metadata.resourceVersion}). The object might have been modified`);
  }
}

/** A name from metadata.generateName, as the API server makes it: the base cut to 58 characters, then 5 random ones. */
export function generateName(base: string): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  let suffix = '';
  for (let i = 0; i < 5; i++) suffix += alphabet[Math.floor(Math.random() * alphabet.length)];
  return base.slice(0, 58) + suffix;
}

function encodeContinue(token: { rv: number; start: string }): string {
  return Buffer.from(JSON.stringify(token)).toString('base64url');
}

function decodeContinue(text: string): { rv: number; start: string } {
  try {
    const t = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as { rv: number; start: string };
    if (typeof t.rv === 'number' && typeof t.start === 'string') return t;
  } catch {
    // fall through to the API server's error
  }
  throw new ApiError(400, 'BadRequest', 'continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
}
