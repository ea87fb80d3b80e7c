// The emulator's API server: routing, discovery, the verbs, content negotiation, watch streams,
// subresources (status, log, exec, proxy), the request log and fault injection.
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { alreadyExists, ApiError, badRequest, conflict, forbidden, methodNotAllowed, notFound, unmappedError } from './errors.js';
import { applyDefaults } from './defaults.js';
import type { EmulatorContext, KubeletPort } from './context.js';
import { checkFields, OpenApiV3 } from './openapi.js';
import { applyPatch } from './patch.js';
import { apiVersionOf, findType, resourceTypes, type ResourceType } from './resources.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import { checkDeletePreconditions, clone, generateName, now, type KubeObject, type ListOptions } from './store.js';
import { toTable, wantsTable } from './tables.js';
import type { ServerTls } from './tls.js';
import { admitUpdate, dropDisabledFields, validateCreate, validateUpdate } from './validation.js';
import { admit } from './volumes.js';

/** One served request, for tests and benchmarks that count round trips. */
export interface RequestLogEntry {
  method: string;
  path: string;
  status: number;
  bytes: number;
  verb: string;
  resource: string;
  ms: number;
}

/** How the API server is set up. */
export interface ApiServerOptions {
  kubeVersion: string;
  token: string;
  tls?: ServerTls;
}

interface Route {
  type: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
  /** For proxy: the path after /proxy. */
  rest?: string;
  verb: string;
}

const execProtocols = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'];
const protectedNamespaces = new Set(['default', 'kube-system', 'kube-public']);

/** The HTTP(S) front of the emulator. */
export class ApiServer {
  readonly requestLog: RequestLogEntry[] = [];
  private server: Server | undefined;
  private readonly wss = new WebSocketServer({ noServer: true, handleProtocols: (offered) => execProtocols.find((p) => offered.has(p)) ?? false });
  private nextServiceIp = 10;
  private readonly sockets = new Set<Duplex>();
  private readonly openapi = new OpenApiV3();

  constructor(
    private readonly ctx: EmulatorContext,
    private readonly kubelet: KubeletPort,
    private readonly options: ApiServerOptions,
  ) {}

  /** Listens on 127.0.0.1:`port` (0 = any free port) and returns the base URL. */
  async listen(port: number): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.handle(req, res);
    const server = this.options.tls ? createHttpsServer({ cert: this.options.tls.certPem, key: this.options.tls.keyPem }, handler) : createHttpServer(handler);
    server.on('upgrade', (req, socket, head) => void this.upgrade(req, socket, head));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.on('secureConnection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    const address = server.address();
    const actual = typeof address === 'object' && address ? address.port : port;
    return `${this.options.tls ? 'https' : 'http'}://127.0.0.1:${actual}`;
  }

