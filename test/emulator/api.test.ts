// The emulator through the real @kubernetes/client-node: every verb, errors, watch, exec, and each injected fault.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { execa } from 'execa';
import * as k8s from '@kubernetes/client-node';
import { KubeEmulator } from '../kube-emulator/emulator.js';
import { startRegistry, TempDirs, waitUntil, type TestRegistry } from '../harness/index.js';

let emulator: KubeEmulator;
let registry: TestRegistry;
let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;
const temp = new TempDirs();
const ns = 'api-test';

/** The ApiException's HTTP code and parsed Status body. */
async function failure(p: Promise<unknown>): Promise<{ code: number; body: { reason: string; message: string; details?: { causes?: Array<{ field: string }> } } }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof k8s.ApiException) return { code: err.code, body: typeof err.body === 'string' ? JSON.parse(err.body) : err.body };
    throw err;
  }
  throw new Error('expected the call to fail');
}

function pod(name: string, extra: Partial<k8s.V1PodSpec> = {}, labels: Record<string, string> = {}): k8s.V1Pod {
  return {
    metadata: { name, labels },
    spec: { containers: [{ name: 'app', image: `${registry.host}/team/app:v1`, command: ['sh', '-c', 'echo hello from $HOSTNAME; sleep 3600'] }], terminationGracePeriodSeconds: 2, ...extra },
  };
}

async function waitForPod(name: string, predicate: (p: k8s.V1Pod) => boolean, what: string, timeoutMs = 20_000): Promise<k8s.V1Pod> {
  let last: k8s.V1Pod | undefined;
  await waitUntil(`pod ${name} ${what}`, async () => {
    last = await core.readNamespacedPod({ name, namespace: ns });
    return predicate(last);
  }, timeoutMs);
  return last!;
}

const isReady = (p: k8s.V1Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

beforeAll(async () => {
  registry = await startRegistry();
  await registry.pushImage('team/app', 'v1');
  await registry.pushImage('team/app', 'v2');
  emulator = await KubeEmulator.start({ registryUrl: registry.url });
  kc = new k8s.KubeConfig();
  kc.loadFromString(emulator.kubeconfig);
  core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: ns } } });
});

afterAll(async () => {
  await emulator?.stop();
  await registry?.stop();
  await temp.removeAll();
});

describe('discovery and errors', () => {
  test('/version reports the configured Kubernetes version', async () => {
    const v = await kc.makeApiClient(k8s.VersionApi).getCode();
    expect(v.major).toBe('1');
    expect(v.minor).toBe('31');
  });

  test('a missing object is a 404 NotFound Status', async () => {
    const { code, body } = await failure(core.readNamespacedPod({ name: 'nope', namespace: ns }));
    expect(code).toBe(404);
    expect(body).toMatchObject({ kind: 'Status', reason: 'NotFound', message: 'pods "nope" not found' });
  });

  test('creating an object twice is a 409 AlreadyExists', async () => {
    await core.createNamespacedPod({ namespace: ns, body: pod('twice') });
    const { code, body } = await failure(core.createNamespacedPod({ namespace: ns, body: pod('twice') }));
    expect(code).toBe(409);
    expect(body.reason).toBe('AlreadyExists');
  });

  test('an invalid pod is a 422 Invalid with field causes', async () => {
    const bad = pod('Bad_Name');
    bad.spec!.containers[0]!.image = '';
    const { code, body } = await failure(core.createNamespacedPod({ namespace: ns, body: bad }));
    expect(code).toBe(422);
    expect(body.reason).toBe('Invalid');
    expect(body.details?.causes?.map((c) => c.field).sort()).toEqual(['metadata.name', 'spec.containers[0].image']);
  });

  test('a request without the token is 401 Unauthorized', async () => {
    const anonymous = new k8s.KubeConfig();
    anonymous.loadFromString(emulator.kubeconfig.replace(/token: .*/, 'token: wrong'));
    const { code } = await failure(anonymous.makeApiClient(k8s.CoreV1Api).listNamespace());
    expect(code).toBe(401);
  });
});

