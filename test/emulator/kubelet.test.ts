// The emulator's kubelet, driven directly through an ObjectStore: real processes, a real docker-registry,
// real WebSockets. The VolumePort is mostly a test double (temporary directories), since the real one
// (GlusterFS) is another module's; the fsGroup suite at the end runs on the real volume manager.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { startRegistry, type TestRegistry } from '../harness/index.js';
import { ObjectStore, type KubeObject } from '../kube-emulator/store.js';
import { Faults } from '../kube-emulator/faults.js';
import { findType } from '../kube-emulator/resources.js';
import type { EmulatorContext, HostVolume, VolumePort } from '../kube-emulator/context.js';
import { Kubelet } from '../kube-emulator/kubelet.js';
import { VolumeManager, hostpathProvisioner } from '../kube-emulator/volumes.js';
import { ApiError } from '../kube-emulator/errors.js';

const podsType = findType('', 'pods')!;
const eventsType = findType('', 'events')!;
const pvcType = findType('', 'persistentvolumeclaims')!;
const ns = 'default';

/** A VolumePort over temporary directories: hostPath volumes are used as they are, emptyDir and PVCs get fresh directories. */
class TempVolumes implements VolumePort {
  readonly released: string[] = [];
  constructor(private readonly base: string) {}

  async prepare(pod: KubeObject): Promise<Map<string, HostVolume>> {
    const out = new Map<string, HostVolume>();
    for (const v of (pod['spec']?.volumes ?? []) as Array<Record<string, any>>) {
      if (v['hostPath']) out.set(v['name'], { hostPath: v['hostPath'].path, readOnly: false });
      else if (v['persistentVolumeClaim']) {
        const dir = join(this.base, 'claims', v['persistentVolumeClaim'].claimName);
        await mkdir(dir, { recursive: true });
        out.set(v['name'], { hostPath: dir, readOnly: Boolean(v['persistentVolumeClaim'].readOnly) });
      } else {
        const dir = join(this.base, 'empty', pod.metadata.uid!, v['name']);
        await mkdir(dir, { recursive: true });
        out.set(v['name'], { hostPath: dir, readOnly: false });
      }
    }
    return out;
  }

  async release(pod: KubeObject): Promise<void> {
    this.released.push(pod.metadata.uid!);
    await rm(join(this.base, 'empty', pod.metadata.uid!), { recursive: true, force: true });
  }
}

let registry: TestRegistry;
let base: string;
let store: ObjectStore;
let faults: Faults;
let volumes: TempVolumes;
let kubelet: Kubelet;
let ctx: EmulatorContext;
let wss: WebSocketServer;
let wsUrl: string;
const diagnostics: string[] = [];

beforeAll(async () => {
  registry = await startRegistry();
  await registry.pushImage('team/app', 'v1');
  await registry.pushImage('team/app', 'v2');
  base = await mkdtemp(join(tmpdir(), 'gkube-kubelet-'));
  store = new ObjectStore();
  faults = new Faults();
  volumes = new TempVolumes(join(base, 'volumes'));
  ctx = { store, stateDir: join(base, 'state'), registryUrl: registry.url, faults, log: (l) => diagnostics.push(l) };
  await mkdir(ctx.stateDir, { recursive: true });
  kubelet = new Kubelet(ctx, volumes, {
    imagePullBackOffInitialMs: 300,
    imagePullBackOffMaxMs: 1_000,
    crashLoopBackOffInitialMs: 300,
    crashLoopBackOffMaxMs: 1_000,
    schedulingRetryMs: 200,
    probeTimeScale: 0.1,
    terminationGraceScale: 0.2,
    stopGraceMs: 300,
  });
  kubelet.start();
  // A tiny stand-in for the API server's exec endpoint: upgrade, then hand the socket to the kubelet.
  wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    handleProtocols: (offered) => [...offered].find((p) => ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'].includes(p)) ?? false,
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  wsUrl = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  wss.on('connection', (socket, req) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    // Either /<pod> (this file's client) or the API path client-node uses.
    const api = url.pathname.match(/^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec$/);
    const podName = api ? api[2]! : url.pathname.split('/')[1]!;
    kubelet.exec({
      namespace: api ? api[1]! : ns,
      pod: podName,
      ...(url.searchParams.get('container') ? { container: url.searchParams.get('container')! } : {}),
      command: url.searchParams.getAll('command'),
      stdin: url.searchParams.get('stdin') === 'true',
      stdout: url.searchParams.get('stdout') !== 'false',
      stderr: url.searchParams.get('stderr') !== 'false',
      tty: url.searchParams.get('tty') === 'true',
      protocol: socket.protocol,
      socket,
    });
  });
}, 60_000);

afterAll(async () => {
  await kubelet?.stop();
  await new Promise<void>((resolve) => (wss ? wss.close(() => resolve()) : resolve()));
  await registry?.stop();
  if (base) await rm(base, { recursive: true, force: true });
});

// --- helpers ------------------------------------------------------------------------------------

function image(tag: string, repo = 'team/app'): string {
  return `${registry.host}/${repo}:${tag}`;
}

function createPod(name: string, spec: Record<string, unknown>): KubeObject {
  return store.create(podsType, { metadata: { name, namespace: ns }, spec: { restartPolicy: 'Always', terminationGracePeriodSeconds: 1, ...spec } });
}