  /** Stops accepting, ends watches and open connections. */
  async close(): Promise<void> {
    this.ctx.faults.dropWatches();
    for (const client of this.wss.clients) client.terminate();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const url = new URL(req.url ?? '/', 'http://emulator');
    const entry: RequestLogEntry = { method: req.method ?? 'GET', path: url.pathname + url.search, status: 0, bytes: 0, verb: '', resource: '', ms: 0 };
    const write = res.write.bind(res);
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      entry.bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Buffer).length;
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof res.write;
    res.on('close', () => {
      entry.status = res.statusCode;
      entry.ms = Date.now() - started;
      this.requestLog.push(entry);
    });
    try {
      if (this.ctx.faults.latencyMs > 0) await sleep(this.ctx.faults.latencyMs);
      if (this.servePublic(url.pathname, res)) return;
      this.authenticate(req);
      if (this.serveDiscovery(url.pathname, res)) return;
      const route = this.route(req.method ?? 'GET', url);
      entry.verb = route.verb;
      entry.resource = route.subresource ? `${route.type.plural}/${route.subresource}` : route.type.plural;
      this.injectFault(route.verb, entry.resource);
      await this.serve(route, req, res, url);
    } catch (err) {
      const apiErr = err instanceof ApiError ? err : new ApiError(500, 'InternalError', `Internal error occurred: ${(err as Error).message}`);
      if (!(err instanceof ApiError)) this.ctx.log(`internal error: ${(err as Error).stack}`);
      if (res.headersSent) {
        res.end();
        return;
      }
      if (apiErr.details?.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(apiErr.details.retryAfterSeconds));
      sendJson(res, apiErr.code, apiErr.toStatus());
    }
  }

  private authenticate(req: IncomingMessage): void {
    // Plain HTTP is the old insecure port: clients (kubectl) never send credentials over it, so none are asked.
    if (!this.options.tls) return;
    if (req.headers.authorization !== `Bearer ${this.options.token}`) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
  }

  private injectFault(verb: string, resource: string): void {
    const fault = this.ctx.faults.takeStatus(verb, resource);
    if (!fault) return;
    const reasons: Record<number, [string, string]> = {
      429: ['TooManyRequests', 'Too many requests, please try again later.'],
      500: ['InternalError', 'Internal error occurred: injected fault'],
      503: ['ServiceUnavailable', 'The server is currently unable to handle the request'],
      504: ['Timeout', 'The server was unable to return a response in the time allotted, but may still be processing the request'],
    };
    const [reason, message] = reasons[fault.status]!;
    throw new ApiError(fault.status, reason, message, fault.retryAfterSeconds !== undefined || fault.status === 429 ? { retryAfterSeconds: fault.retryAfterSeconds ?? 1 } : undefined);
  }

  /** Endpoints any client may read without credentials (system:public-info-viewer). */
  private servePublic(path: string, res: ServerResponse): boolean {
    if (path === '/version') {
      const [major, minor] = this.options.kubeVersion.split('.');
      sendJson(res, 200, {
        major, minor, gitVersion: `v${major}.${minor}.0`, gitCommit: '0000000000000000000000000000000000000000', gitTreeState: 'clean',
        buildDate: '2026-01-01T00:00:00Z', goVersion: 'go1.22.0', compiler: 'gc', platform: 'linux/amd64',
      });
      return true;
    }
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return true;
    }
    return false;
  }

  private serveDiscovery(path: string, res: ServerResponse): boolean {
    const trimmed = path.replace(/\/+$/, '');
    if (trimmed === '/openapi/v3') {
      sendText(res, 200, this.openapi.root);
      return true;
    }
    if (trimmed.startsWith('/openapi/v3/')) {
      const doc = this.openapi.document(trimmed.slice('/openapi/v3/'.length));
      if (doc === undefined) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
      sendText(res, 200, doc);
      return true;
    }
    if (trimmed === '/api') {
      sendJson(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }] });
      return true;
    }
    const groups = [...new Set(resourceTypes.filter((t) => t.group).map((t) => t.group))];
    const groupDoc = (g: string) => ({ name: g, versions: [{ groupVersion: `${g}/v1`, version: 'v1' }], preferredVersion: { groupVersion: `${g}/v1`, version: 'v1' } });
    if (trimmed === '/apis') {
      sendJson(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map(groupDoc) });
      return true;
    }
    const groupMatch = trimmed.match(/^\/apis\/([^/]+)$/);
    if (groupMatch && groups.includes(groupMatch[1]!)) {
      sendJson(res, 200, { kind: 'APIGroup', apiVersion: 'v1', ...groupDoc(groupMatch[1]!) });
      return true;
    }
    const gv = trimmed === '/api/v1' ? '' : trimmed.match(/^\/apis\/([^/]+)\/v1$/)?.[1];
    if (gv === undefined) return false;
    const types = resourceTypes.filter((t) => t.group === gv);
    if (types.length === 0) return false;
    const resources: unknown[] = [];
    for (const t of types) {
      resources.push({ name: t.plural, singularName: t.singular, namespaced: t.namespaced, kind: t.kind, verbs: t.verbs, ...(t.shortNames ? { shortNames: t.shortNames } : {}), ...(t.categories ? { categories: t.categories } : {}) });
      for (const sub of t.subresources ?? []) resources.push(subresourceDoc(t, sub));
    }
    sendJson(res, 200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv ? `${gv}/v1` : 'v1', resources });
    return true;
  }

  private route(method: string, url: URL): Route {
    const seg = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    let group: string;
    let rest: string[];
    if (seg[0] === 'api' && seg[1] === 'v1') {
      group = '';
      rest = seg.slice(2);
    } else if (seg[0] === 'apis' && seg.length >= 3 && seg[2] === 'v1') {
      group = seg[1]!;
      rest = seg.slice(3);
    } else throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3 && rest[2] !== 'status' && rest[2] !== 'finalize') {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, subresource, ...tail] = rest;
    const type = plural ? findType(group, plural) : undefined;
    if (!type) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    if (!type.namespaced && namespace !== undefined) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    if (subresource && !(type.subresources ?? []).includes(subresource)) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    const watching = url.searchParams.get('watch') === '1' || url.searchParams.get('watch') === 'true';
    const verbs: Record<string, string> = { GET: name ? 'get' : watching ? 'watch' : 'list', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: name ? 'delete' : 'deletecollection' };
    let verb = verbs[method] ?? '';
    if (subresource === 'exec' || subresource === 'proxy' || subresource === 'attach' || subresource === 'portforward') verb = 'connect';
    if (!verb) throw methodNotAllowed();
    // A verb the resource does not serve (DELETE on the namespaces collection, POST to a named object) has no route.
    if (!subresource && (!type.verbs.includes(verb) || (verb === 'create' && name !== undefined))) throw methodNotAllowed();
    const route: Route = { type, verb };
    if (namespace !== undefined) route.namespace = namespace;
    if (name !== undefined) route.name = name;
    if (subresource !== undefined) route.subresource = subresource;
    if (subresource === 'proxy') route.rest = '/' + tail.join('/');
    return route;
  }

  private async serve(route: Route, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const q = url.searchParams;
    const { type } = route;
    if (route.subresource === 'log') return this.serveLog(route, q, res);
    if (route.subresource === 'exec') throw badRequest('Upgrade request required');
    if (route.subresource === 'proxy') return this.serveProxy(route, req, res, url);
    if (route.subresource && route.subresource !== 'status') throw methodNotAllowed();
    const accept = req.headers.accept;
    switch (route.verb) {
      case 'get': {
        const obj = this.ctx.store.mustGet(type, route.namespace, route.name!);
        return sendJson(res, 200, wantsTable(accept) ? toTable(type, [obj], { resourceVersion: obj.metadata.resourceVersion }, q.get('includeObject') ?? 'Metadata') : obj);
      }
      case 'list': {
        const options = this.listOptions(type, route, q);
        const page = this.ctx.store.list(type, options);
        const meta: Record<string, unknown> = { resourceVersion: page.resourceVersion };
        if (page.continue) meta['continue'] = page.continue;
        if (page.remainingItemCount !== undefined) meta['remainingItemCount'] = page.remainingItemCount;
        if (wantsTable(accept)) return sendJson(res, 200, toTable(type, page.items, meta, q.get('includeObject') ?? 'Metadata'));
        return sendJson(res, 200, { kind: type.listKind, apiVersion: apiVersionOf(type), metadata: meta, items: page.items.map(listItem) });
      }
      case 'watch':
        return this.serveWatch(route, q, req, res);
      case 'create':
        return this.create(route, await readJson(req), q, res);
      case 'update':
        return this.update(route, await readJson(req), q, res);
      case 'patch': {
        if (!route.name) throw methodNotAllowed();
        const body = await readJson(req);
        const current = this.ctx.store.mustGet(type, route.namespace, route.name);
        const patched = applyPatch(type.kind, current, req.headers['content-type'] ?? '', body);
        return this.update(route, patched, q, res, { patch: true });
      }
      case 'delete':
        return this.remove(route, await readJsonOptional(req), q, res);
      case 'deletecollection': {
        const page = this.ctx.store.list(type, this.listOptions(type, route, q));
        const options = deleteOptions(await readJsonOptional(req), q);
        const deleted = page.items.map((o) => this.deleteOne(type, o.metadata.namespace, o.metadata.name!, options));
        return sendJson(res, 200, { kind: type.listKind, apiVersion: apiVersionOf(type), metadata: { resourceVersion: this.ctx.store.currentRevision }, items: deleted.map(listItem) });
      }
      default:
        throw methodNotAllowed();
    }
  }

  private listOptions(type: ResourceType, route: Route, q: URLSearchParams): ListOptions {
    const options: ListOptions = {
      labelSelector: parseLabelSelector(q.get('labelSelector') ?? undefined),
      fieldSelector: parseFieldSelector(q.get('fieldSelector') ?? undefined, type.fieldLabels),
    };
    if (route.namespace !== undefined) options.namespace = route.namespace;
    const limit = q.get('limit');
    if (limit) options.limit = Number(limit);
    const cont = q.get('continue');
    if (cont) options.continue = cont;
    return options;
  }

  private create(route: Route, body: unknown, q: URLSearchParams, res: ServerResponse): void {
    const { type } = route;
    if (route.name || route.subresource) throw methodNotAllowed();
    const obj = asObject(body, type);
    obj.metadata ??= {};
    if (type.namespaced) {
      if (route.namespace === undefined) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
      if (obj.metadata.namespace !== undefined && obj.metadata.namespace !== route.namespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      obj.metadata.namespace = route.namespace;
      const ns = this.ctx.store.get(findType('', 'namespaces')!, undefined, route.namespace);
      if (!ns) throw notFound('namespaces', '', route.namespace);
      if (ns.metadata.deletionTimestamp) {
        throw forbidden(`${type.plural} "${obj.metadata.name ?? ''}" is forbidden: unable to create new content in namespace ${route.namespace} because it is being terminated`, { name: obj.metadata.name, kind: type.plural });
      }
    } else delete obj.metadata.namespace;
    // The resourceVersion stays for the storage layer to refuse; the other system fields are the server's.
    for (const f of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'selfLink'] as const) delete obj.metadata[f];
    // The name is generated before validation, so a generated name is validated like any other.
    if (!obj.metadata.name && obj.metadata.generateName) obj.metadata.name = generateName(obj.metadata.generateName);
    const warnings = checkFields(type, obj, q.get('fieldValidation'));
    warn(res, warnings);
    dropDisabledFields(type, obj);
    applyDefaults(type, obj, () => this.allocateServiceIp());
    // Admission: storage-object-in-use protection and DefaultStorageClass.
    admit(this.ctx.store, type, obj);
    validateCreate(type, obj);
    const existing = this.ctx.store.get(type, obj.metadata.namespace, obj.metadata.name!);
    const exists = (): ApiError => {
      const err = alreadyExists(type.plural, type.group, obj.metadata.name!);
      return existing?.metadata.deletionTimestamp ? new ApiError(err.code, err.reason, `object is being deleted: ${err.message}`, err.details) : err;
    };
    if (isDryRun(q)) {
      // A dry run reads the key instead of writing it: an existing object is still a 409.
      if (existing) throw exists();
      obj.metadata.uid = crypto.randomUUID();
      obj.metadata.creationTimestamp = now();
      delete obj.metadata.resourceVersion;
      return sendJson(res, 201, obj);
    }
    // etcd3's Create refuses a set resourceVersion (a plain error: 500 with no reason); "0" and values that do
    // not parse as an unsigned integer pass, as the API server's versioner reads them.
    const rv = obj.metadata.resourceVersion;
    if (typeof rv === 'string' && /^\d+$/.test(rv) && BigInt(rv) !== 0n && BigInt(rv) < 2n ** 64n) {
      throw unmappedError('resourceVersion should not be set on objects to be created');
    }
    delete obj.metadata.resourceVersion;
    if (existing) throw exists();
    sendJson(res, 201, this.ctx.store.create(type, obj));
  }

  private update(route: Route, body: unknown, q: URLSearchParams, res: ServerResponse, how: { patch?: boolean } = {}): void {
    const { type } = route;
    if (!route.name) throw methodNotAllowed();
    const obj = asObject(body, type);
    if (obj.metadata?.name !== undefined && obj.metadata.name !== route.name) {
      throw badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${route.name})`);
    }
    obj.metadata = { ...(obj.metadata ?? {}), name: route.name };
    if (type.namespaced) obj.metadata.namespace = route.namespace;
    const current = this.ctx.store.mustGet(type, route.namespace, route.name);
    // A PUT body's uid is a precondition of the storage layer (an InvalidObj error the registry turns into a 409).
    if (!how.patch && obj.metadata.uid && obj.metadata.uid !== current.metadata.uid) {
      throw conflict(type.plural, type.group, route.name, `StorageError: invalid object, Code: 4, Key: ${storageKey(type, route.namespace, route.name)}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: ${obj.metadata.uid}, UID in object meta: ${current.metadata.uid}`);
    }
    // The storage layer checks the precondition before the update is validated, so a stale write is a Conflict.
    if (obj.metadata.resourceVersion && obj.metadata.resourceVersion !== current.metadata.resourceVersion) throw conflict(type.plural, type.group, route.name);
    warn(res, checkFields(type, obj, q.get('fieldValidation')));
    // rest.BeforeUpdate: what a client may leave out is carried over; what it changes is validated below.
    const meta = obj.metadata;
    meta.uid ||= current.metadata.uid;
    if (current.metadata.creationTimestamp) meta.creationTimestamp = current.metadata.creationTimestamp;
    if (current.metadata.deletionTimestamp) meta.deletionTimestamp = current.metadata.deletionTimestamp;
    if (current.metadata.deletionGracePeriodSeconds !== undefined && meta.deletionGracePeriodSeconds === undefined) {
      meta.deletionGracePeriodSeconds = current.metadata.deletionGracePeriodSeconds;
    }
    if (current.metadata.generation !== undefined) meta.generation = current.metadata.generation;
    else delete meta.generation;
    const subresource = route.subresource === 'status' ? ('status' as const) : undefined;
    if (!subresource) {
      // The main resource's update keeps the stored status (PrepareForUpdate).
      if ('status' in current) obj['status'] = structuredClone(current['status']);
      else delete obj['status'];
      dropDisabledFields(type, obj, current);
    }
    validateUpdate(type, obj, current, subresource);
    admitUpdate(this.ctx.store, type, obj, current, subresource);
    if (isDryRun(q)) return sendJson(res, 200, obj);
    const options = subresource ? { subresource } : {};
    sendJson(res, 200, this.ctx.store.update(type, obj, options));
  }

  private remove(route: Route, body: Record<string, any> | undefined, q: URLSearchParams, res: ServerResponse): void {
    const { type } = route;
    if (route.subresource) throw methodNotAllowed();
    const options = deleteOptions(body, q);
    if (isDryRun(q) || body?.['dryRun']?.includes?.('All')) {
      // A dry run still checks the preconditions against the stored object.
      const current = this.ctx.store.mustGet(type, route.namespace, route.name!);
      checkDeletePreconditions(type, current, options);
      return sendJson(res, 200, current);
    }
    sendJson(res, 200, this.deleteOne(type, route.namespace, route.name!, options));
  }

  private deleteOne(type: ResourceType, namespace: string | undefined, name: string, options: DeleteOptions): KubeObject {
    if (type.kind === 'Namespace') return this.deleteNamespace(name);
    return this.ctx.store.delete(type, namespace, name, options);
  }

  private deleteNamespace(name: string): KubeObject {
    const nsType = findType('', 'namespaces')!;
    const ns = this.ctx.store.mustGet(nsType, undefined, name);
    if (protectedNamespaces.has(name)) throw forbidden(`namespaces "${name}" is forbidden: this namespace may not be deleted`, { name, kind: 'namespaces' });
    if (ns.metadata.deletionTimestamp) return ns;
    const marked = this.ctx.store.mutate(nsType, undefined, name, (o) => {
      o.metadata.deletionTimestamp = now();
      o.metadata.deletionGracePeriodSeconds = 0;
      o['status'] = { ...(o['status'] ?? {}), phase: 'Terminating' };
    })!;
    // The namespace controller: delete the contents, then the namespace once nothing is left. It runs in a
    // timer, so a failure is logged and retried, as the controller requeues, instead of escaping the process.
    const sweep = (): void => {
      let remaining = 0;
      try {
        for (const t of resourceTypes.filter((r) => r.namespaced)) {
          for (const o of this.ctx.store.list(t, { namespace: name }).items) {
            remaining++;
            if (!o.metadata.deletionTimestamp) {
              try {
                this.ctx.store.delete(t, name, o.metadata.name!);
              } catch (err) {
                if (!(err instanceof ApiError && err.code === 404)) throw err;
              }
            }
          }
        }
        if (remaining === 0) {
          this.ctx.store.remove(nsType, undefined, name);
          return;
        }
      } catch (err) {
        this.ctx.log(`namespace controller: deleting the contents of namespace ${name} failed, will retry: ${(err as Error).stack ?? String(err)}`);
      }
      setTimeout(sweep, 200).unref();
    };
    setImmediate(sweep);
    return marked;
  }

  private serveWatch(route: Route, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): void {
    const { type } = route;
    const options = { ...this.listOptions(type, route, q), ...(q.get('resourceVersion') ? { resourceVersion: q.get('resourceVersion')! } : {}) };
    const table = wantsTable(req.headers.accept);
    const includeObject = q.get('includeObject') ?? 'Metadata';
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked', 'cache-control': 'no-cache, private' });
    res.flushHeaders();
    let stop = (): void => undefined;
    let timer: NodeJS.Timeout | undefined;
    let bookmarks: NodeJS.Timeout | undefined;
    let ended = false;
    // Ends the stream once, whichever comes first: timeout, a dropped watch, the client going away, an error.
    const end = (how: 'end' | 'destroy' = 'end'): void => {
      if (ended) return;
      ended = true;
      stop();
      untrack();
      clearTimeout(timer);
      clearInterval(bookmarks);
      if (how === 'destroy') res.destroy();
      else if (!res.writableEnded) res.end();
    };
    const untrack = this.ctx.faults.trackWatch(() => end('destroy'));
    res.on('close', () => end());
    const send = (event: { type: string; object: KubeObject }): void => {
      if (ended) return;
      const object = table && event.type !== 'ERROR' && event.type !== 'BOOKMARK' ? toTable(type, [event.object], { resourceVersion: event.object.metadata.resourceVersion }, includeObject) : event.object;
      res.write(JSON.stringify({ type: event.type, object }) + '\n');
    };
    try {
      stop = this.ctx.store.watch(type, options, send);
    } catch (err) {
      // A watch from a too-old resourceVersion opens and then reports 410 as an ERROR event.
      if (err instanceof ApiError) {
        send({ type: 'ERROR', object: err.toStatus() as KubeObject });
        end();
        return;
      }
      end();
      throw err;
    }
    const timeoutSeconds = Number(q.get('timeoutSeconds') ?? 1800);
    timer = setTimeout(() => end(), timeoutSeconds * 1000);
    timer.unref();
    bookmarks = setInterval(() => {
      if (q.get('allowWatchBookmarks') === 'true') {
        send({ type: 'BOOKMARK', object: { kind: type.kind, apiVersion: apiVersionOf(type), metadata: { resourceVersion: this.ctx.store.currentRevision } } });
      }
    }, 5_000);
    bookmarks.unref();
  }

  private async serveLog(route: Route, q: URLSearchParams, res: ServerResponse): Promise<void> {
    if (route.type.kind !== 'Pod' || route.verb !== 'get') throw methodNotAllowed();
    this.ctx.store.mustGet(route.type, route.namespace, route.name!);
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const num = (k: string) => (q.get(k) !== null ? Number(q.get(k)) : undefined);
    let started = false;
    const request = {
      namespace: route.namespace!, pod: route.name!, follow: q.get('follow') === 'true', previous: q.get('previous') === 'true', timestamps: q.get('timestamps') === 'true',
      ...(q.get('container') ? { container: q.get('container')! } : {}),
      ...(num('tailLines') !== undefined ? { tailLines: num('tailLines')! } : {}),
      ...(num('sinceSeconds') !== undefined ? { sinceSeconds: num('sinceSeconds')! } : {}),
      ...(num('limitBytes') !== undefined ? { limitBytes: num('limitBytes')! } : {}),
    };
    await this.kubelet.logs(request, (chunk) => {
      if (!started) {
        res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
        started = true;
      }
      res.write(chunk);
    }, abort.signal);
    if (!started) res.writeHead(200, { 'content-type': 'text/plain' });
    res.end();
  }

  private async serveProxy(route: Route, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (route.type.kind !== 'Pod') throw methodNotAllowed();
    // pods/NAME:PORT/proxy or pods/SCHEME:NAME:PORT/proxy
    const parts = route.name!.split(':');
    const [name, port] = parts.length === 3 ? [parts[1]!, parts[2]!] : [parts[0]!, parts[1] ?? '80'];
    this.ctx.store.mustGet(route.type, route.namespace, name);
    const { ip } = this.kubelet.podAddress(route.namespace!, name);
    const search = new URLSearchParams(url.searchParams);
    const query = search.toString();
    await new Promise<void>((resolve) => {
      let settled = false;
      const done = (): void => {
        if (settled) return;
        settled = true;
        resolve();
      };
      const upstream = httpRequest({ host: ip, port: Number(port), method: req.method, path: (route.rest ?? '/') + (query ? `?${query}` : ''), headers: { ...req.headers, host: `${ip}:${port}`, authorization: '' }, timeout: 30_000 }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
        // 'close' comes whether the pod's answer ended or broke off; a broken answer must not look complete.
        up.on('close', () => {
          if (!up.complete) res.destroy();
          done();
        });
      });
      upstream.on('error', (err: NodeJS.ErrnoException) => {
        if (res.destroyed || res.writableEnded) return done();
        const why = err.code === 'ECONNREFUSED' ? `dial tcp ${ip}:${port}: connect: connection refused` : err.message;
        const status = new ApiError(503, 'ServiceUnavailable', `error trying to reach service: ${why}`);
        if (!res.headersSent) sendJson(res, 503, status.toStatus());
        else res.destroy();
        done();
      });
      upstream.on('timeout', () => upstream.destroy(new Error('dial tcp: i/o timeout')));
      // The client went away: stop talking to the pod.
      res.on('close', () => {
        upstream.destroy();
        done();
      });
      req.pipe(upstream);
    });
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    // Logged like any request (the API server's audit log has exec connections too): 101 when upgraded.
    const entry: RequestLogEntry = { method: req.method ?? 'GET', path: url.pathname + url.search, status: 101, bytes: 0, verb: 'connect', resource: 'pods/exec', ms: 0 };
    this.requestLog.push(entry);
    const reject = (err: ApiError): void => {
      entry.status = err.code;
      const body = JSON.stringify(err.toStatus());
      socket.end(`HTTP/1.1 ${err.code} ${err.reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    };
    try {
      this.authenticate(req);
      const route = this.route(req.method ?? 'GET', url);
      this.injectFault('connect', `${route.type.plural}/${route.subresource ?? ''}`);
      if (route.type.kind !== 'Pod' || route.subresource !== 'exec') throw badRequest('the emulator upgrades only pods/exec connections');
      const q = url.searchParams;
      const command = q.getAll('command');
      const container = this.kubelet.checkExec(route.namespace!, route.name!, q.get('container') ?? undefined, command);
      const flag = (k: string) => q.get(k) === 'true' || q.get(k) === '1';
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        this.kubelet.exec({
          namespace: route.namespace!, pod: route.name!, container, command,
          stdin: flag('stdin'), stdout: flag('stdout'), stderr: flag('stderr'), tty: flag('tty'),
          protocol: ws.protocol, socket: ws,
        });
      });
    } catch (err) {
      reject(err instanceof ApiError ? err : new ApiError(500, 'InternalError', (err as Error).message));
    }
  }

  private allocateServiceIp(): string {
    const n = this.nextServiceIp++;
    return `10.96.${Math.floor(n / 250)}.${(n % 250) + 1}`;
  }
}

