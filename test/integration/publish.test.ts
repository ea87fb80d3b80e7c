// The publish step against the Kubernetes API emulator: exec over the real client-node WebSocket into a real
// pod whose code volume is a hostPath PV, with real git repositories and a real registry.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, readFile, readdir, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { execa } from 'execa';
import { execInPod, kubeExecFrom, type PodExec } from '../../src/adapters/kube-exec.js';
import { TarScanner, archiveCommit, compareManifests, publishDelta, publishFull, type Manifest } from '../../src/deploy/publish.js';
import { GkubeError } from '../../src/errors.js';
import { KubeEmulator } from '../kube-emulator/emulator.js';
import { GitRepo, TempDirs, freePort, startRegistry, waitUntil, type TestRegistry } from '../harness/index.js';

const ns = 'publish-test';
const temp = new TempDirs();
let emulator: KubeEmulator;
let registry: TestRegistry;
let kc: k8s.KubeConfig;
let exec: PodExec;
let volumeDir: string;

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const pod = { namespace: ns, pod: 'app', container: 'app' };

beforeAll(async () => {
  registry = await startRegistry();
  await registry.pushImage('team/app', 'v1');
  emulator = await KubeEmulator.start({ registryUrl: registry.url });
  const kubeconfig = join(await temp.make('publish-kc'), 'kubeconfig');
  await emulator.writeKubeconfig(kubeconfig);
  exec = kubeExecFrom(kubeconfig, undefined);
  kc = new k8s.KubeConfig();
  kc.loadFromString(emulator.kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: ns } } });
  volumeDir = await temp.make('publish-pv');
  await core.createPersistentVolume({
    body: { metadata: { name: 'publish-pv' }, spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], hostPath: { path: volumeDir }, storageClassName: '' } },
  });
  await core.createNamespacedPersistentVolumeClaim({
    namespace: ns,
    body: { metadata: { name: 'code' }, spec: { accessModes: ['ReadWriteOnce'], volumeName: 'publish-pv', storageClassName: '', resources: { requests: { storage: '1Gi' } } } },
  });
  await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name: 'app' },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'app', image: `${registry.host}/team/app:v1`, command: ['sleep', '3600'], volumeMounts: [{ name: 'code', mountPath: '/srv/app' }] }],
        volumes: [{ name: 'code', persistentVolumeClaim: { claimName: 'code' } }],
      },
    },
  });
  await waitUntil('pod app to be ready', async () => {
    const p = await core.readNamespacedPod({ name: 'app', namespace: ns });
    return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  });
}, 120_000);

afterAll(async () => {
  await emulator?.stop();
  await registry?.stop();
  await temp.removeAll();
});

async function failure(p: Promise<unknown>): Promise<GkubeError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(GkubeError);
    return err as GkubeError;
  }
  throw new Error('expected a failure');
}