function getPod(name: string): KubeObject | undefined {
  return store.get(podsType, ns, name);
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; diagnostics:\n${diagnostics.slice(-10).join('\n')}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function condition(pod: KubeObject | undefined, type: string): Record<string, any> | undefined {
  return (pod?.['status']?.conditions ?? []).find((c: { type: string }) => c.type === type);
}

function containerStatus(pod: KubeObject | undefined, name = 'app'): Record<string, any> | undefined {
  return (pod?.['status']?.containerStatuses ?? []).find((c: { name: string }) => c.name === name);
}

function eventsOf(pod: KubeObject): Array<{ type: string; reason: string; message: string; component: string }> {
  return store
    .list(eventsType, { namespace: ns })
    .items.filter((e) => e['involvedObject']?.uid === pod.metadata.uid)
    .map((e) => ({ type: e['type'], reason: e['reason'], message: e['message'], component: e['source']?.component }));
}

async function readLogs(name: string, options: { previous?: boolean; tailLines?: number; timestamps?: boolean; container?: string } = {}): Promise<string> {
  const chunks: Buffer[] = [];
  await kubelet.logs(
    { namespace: ns, pod: name, follow: false, previous: options.previous ?? false, timestamps: options.timestamps ?? false, ...(options.tailLines !== undefined ? { tailLines: options.tailLines } : {}), ...(options.container ? { container: options.container } : {}) },
    (c) => chunks.push(c),
    new AbortController().signal,
  );
  return Buffer.concat(chunks).toString('utf8');
}

/** Host PIDs of processes whose root directory is inside `dir` (container processes). */
function processesRootedIn(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const root = readlinkSync(`/proc/${entry}/root`);
      if (root === dir || root.startsWith(dir + '/')) found.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

/** Processes whose command line mentions `dir` (the runtime's helpers: setpriv/unshare/nsenter). */
function processesMentioning(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}

interface ExecResult {
  stdout: string;
  stderr: string;
  status: Record<string, any> | string | undefined;
  closeCode: number;
  protocol: string;
}

/** Runs an exec over a real WebSocket, as client-node does (stdin in frames, v5 half-close). */
function wsExec(pod: string, command: string[], options: { protocols?: string[]; stdin?: Buffer; container?: string } = {}): Promise<ExecResult> {
  const params = new URLSearchParams();
  for (const c of command) params.append('command', c);
  if (options.stdin) params.set('stdin', 'true');
  if (options.container) params.set('container', options.container);
  const socket = new WebSocket(`${wsUrl}/${pod}?${params}`, options.protocols ?? ['v5.channel.k8s.io', 'v4.channel.k8s.io']);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let status: Record<string, any> | string | undefined;
  return new Promise((resolve, reject) => {
    socket.on('open', () => {
      if (!options.stdin) return;
      for (let i = 0; i < options.stdin.length; i += 256 * 1024) {
        socket.send(Buffer.concat([Buffer.from([0]), options.stdin.subarray(i, i + 256 * 1024)]));
      }
      if (socket.protocol === 'v5.channel.k8s.io') socket.send(Buffer.from([255, 0]));
    });
    socket.on('message', (data: Buffer) => {
      const channel = data[0];
      const payload = data.subarray(1);
      if (channel === 1) out.push(payload);
      else if (channel === 2) err.push(payload);
      else if (channel === 3) {
        const text = payload.toString('utf8');
        status = socket.protocol.startsWith('v4') || socket.protocol.startsWith('v5') ? JSON.parse(text) : text;
      }
    });
    socket.on('error', reject);
    socket.on('close', (code) =>
      resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), status, closeCode: code, protocol: socket.protocol }),
    );
  });
}

const appVolume = (dir: string) => ({ volumes: [{ name: 'data', hostPath: { path: dir } }] });

// --- tests --------------------------------------------------------------------------------------