function subresourceDoc(t: ResourceType, sub: string): Record<string, unknown> {
  const kinds: Record<string, string> = { exec: 'PodExecOptions', proxy: t.kind === 'Pod' ? 'PodProxyOptions' : 'ServiceProxyOptions', attach: 'PodAttachOptions', portforward: 'PodPortForwardOptions', binding: 'Binding', eviction: 'Eviction' };
  const verbs: Record<string, string[]> = {
    status: ['get', 'patch', 'update'], log: ['get'], exec: ['create', 'get'], attach: ['create', 'get'], portforward: ['create', 'get'],
    proxy: ['create', 'delete', 'get', 'patch', 'update'], binding: ['create'], eviction: ['create'], ephemeralcontainers: ['get', 'patch', 'update'],
  };
  return { name: `${t.plural}/${sub}`, singularName: '', namespaced: t.namespaced, ...(t.group ? { group: t.group, version: 'v1' } : {}), kind: kinds[sub] ?? t.kind, verbs: verbs[sub] ?? ['get'] };
}

type DeleteOptions = { gracePeriodSeconds?: number; uid?: string; resourceVersion?: string };

/** A list item as a typed list carries it: without kind and apiVersion (the list says them). */
function listItem(obj: KubeObject): KubeObject {
  const { kind: _kind, apiVersion: _apiVersion, ...rest } = obj;
  return rest as KubeObject;
}

