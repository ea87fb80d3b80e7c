// The etcd edge: a small verb-shaped port over the etcd3 client. Every call carries a deadline; nothing
// is retried here (the client's own retry is off), so a write whose outcome is unknown is never repeated
// blindly — callers re-read first.
import { Etcd3, GRPCDeadlineExceededError, GRPCUnavailableError, GRPCCancelledError, GRPCInvalidArgumentError, GRPCGenericError, EtcdAuthenticationFailedError, EtcdPermissionDeniedError, GRPCUnauthenticatedError, EtcdLeaseInvalidError, isRecoverableError, type Lease, type IOptions } from 'etcd3';
import { circuitBreaker, ConsecutiveBreaker, handleWhen, isBrokenCircuitError, noop } from 'cockatiel';
import { GkubeError } from '../errors.js';

/** How to reach etcd (resolved by the CLI from flags and ETCDCTL_* variables). */
export interface EtcdConnection {
  endpoints: string[];
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  auth?: { username: string; password: string };
  /** Deadline of each call. */
  callTimeoutMs: number;
}

/** One stored key. Revisions are decimal strings (int64). */
export interface KeyValue {
  key: string;
  value: Buffer;
  modRevision: string;
  createRevision: string;
  lease: string;
}

/** A transaction guard. */
export interface Compare {
  key: string;
  target: 'Mod' | 'Create' | 'Version' | 'Lease';
  op: '==' | '!=' | '<' | '>';
  value: string | number;
}

/** A transaction operation. */
export type TxnOp = { put: string; value: string; lease?: string } | { delete: string } | { deletePrefix: string };

/** A lease this process keeps alive until it is revoked or lost. */
export interface LeaseHandle {
  id: string;
  /** True once keep-alive failed and etcd may have expired the lease. */
  readonly lost: boolean;
  /** Called once when the lease is lost. */
  onLost(listener: (err: Error) => void): void;
  /** Revokes the lease (its keys go away) and stops keep-alive. */
  revoke(): Promise<void>;
}

/** What the rest of gkube may do with etcd. */
export interface EtcdPort {
  readonly endpoints: string[];
  get(key: string): Promise<KeyValue | undefined>;
  /** Every key under `prefix`, read page by page at one revision. */
  list(prefix: string, options?: { pageSize?: number }): Promise<KeyValue[]>;
  count(prefix: string): Promise<number>;
  txn(compares: Compare[], success: TxnOp[], failure?: TxnOp[]): Promise<{ succeeded: boolean; revision: string; failureValues: Array<KeyValue | undefined> }>;
  grantLease(ttlSeconds: number): Promise<LeaseHandle>;
  /** Seconds left on a lease; -1 when it no longer exists. */
  leaseTimeToLive(id: string): Promise<number>;
  revokeLease(id: string): Promise<void>;
  /** Calls `listener` on every change of `key` until the returned function is called. */
  watchKey(key: string, listener: (event: 'put' | 'delete') => void): Promise<() => Promise<void>>;
  /** The answering member's version and whether a leader is known, with the round-trip time. */
  status(): Promise<{ version: string; hasLeader: boolean; latencyMs: number }>;
  close(): void;
}

/** How long before its TTL ends a lease that etcd stopped renewing counts as lost. */
const leaseMarginMs = 2_000;

/** Opens a client; no connection is made until the first call. */
export function connectEtcd(connection: EtcdConnection): EtcdPort {
  const options: IOptions = {
    hosts: connection.endpoints,
    dialTimeout: connection.callTimeoutMs,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + connection.callTimeoutMs }),
    // No silent retries: a repeated txn could apply twice. Callers re-read and decide. With several members, one
    // that failed to answer is passed over for a few seconds (the client then goes to the next), so that a
    // member down costs one failed call, which reads repeat (see `read`).
    faultHandling: {
      host: () => (connection.endpoints.length > 1 ? circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 5_000, breaker: new ConsecutiveBreaker(1) }) : noop),
      global: noop,
    },
  };
  if (connection.tls) {
    options.credentials = {
      rootCertificate: connection.tls.ca ?? Buffer.alloc(0),
      ...(connection.tls.key ? { privateKey: connection.tls.key } : {}),
      ...(connection.tls.cert ? { certChain: connection.tls.cert } : {}),
    };
    if (!connection.tls.ca) delete (options.credentials as { rootCertificate?: Buffer }).rootCertificate;
  }
  // A factory, so that a re-authentication late in a long run gets a fresh deadline.
  if (connection.auth) options.auth = { username: connection.auth.username, password: connection.auth.password, callOptions: () => ({ deadline: Date.now() + connection.callTimeoutMs }) };
  return new Etcd3Port(new Etcd3(options), connection);
}

class Etcd3Port implements EtcdPort {
  readonly endpoints: string[];