describe('execInPod', () => {
  test('exit 0 and non-zero, stdout and stderr', async () => {
    const ok = await exec({ ...pod, command: ['sh', '-c', 'echo out; echo err >&2'], timeoutMs: 20_000 });
    expect(ok).toEqual({ exitCode: 0, stdout: 'out\n', stderr: 'err\n', stdoutTruncated: false, stderrTruncated: false });
    const bad = await exec({ ...pod, command: ['sh', '-c', 'echo partial; echo "it broke" >&2; exit 7'], timeoutMs: 20_000 });
    expect(bad).toMatchObject({ exitCode: 7, stdout: 'partial\n', stderr: 'it broke\n' });
  });

  test('stdin is streamed whole with back-pressure, then closed (v5 half-close), and the status still arrives', async () => {
    const size = 24 * 1024 * 1024;
    const chunk = randomBytes(1024 * 1024);
    const expected = createHash('sha256');
    for (let i = 0; i < size / chunk.length; i++) expected.update(chunk);
    // A slow reader in the pod: the sender must wait rather than queue 24 MiB.
    async function* source() {
      for (let i = 0; i < size / chunk.length; i++) yield chunk;
    }
    const started = Date.now();
    const r = await exec({ ...pod, command: ['sh', '-c', 'sha256sum | cut -c1-64'], stdin: Readable.from(source()), timeoutMs: 60_000 });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toBe(expected.digest('hex'));
    expect(Date.now() - started).toBeLessThan(30_000);
    // While the pod does not read, the sender stops pulling from the source instead of queueing it all.
    let pulled = 0;
    let pulledBeforeRead = -1;
    async function* counted() {
      for (let i = 0; i < size / chunk.length; i++) {
        pulled += 1;
        yield chunk;
      }
    }
    const timer = setTimeout(() => (pulledBeforeRead = pulled), 2_000);
    const slow = await exec({ ...pod, command: ['sh', '-c', 'sleep 3; sha256sum | cut -c1-64'], stdin: Readable.from(counted()), timeoutMs: 60_000 });
    clearTimeout(timer);
    expect(slow.stdout.trim()).toBe(r.stdout.trim());
    expect(pulled).toBe(24);
    // About 6 of the 24 MiB fill the socket and pipe buffers; without back-pressure all 24 are pulled at once.
    expect(pulledBeforeRead).toBeLessThan(16);
    const small = await exec({ ...pod, command: ['cat'], stdin: Buffer.from('from a buffer'), timeoutMs: 20_000 });
    expect(small.stdout).toBe('from a buffer');
  });

  test('stdout and stderr keep only their tail', async () => {
    const r = await exec({ ...pod, command: ['sh', '-c', 'i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done; echo done >&2'], timeoutMs: 20_000, maxOutputBytes: 100 });
    expect(r.stdout.length).toBe(100);
    expect(r.stdout.endsWith('line 1999\n')).toBe(true);
    expect(r.stdoutTruncated).toBe(true);
    expect(r.stderr).toBe('done\n');
  });

  test('the deadline closes the stream and fails clearly', async () => {
    const started = Date.now();
    const err = await failure(exec({ ...pod, command: ['sleep', '30'], timeoutMs: 1_000 }));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(err.message).toBe(`exec in pod ${ns}/app: the command did not finish within 1s; the stream was closed`);
    expect(err.exitCode).toBe(1);
  });

  test('a stream cut before the status is a failure, never a success', async () => {
    emulator.faults.cutNextExec(4096);
    const err = await failure(exec({ ...pod, command: ['sh', '-c', 'head -c 1000000 /dev/zero'], timeoutMs: 20_000 }));
    expect(err.message).toBe(`exec in pod ${ns}/app: the stream ended without an exit status`);
  });

  test('an API server that does not answer is a dependency failure (exit 4), and the input is let go', async () => {
    const port = await freePort();
    const offline = new k8s.KubeConfig();
    offline.loadFromString(emulator.kubeconfig.replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: https://127.0.0.1:${port}`));
    const input = Readable.from((async function* () {
      for (;;) yield Buffer.alloc(65536);
    })());
    const err = await failure(execInPod(offline, { ...pod, command: ['cat'], stdin: input, timeoutMs: 10_000 }));
    expect(err.code).toBe('DEPENDENCY_UNREACHABLE');
    expect(err.exitCode).toBe(4);
    expect(err.message).toMatch(new RegExp(`^exec in pod ${ns}/app: the Kubernetes API at https://127\\.0\\.0\\.1:${port} is unreachable: .*ECONNREFUSED`));
    expect(input.destroyed).toBe(true);
  });

  test('a missing pod or a command that cannot start is an error, not an exit code', async () => {
    const missing = await failure(exec({ ...pod, pod: 'nope', command: ['true'], timeoutMs: 20_000 }));
    expect(missing.message).toMatch(new RegExp(`^exec in pod ${ns}/nope: the API server https://127\\.0\\.0\\.1:\\d+ refused the exec with HTTP 404$`));
    const notFound = await failure(execInPod(kc, { ...pod, command: ['/no/such/program'], timeoutMs: 20_000 }));
    expect(notFound.message).toMatch(/^exec in pod publish-test\/app: Internal error occurred: .*no such file or directory/);
  });
});

describe('publish', () => {
  let repo: GitRepo;
  const c: string[] = [];
  const big = randomBytes(3 * 1024 * 1024).toString('base64');
  const target = () => ({ exec, ...pod, codePath: '/srv/app', gitCwd: repo.dir, timeoutMs: 60_000 });

  beforeAll(async () => {
    repo = await GitRepo.create(await temp.make('publish-repo'));
    c.push(await repo.commit('first', {
      'index.html': '<h1>v1</h1>\n',
      'assets/big.txt': big,
      'lib/util.js': 'export const a = 1;\n',
      'to rename.txt': 'same content\n',
      'obsolete.txt': 'delete me\n',
      'docs/file with spaces.md': '# spaces\n',
    }));
    c.push(await repo.commit('second', {
      'index.html': '<h1>v2</h1>\n',
      'lib/util.js': 'export const a = 2;\n',
      'to rename.txt': null,
      'renamed/now here.txt': 'same content\n',
      'obsolete.txt': null,
      'lib/sub/new.js': 'export const b = 1;\n',
    }));
    c.push(await repo.commit('third', { 'index.html': '<h1>v3</h1>\n', 'assets/big.txt': `${big}more` }));
    // In the workspace but never committed: must not reach the pod.
    await writeFile(join(repo.dir, 'untracked.env'), 'SECRET=1\n');
  });

  async function treeOf(commit: string): Promise<Manifest> {
    const scanner = new TarScanner(() => false);
    const archive = archiveCommit(repo.dir, commit);
    archive.pipe(scanner);
    scanner.resume();
    await new Promise((resolve, reject) => {
      scanner.once('end', resolve);
      scanner.once('error', reject);
      archive.once('error', reject);
    });
    return scanner.manifest;
  }

  /** The live tree as the PV's host directory shows it. */
  async function liveOnVolume(): Promise<Manifest> {
    const link = await readlink(join(volumeDir, 'current'));
    expect(link).toMatch(/^\.gkube\/releases\/[0-9a-f]{40}-[0-9a-f]{8}-[0-9a-f]{8}$/);
    const m: Manifest = new Map();
    async function walk(rel: string): Promise<void> {
      for (const name of await readdir(join(volumeDir, 'current', rel))) {
        const path = rel ? `${rel}/${name}` : name;
        const full = join(volumeDir, 'current', path);
        const st = await lstat(full);
        if (st.isDirectory()) await walk(path);
        else if (st.isSymbolicLink()) m.set(path, { kind: 'symlink', target: await readlink(full) });
        else m.set(path, { kind: 'file', sha256: sha(await readFile(full)), executable: (st.mode & 0o100) !== 0 });
      }
    }
    await walk('');
    return m;
  }

  test('a full publish lands exactly the commit\'s tree, and nothing from the workspace', async () => {
    const r = await publishFull({ ...target(), commit: c[0]! });
    expect(r).toMatchObject({ mode: 'full', files: 6, commit: c[0], previousCommit: null, reason: null });
    expect(r.bytes).toBeGreaterThan(big.length);
    const live = await liveOnVolume();
    expect(compareManifests(await treeOf(c[0]!), live)).toEqual([]);
    expect(live.has('untracked.env')).toBe(false);
    expect(live.has('.git')).toBe(false);
    expect((await readFile(join(volumeDir, '.gkube', 'commit'), 'utf8')).trim()).toBe(c[0]);
    // The app in the pod reads it through the link.
    const seen = await exec({ ...pod, command: ['cat', '/srv/app/current/docs/file with spaces.md'], timeoutMs: 20_000 });
    expect(seen.stdout).toBe('# spaces\n');
  });

  test('a delta publish streams only the diff and leaves exactly the new commit\'s tree', async () => {
    const full = await treeOf(c[0]!);
    const r = await publishDelta({ ...target(), fromCommit: c[0]!, toCommit: c[1]! });
    expect(r).toMatchObject({ mode: 'delta', files: 4, deleted: 2, commit: c[1], previousCommit: c[0], reason: null });
    // The 4 MiB asset did not change: the delta is a few KiB.
    expect(r.bytes).toBeLessThan(16 * 1024);
    expect(full.size).toBe(6);
    const live = await liveOnVolume();
    expect(compareManifests(await treeOf(c[1]!), live)).toEqual([]);
    expect(live.has('to rename.txt')).toBe(false);
    expect(live.get('renamed/now here.txt')).toMatchObject({ sha256: sha('same content\n') });
    // The previous release is kept for a rollback; nothing is left in staging.
    expect(await readdir(join(volumeDir, '.gkube', 'releases'))).toHaveLength(2);
    expect(await readdir(join(volumeDir, '.gkube', 'staging'))).toEqual([]);
    // The new release shares the unchanged files with the old one (hard links), and never wrote through them:
    // the previous release still holds the first commit's content.
    const releases = join(volumeDir, '.gkube', 'releases');
    const previous = join(releases, (await readdir(releases)).find((d) => d.startsWith(`${c[0]}-`))!);
    expect(await readFile(join(previous, 'index.html'), 'utf8')).toBe('<h1>v1</h1>\n');
    expect(await readFile(join(previous, 'lib/util.js'), 'utf8')).toBe('export const a = 1;\n');
    expect((await lstat(join(previous, 'assets/big.txt'))).ino).toBe((await lstat(join(volumeDir, 'current', 'assets/big.txt'))).ino);
  });

  test('a stream cut mid-way fails clearly and leaves the published code intact and readable', async () => {
    const before = await readlink(join(volumeDir, 'current'));
    emulator.faults.cutNextExec(1024 * 1024);
    const err = await failure(publishFull({ ...target(), commit: c[2]! }));
    expect(err.message).toBe(`publishing ${c[2]!.slice(0, 12)} to pod ${ns}/app: uploading the code failed: exec in pod ${ns}/app: the stream ended without an exit status; the live code was not changed`);
    expect(err.exitCode).toBe(1);
    // git archive was stopped with the upload, not left writing to a pipe nobody reads.
    await waitUntil('git archive to exit', async () => !(await execa('ps', ['-o', 'args=', '--ppid', String(process.pid)], { reject: false })).stdout.includes('git archive'), 5_000);
    expect(await readlink(join(volumeDir, 'current'))).toBe(before);
    expect(compareManifests(await treeOf(c[1]!), await liveOnVolume())).toEqual([]);
    const seen = await exec({ ...pod, command: ['cat', '/srv/app/current/index.html'], timeoutMs: 20_000 });
    expect(seen.stdout).toBe('<h1>v2</h1>\n');
    // The next run converges: the half-written staging tree is cleared and the delta goes through.
    const r = await publishDelta({ ...target(), fromCommit: c[1]!, toCommit: c[2]! });
    expect(r).toMatchObject({ mode: 'delta', files: 2, commit: c[2] });
    expect(compareManifests(await treeOf(c[2]!), await liveOnVolume())).toEqual([]);
    expect(await readdir(join(volumeDir, '.gkube', 'staging'))).toEqual([]);
  });

  test('a delta from a commit the pod does not have is published in full, and the result says why', async () => {
    const r = await publishDelta({ ...target(), fromCommit: c[0]!, toCommit: c[1]! });
    expect(r.mode).toBe('full');
    expect(r.reason).toBe(`the pod has ${c[2]!.slice(0, 12)}, not ${c[0]!.slice(0, 12)}: published in full`);
    expect(compareManifests(await treeOf(c[1]!), await liveOnVolume())).toEqual([]);
    const again = await publishDelta({ ...target(), fromCommit: c[0]!, toCommit: c[1]! });
    expect(again).toMatchObject({ mode: 'none', bytes: 0 });
  });

  test('a non-zero exit in the pod is reported with its exit code and the tail of stderr', async () => {
    const err = await failure(publishFull({ ...target(), codePath: '/srv/missing', commit: c[0]! }));
    expect(err.message).toMatch(
      new RegExp(`^publishing ${c[0]!.slice(0, 12)} to pod ${ns}/app: uploading the code failed: the command in the pod exited with code 2: .*can't cd to /srv/missing; the live code was not changed$`),
    );
    expect(err.exitCode).toBe(1);
    expect(err.hint).toBe('check /srv/missing in the pod (mounted, writable, space left)');
  });
});