/** The object's etcd key under the API server's default /registry prefix, as storage errors name it. */
function storageKey(type: ResourceType, namespace: string | undefined, name: string): string {
  const prefix: Record<string, string> = { services: 'services/specs', endpoints: 'services/endpoints' };
  const resource = prefix[type.plural] ?? type.plural;
  return `/registry/${resource}/${type.namespaced ? `${namespace}/` : ''}${name}`;
}

/** DeleteOptions from the body (or, as clients also send them, the query). */
function deleteOptions(body: Record<string, any> | undefined, q: URLSearchParams): DeleteOptions {
  const options: DeleteOptions = {};
  const grace = body?.['gracePeriodSeconds'] ?? (q.get('gracePeriodSeconds') !== null ? Number(q.get('gracePeriodSeconds')) : undefined);
  if (grace !== undefined) options.gracePeriodSeconds = Number(grace);
  if (body?.['preconditions']?.uid) options.uid = body['preconditions'].uid;
  if (body?.['preconditions']?.resourceVersion) options.resourceVersion = body['preconditions'].resourceVersion;
  return options;
}

function asObject(body: unknown, type: ResourceType): KubeObject {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest(`${type.kind} in version "v1" cannot be handled as a ${type.kind}: the body is not a JSON object`);
  const obj = clone(body) as KubeObject;
  const wantVersion = apiVersionOf(type);
  if (obj.kind !== undefined && obj.kind !== type.kind) throw badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${wantVersion})`);
  if (obj.apiVersion !== undefined && obj.apiVersion !== wantVersion) throw badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${wantVersion})`);
  obj.apiVersion = wantVersion;
  obj.kind = type.kind;
  return obj;
}

function isDryRun(q: URLSearchParams): boolean {
  return q.getAll('dryRun').includes('All');
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`the object provided is unrecognized (must be of type Object): couldn't get version/kind; json parse error: ${(err as Error).message}`);
  }
}

async function readJsonOptional(req: IncomingMessage): Promise<Record<string, any> | undefined> {
  const text = await readBody(req);
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text) as Record<string, any>;
  } catch {
    throw badRequest('DeleteOptions could not be decoded');
  }
}

/** Sets the Warning headers the API server sends for unknown fields under fieldValidation=Warn. */
function warn(res: ServerResponse, warnings: string[]): void {
  if (warnings.length) res.setHeader('Warning', warnings.map((w) => `299 - ${JSON.stringify(w)}`));
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  sendText(res, status, JSON.stringify(body));
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-cache, private' });
  res.write(text);
  res.end();
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
