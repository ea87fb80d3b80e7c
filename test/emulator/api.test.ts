// The emulator through the real @kubernetes/client-node: every verb, errors, watch, exec, and each injected fault.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { request as httpsRequest } from 'node:https';
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

  test('a claim\'s requested size cannot shrink, and an unbound claim\'s spec cannot change at all', async () => {
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
    // RecoverVolumeExpansionFailure is off by default in 1.31: any shrink is refused, whatever status.capacity says.
    expect(body.details?.causes).toEqual([
      expect.objectContaining({ field: 'spec', reason: 'FieldValueForbidden', message: expect.stringMatching(/^Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n/) }),
      { field: 'spec.resources.requests.storage', reason: 'FieldValueForbidden', message: 'Forbidden: field can not be less than previous value' },
    ]);
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

/** A request with the emulator's credentials, for what client-node has no method for or would reshape. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the answers are checked as raw JSON
async function raw(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; json: any }> {
  const cluster = kc.getCurrentCluster()!;
  const user = kc.getCurrentUser()!;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(new URL(path, emulator.url), { method, ca: Buffer.from(cluster.caData!, 'base64'), headers: { authorization: `Bearer ${user.token}`, 'content-type': contentType, accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(JSON.stringify(body));
    req.end();
  });
}

const strategic = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch);
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

/** A pod whose container ignores SIGTERM, so that it stays terminating for its whole grace period. */
function stubborn(name: string, grace: number): k8s.V1Pod {
  const p = pod(name, { terminationGracePeriodSeconds: grace });
  p.spec!.containers[0]!.command = ['sh', '-c', "trap '' TERM; sleep 3600"];
  return p;
}

describe('create, update and delete as the API server answers them', () => {
  test('a create that carries a resourceVersion is refused by the storage layer: 500 with no reason', async () => {
    const { status, json } = await raw('POST', `/api/v1/namespaces/${ns}/pods`, { apiVersion: 'v1', kind: 'Pod', ...pod('with-rv'), metadata: { name: 'with-rv', resourceVersion: '42' } });
    expect(status).toBe(500);
    expect(json).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'resourceVersion should not be set on objects to be created', code: 500 });
    expect((await failure(core.readNamespacedPod({ name: 'with-rv', namespace: ns }))).code).toBe(404);
  });

  test('a dry-run create of an existing object is still a 409 AlreadyExists', async () => {
    await core.createNamespacedPod({ namespace: ns, body: pod('dry-exists') });
    const { code, body } = await failure(core.createNamespacedPod({ namespace: ns, body: pod('dry-exists'), dryRun: 'All' }));
    expect(code).toBe(409);
    expect(body).toMatchObject({ reason: 'AlreadyExists', message: 'pods "dry-exists" already exists' });
  });

  test('a PUT with another uid fails its storage precondition (409); a patch that changes the uid is a 422', async () => {
    const created = await core.createNamespacedPod({ namespace: ns, body: pod('uid-pod') });
    const uid = created.metadata!.uid!;
    const other = structuredClone(created);
    other.metadata!.uid = 'not-the-uid';
    const put = await failure(core.replaceNamespacedPod({ name: 'uid-pod', namespace: ns, body: other }));
    expect(put.code).toBe(409);
    expect(put.body).toMatchObject({
      reason: 'Conflict',
      message: `Operation cannot be fulfilled on pods "uid-pod": StorageError: invalid object, Code: 4, Key: /registry/pods/${ns}/uid-pod, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: not-the-uid, UID in object meta: ${uid}`,
    });
    const patched = await failure(core.patchNamespacedPod({ name: 'uid-pod', namespace: ns, body: { metadata: { uid: 'not-the-uid' } } }, mergePatch));
    expect(patched.code).toBe(422);
    expect(patched.body.message).toBe('Pod "uid-pod" is invalid: metadata.uid: Invalid value: "not-the-uid": field is immutable');
  });

  test('no finalizer can be added to an object being deleted', async () => {
    const held = pod('held', {});
    held.metadata!.finalizers = ['example.com/keep'];
    await core.createNamespacedPod({ namespace: ns, body: held });
    await core.deleteNamespacedPod({ name: 'held', namespace: ns, gracePeriodSeconds: 0 });
    const { code, body } = await failure(
      core.patchNamespacedPod({ name: 'held', namespace: ns, body: { metadata: { finalizers: ['example.com/keep', 'example.com/more', 'example.com/again'] } } }, mergePatch),
    );
    expect(code).toBe(422);
    expect(body.message).toBe('Pod "held" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{"example.com/again", "example.com/more"}');
    // Removing the last one lets the deletion finish.
    await core.patchNamespacedPod({ name: 'held', namespace: ns, body: { metadata: { finalizers: null } } }, mergePatch);
    await waitUntil('held pod to be gone', async () => (await failure(core.readNamespacedPod({ name: 'held', namespace: ns }))).code === 404);
  });

  test('a negative grace period counts as 1 s; deleting again may only shorten it, moving deletionTimestamp', async () => {
    await core.createNamespacedPod({ namespace: ns, body: stubborn('negative-grace', 60) });
    await core.createNamespacedPod({ namespace: ns, body: stubborn('regrace', 60) });
    await waitForPod('negative-grace', (p) => p.status?.phase === 'Running', 'running');
    await waitForPod('regrace', (p) => p.status?.phase === 'Running', 'running');

    const negative = (await core.deleteNamespacedPod({ name: 'negative-grace', namespace: ns, gracePeriodSeconds: -5 })) as k8s.V1Pod;
    expect(negative.metadata!.deletionGracePeriodSeconds).toBe(1);

    const first = (await core.deleteNamespacedPod({ name: 'regrace', namespace: ns, gracePeriodSeconds: 50 })) as k8s.V1Pod;
    const firstAt = new Date(first.metadata!.deletionTimestamp!).getTime();
    expect(first.metadata!.deletionGracePeriodSeconds).toBe(50);
    // A longer grace period, or none, changes nothing.
    const longer = (await core.deleteNamespacedPod({ name: 'regrace', namespace: ns, gracePeriodSeconds: 55 })) as k8s.V1Pod;
    expect(longer.metadata).toMatchObject({ deletionGracePeriodSeconds: 50, resourceVersion: first.metadata!.resourceVersion });
    const shorter = (await core.deleteNamespacedPod({ name: 'regrace', namespace: ns, gracePeriodSeconds: 20 })) as k8s.V1Pod;
    expect(shorter.metadata!.deletionGracePeriodSeconds).toBe(20);
    // The old deletionTimestamp minus the old grace period plus the new one.
    expect(new Date(shorter.metadata!.deletionTimestamp!).getTime()).toBe(firstAt - 30_000);
    await core.deleteNamespacedPod({ name: 'regrace', namespace: ns, gracePeriodSeconds: 0 });
    expect((await failure(core.readNamespacedPod({ name: 'regrace', namespace: ns }))).code).toBe(404);
  });

  test('a verb the resource does not serve is 405 MethodNotAllowed', async () => {
    const { status, json } = await raw('DELETE', '/api/v1/namespaces');
    expect(status).toBe(405);
    expect(json).toMatchObject({ kind: 'Status', reason: 'MethodNotAllowed', message: 'the server does not allow this method on the requested resource', code: 405 });
    expect((await core.readNamespace({ name: ns })).status?.phase).toBe('Active');
  });

  test('the items of a list carry no kind or apiVersion; a single object does', async () => {
    await core.createNamespacedPod({ namespace: ns, body: pod('listed') });
    const list = await raw('GET', `/api/v1/namespaces/${ns}/pods?fieldSelector=metadata.name%3Dlisted`);
    expect(list.json).toMatchObject({ kind: 'PodList', apiVersion: 'v1' });
    expect(list.json.items).toHaveLength(1);
    expect(list.json.items[0].metadata.name).toBe('listed');
    expect(list.json.items[0]).not.toHaveProperty('kind');
    expect(list.json.items[0]).not.toHaveProperty('apiVersion');
    expect((await raw('GET', `/api/v1/namespaces/${ns}/pods/listed`)).json).toMatchObject({ kind: 'Pod', apiVersion: 'v1' });
  });
});