describe('verbs', () => {
  test('list with label and field selectors, and limit/continue paging', async () => {
    for (const i of [1, 2, 3, 4, 5]) await core.createNamespacedPod({ namespace: ns, body: pod(`page-${i}`, {}, { tier: i % 2 ? 'odd' : 'even' }) });
    const odd = await core.listNamespacedPod({ namespace: ns, labelSelector: 'tier=odd' });
    expect(odd.items.map((p) => p.metadata!.name)).toEqual(['page-1', 'page-3', 'page-5']);
    const notOdd = await core.listNamespacedPod({ namespace: ns, labelSelector: 'tier in (even),tier!=odd' });
    expect(notOdd.items.map((p) => p.metadata!.name)).toEqual(['page-2', 'page-4']);
    const byName = await core.listNamespacedPod({ namespace: ns, fieldSelector: 'metadata.name=page-4' });
    expect(byName.items).toHaveLength(1);
    const { code, body } = await failure(core.listNamespacedPod({ namespace: ns, fieldSelector: 'spec.bogus=1' }));
    expect(code).toBe(400);
    expect(body.message).toBe('field label not supported: spec.bogus');

    const seen: string[] = [];
    let cont: string | undefined;
    do {
      const page = await core.listNamespacedPod({ namespace: ns, labelSelector: 'tier', limit: 2, ...(cont ? { _continue: cont } : {}) });
      seen.push(...page.items.map((p) => p.metadata!.name!));
      cont = page.metadata?._continue;
    } while (cont);
    expect(seen).toEqual(['page-1', 'page-2', 'page-3', 'page-4', 'page-5']);
  });

  test('update with a stale resourceVersion is a 409 Conflict; with the current one it succeeds', async () => {
    await core.createNamespacedPod({ namespace: ns, body: pod('cas') });
    await waitForPod('cas', (p) => p.status?.phase === 'Running', 'running');
    const created = await core.readNamespacedPod({ name: 'cas', namespace: ns });
    const fresh = structuredClone(created);
    fresh.metadata!.labels = { step: 'one' };
    const updated = await core.replaceNamespacedPod({ name: 'cas', namespace: ns, body: fresh });
    expect(Number(updated.metadata!.resourceVersion)).toBeGreaterThan(Number(created.metadata!.resourceVersion));
    const stale = structuredClone(created);
    stale.metadata!.labels = { step: 'two' };
    const { code, body } = await failure(core.replaceNamespacedPod({ name: 'cas', namespace: ns, body: stale }));
    expect(code).toBe(409);
    expect(body.reason).toBe('Conflict');
    expect((await core.readNamespacedPod({ name: 'cas', namespace: ns })).metadata!.labels).toEqual({ step: 'one' });
  });

  test('merge, strategic-merge and JSON patches', async () => {
    await core.createNamespacedPod({ namespace: ns, body: pod('patched', {}, { a: '1' }) });
    await core.patchNamespacedPod({ name: 'patched', namespace: ns, body: { metadata: { labels: { b: '2', a: null } } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    await core.patchNamespacedPod({ name: 'patched', namespace: ns, body: [{ op: 'add', path: '/metadata/annotations', value: { note: 'x' } }] }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch));
    const image = `${registry.host}/team/app:v2`;
    const after = await core.patchNamespacedPod(
      { name: 'patched', namespace: ns, body: { spec: { containers: [{ name: 'app', image }] } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
    );
    expect(after.metadata!.labels).toEqual({ b: '2' });
    expect(after.metadata!.annotations).toEqual({ note: 'x' });
    // Strategic merge matched the container by name: the image changed and the command stayed.
    expect(after.spec!.containers).toHaveLength(1);
    expect(after.spec!.containers[0]).toMatchObject({ name: 'app', image, command: ['sh', '-c', 'echo hello from $HOSTNAME; sleep 3600'] });
  });

  test('a pod spec change other than the image is refused as the API server does', async () => {
    await core.createNamespacedPod({ namespace: ns, body: pod('immutable') });
    const { code, body } = await failure(
      core.patchNamespacedPod(
        { name: 'immutable', namespace: ns, body: { spec: { containers: [{ name: 'app', env: [{ name: 'X', value: '1' }] }] } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
      ),
    );
    expect(code).toBe(422);
    expect(body.message).toContain('pod updates may not change fields other than `spec.containers[*].image`');
  });

  test('a claim\'s requested size cannot shrink', async () => {
    await core.createNamespacedPersistentVolumeClaim({
      namespace: ns,
      body: { metadata: { name: 'shrink' }, spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'none', resources: { requests: { storage: '2Gi' } } } },
    });
    const { code, body } = await failure(
      core.patchNamespacedPersistentVolumeClaim(
        { name: 'shrink', namespace: ns, body: { spec: { resources: { requests: { storage: '1Gi' } } } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      ),
    );
    expect(code).toBe(422);
    expect(body.message).toContain('spec.resources.requests.storage: Forbidden: field can not be less than status.capacity');
  });

  test('graceful delete sets deletionTimestamp, then the pod is gone; deletecollection removes by selector', async () => {
    await core.createNamespacedPod({ namespace: ns, body: pod('graceful') });
    await waitForPod('graceful', (p) => p.status?.phase === 'Running', 'running');
    const deleting = await core.deleteNamespacedPod({ name: 'graceful', namespace: ns });
    expect((deleting as k8s.V1Pod).metadata?.deletionTimestamp).toBeDefined();
    await waitUntil('graceful pod to be gone', async () => (await failure(core.readNamespacedPod({ name: 'graceful', namespace: ns })).catch(() => ({ code: 200 }))).code === 404, 15_000);

    await core.deleteCollectionNamespacedPod({ namespace: ns, labelSelector: 'tier=odd', gracePeriodSeconds: 0 });
    const left = await core.listNamespacedPod({ namespace: ns, labelSelector: 'tier' });
    expect(left.items.map((p) => p.metadata!.name).sort()).toEqual(['page-2', 'page-4']);
  });
});

describe('watch', () => {
  test('a watch sees a pod go from Pending to Ready, and its deletion', async () => {
    const events: Array<[string, string | undefined, boolean]> = [];
    const watch = new k8s.Watch(kc);
    const list = await core.listNamespacedPod({ namespace: ns });
    const controller = await watch.watch(
      `/api/v1/namespaces/${ns}/pods`,
      { resourceVersion: list.metadata!.resourceVersion!, fieldSelector: 'metadata.name=watched' },
      (phase, obj: k8s.V1Pod) => events.push([phase, obj.status?.phase, isReady(obj)]),
      () => undefined,
    );
    await core.createNamespacedPod({ namespace: ns, body: pod('watched') });
    await waitUntil('watch to see Ready', async () => events.some(([, , ready]) => ready));
    await core.deleteNamespacedPod({ name: 'watched', namespace: ns, gracePeriodSeconds: 0 });
    await waitUntil('watch to see DELETED', async () => events.some(([t]) => t === 'DELETED'));
    controller.abort();
    expect(events[0]).toEqual(['ADDED', 'Pending', false]);
    expect(events.filter(([t]) => t === 'MODIFIED').length).toBeGreaterThanOrEqual(2);
  });

  test('a watch from a compacted resourceVersion gets a 410 Expired ERROR event', async () => {
    const old = (await core.listNamespacedPod({ namespace: ns })).metadata!.resourceVersion!;
    await core.createNamespacedPod({ namespace: ns, body: pod('after-compaction') });
    emulator.store.compact();
    const got: Array<[string, { code?: number; reason?: string }]> = [];
    await new Promise<unknown>((resolve) => {
      void new k8s.Watch(kc).watch(`/api/v1/namespaces/${ns}/pods`, { resourceVersion: old }, (t, o) => got.push([t, o]), resolve);
    });
    expect(got).toEqual([['ERROR', expect.objectContaining({ code: 410, reason: 'Expired' })]]);
  });
});

describe('exec', () => {
  let volumeDir: string;

  beforeAll(async () => {
    volumeDir = await temp.make('api-pv');
    await core.createPersistentVolume({
      body: { metadata: { name: 'api-pv' }, spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], hostPath: { path: volumeDir }, storageClassName: '' } },
    });
    await core.createNamespacedPersistentVolumeClaim({
      namespace: ns,
      body: { metadata: { name: 'code' }, spec: { accessModes: ['ReadWriteOnce'], volumeName: 'api-pv', storageClassName: '', resources: { requests: { storage: '1Gi' } } } },
    });
    const shell = pod('shell', { volumes: [{ name: 'code', persistentVolumeClaim: { claimName: 'code' } }] });
    shell.spec!.containers[0]!.volumeMounts = [{ name: 'code', mountPath: '/app' }];
    await core.createNamespacedPod({ namespace: ns, body: shell });
    await waitForPod('shell', isReady, 'ready');
  });

  async function run(command: string[], stdin?: Readable): Promise<{ stdout: string; stderr: string; status: k8s.V1Status }> {
    const out = new PassThrough();
    const err = new PassThrough();
    let stdout = '';
    let stderr = '';
    out.on('data', (d) => (stdout += d));
    err.on('data', (d) => (stderr += d));
    const status = await new Promise<k8s.V1Status>((resolve, reject) => {
      new k8s.Exec(kc).exec(ns, 'shell', 'app', command, out, err, stdin ?? null, false, resolve).catch(reject);
    });
    return { stdout, stderr, status };
  }

  test('exit status 0 and non-zero, with stdout and stderr', async () => {
    const ok = await run(['sh', '-c', 'echo out; echo err >&2']);
    expect(ok.status.status).toBe('Success');
    expect(ok.stdout).toBe('out\n');
    expect(ok.stderr).toBe('err\n');
    // The connection is in the request log, as the API server's audit log has it.
    expect(emulator.requestLog.filter((e) => e.verb === 'connect' && e.resource === 'pods/exec').at(-1)).toMatchObject({ method: 'GET', status: 101, path: expect.stringContaining('/exec?') });
    const bad = await run(['sh', '-c', 'exit 7']);
    expect(bad.status.status).toBe('Failure');
    expect(bad.status.reason).toBe('NonZeroExitCode');
    expect(bad.status.details?.causes?.find((c) => c.reason === 'ExitCode')?.message).toBe('7');
  });

  test('a tar streamed on stdin lands in the PVC path', async () => {
    const src = await temp.make('tar-src');
    await mkdir(join(src, 'site'), { recursive: true });
    await writeFile(join(src, 'site', 'index.html'), '<h1>v1</h1>\n');
    await writeFile(join(src, 'big.bin'), Buffer.alloc(3 * 1024 * 1024, 7));
    const tar = (await execa('tar', ['-c', '-C', src, '.'], { encoding: 'buffer' })).stdout;
    const result = await run(['tar', '-x', '-C', '/app'], Readable.from([Buffer.from(tar)]));
    expect(result.status.status).toBe('Success');
    expect(await readFile(join(volumeDir, 'site', 'index.html'), 'utf8')).toBe('<h1>v1</h1>\n');
    expect((await readFile(join(volumeDir, 'big.bin'))).length).toBe(3 * 1024 * 1024);
    const seen = await run(['cat', '/app/site/index.html']);
    expect(seen.stdout).toBe('<h1>v1</h1>\n');
  });
});

describe('faults', () => {
  test('added latency slows every request', async () => {
    emulator.faults.latencyMs = 300;
    const started = Date.now();
    await core.listNamespace();
    emulator.faults.latencyMs = 0;
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  });

  test.each([429, 500, 503] as const)('status %i for the next N matching requests, then normal service', async (status) => {
    emulator.faults.failNext({ status, count: 2, verb: 'list', resource: 'pods', retryAfterSeconds: 3 });
    for (let i = 0; i < 2; i++) {
      const { code } = await failure(core.listNamespacedPod({ namespace: ns }));
      expect(code).toBe(status);
    }
    // Other verbs were not affected, and the third list works.
    await core.readNamespace({ name: ns });
    await core.listNamespacedPod({ namespace: ns });
  });

  test('429 carries Retry-After', async () => {
    emulator.faults.failNext({ status: 429, count: 1, verb: 'get', resource: 'namespaces', retryAfterSeconds: 7 });
    const { body } = await failure(core.readNamespace({ name: ns }));
    expect(body).toMatchObject({ reason: 'TooManyRequests', details: { retryAfterSeconds: 7 } });
    const entry = emulator.requestLog.filter((e) => e.resource === 'namespaces' && e.verb === 'get').at(-1);
    expect(entry?.status).toBe(429);
  });

  test('dropped watch streams end the client\'s watch', async () => {
    const watch = new k8s.Watch(kc);
    const ended = new Promise<unknown>((resolve) => {
      void watch.watch(`/api/v1/namespaces/${ns}/pods`, {}, () => undefined, resolve);
    });
    await new Promise((r) => setTimeout(r, 200));
    emulator.faults.dropWatches();
    await expect(ended).resolves.toBeDefined();
  });

  test('an exec stream cut mid-way gives no exit status', async () => {
    emulator.faults.cutNextExec(1024);
    const out = new PassThrough();
    out.resume();
    let status: k8s.V1Status | undefined;
    const ws = await new k8s.Exec(kc).exec(ns, 'shell', 'app', ['sh', '-c', 'head -c 1000000 /dev/zero'], out, null, null, false, (s) => (status = s));
    await new Promise((resolve) => ws.on('close', resolve));
    expect(status).toBeUndefined();
  });

  test('the request log counts round trips', async () => {
    const before = emulator.requestLog.length;
    await core.readNamespace({ name: ns });
    await core.listNamespacedPod({ namespace: ns });
    const entries = emulator.requestLog.slice(before);
    expect(entries.map((e) => `${e.method} ${e.verb} ${e.resource} ${e.status}`)).toEqual(['GET get namespaces 200', 'GET list pods 200']);
    expect(entries.every((e) => e.bytes > 0)).toBe(true);
  });

  test('a lost node turns its pods not ready', async () => {
    emulator.faults.loseNode();
    await waitForPod('shell', (p) => !isReady(p), 'not ready after the node was lost');
  });
});
