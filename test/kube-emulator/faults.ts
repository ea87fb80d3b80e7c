// Fault injection: set at start or at run time by tests, consulted by the server, watches, exec and the kubelet.

/** Fail the next `count` requests that match with `status` (429 carries Retry-After). */
export interface StatusFault {
  status: 429 | 500 | 503 | 504;
  count: number;
  /** HTTP verb in API terms: get, list, watch, create, update, patch, delete, deletecollection, connect. Any when absent. */
  verb?: string;
  /** Resource plural, with subresource as `pods/exec`. Any when absent. */
  resource?: string;
  retryAfterSeconds?: number;
}

/** The emulator's fault switches. */
export class Faults {
  /** Added to every API request before it is served. */
  latencyMs = 0;
  private statusFaults: StatusFault[] = [];
  private execCuts: number[] = [];
  private readonly watchClosers = new Set<() => void>();
  private readonly nodeLostListeners = new Set<() => void>();

  /** Queues a status fault. */
  failNext(fault: StatusFault): void {
    this.statusFaults.push({ ...fault });
  }

  /** The status fault for this request, consuming one of its count; undefined when none matches. */
  takeStatus(verb: string, resource: string): StatusFault | undefined {
    const fault = this.statusFaults.find((f) => (!f.verb || f.verb === verb) && (!f.resource || f.resource === resource));
    if (!fault) return undefined;
    fault.count -= 1;
    if (fault.count <= 0) this.statusFaults = this.statusFaults.filter((f) => f !== fault);
    return fault;
  }

  /** The next exec stream is cut (socket destroyed) after `afterBytes` bytes have passed through it. */
  cutNextExec(afterBytes: number): void {
    this.execCuts.push(afterBytes);
  }

  /** For the exec handler: the byte count at which to cut this stream, if a cut is queued. */
  takeExecCut(): number | undefined {
    return this.execCuts.shift();
  }

  /** For the server: registers an open watch stream's closer; returns the unregister function. */
  trackWatch(close: () => void): () => void {
    this.watchClosers.add(close);
    return () => this.watchClosers.delete(close);
  }

  /** Drops every open watch stream (clients see the connection end, as when an API server restarts). */
  dropWatches(): void {
    for (const close of [...this.watchClosers]) close();
    this.watchClosers.clear();
  }

  /** For the kubelet: called when the node is declared lost. */
  onNodeLost(listener: () => void): void {
    this.nodeLostListeners.add(listener);
  }

  /** The node stops reporting: its pods go Unknown, then are evicted. */
  loseNode(): void {
    for (const l of this.nodeLostListeners) l();
  }
}
