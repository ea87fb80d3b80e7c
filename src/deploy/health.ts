// The explicit health check after a change: an exec probe in the pod (health.exec) or an HTTP GET through
// the API server's pod proxy (health.http). The pod's Ready condition is never taken as proof: it may still
// be true from before the reload.
import type { KubePort } from '../adapters/kube.js';
import type { AppConfig } from '../config/index.js';
import { parseDuration } from '../config/duration.js';
import { GkubeError } from '../errors.js';

/** How far apart the attempts are. */
const intervalMs = 2_000;
/** Deadline of one attempt. */
const attemptTimeoutMs = 10_000;

/** Where the check runs. */
export interface HealthTarget {
  kube: KubePort;
  namespace: string;
  pod: string;
  signal?: AbortSignal;
}

/** What a passed check saw. */
export interface HealthResult {
  /** `exec`, `http` or `ready` (no check configured: only the pod's state was looked at). */
  kind: 'exec' | 'http' | 'ready';
  attempts: number;
  detail: string;
}

/**
 * Checks the app until it answers healthy: an attempt every 2 s, until one passes, `health.retries` attempts
 * have failed, or `health.timeout` has passed. Throws OPERATION_FAILED with the last answer.
 */
export async function checkHealth(target: HealthTarget, config: AppConfig): Promise<HealthResult> {
  const h = config.health;
  const deadline = Date.now() + parseDuration(h.timeout, 'health.timeout');
  const tries = Math.max(1, h.retries);
  const probe = h.exec ? execProbe(target, h.exec) : h.http ? httpProbe(target, h.http.port ?? config.container.port, h.http.path) : readyProbe(target);
  const kind = h.exec ? 'exec' : h.http ? 'http' : 'ready';
  let last = '';
  for (let attempt = 1; ; attempt++) {
    if (target.signal?.aborted) throw new GkubeError('ABORTED', `stopped during the health check of pod ${target.namespace}/${target.pod}`);
    const timeoutMs = Math.max(1_000, Math.min(attemptTimeoutMs, deadline - Date.now()));
    const outcome = await probe(timeoutMs).catch((err: unknown) => {
      if (err instanceof GkubeError && err.code !== 'OPERATION_FAILED') throw err;
      return { ok: false, detail: (err as Error).message };
    });
    if (outcome.ok) return { kind, attempts: attempt, detail: outcome.detail };
    last = outcome.detail;
    if (attempt >= tries || Date.now() + intervalMs > deadline) {
      throw new GkubeError('OPERATION_FAILED', `health check of pod ${target.namespace}/${target.pod} failed ${attempt} time${attempt === 1 ? '' : 's'}: ${last}`, {
        hint: 'see the app\'s logs: gkube describe, or kubectl logs',
      });
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

type Probe = (timeoutMs: number) => Promise<{ ok: boolean; detail: string }>;

function execProbe(t: HealthTarget, command: readonly string[]): Probe {
  return async (timeoutMs) => {
    const r = await t.kube.exec({ namespace: t.namespace, pod: t.pod, container: 'app', command: [...command], timeoutMs, maxOutputBytes: 4096 });
    const said = firstLine(r.stderr) || firstLine(r.stdout);
    return { ok: r.exitCode === 0, detail: `${JSON.stringify(command.join(' '))} exited ${r.exitCode}${said ? `: ${said}` : ''}` };
  };
}

function httpProbe(t: HealthTarget, port: number, path: string): Probe {
  return async (timeoutMs) => {
    const r = await t.kube.proxyGet(t.namespace, t.pod, port, path, timeoutMs);
    // As the kubelet's httpGet probe: 200–399 is healthy.
    const ok = r.status >= 200 && r.status < 400;
    const said = firstLine(r.body);
    return { ok, detail: `GET :${port}${path} answered ${r.status}${said ? `: ${said}` : ''}` };
  };
}

function readyProbe(t: HealthTarget): Probe {
  return async () => {
    const pod = await t.kube.findPod(t.namespace, t.pod);
    const ok = pod !== undefined && pod.ready && pod.running && !pod.deleting;
    return { ok, detail: ok ? 'no health check configured (health.exec or health.http): the pod is running and ready' : `the pod is ${pod ? `${pod.phase}${pod.ready ? '' : ', not ready'}` : 'gone'}` };
  };
}

function firstLine(text: string): string {
  const line = text.trim().split('\n')[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