describe('the emulator kubelet', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = join(base, 'data');
    await mkdir(dataDir, { recursive: true });
    await writeFile(join(dataDir, 'hello'), 'hello from the volume\n');
  });

  test('a pod whose image the registry holds is scheduled, runs with its volume, and becomes Ready with its own IP', async () => {
    const phases: string[] = [];
    const stopWatch = store.watch(podsType, { namespace: ns }, (ev) => {
      if (ev.object.metadata.name !== 'web') return;
      const s = ev.object['status'] ?? {};
      const ready = (s.conditions ?? []).find((c: { type: string }) => c.type === 'Ready')?.status;
      if (s.phase) phases.push(`${s.phase}/${ready ?? '-'}`);
    });
    const pod = createPod('web', {
      ...appVolume(dataDir),
      containers: [
        {
          name: 'app',
          image: image('v1'),
          command: ['sh', '-c', 'cat /app/hello; echo "ip=$MY_IP name=$MY_NAME host=$(hostname)"; sleep 3600'],
          env: [
            { name: 'MY_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            { name: 'MY_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          ],
          volumeMounts: [{ name: 'data', mountPath: '/app' }],
        },
      ],
    });
    const ready = await waitFor('web to be Ready', () => {
      const p = getPod('web');
      return condition(p, 'Ready')?.status === 'True' && p;
    });
    stopWatch();
    expect(ready['spec'].nodeName).toBe('emulator-node');
    expect(ready['status'].phase).toBe('Running');
    expect(ready['status'].hostIP).toBe('127.0.0.1');
    expect(ready['status'].podIP).toMatch(/^127\.1\.\d+\.\d+$/);
    expect(ready['status'].podIPs).toEqual([{ ip: ready['status'].podIP }]);
    expect(ready['status'].qosClass).toBe('BestEffort');
    expect(ready['status'].conditions.map((c: { type: string; status: string }) => `${c.type}=${c.status}`)).toEqual([
      'PodReadyToStartContainers=True',
      'Initialized=True',
      'Ready=True',
      'ContainersReady=True',
      'PodScheduled=True',
    ]);
    const cs = containerStatus(ready)!;
    expect(cs).toMatchObject({ name: 'app', ready: true, started: true, restartCount: 0, image: image('v1') });
    expect(cs['state'].running.startedAt).toMatch(/Z$/);
    expect(cs['containerID']).toMatch(/^containerd:\/\/[0-9a-f]{64}$/);
    expect(cs['imageID']).toMatch(new RegExp(`^${registry.host.replace(/\./g, '\\.')}/team/app@sha256:[0-9a-f]{64}$`));
    // Each status transition is its own write: Pending first, Running before Ready.
    expect(phases[0]).toMatch(/^Pending\//);
    expect(phases.indexOf('Running/False')).toBeGreaterThan(-1);
    expect(phases.indexOf('Running/False')).toBeLessThan(phases.indexOf('Running/True'));

    const events = eventsOf(pod).map((e) => `${e.type} ${e.reason} ${e.message}`);
    expect(events[0]).toBe('Normal Scheduled Successfully assigned default/web to emulator-node');
    expect(eventsOf(pod)[0]!.component).toBe('default-scheduler');
    expect(events).toContain(`Normal Pulling Pulling image "${image('v1')}"`);
    expect(events.find((e) => e.startsWith('Normal Pulled'))).toMatch(new RegExp(`^Normal Pulled Successfully pulled image ".*" in \\S+ \\(\\S+ including waiting\\)\\. Image size: \\d+ bytes\\.$`));
    expect(events).toContain('Normal Created Created container app');
    expect(events).toContain('Normal Started Started container app');

    // The file in the volume was visible at the mountPath; env and hostname come from the pod.
    const text = await readLogsEventually('web', /ip=/);
    expect(text).toBe(`hello from the volume\nip=${ready['status'].podIP} name=web host=web\n`);
    const stamped = await readLogs('web', { timestamps: true, tailLines: 1 });
    expect(stamped).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ip=/);

    // A second pod gets another address; both can listen on the same port.
    createPod('web2', { containers: [{ name: 'app', image: image('v1'), command: ['sleep', '3600'] }] });
    const second = await waitFor('web2 Ready', () => {
      const p = getPod('web2');
      return condition(p, 'Ready')?.status === 'True' && p;
    });
    expect(second['status'].podIP).not.toBe(ready['status'].podIP);
  });

  test('exec over WebSocket (v5 and v4) returns output and the exit status, and streams a 20 MB tar into the volume', async () => {
    const ok = await wsExec('web', ['sh', '-c', 'echo out; echo err >&2; cat /app/hello']);
    expect(ok.protocol).toBe('v5.channel.k8s.io');
    expect(ok.stdout).toBe('out\nhello from the volume\n');
    expect(ok.stderr).toBe('err\n');
    expect(ok.status).toEqual({ metadata: {}, status: 'Success' });
    expect(ok.closeCode).toBe(1000);

    const failed = await wsExec('web', ['sh', '-c', 'exit 3']);
    expect(failed.status).toEqual({
      metadata: {},
      status: 'Failure',
      message: 'command terminated with non-zero exit code: command terminated with exit code 3',
      reason: 'NonZeroExitCode',
      details: { causes: [{ reason: 'ExitCode', message: '3' }] },
    });

    const v4 = await wsExec('web', ['sh', '-c', 'echo v4; exit 5'], { protocols: ['v4.channel.k8s.io'] });
    expect(v4.protocol).toBe('v4.channel.k8s.io');
    expect(v4.stdout).toBe('v4\n');
    expect(v4.status).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode', message: 'command terminated with non-zero exit code: error executing command [sh -c echo v4; exit 5], exit code 5' });

    // A 20 MB tar on stdin, half-closed with [255, 0], lands in the volume on the host.
    const src = join(base, 'tar-src');
    await mkdir(join(src, 'site'), { recursive: true });
    const big = randomBytes(20 * 1024 * 1024);
    await writeFile(join(src, 'site', 'big.bin'), big);
    await writeFile(join(src, 'site', 'index.html'), '<h1>hi</h1>\n');
    const tar = execFileSync('tar', ['-c', '-C', src, 'site'], { maxBuffer: 64 * 1024 * 1024 });
    const untar = await wsExec('web', ['tar', '-x', '-C', '/app'], { stdin: tar });
    expect(untar.status).toEqual({ metadata: {}, status: 'Success' });
    expect(await readFile(join(dataDir, 'site', 'index.html'), 'utf8')).toBe('<h1>hi</h1>\n');
    const copied = await readFile(join(dataDir, 'site', 'big.bin'));
    expect(createHash('sha256').update(copied).digest('hex')).toBe(createHash('sha256').update(big).digest('hex'));

    // Errors: a missing executable, a container that does not exist, a cut stream.
    const missing = await wsExec('web', ['no-such-command']);
    expect(missing.status).toMatchObject({ status: 'Failure', reason: 'InternalError', code: 500 });
    expect((missing.status as Record<string, string>)['message']).toContain('exec: "no-such-command": executable file not found in $PATH');
    const wrong = await wsExec('web', ['true'], { container: 'nope' });
    expect(wrong.status).toMatchObject({ status: 'Failure', reason: 'BadRequest', code: 400, message: 'container nope is not valid for pod web' });
    faults.cutNextExec(100_000);
    const cut = await wsExec('web', ['sh', '-c', 'head -c 10000000 /dev/zero']);
    expect(cut.closeCode).toBe(1006);
    expect(cut.status).toBeUndefined();
    expect(cut.stdout.length).toBeLessThan(10_000_000);
  });

  test('client-node\'s Exec (v5) streams stdin and gets the exit status', async () => {
    const { Exec, KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'emu', server: wsUrl.replace('ws://', 'http://'), skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'emu', cluster: 'emu', user: 'u' }],
      currentContext: 'emu',
    });
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const out: Buffer[] = [];
    stdout.on('data', (c: Buffer) => out.push(c));
    const status = new Promise<Record<string, unknown>>((resolve) => {
      void new Exec(kc).exec(ns, 'web', 'app', ['sh', '-c', 'cat; echo done; exit 4'], stdout, stderr, Readable.from([Buffer.from('from stdin\n')]), false, (s) =>
        resolve(s as unknown as Record<string, unknown>),
      );
    });
    expect(await status).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '4' }] } });
    expect(Buffer.concat(out).toString('utf8')).toBe('from stdin\ndone\n');
  });

  test('subPath and readOnly mounts, a mount under /etc, the pod /etc/hosts, and a read-only host /usr', async () => {
    await mkdir(join(dataDir, 'conf'), { recursive: true });
    await writeFile(join(dataDir, 'conf', 'setting'), 'colour=blue\n');
    createPod('mounts', {
      ...appVolume(dataDir),
      containers: [
        {
          name: 'app',
          image: image('v1'),
          command: ['sleep', '3600'],
          workingDir: '/srv/site',
          volumeMounts: [
            { name: 'data', mountPath: '/etc/app/conf', subPath: 'conf', readOnly: true },
            { name: 'data', mountPath: '/srv/site', subPath: 'site' },
          ],
        },
      ],
    });
    const pod = await waitFor('mounts Ready', () => condition(getPod('mounts'), 'Ready')?.status === 'True' && getPod('mounts'));
    const r = await wsExec('mounts', [
      'sh',
      '-c',
      'cat /etc/app/conf/setting; touch /etc/app/conf/x 2>/dev/null || echo conf-ro; touch /usr/x 2>/dev/null || echo usr-ro; pwd; ls; grep mounts /etc/hosts; hostname',
    ]);
    expect(r.status).toEqual({ metadata: {}, status: 'Success' });
    expect(r.stdout).toBe(`colour=blue\nconf-ro\nusr-ro\n/srv/site\nbig.bin\nindex.html\n${pod['status'].podIP}\tmounts\nmounts\n`);
    // Nothing was created on the host for the mount point under /etc (it lives in the container's overlay).
    expect(existsSync('/etc/app/conf')).toBe(false);
    expect(containerStatus(pod)!['volumeMounts']).toEqual([
      { name: 'data', mountPath: '/etc/app/conf', readOnly: true, recursiveReadOnly: 'Disabled' },
      { name: 'data', mountPath: '/srv/site' },
    ]);
    store.delete(podsType, ns, 'mounts', { gracePeriodSeconds: 0 });
    const podDir = join(ctx.stateDir, 'kubelet', 'pods', pod.metadata.uid!);
    await waitFor('the force-deleted pod to be cleaned up', () => processesRootedIn(podDir).length === 0 && !existsSync(podDir));
  });

  test('a container without a command cannot be created: the emulator has no image filesystem', async () => {
    const pod = createPod('nocmd', { containers: [{ name: 'app', image: image('v1') }] });
    const waiting = await waitFor('CreateContainerError', () => containerStatus(getPod('nocmd'))?.['state']?.waiting?.reason === 'CreateContainerError' && getPod('nocmd'));
    expect(containerStatus(waiting)!['state'].waiting.message).toMatch(/^failed to generate container "[0-9a-f]{64}" spec: failed to generate spec: no command specified \(the Kubernetes emulator/);
    expect(eventsOf(pod).some((e) => e.type === 'Warning' && e.reason === 'Failed' && e.message.startsWith('Error: failed to generate container'))).toBe(true);
    store.delete(podsType, ns, 'nocmd', { gracePeriodSeconds: 0 });
  });

  test('an image the registry lacks goes ErrImagePull then ImagePullBackOff, and starts once it is pushed', async () => {
    const reasons: string[] = [];
    const stop = store.watch(podsType, { namespace: ns }, (ev) => {
      const w = containerStatus(ev.object)?.['state']?.waiting?.reason;
      if (ev.object.metadata.name === 'missing' && w && reasons[reasons.length - 1] !== w) reasons.push(w);
    });
    const ref = image('v1', 'team/not-yet');
    const pod = createPod('missing', { containers: [{ name: 'app', image: ref, command: ['sleep', '3600'] }] });
    const backOff = await waitFor('ImagePullBackOff', () => {
      const p = getPod('missing');
      return containerStatus(p)?.['state']?.waiting?.reason === 'ImagePullBackOff' && p;
    });
    expect(reasons.slice(0, 3)).toEqual(['ContainerCreating', 'ErrImagePull', 'ImagePullBackOff']);
    expect(containerStatus(backOff)!['state'].waiting.message).toBe(`Back-off pulling image "${ref}"`);
    expect(backOff['status'].phase).toBe('Pending');
    const events = eventsOf(pod).map((e) => `${e.type} ${e.reason} ${e.message}`);
    expect(events).toContain(
      `Warning Failed Failed to pull image "${ref}": rpc error: code = NotFound desc = failed to pull and unpack image "${ref}": failed to resolve reference "${ref}": ${ref}: not found`,
    );
    expect(events).toContain('Warning Failed Error: ErrImagePull');
    expect(events).toContain(`Normal BackOff Back-off pulling image "${ref}"`);
    await expect(readLogs('missing')).rejects.toMatchObject({ code: 400, message: 'container "app" in pod "missing" is waiting to start: trying and failing to pull image' });

    await registry.pushImage('team/not-yet', 'v1');
    await waitFor('the pod to start after the push', () => containerStatus(getPod('missing'))?.['state']?.running, 8_000);
    stop();
  });

  test('a crashing container goes CrashLoopBackOff with restarts, last state and its previous log', async () => {
    const pod = createPod('crash', { containers: [{ name: 'app', image: image('v1'), command: ['sh', '-c', 'echo boom; exit 1'] }] });
    const looping = await waitFor('CrashLoopBackOff', () => {
      const p = getPod('crash');
      return containerStatus(p)?.['state']?.waiting?.reason === 'CrashLoopBackOff' && p;
    });
    const cs = containerStatus(looping)!;
    expect(cs['restartCount']).toBeGreaterThanOrEqual(1);
    expect(cs['lastState'].terminated).toMatchObject({ exitCode: 1, reason: 'Error' });
    expect(cs['state'].waiting.message).toMatch(new RegExp(`^back-off \\d+ms restarting failed container=app pod=crash_default\\(${pod.metadata.uid}\\)$`));
    expect(looping['status'].phase).toBe('Running');
    expect(condition(looping, 'Ready')).toMatchObject({ status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [app]' });
    expect(eventsOf(pod).map((e) => `${e.type} ${e.reason} ${e.message}`)).toContain(`Warning BackOff Back-off restarting failed container app in pod crash_default(${pod.metadata.uid})`);
    expect(await readLogs('crash', { previous: true })).toBe('boom\n');

    // restartPolicy Never: the pod ends Failed and is not restarted; a clean exit ends Succeeded.
    createPod('once-bad', { restartPolicy: 'Never', containers: [{ name: 'app', image: image('v1'), command: ['sh', '-c', 'exit 2'] }] });
    createPod('once-good', { restartPolicy: 'Never', containers: [{ name: 'app', image: image('v1'), command: ['true'] }] });
    const bad = await waitFor('Failed', () => getPod('once-bad')?.['status']?.phase === 'Failed' && getPod('once-bad'));
    expect(containerStatus(bad)).toMatchObject({ restartCount: 0, state: { terminated: { exitCode: 2, reason: 'Error' } } });
    expect(condition(bad, 'Ready')).toMatchObject({ status: 'False', reason: 'PodFailed' });
    const good = await waitFor('Succeeded', () => getPod('once-good')?.['status']?.phase === 'Succeeded' && getPod('once-good'));
    expect(containerStatus(good)!['state'].terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    await expect(readLogs('once-good', { previous: true })).rejects.toMatchObject({ code: 400, message: 'previous terminated container "app" in pod "once-good" not found' });
  });

  test('an exec readiness probe gates Ready; init containers run first', async () => {
    const pod = createPod('gated', {
      initContainers: [{ name: 'setup', image: image('v1'), command: ['sh', '-c', 'echo init done'] }],
      containers: [
        {
          name: 'app',
          image: image('v1'),
          command: ['sh', '-c', 'sleep 1; touch /tmp/ready; sleep 3600'],
          readinessProbe: { exec: { command: ['test', '-f', '/tmp/ready'] }, periodSeconds: 1, failureThreshold: 1 },
        },
      ],
    });
    const notReady = await waitFor('Running but not Ready', () => {
      const p = getPod('gated');
      return containerStatus(p)?.['state']?.running && p;
    });
    expect(condition(notReady, 'Ready')?.status).toBe('False');
    expect(notReady['status'].initContainerStatuses[0]).toMatchObject({ name: 'setup', ready: true, state: { terminated: { exitCode: 0, reason: 'Completed' } } });
    expect(condition(notReady, 'Initialized')?.status).toBe('True');
    const ready = await waitFor('Ready after the probe passes', () => condition(getPod('gated'), 'Ready')?.status === 'True' && getPod('gated'));
    expect(containerStatus(ready)!['ready']).toBe(true);
    expect(eventsOf(pod).some((e) => e.reason === 'Unhealthy' && e.message.startsWith('Readiness probe failed:'))).toBe(true);
    expect(await readLogs('gated', { container: 'setup' })).toBe('init done\n');
    // With one regular container, no container name means that one (init containers do not count).
    expect(await readLogs('gated')).toBe('');
  });

  test('changing a container image restarts that container with the new image', async () => {
    const before = getPod('web2')!;
    store.mutate(podsType, ns, 'web2', (p) => {
      p['spec'].containers[0].image = image('v2');
    });
    const after = await waitFor('web2 on v2', () => {
      const p = getPod('web2');
      const cs = containerStatus(p);
      return cs?.['image'] === image('v2') && cs['state']?.running && p;
    });
    expect(containerStatus(after)!['restartCount']).toBe(1);
    expect(containerStatus(after)!['lastState'].terminated).toBeDefined();
    expect(eventsOf(before).map((e) => `${e.reason} ${e.message}`)).toContain('Killing Container app definition changed, will be restarted');
  });

  test('an unbound claim keeps the pod unscheduled until the claim binds', async () => {
    store.create(pvcType, { metadata: { name: 'claim', namespace: ns }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } }, status: { phase: 'Pending' } });
    const pod = createPod('claimer', { volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'claim' } }], containers: [{ name: 'app', image: image('v1'), command: ['sleep', '3600'], volumeMounts: [{ name: 'd', mountPath: '/data' }] }] });
    const pending = await waitFor('Unschedulable', () => condition(getPod('claimer'), 'PodScheduled')?.reason === 'Unschedulable' && getPod('claimer'));
    expect(pending['spec'].nodeName).toBeUndefined();
    expect(pending['status'].phase).toBe('Pending');
    const failed = eventsOf(pod).find((e) => e.reason === 'FailedScheduling')!;
    expect(failed).toMatchObject({ type: 'Warning', component: 'default-scheduler' });
    expect(failed.message).toBe('0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.');
    store.mutate(pvcType, ns, 'claim', (c) => {
      c['status'] = { phase: 'Bound' };
    });
    await waitFor('claimer Ready', () => condition(getPod('claimer'), 'Ready')?.status === 'True');
  });

  test('a failing liveness probe restarts the container; an httpGet readiness probe asks the pod IP', async () => {
    const pod = createPod('probed', {
      containers: [
        {
          name: 'app',
          image: image('v1'),
          command: ['sleep', '3600'],
          ports: [{ name: 'http', containerPort: 18080 }],
          livenessProbe: { exec: { command: ['test', '-f', '/tmp/never'] }, periodSeconds: 1, failureThreshold: 2 },
          readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 },
        },
      ],
    });
    const restarted = await waitFor('a liveness restart', () => {
      const p = getPod('probed');
      return (containerStatus(p)?.['restartCount'] ?? 0) >= 1 && p;
    });
    const ip = restarted['status'].podIP as string;
    const events = eventsOf(pod).map((e) => `${e.type} ${e.reason} ${e.message}`);
    expect(events).toContain('Normal Killing Container app failed liveness probe, will be restarted');
    expect(events).toContain('Warning Unhealthy Liveness probe failed: ');
    expect(events).toContain(`Warning Unhealthy Readiness probe failed: Get "http://${ip}:18080/healthz": dial tcp ${ip}:18080: connect: connection refused`);
    expect(condition(restarted, 'Ready')?.status).toBe('False');
    // The pod's address is its own: a server listening there (here, the test itself) answers the probe.
    const server = createServer((req, res) => {
      res.statusCode = req.url === '/healthz' && req.headers['user-agent']?.startsWith('kube-probe/') ? 200 : 404;
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(18080, ip, () => resolve()));
    try {
      expect(kubelet.podAddress(ns, 'probed')).toEqual({ ip });
      await waitFor('Ready through the httpGet probe', () => condition(getPod('probed'), 'Ready')?.status === 'True');
    } finally {
      server.close();
    }
    store.delete(podsType, ns, 'probed', { gracePeriodSeconds: 0 });
  });

  test('logs: follow until the container ends, limitBytes, and a container name is required with several', async () => {
    createPod('talker', {
      restartPolicy: 'Never',
      containers: [
        { name: 'a', image: image('v1'), command: ['sh', '-c', 'for i in 1 2 3; do echo line $i; sleep 0.2; done'] },
        { name: 'b', image: image('v1'), command: ['sh', '-c', 'echo b; sleep 3600'] },
      ],
    });
    await waitFor('a running', () => containerStatus(getPod('talker'), 'a')?.['state']?.running);
    const chunks: Buffer[] = [];
    const started = Date.now();
    await kubelet.logs({ namespace: ns, pod: 'talker', container: 'a', follow: true, previous: false, timestamps: false }, (c) => chunks.push(c), new AbortController().signal);
    expect(Buffer.concat(chunks).toString('utf8')).toBe('line 1\nline 2\nline 3\n');
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    const limited: Buffer[] = [];
    await kubelet.logs({ namespace: ns, pod: 'talker', container: 'a', follow: false, previous: false, timestamps: false, limitBytes: 8 }, (c) => limited.push(c), new AbortController().signal);
    expect(Buffer.concat(limited).toString('utf8')).toBe('line 1\nl');
    expect(await readLogs('talker', { container: 'a', tailLines: 1 })).toBe('line 3\n');
    await expect(readLogs('talker')).rejects.toMatchObject({ code: 400, message: 'a container name must be specified for pod talker, choose one of: [a b]' });
    // Following a running container stops when the caller aborts.
    const abort = new AbortController();
    const followed: Buffer[] = [];
    const following = kubelet.logs({ namespace: ns, pod: 'talker', container: 'b', follow: true, previous: false, timestamps: false }, (c) => followed.push(c), abort.signal);
    await waitFor('b output', () => Buffer.concat(followed).toString('utf8') === 'b\n');
    abort.abort();
    await following;
    store.delete(podsType, ns, 'talker', { gracePeriodSeconds: 0 });
  });

  test('securityContext: the command, exec sessions and exec probes run as runAsUser/runAsGroup with fsGroup and supplementalGroups', async () => {
    // The host directory behind the hostPath is root's, 0755: no fsGroup reaches it, so the user may not write there.
    const rootOnly = join(base, 'root-only');
    await mkdir(rootOnly, { recursive: true });
    await chmod(rootOnly, 0o755);
    const pod = createPod('as-user', {
      securityContext: { runAsNonRoot: true, runAsUser: 2000, runAsGroup: 3000, fsGroup: 4000, supplementalGroups: [5000] },
      volumes: [{ name: 'host', hostPath: { path: rootOnly } }],
      containers: [
        {
          name: 'app',
          image: image('v1'),
          // The container's runAsUser wins over the pod's.
          securityContext: { runAsUser: 1000, allowPrivilegeEscalation: false },
          command: [
            'sh',
            '-c',
            'echo "uid=$(id -u) gid=$(id -g) groups=$(id -G) nnp=$(grep NoNewPrivs /proc/self/status | tr -dc 0-9)"; touch /host/x 2>/dev/null || echo host-denied; echo bye > /dev/termination-log; exec sleep 3600',
          ],
          volumeMounts: [{ name: 'host', mountPath: '/host' }],
          readinessProbe: { exec: { command: ['sh', '-c', 'test "$(id -u):$(id -g)" = 1000:3000'] }, periodSeconds: 1 },
        },
      ],
    });
    // Ready only once the exec probe has passed as 1000:3000.
    await waitFor('as-user Ready', () => condition(getPod('as-user'), 'Ready')?.status === 'True');
    const log = await readLogsEventually('as-user', /host-denied/);
    const m = /^uid=(\d+) gid=(\d+) groups=([\d ]+) nnp=(\d)\nhost-denied\n$/.exec(log);
    expect(m).not.toBeNull();
    expect(m!.slice(1, 3)).toEqual(['1000', '3000']);
    const groups = m![3]!.split(' ').map(Number);
    expect(groups[0]).toBe(3000);
    expect(groups).toEqual(expect.arrayContaining([3000, 4000, 5000]));
    expect(groups).not.toContain(0);
    expect(m![4]).toBe('1');
    expect(existsSync(join(rootOnly, 'x'))).toBe(false);

    const ids = await wsExec('as-user', ['sh', '-c', 'id -u; id -g; id -G; touch /host/y']);
    expect(ids.stdout.split('\n').slice(0, 2)).toEqual(['1000', '3000']);
    expect(ids.stdout.split('\n')[2]!.split(' ').map(Number)).toEqual(groups);
    expect(ids.stderr).toMatch(/Permission denied/);
    expect(ids.status).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode' });
    store.delete(podsType, ns, 'as-user', { gracePeriodSeconds: 0 });
    await waitFor('as-user gone', () => !getPod('as-user') && processesRootedIn(join(ctx.stateDir, 'kubelet', 'pods', pod.metadata.uid!)).length === 0);
  });

  test('without runAsUser a container runs as root (the emulator\'s images have no user of their own), with the pod\'s groups', async () => {
    createPod('as-root', { securityContext: { fsGroup: 4000 }, containers: [{ name: 'app', image: image('v1'), command: ['sleep', '3600'] }] });
    await waitFor('as-root Ready', () => condition(getPod('as-root'), 'Ready')?.status === 'True');
    const r = await wsExec('as-root', ['sh', '-c', 'id -u; id -g; id -G; echo "$HOME"']);
    expect(r.stdout).toBe('0\n0\n0 4000\n/root\n');
    store.delete(podsType, ns, 'as-root', { gracePeriodSeconds: 0 });
  });

  test('runAsNonRoot: runAsUser 0, or no runAsUser (the image would run as root), is a CreateContainerConfigError in the kubelet\'s words', async () => {
    const explicit = createPod('root-refused', {
      securityContext: { runAsNonRoot: true },
      containers: [{ name: 'app', image: image('v1'), command: ['sleep', '3600'], securityContext: { runAsUser: 0 } }],
    });
    const implicit = createPod('image-root', { containers: [{ name: 'web', image: image('v1'), command: ['sleep', '3600'], securityContext: { runAsNonRoot: true } }] });
    const cases: Array<[KubeObject, string, string]> = [
      [explicit, 'app', `container's runAsUser breaks non-root policy (pod: "root-refused_default(${explicit.metadata.uid})", container: app)`],
      [implicit, 'web', `container has runAsNonRoot and image will run as root (pod: "image-root_default(${implicit.metadata.uid})", container: web)`],
    ];
    for (const [pod, container, message] of cases) {
      const name = pod.metadata.name!;
      const refused = await waitFor(`${name} CreateContainerConfigError`, () => {
        const p = getPod(name);
        return containerStatus(p, container)?.['state']?.waiting?.reason === 'CreateContainerConfigError' && p;
      });
      expect(containerStatus(refused, container)!['state'].waiting).toEqual({ reason: 'CreateContainerConfigError', message });
      expect(refused['status'].phase).toBe('Pending');
      expect(eventsOf(pod)).toContainEqual({ type: 'Warning', reason: 'Failed', message: `Error: ${message}`, component: 'kubelet' });
      // Nothing ran.
      expect(processesRootedIn(join(ctx.stateDir, 'kubelet', 'pods', pod.metadata.uid!))).toEqual([]);
      store.delete(podsType, ns, name, { gracePeriodSeconds: 0 });
    }
  });

  test('a missing subPath is made as the kubelet makes it: the volume root\'s mode and group, so an fsGroup volume\'s subPath is the group\'s', async () => {
    const shared = join(base, 'group-volume');
    await mkdir(shared, { recursive: true });
    execFileSync('chown', ['0:4000', shared]);
    await chmod(shared, 0o2775);
    createPod('subpaths', {
      securityContext: { runAsUser: 1000, fsGroup: 4000 },
      volumes: [{ name: 'data', hostPath: { path: shared } }],
      containers: [{ name: 'app', image: image('v1'), command: ['sh', '-c', 'echo hi > /srv/out/made.txt && echo written; exec sleep 3600'], volumeMounts: [{ name: 'data', mountPath: '/srv/out', subPath: 'a/b' }] }],
    });
    await waitFor('subpaths Ready', () => condition(getPod('subpaths'), 'Ready')?.status === 'True');
    expect(await readLogsEventually('subpaths', /written/)).toBe('written\n');
    for (const dir of [join(shared, 'a'), join(shared, 'a', 'b')]) {
      const st = await stat(dir);
      expect({ uid: st.uid, gid: st.gid, mode: (st.mode & 0o7777).toString(8) }).toEqual({ uid: 0, gid: 4000, mode: '2775' });
    }
    const made = await stat(join(shared, 'a', 'b', 'made.txt'));
    expect({ uid: made.uid, gid: made.gid }).toEqual({ uid: 1000, gid: 4000 });
    store.delete(podsType, ns, 'subpaths', { gracePeriodSeconds: 0 });
  });

  test('deleting a pod stops its processes, releases its volumes and removes it', async () => {
    const pod = getPod('web')!;
    const podRoot = join(ctx.stateDir, 'kubelet', 'pods', pod.metadata.uid!);
    expect(processesRootedIn(podRoot).length).toBeGreaterThan(0);
    store.delete(podsType, ns, 'web', { gracePeriodSeconds: 1 });
    expect(getPod('web')!.metadata.deletionTimestamp).toBeDefined();
    await waitFor('web removed', () => !getPod('web'));
    expect(processesRootedIn(podRoot)).toEqual([]);
    expect(volumes.released).toContain(pod.metadata.uid);
    expect(existsSync(podRoot)).toBe(false);
    expect(eventsOf(pod).map((e) => `${e.reason} ${e.message}`)).toContain('Killing Stopping container app');
    // The host's files under the volume are untouched.
    expect(await readFile(join(dataDir, 'hello'), 'utf8')).toBe('hello from the volume\n');
    expect(() => kubelet.podAddress(ns, 'web')).toThrow(ApiError);
  });

  test('pod IPs are unique on the machine: a second kubelet never hands out an address the first holds, and a released one is free again', () => {
    // Both start from the same place (one process): only the machine-wide claim keeps them apart.
    const other = new Kubelet({ ...ctx, store: new ObjectStore() }, volumes, {});
    const ours = Array.from({ length: 5 }, () => kubelet.ips.allocate());
    const theirs = Array.from({ length: 5 }, () => other.ips.allocate());
    expect(new Set([...ours, ...theirs]).size).toBe(10);
    const claim = (ip: string) => join(tmpdir(), 'gkube-emulator-pod-ips', ip);
    expect([...ours, ...theirs].every((ip) => existsSync(claim(ip)))).toBe(true);
    for (const ip of ours) kubelet.ips.release(ip);
    other.ips.releaseAll();
    // Given back: the machine-wide claims are gone, so any kubelet may hand them out again.
    expect([...ours, ...theirs].some((ip) => existsSync(claim(ip)))).toBe(false);
  });

  test('a claim whose process is gone is taken over; a claim still being written (empty, new) is not; an old empty one is', () => {
    const claim = (ip: string) => join(tmpdir(), 'gkube-emulator-pod-ips', ip);
    // The addresses the kubelet tries next, in order (it skips .0, .1 and .255 of each /24).
    const after = (ip: string, count: number): string[] => {
      const [x, y] = ip.split('.').slice(2).map(Number) as [number, number];
      const found: string[] = [];
      for (let n = x * 256 + y + 1; found.length < count; n++) if (![0, 1, 255].includes(n & 0xff)) found.push(`127.1.${(n >> 8) & 0xff}.${n & 0xff}`);
      return found;
    };
    const first = kubelet.ips.allocate();
    const [dead, writing, stale] = after(first, 3) as [string, string, string];
    const gone = spawnSync('true').pid!;
    writeFileSync(claim(dead), String(gone));
    writeFileSync(claim(writing), '');
    writeFileSync(claim(stale), '');
    utimesSync(claim(stale), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    try {
      expect(kubelet.ips.allocate()).toBe(dead);
      expect(readFileSync(claim(dead), 'utf8')).toBe(String(process.pid));
      expect(kubelet.ips.allocate()).toBe(stale);
      expect(readFileSync(claim(writing), 'utf8')).toBe('');
      expect(existsSync(`${claim(dead)}.takeover`)).toBe(false);
    } finally {
      for (const ip of [first, dead, stale]) kubelet.ips.release(ip);
      rmSync(claim(writing), { force: true });
    }
  });

  test('stop() kills every container and leaves no process or file behind', async () => {
    const running = processesRootedIn(ctx.stateDir);
    expect(running.length).toBeGreaterThan(0);
    await kubelet.stop();
    expect(processesRootedIn(ctx.stateDir)).toEqual([]);
    expect(processesMentioning(ctx.stateDir)).toEqual([]);
    expect(existsSync(join(ctx.stateDir, 'kubelet'))).toBe(false);
    for (const pid of running) expect(existsSync(`/proc/${pid}`)).toBe(false);
  });
});