  constructor(
    private readonly client: Etcd3,
    private readonly connection: EtcdConnection,
  ) {
    this.endpoints = connection.endpoints;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const res = await this.read(() => this.client.get(key).exec());
    const kv = res.kvs[0];
    return kv ? toKeyValue(kv) : undefined;
  }

  async list(prefix: string, options: { pageSize?: number } = {}): Promise<KeyValue[]> {
    const pageSize = options.pageSize ?? 500;
    const out: KeyValue[] = [];
    let revision: string | undefined;
    let start = Buffer.from(prefix);
    const end = prefixEnd(Buffer.from(prefix));
    for (;;) {
      const query = this.client.getAll().inRange({ start, end }).limit(pageSize);
      if (revision) query.revision(revision);
      const res = await this.read(() => query.exec());
      revision ??= res.header.revision;
      for (const kv of res.kvs) out.push(toKeyValue(kv));
      if (!res.more || res.kvs.length === 0) return out;
      start = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
    }
  }

  async count(prefix: string): Promise<number> {
    return this.read(() => this.client.getAll().prefix(prefix).count());
  }

  async txn(compares: Compare[], success: TxnOp[], failure: TxnOp[] = []) {
    const [first, ...rest] = compares;
    if (!first) throw new Error('a transaction needs at least one compare');
    let builder = this.client.if(first.key, first.target, first.op, first.value as never);
    for (const c of rest) builder = builder.and(c.key, c.target, c.op, c.value as never);
    const toOps = (ops: TxnOp[]) =>
      ops.map((op) => {
        if ('put' in op) {
          const put = this.client.put(op.put).value(op.value);
          return op.lease ? put.lease(op.lease) : put;
        }
        if ('delete' in op) return this.client.delete().key(op.delete);
        return this.client.delete().prefix(op.deletePrefix);
      });
    // On failure, read the guarded keys back in the same transaction so callers see why.
    const reads = compares.map((c) => this.client.get(c.key));
    const res = await this.call(() => builder.then(...toOps(success)).else(...toOps(failure), ...reads).commit());
    const failureValues: Array<KeyValue | undefined> = [];
    if (!res.succeeded) {
      for (const r of res.responses.slice(failure.length)) {
        const kv = r.response_range?.kvs?.[0];
        failureValues.push(kv ? toKeyValue(kv) : undefined);
      }
    }
    return { succeeded: res.succeeded, revision: res.header.revision, failureValues };
  }