describe('pod validation', () => {
  test('volume mounts, environment, resources and activeDeadlineSeconds follow the API server\'s rules', async () => {
    const bad = pod('many-wrongs', { activeDeadlineSeconds: 0, volumes: [{ name: 'data', emptyDir: {} }] });
    const c = bad.spec!.containers[0]!;
    c.volumeMounts = [
      { name: 'data', mountPath: '/data' },
      { name: 'data', mountPath: '/data', subPath: '/abs' },
      { name: 'data', mountPath: '/other', subPath: 'a/../../b' },
    ];
    c.env = [
      { name: '1ST', value: 'x' },
      { name: 'BOTH', value: 'x', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'GOOD.name-1', value: 'x' },
    ];
    c.resources = { requests: { cpu: '2' }, limits: { cpu: '1' } };
    const { code, body } = await failure(core.createNamespacedPod({ namespace: ns, body: bad }));
    expect(code).toBe(422);
    const causes = (body.details as { causes: Array<{ field: string; message: string }> }).causes.map((x) => `${x.field}: ${x.message}`);
    expect(causes.sort()).toEqual(
      [
        'spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive',
        'spec.containers[0].env[0].name: Invalid value: "1ST": a valid environment variable name must consist of alphabetic characters, digits, \'_\', \'-\', or \'.\', and must not start with a digit (e.g. \'my.env-name\',  or \'MY_ENV.NAME\',  or \'MyEnvName1\', regex used for validation is \'[-._a-zA-Z][-._a-zA-Z0-9]*\')',
        'spec.containers[0].env[1].valueFrom: Invalid value: "": may not be specified when `value` is not empty',
        'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1',
        'spec.containers[0].volumeMounts.subPath: Invalid value: "/abs": must be a relative path',
        'spec.containers[0].volumeMounts.subPath: Invalid value: "a/../../b": must not contain \'..\'',
        'spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/data": must be unique',
      ].sort(),
    );
  });

  test('a pod name longer than 253 characters is refused; a limit without a request becomes the request', async () => {
    const long = `a${'b'.repeat(253)}`;
    const { code, body } = await failure(core.createNamespacedPod({ namespace: ns, body: pod(long) }));
    expect(code).toBe(422);
    expect(body.message).toBe(`Pod "${long}" is invalid: metadata.name: Invalid value: "${long}": must be no more than 253 characters`);
    const limited = pod('limited');
    limited.spec!.containers[0]!.resources = { limits: { cpu: '500m', memory: '64Mi' } };
    const created = await core.createNamespacedPod({ namespace: ns, body: limited });
    expect(created.spec!.containers[0]!.resources!.requests).toEqual({ cpu: '500m', memory: '64Mi' });
  });

  test('a running pod: terminationGracePeriodSeconds cannot change, activeDeadlineSeconds cannot rise or go, tolerations only grow', async () => {
    await core.createNamespacedPod({ namespace: ns, body: pod('updates') });
    const grace = await failure(core.patchNamespacedPod({ name: 'updates', namespace: ns, body: { spec: { terminationGracePeriodSeconds: 1 } } }, strategic));
    expect(grace.code).toBe(422);
    expect(grace.body.message).toContain('spec: Forbidden: pod updates may not change fields other than');
    expect(grace.body.message).toContain('terminationGracePeriodSeconds');

    await core.patchNamespacedPod({ name: 'updates', namespace: ns, body: { spec: { activeDeadlineSeconds: 600 } } }, strategic);
    await core.patchNamespacedPod({ name: 'updates', namespace: ns, body: { spec: { activeDeadlineSeconds: 500 } } }, strategic);
    const raise = await failure(core.patchNamespacedPod({ name: 'updates', namespace: ns, body: { spec: { activeDeadlineSeconds: 700 } } }, strategic));
    expect(raise.body.message).toBe('Pod "updates" is invalid: spec.activeDeadlineSeconds: Invalid value: 700: must be less than or equal to previous value');
    const unset = await failure(core.patchNamespacedPod({ name: 'updates', namespace: ns, body: { spec: { activeDeadlineSeconds: null } } }, mergePatch));
    expect(unset.code).toBe(422);
    expect(unset.body.message).toBe('Pod "updates" is invalid: spec.activeDeadlineSeconds: Invalid value: "null": must not update from a positive integer to nil value');

    // tolerations have no patch strategy: a strategic merge patch replaces the list, dropping the defaults.
    const current = await core.readNamespacedPod({ name: 'updates', namespace: ns });
    expect(current.spec!.tolerations).toHaveLength(2);
    const replaced = await failure(core.patchNamespacedPod({ name: 'updates', namespace: ns, body: { spec: { tolerations: [{ key: 'example.com/x', operator: 'Exists' }] } } }, strategic));
    expect(replaced.code).toBe(422);
    expect(replaced.body.message).toBe('Pod "updates" is invalid: spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds');
    const added = await core.patchNamespacedPod(
      { name: 'updates', namespace: ns, body: { spec: { tolerations: [...current.spec!.tolerations!.map((t) => ({ ...t, tolerationSeconds: 60 })), { key: 'example.com/x', operator: 'Exists' }] } } },
      strategic,
    );
    expect(added.spec!.tolerations!.map((t) => [t.key, t.tolerationSeconds])).toEqual([
      ['node.kubernetes.io/not-ready', 60],
      ['node.kubernetes.io/unreachable', 60],
      ['example.com/x', undefined],
    ]);
  });
});