/** Reads a pod's log until it matches (the container writes it a moment after it starts). */
async function readLogsEventually(name: string, pattern: RegExp): Promise<string> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const text = await readLogs(name);
    if (pattern.test(text) || Date.now() > deadline) return text;
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('a lost node', () => {
  test('its pods go not-ready, are evicted and their processes killed; new pods stay Pending', async () => {
    const lostStore = new ObjectStore();
    const lostFaults = new Faults();
    const lostCtx: EmulatorContext = { store: lostStore, stateDir: join(base, 'lost-state'), registryUrl: registry.url, faults: lostFaults, log: (l) => diagnostics.push(l) };
    await mkdir(lostCtx.stateDir, { recursive: true });
    const lostKubelet = new Kubelet(lostCtx, new TempVolumes(join(base, 'lost-volumes')), { nodeLostEvictionMs: 400, schedulingRetryMs: 100, terminationGraceScale: 0.1 });
    lostKubelet.start();
    try {
      const pod = lostStore.create(podsType, { metadata: { name: 'victim', namespace: ns }, spec: { containers: [{ name: 'app', image: image('v1'), command: ['sleep', '3600'] }] } });
      const get = (): KubeObject | undefined => lostStore.get(podsType, ns, 'victim');
      await waitFor('victim Ready', () => condition(get(), 'Ready')?.status === 'True');
      const podDir = join(lostCtx.stateDir, 'kubelet', 'pods', pod.metadata.uid!);
      expect(processesRootedIn(podDir).length).toBeGreaterThan(0);
      lostFaults.loseNode();
      const notReady = get()!;
      expect(condition(notReady, 'Ready')?.status).toBe('False');
      expect(notReady['status'].phase).toBe('Running');
      await waitFor('victim evicted', () => !get(), 5_000);
      expect(processesRootedIn(podDir)).toEqual([]);
      const events = lostStore.list(eventsType, { namespace: ns }).items.filter((e) => e['involvedObject']?.uid === pod.metadata.uid);
      expect(events.map((e) => `${e['reason']} ${e['message']}`)).toContain('TaintManagerEviction Marking for deletion Pod default/victim');

      lostStore.create(podsType, { metadata: { name: 'late', namespace: ns }, spec: { containers: [{ name: 'app', image: image('v1'), command: ['sleep', '3600'] }] } });
      const late = await waitFor('late unschedulable', () => {
        const p = lostStore.get(podsType, ns, 'late');
        return condition(p, 'PodScheduled')?.reason === 'Unschedulable' && p;
      });
      expect(condition(late, 'PodScheduled')!['message']).toBe(
        '0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.',
      );
    } finally {
      await lostKubelet.stop();
    }
    expect(processesRootedIn(lostCtx.stateDir)).toEqual([]);
  });
});