  async grantLease(ttlSeconds: number): Promise<LeaseHandle> {
    const lease: Lease = this.client.lease(ttlSeconds, { autoKeepAlive: true });
    const id = await this.call(() => lease.grant());
    let lost = false;
    const listeners: Array<(err: Error) => void> = [];
    const lose = (err: Error) => {
      if (lost) return;
      lost = true;
      clearTimeout(watchdog);
      for (const l of listeners) l(err);
    };
    // etcd3 reports a lost lease only after twice its TTL without an answer; etcd may expire it after one TTL.
    // So the lease counts as lost once no keep-alive was answered for its TTL less a margin: the holder stops
    // before another run can take what the lease guarded.
    const silentMs = Math.max(1_000, ttlSeconds * 1000 - leaseMarginMs);
    const expire = () => lose(new Error(`etcd answered no keep-alive of lease ${id} for ${Math.round(silentMs / 1000)}s; it may have expired`));
    let watchdog: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(expire, silentMs).unref();
    };
    arm();
    lease.on('keepaliveSucceeded', () => lost || arm());
    lease.on('lost', (err: Error) => lose(err));
    return {
      id,
      get lost() {
        return lost;
      },
      onLost: (listener) => listeners.push(listener),
      revoke: async () => {
        lost = true;
        clearTimeout(watchdog);
        try {
          await this.call(() => lease.revoke());
        } catch (err) {
          // Already expired: nothing left to revoke.
          if (!leaseGone(err)) throw err;
        }
      },
    };
  }

  async leaseTimeToLive(id: string): Promise<number> {
    const res = await this.read(() => this.client.leaseClient.leaseTimeToLive({ ID: id }));
    return Number(res.TTL);
  }

  async revokeLease(id: string): Promise<void> {
    try {
      await this.call(() => this.client.leaseClient.leaseRevoke({ ID: id }));
    } catch (err) {
      if (!leaseGone(err)) throw err;
    }
  }

  async watchKey(key: string, listener: (event: 'put' | 'delete') => void): Promise<() => Promise<void>> {
    // etcd3 reconnects a watch for ever and reports nothing while etcd is away: its start gets a call's deadline.
    const watcher = this.client.watch().key(key).watcher();
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new GRPCDeadlineExceededError('the watch did not start in time')), this.connection.callTimeoutMs);
        watcher.once('connected', () => (clearTimeout(timer), resolve()));
        watcher.once('error', (err: Error) => (clearTimeout(timer), reject(err)));
      });
    } catch (err) {
      await watcher.cancel().catch(() => undefined);
      throw translate(err, this.connection);
    }
    watcher.on('put', () => listener('put'));
    watcher.on('delete', () => listener('delete'));
    watcher.on('error', () => undefined);
    return async () => {
      await watcher.cancel().catch(() => undefined);
    };
  }

  async status() {
    const started = Date.now();
    const res = await this.read(() => this.client.maintenance.status());
    return { version: res.version, hasLeader: res.leader !== '0', latencyMs: Date.now() - started };
  }

  close(): void {
    this.client.close();
  }

  /**
   * A read, which may be repeated: a member that does not answer is tried again on another (the client picks
   * one at random per call), so one member down does not fail the run. Writes are never repeated here.
   */
  private async read<T>(fn: () => Promise<T>): Promise<T> {
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.call(fn);
      } catch (err) {
        if (!(err instanceof GkubeError && err.code === 'DEPENDENCY_UNREACHABLE') || attempt >= this.endpoints.length) throw err;
        // A member that refused at once is skipped; one that used up the deadline ends the read (exit 4 stays prompt).
        if (Date.now() - started >= this.connection.callTimeoutMs / 2) throw err;
      }
    }
  }

  /** Runs a call and turns connection failures into exit 4 and refused credentials into exit 2. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw translate(err, this.connection);
    }
  }
}

function translate(err: unknown, connection: EtcdConnection): unknown {
  const where = connection.endpoints.join(',');
  // A broken circuit: every member failed to answer just before.
  if (err instanceof GRPCUnavailableError || err instanceof GRPCDeadlineExceededError || err instanceof GRPCCancelledError || isBrokenCircuitError(err)) {
    return new GkubeError('DEPENDENCY_UNREACHABLE', `etcd at ${where} is unreachable (no answer within ${Math.round(connection.callTimeoutMs / 1000)}s); nothing was changed`, {
      hint: 'check --etcd-endpoints (or GKUBE_ETCD_ENDPOINTS / ETCDCTL_ENDPOINTS) and that etcd is running',
      cause: err,
    });
  }
  if (err instanceof EtcdAuthenticationFailedError || err instanceof EtcdPermissionDeniedError || err instanceof GRPCUnauthenticatedError) {
    return new GkubeError('INVALID_CONFIG', `etcd at ${where} refused gkube's credentials (${err.constructor.name.replace(/^Etcd|Error$/g, '')})`, {
      hint: 'check ETCDCTL_USER / ETCDCTL_PASSWORD and the user\'s role on the gkube prefix',
      cause: err,
    });
  }
  if (err instanceof EtcdLeaseInvalidError) {
    return new GkubeError('LOCK_LOST', 'etcd no longer has the lease gkube held (it expired); nothing was written under it', { hint: 'rerun: gkube takes the job lock again first', cause: err });
  }
  // etcd answers an anonymous call on a cluster with auth enabled with INVALID_ARGUMENT and this text only;
  // etcd3 has no class for it, so the text is the one thing to go by here, at the edge.
  if (err instanceof GRPCInvalidArgumentError && /user name is empty/.test(err.message)) {
    return new GkubeError('INVALID_CONFIG', `etcd at ${where} requires a user and none was given`, { hint: 'set ETCDCTL_USER (user:password, or the user with ETCDCTL_PASSWORD)', cause: err });
  }
  // Any other gRPC failure means what answered is not a working etcd (a proxy, a web server, a broken member).
  if (err instanceof GRPCGenericError) {
    return new GkubeError('DEPENDENCY_UNREACHABLE', `etcd at ${where} did not answer as etcd (${err.message.split('\n')[0]}); nothing was changed`, {
      hint: 'check that --etcd-endpoints (or GKUBE_ETCD_ENDPOINTS / ETCDCTL_ENDPOINTS) names etcd client URLs',
      cause: err,
    });
  }
  return err;
}

/** A lease etcd no longer has (expired or revoked), as `call` reports it. */
function leaseGone(err: unknown): boolean {
  return err instanceof GkubeError && err.cause instanceof EtcdLeaseInvalidError;
}

function toKeyValue(kv: { key: Buffer; value: Buffer; mod_revision: string; create_revision: string; lease: string }): KeyValue {
  return { key: kv.key.toString(), value: kv.value, modRevision: kv.mod_revision, createRevision: kv.create_revision, lease: kv.lease };
}

/** The first key after every key with this prefix. */
function prefixEnd(prefix: Buffer): Buffer {
  const buf = Buffer.from(prefix);
  for (let i = buf.length - 1; i >= 0; i--) {
    if (buf[i]! < 0xff) {
      buf[i]! += 1;
      return buf.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