describe('strategic merge patch', () => {
  test('a Service\'s ports merge by port; $patch delete and replace act on list items', async () => {
    await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'ports' }, spec: { selector: { app: 'x' }, ports: [{ name: 'web', port: 80 }, { name: 'admin', port: 81 }] } } });
    const merged = await core.patchNamespacedService({ name: 'ports', namespace: ns, body: { spec: { ports: [{ port: 81, targetPort: 9091 }] } } }, strategic);
    expect(merged.spec!.ports!.map((p) => [p.name, p.port, p.targetPort])).toEqual([['web', 80, 80], ['admin', 81, 9091]]);
    // A new item goes in front, as the API server orders patch items before server-only ones it cannot place.
    const added = await core.patchNamespacedService({ name: 'ports', namespace: ns, body: { spec: { ports: [{ name: 'metrics', port: 82, protocol: 'TCP', targetPort: 82 }] } } }, strategic);
    expect(added.spec!.ports!.map((p) => p.port)).toEqual([82, 80, 81]);
    const deleted = await core.patchNamespacedService({ name: 'ports', namespace: ns, body: { spec: { ports: [{ $patch: 'delete', port: 80 }] } } as object }, strategic);
    expect(deleted.spec!.ports!.map((p) => p.port)).toEqual([82, 81]);
    const replaced = await core.patchNamespacedService(
      { name: 'ports', namespace: ns, body: { spec: { ports: [{ $patch: 'replace' }, { name: 'only', port: 90, protocol: 'TCP', targetPort: 90 }] } } as object },
      strategic,
    );
    expect(replaced.spec!.ports!.map((p) => [p.name, p.port])).toEqual([['only', 90]]);
  });

  test('$setElementOrder orders a list and is not stored; $deleteFromPrimitiveList, $retainKeys and $patch: replace on a map', async () => {
    await core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name: 'directives', labels: { keep: '1', drop: '2' }, finalizers: ['example.com/a', 'example.com/b'] }, spec: { selector: { app: 'x' }, ports: [{ name: 'a', port: 1 }, { name: 'b', port: 2 }] } },
    });
    const ordered = await raw('PATCH', `/api/v1/namespaces/${ns}/services/directives`, { spec: { '$setElementOrder/ports': [{ port: 2 }, { port: 1 }], ports: [{ port: 2, name: 'bb' }] } }, 'application/strategic-merge-patch+json');
    expect(ordered.status).toBe(200);
    expect(ordered.json.spec.ports.map((p: { name: string }) => p.name)).toEqual(['bb', 'a']);
    expect(Object.keys(ordered.json.spec).filter((k) => k.startsWith('$'))).toEqual([]);

    const finalizers = await raw('PATCH', `/api/v1/namespaces/${ns}/services/directives`, { metadata: { '$deleteFromPrimitiveList/finalizers': ['example.com/a'] } }, 'application/strategic-merge-patch+json');
    expect(finalizers.json.metadata.finalizers).toEqual(['example.com/b']);

    const retained = await raw('PATCH', `/api/v1/namespaces/${ns}/services/directives`, { metadata: { labels: { $retainKeys: ['keep', 'new'], new: '3' } } }, 'application/strategic-merge-patch+json');
    expect(retained.json.metadata.labels).toEqual({ keep: '1', new: '3' });

    const replaced = await raw('PATCH', `/api/v1/namespaces/${ns}/services/directives`, { spec: { selector: { $patch: 'replace', only: 'this' } } }, 'application/strategic-merge-patch+json');
    expect(replaced.json.spec.selector).toEqual({ only: 'this' });

    const unknown = await raw('PATCH', `/api/v1/namespaces/${ns}/services/directives`, { spec: { ports: [{ $patch: 'merge', port: 1 }] } }, 'application/strategic-merge-patch+json');
    expect(unknown).toMatchObject({ status: 500, json: { message: 'merging lists cannot yet be specified in the patch' } });
    await raw('PATCH', `/api/v1/namespaces/${ns}/services/directives`, { metadata: { finalizers: null } }, 'application/strategic-merge-patch+json');
  });

  test('containerStatuses have no patch strategy: a status patch replaces the list', async () => {
    await core.createNamespacedPod({ namespace: ns, body: pod('statuses') });
    await waitForPod('statuses', (p) => (p.status?.containerStatuses?.length ?? 0) === 1, 'with a container status');
    const patched = await raw(
      'PATCH',
      `/api/v1/namespaces/${ns}/pods/statuses/status`,
      { status: { containerStatuses: [{ name: 'app', ready: false, restartCount: 0, image: 'x', imageID: '', state: { waiting: { reason: 'Patched' } } }] } },
      'application/strategic-merge-patch+json',
    );
    expect(patched.status).toBe(200);
    // Merged by name, the patch would have kept the kubelet's containerID and started fields.
    expect(patched.json.status.containerStatuses).toEqual([{ name: 'app', ready: false, restartCount: 0, image: 'x', imageID: '', state: { waiting: { reason: 'Patched' } } }]);
  });
});