describe('fsGroup on the volume manager\'s volumes', () => {
  test('an emptyDir and a provisioned claim are the fsGroup\'s and group-writable, old files included; a hostPath is left alone', async () => {
    const fsStore = new ObjectStore();
    const fsCtx: EmulatorContext = { store: fsStore, stateDir: join(base, 'fsgroup-state'), registryUrl: registry.url, faults: new Faults(), log: (l) => diagnostics.push(l) };
    await mkdir(fsCtx.stateDir, { recursive: true });
    const fsVolumes = new VolumeManager(fsCtx, { resyncMs: 0 });
    fsVolumes.start();
    const fsKubelet = new Kubelet(fsCtx, fsVolumes, { schedulingRetryMs: 100, terminationGraceScale: 0.1 });
    fsKubelet.start();
    try {
      fsStore.create(findType('storage.k8s.io', 'storageclasses')!, { metadata: { name: 'local' }, provisioner: hostpathProvisioner });
      const claim = fsStore.create(pvcType, { metadata: { name: 'code', namespace: ns }, spec: { accessModes: ['ReadWriteOnce'], volumeMode: 'Filesystem', storageClassName: 'local', resources: { requests: { storage: '1Gi' } } } });
      await fsVolumes.idle();
      const provisioned = fsStore.get(findType('', 'persistentvolumes')!, undefined, `pvc-${claim.metadata.uid}`)!['spec'].hostPath.path as string;
      // A new volume is root's and closed to others; a file an earlier (root) pod left there is root's, 0644.
      expect(((await stat(provisioned)).mode & 0o7777).toString(8)).toBe('755');
      await mkdir(join(provisioned, 'old'));
      await writeFile(join(provisioned, 'old', 'data.txt'), 'old\n', { mode: 0o644 });
      const hostDir = join(base, 'fsgroup-host');
      await mkdir(hostDir, { recursive: true });
      await chmod(hostDir, 0o755);

      const pod = fsStore.create(podsType, {
        metadata: { name: 'grouped', namespace: ns },
        spec: {
          terminationGracePeriodSeconds: 1,
          securityContext: { runAsNonRoot: true, fsGroup: 4000 },
          volumes: [
            { name: 'code', persistentVolumeClaim: { claimName: 'code' } },
            { name: 'scratch', emptyDir: {} },
            { name: 'host', hostPath: { path: hostDir } },
          ],
          containers: [
            {
              name: 'app',
              image: image('v1'),
              securityContext: { runAsUser: 1000 },
              command: [
                'sh',
                '-c',
                [
                  'stat -c "%n %a %u:%g" /code /scratch /host',
                  'echo pod >> /code/old/data.txt && echo appended',
                  'echo new > /code/new.txt && echo created',
                  'echo s > /scratch/s && echo scratch',
                  'touch /host/h 2>/dev/null || echo host-denied',
                  'exec sleep 3600',
                ].join('; '),
              ],
              volumeMounts: [
                { name: 'code', mountPath: '/code' },
                { name: 'scratch', mountPath: '/scratch' },
                { name: 'host', mountPath: '/host' },
              ],
            },
          ],
        },
      });
      const get = (): KubeObject | undefined => fsStore.get(podsType, ns, 'grouped');
      await waitFor('grouped Ready', () => condition(get(), 'Ready')?.status === 'True');
      const read = async (): Promise<string> => {
        const chunks: Buffer[] = [];
        await fsKubelet.logs({ namespace: ns, pod: 'grouped', follow: false, previous: false, timestamps: false }, (c) => chunks.push(c), new AbortController().signal);
        return Buffer.concat(chunks).toString('utf8');
      };
      let log = '';
      const deadline = Date.now() + 5_000;
      while (!/host-denied/.test(log) && Date.now() < deadline) {
        log = await read();
        await new Promise((r) => setTimeout(r, 25));
      }
      expect(log).toBe(['/code 2775 0:4000', '/scratch 2777 0:4000', '/host 755 0:0', 'appended', 'created', 'scratch', 'host-denied', ''].join('\n'));
      // On the host: the old file is the group's and g+rw, the new one the pod user's in the fsGroup (setgid).
      const old = await stat(join(provisioned, 'old', 'data.txt'));
      expect({ gid: old.gid, mode: (old.mode & 0o7777).toString(8) }).toEqual({ gid: 4000, mode: '664' });
      expect(((await stat(join(provisioned, 'old'))).mode & 0o7777).toString(8)).toBe('2775');
      expect(await readFile(join(provisioned, 'old', 'data.txt'), 'utf8')).toBe('old\npod\n');
      const made = await stat(join(provisioned, 'new.txt'));
      expect({ uid: made.uid, gid: made.gid }).toEqual({ uid: 1000, gid: 4000 });
      const host = await stat(hostDir);
      expect({ gid: host.gid, mode: (host.mode & 0o7777).toString(8) }).toEqual({ gid: 0, mode: '755' });
      fsStore.delete(podsType, ns, 'grouped', { gracePeriodSeconds: 0 });
      await waitFor('grouped gone', () => !get() && processesRootedIn(join(fsCtx.stateDir, 'kubelet', 'pods', pod.metadata.uid!)).length === 0);
    } finally {
      await fsKubelet.stop();
      await fsVolumes.stop();
    }
  });
});