describe('services, endpoints and claims', () => {
  test('a Service needs ports unless headless; Endpoints addresses may not be unspecified or link-local', async () => {
    const noPorts = await failure(core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'no-ports' }, spec: { selector: { app: 'x' } } } }));
    expect(noPorts.code).toBe(422);
    expect(noPorts.body.message).toBe('Service "no-ports" is invalid: spec.ports: Required value');
    await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'headless' }, spec: { clusterIP: 'None', selector: { app: 'x' } } } });

    const special = await failure(
      core.createNamespacedEndpoints({ namespace: ns, body: { metadata: { name: 'special' }, subsets: [{ addresses: [{ ip: '169.254.169.254' }, { ip: '0.0.0.0' }], ports: [{ port: 1 }] }] } }),
    );
    expect(special.code).toBe(422);
    expect((special.body.details as { causes: Array<{ field: string; message: string }> }).causes.map((x) => `${x.field}: ${x.message}`)).toEqual([
      'subsets[0].addresses[0].ip: Invalid value: "169.254.169.254": may not be in the link-local range (169.254.0.0/16, fe80::/10)',
      'subsets[0].addresses[1].ip: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)',
    ]);
    const empty = await failure(core.createNamespacedEndpoints({ namespace: ns, body: { metadata: { name: 'empty' }, subsets: [{ ports: [{ port: 1 }] }] } }));
    expect(empty.body.message).toBe('Endpoints "empty" is invalid: subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`');
  });

  test('a claim needs a positive storage request even when it names its volume', async () => {
    const none = await failure(core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: { metadata: { name: 'no-size' }, spec: { accessModes: ['ReadWriteOnce'], volumeName: 'some-pv', storageClassName: '' } } }));
    expect(none.code).toBe(422);
    expect(none.body.message).toBe('PersistentVolumeClaim "no-size" is invalid: spec.resources[storage]: Required value');
    const zero = await failure(
      core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: { metadata: { name: 'zero-size' }, spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'none', resources: { requests: { storage: '0' } } } } }),
    );
    expect(zero.body.message).toBe('PersistentVolumeClaim "zero-size" is invalid: spec.resources[storage]: Invalid value: "0": must be greater than zero');
  });

  test('a Bound claim grows only on a class that allows expansion; nothing else in its spec changes', async () => {
    const storage = kc.makeApiClient(k8s.StorageV1Api);
    await storage.createStorageClass({ body: { metadata: { name: 'expandable' }, provisioner: 'emulator.gkube.dev/hostpath', allowVolumeExpansion: true } });
    await storage.createStorageClass({ body: { metadata: { name: 'fixed' }, provisioner: 'emulator.gkube.dev/hostpath' } });
    for (const [name, className] of [['grows', 'expandable'], ['stays', 'fixed']] as const) {
      const created = await core.createNamespacedPersistentVolumeClaim({
        namespace: ns,
        body: { metadata: { name }, spec: { accessModes: ['ReadWriteOnce'], storageClassName: className, volumeAttributesClassName: 'gold', resources: { requests: { storage: '1Gi' } } } },
      });
      // VolumeAttributesClass is off by default in 1.31: the field is dropped.
      expect(created.spec!.volumeAttributesClassName).toBeUndefined();
      await waitUntil(`claim ${name} to be Bound`, async () => (await core.readNamespacedPersistentVolumeClaim({ name, namespace: ns })).status?.phase === 'Bound');
    }
    const grow = { spec: { resources: { requests: { storage: '2Gi' } } } };
    const refused = await failure(core.patchNamespacedPersistentVolumeClaim({ name: 'stays', namespace: ns, body: grow }, mergePatch));
    expect(refused.code).toBe(403);
    expect(refused.body).toMatchObject({
      reason: 'Forbidden',
      message: 'persistentvolumeclaims "stays" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize',
    });
    const grown = await core.patchNamespacedPersistentVolumeClaim({ name: 'grows', namespace: ns, body: grow }, mergePatch);
    expect(grown.spec!.resources!.requests).toEqual({ storage: '2Gi' });
    const modes = await failure(core.patchNamespacedPersistentVolumeClaim({ name: 'grows', namespace: ns, body: { spec: { accessModes: ['ReadWriteMany'] } } }, mergePatch));
    expect(modes.code).toBe(422);
    expect(modes.body.message).toContain('spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims');
    const limits = await failure(core.patchNamespacedPersistentVolumeClaim({ name: 'grows', namespace: ns, body: { spec: { resources: { limits: { storage: '5Gi' } } } } }, mergePatch));
    expect(limits.code).toBe(422);
  });
});

describe('proxy, watch and the namespace controller', () => {
  test('a proxied request whose client goes away is cut at the pod too', async () => {
    await core.createNamespacedPod({ namespace: ns, body: pod('proxied') });
    const ip = (await waitForPod('proxied', (p) => p.status?.phase === 'Running' && Boolean(p.status.podIP), 'running')).status!.podIP!;
    // The pod's address is its own: a server listening there (here, the test) answers through the proxy.
    let upstreamClosed = false;
    const server = createHttpServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first chunk\n');
      req.socket.on('close', () => (upstreamClosed = true));
    });
    await new Promise<void>((resolve) => server.listen(18181, ip, () => resolve()));
    try {
      const cluster = kc.getCurrentCluster()!;
      const first = await new Promise<string>((resolve, reject) => {
        const req = httpsRequest(new URL(`/api/v1/namespaces/${ns}/pods/proxied:18181/proxy/slow`, emulator.url), { ca: Buffer.from(cluster.caData!, 'base64'), headers: { authorization: `Bearer ${kc.getCurrentUser()!.token}` } }, (res) => {
          res.once('data', (d: Buffer) => {
            resolve(d.toString());
            req.destroy();
          });
        });
        req.on('error', (err) => (err.message === 'socket hang up' ? undefined : reject(err)));
        req.end();
      });
      expect(first).toBe('first chunk\n');
      await waitUntil('the pod side of the proxied request to close', async () => upstreamClosed, 5_000);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test('a watch whose client goes away, or that is dropped, leaves nothing behind in the store', async () => {
    const listeners = (emulator.store as unknown as { listeners: Set<unknown> }).listeners;
    const before = listeners.size;
    const controller = await new k8s.Watch(kc).watch(`/api/v1/namespaces/${ns}/pods`, {}, () => undefined, () => undefined);
    await waitUntil('the watch to be registered', async () => listeners.size === before + 1);
    controller.abort();
    await waitUntil('the aborted watch to be released', async () => listeners.size === before);
    const ended = new Promise<unknown>((resolve) => void new k8s.Watch(kc).watch(`/api/v1/namespaces/${ns}/pods`, {}, () => undefined, resolve));
    await waitUntil('the second watch to be registered', async () => listeners.size === before + 1);
    emulator.faults.dropWatches();
    await ended;
    expect(listeners.size).toBe(before);
  });

  test('a namespace sweep that meets an unexpected error retries instead of crashing the emulator', async () => {
    await core.createNamespace({ body: { metadata: { name: 'swept' } } });
    await core.createNamespacedPod({ namespace: 'swept', body: pod('inside', { terminationGracePeriodSeconds: 0 }) });
    const store = emulator.store;
    const original = store.delete.bind(store);
    let failures = 0;
    store.delete = (...args: Parameters<typeof original>) => {
      if (args[1] === 'swept' && failures < 2) {
        failures++;
        throw new Error('injected storage failure');
      }
      return original(...args);
    };
    try {
      await core.deleteNamespace({ name: 'swept' });
      await waitUntil('namespace swept to be gone', async () => (await failure(core.readNamespace({ name: 'swept' }))).code === 404, 15_000);
      expect(failures).toBeGreaterThan(0);
    } finally {
      store.delete = original;
    }
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
