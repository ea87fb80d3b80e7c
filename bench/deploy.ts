// Deploy benchmark, with `bin/gkube deploy` run as a Jenkins shell step runs it against real etcd, the real
// docker-registry and the Kubernetes API emulator (test/helpers/deploy-env.ts):
//
// 1. A no-op redeploy (the same commit again): the Kubernetes API requests it makes (the emulator's request
//    log, and its exec sessions), the etcd RPCs (etcd's own grpc_server_*_total counters on /metrics, before and after), the registry
//    requests (gkube reaches the registry through a counting proxy here; the emulator's kubelet does not) and
//    its wall time.
// 2. Publishing a one-file change in a 20,000-file, 200 MiB git tree of pseudo-random (incompressible) content:
//    the first deploy of a job publishes the tree in full, the next commit as a delta. Bytes streamed into the
//    pod and the publish step's time come from gkube's own summary (-o json); wall time is the whole deploy.
//
// Every number quoted is a median over several runs. Usage (as root, services installed by scripts/setup.sh):
//   npm run bench:deploy [-- NOOP_RUNS [PUBLISH_RUNS]]     (defaults 15 and 5)
// Prints a summary and appends a section to bench/results/deploy.md.
import { createCipheriv } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { appendFile, copyFile, cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { DeployEnv, root } from '../test/helpers/deploy-env.js';
import type { GitRepo } from '../test/harness/index.js';

const noopRuns = positiveInt(process.argv[2], 15, 'NOOP_RUNS');
const publishRuns = positiveInt(process.argv[3], 5, 'PUBLISH_RUNS');
const treeFiles = 20_000;
const treeBytes = 200 * 1024 * 1024;
const resultsFile = join(root, 'bench/results/deploy.md');
/** Time for the emulator to log requests whose sockets closed as gkube exited. */
const settleMs = 300;

function positiveInt(raw: string | undefined, fallback: number, name: string): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a whole number from 1, not ${JSON.stringify(raw)}`);
  return n;
}

// ---- statistics and formatting ----

function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function range(xs: readonly number[]): string {
  const min = Math.min(...xs);
  const max = Math.max(...xs);
  return min === max ? `${min}` : `${min}–${max}`;
}

function ms(n: number): string {
  return n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function sleep(t: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, t));
}

/** Identical lines counted: `2 × line`. */
function tally(lines: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const l of lines) counts.set(l, (counts.get(l) ?? 0) + 1);
  return [...counts].map(([l, n]) => (n > 1 ? `${n} × ${l}` : l));
}

// ---- what each service saw ----

/** A loopback HTTP proxy in front of the registry that notes every request passing through it. */
class CountingProxy {
  readonly seen: string[] = [];
  private constructor(
    private readonly server: Server,
    readonly host: string,
  ) {}

  static async start(upstreamUrl: string): Promise<CountingProxy> {
    const upstream = new URL(upstreamUrl);
    let proxy: CountingProxy | undefined;
    const server = createServer((req, res) => {
      const line = `${req.method} ${req.url}`;
      const up = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        proxy!.seen.push(`${line} → ${answer.statusCode}`);
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      up.on('error', (err) => {
        proxy!.seen.push(`${line} → ${err.message}`);
        res.destroy();
      });
      req.pipe(up);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('the registry proxy has no port');
    proxy = new CountingProxy(server, `127.0.0.1:${address.port}`);
    return proxy;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** etcd's gRPC counters by `service/method`: RPCs started and handled (all codes), from its /metrics. */
async function etcdCounters(clientUrl: string): Promise<Map<string, { started: number; handled: number }>> {
  const text = await (await fetch(`${clientUrl}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const counters = new Map<string, { started: number; handled: number }>();
  for (const line of text.split('\n')) {
    const m = /^grpc_server_(started|handled)_total\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
    const key = `${(labels['grpc_service'] ?? '?').replace(/^etcdserverpb\./, '')}/${labels['grpc_method'] ?? '?'}`;
    const c = counters.get(key) ?? { started: 0, handled: 0 };
    c[m[1] as 'started' | 'handled'] += Number(m[3]);
    counters.set(key, c);
  }
  return counters;
}

/** What the services saw between two points in time. */
interface Seen {
  /** HTTP requests to the Kubernetes API, from the emulator's request log. */
  kube: string[];
  /** Exec sessions (WebSocket upgrades; the request log has them apart from the HTTP requests). */
  execs: number;
  etcd: Map<string, { started: number; handled: number }>;
  registry: string[];
}

interface Mark {
  /** Entries in the emulator's request log (HTTP requests and exec connections). */
  kube: number;
  etcd: Map<string, { started: number; handled: number }>;
  registry: number;
}

// ---- the gkube under test ----

/**
 * bin/gkube with a copy of the bundle it loads, taken now: a build running meanwhile (npm test and npm run build
 * empty dist/ first) neither breaks the runs nor changes what they measure. etcd3 comes from the project's node_modules (the other SDKs are bundled).
 */
async function snapshotGkube(): Promise<{ bin: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'gkube-bench-'));
  const bundle = (await readdir(join(root, 'dist'))).filter((f) => f.endsWith('.mjs'));
  if (!bundle.includes('gkube.mjs')) throw new Error(`${join(root, 'dist/gkube.mjs')} is missing: run npm run build (npm run bench:deploy does)`);
  await mkdir(join(dir, 'dist'));
  await cp(join(root, 'bin'), join(dir, 'bin'), { recursive: true });
  await Promise.all(bundle.map((f) => copyFile(join(root, 'dist', f), join(dir, 'dist', f))));
  await copyFile(join(root, 'package.json'), join(dir, 'package.json'));
  await symlink(join(root, 'node_modules'), join(dir, 'node_modules'));
  return { bin: join(dir, 'bin/gkube'), dir };
}

const gkube = await snapshotGkube();
const gkubeSource = version('git', ['-C', root, 'describe', '--always', '--dirty']);

/** Runs the snapshot of bin/gkube as DeployEnv.gkube runs bin/gkube. */
function runGkube(args: string[], vars: Record<string, string>, cwd: string) {
  return execa(gkube.bin, args, { cwd, env: { ...vars, GKUBE: gkube.bin }, extendEnv: false, reject: false, stdin: 'ignore' });
}

// ---- the run ----

const env = await DeployEnv.start().catch(async (err: unknown) => {
  await rm(gkube.dir, { recursive: true, force: true });
  throw err;
});
const proxy = await CountingProxy.start(env.registry.url);
const image = `${proxy.host}/examples/hello`;
const etcdUrl = env.etcd.endpoints[0]!;
let build = 0;

let stopping = false;
async function stopAll(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await proxy.stop().catch(() => undefined);
  await env.stop();
  await rm(gkube.dir, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void stopAll().finally(() => process.exit(130)));
}

async function mark(): Promise<Mark> {
  return { kube: env.emulator.requestLog.length, etcd: await etcdCounters(etcdUrl), registry: proxy.seen.length };
}

async function since(before: Mark): Promise<Seen> {
  await sleep(settleMs);
  const after = await etcdCounters(etcdUrl);
  const etcd = new Map<string, { started: number; handled: number }>();
  for (const [key, c] of after) {
    const b = before.etcd.get(key) ?? { started: 0, handled: 0 };
    const d = { started: c.started - b.started, handled: c.handled - b.handled };
    if (d.started !== 0 || d.handled !== 0) etcd.set(key, d);
  }
  // The emulator's request log has the exec connections (WebSocket upgrades) too: counted apart from HTTP requests.
  const entries = env.emulator.requestLog.slice(before.kube);
  const http = entries.filter((e) => !(e.verb === 'connect' && e.resource === 'pods/exec'));
  return {
    kube: http.map((e) => `${e.verb || e.method} ${e.resource || '-'}: ${e.method} ${e.path} → ${e.status}`),
    execs: entries.length - http.length,
    etcd,
    registry: proxy.seen.slice(before.registry),
  };
}

/** Kubernetes API requests: HTTP requests and exec sessions. */
function kubeTotal(seen: Seen): number {
  return seen.kube.length + seen.execs;
}

function etcdTotal(seen: Seen, kind: 'started' | 'handled'): number {
  let n = 0;
  for (const c of seen.etcd.values()) n += c[kind];
  return n;
}

/** The parts of gkube's -o json summary the benchmark reads. */
interface Summary {
  action: string;
  result: string;
  durationMs: number;
  publish: { mode: string; files: number; deleted: number; bytes: number; reason: string | null } | null;
  steps: { step: string; ms: number }[];
}

interface DeployRun {
  wallMs: number;
  summary: Summary;
  seen: Seen;
}

/** One Jenkins build of `job` at `commit`: `bin/gkube deploy -o json` in the workspace, timed and counted. */
async function deploy(job: string, commit: string, workspace: GitRepo, expect: { action: string; mode?: string }): Promise<DeployRun> {
  build += 1;
  const vars = env.jenkinsEnv(job, build, commit, { WORKSPACE: workspace.dir, GKUBE_IMAGE: image });
  const before = await mark();
  const t0 = process.hrtime.bigint();
  const r = await runGkube(['deploy', '--timeout', '5m', '-o', 'json'], vars, workspace.dir);
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const seen = await since(before);
  if (r.exitCode !== 0) throw new Error(`gkube deploy of ${job} at ${commit.slice(0, 12)} exited ${r.exitCode}:\n${String(r.stderr)}`);
  const summary = JSON.parse(String(r.stdout)) as Summary;
  const mode = summary.publish?.mode;
  if (summary.action !== expect.action || (expect.mode !== undefined && mode !== expect.mode)) {
    throw new Error(`gkube deploy of ${job} at ${commit.slice(0, 12)}: expected ${expect.action}${expect.mode ? ` with a ${expect.mode} publish` : ''}, got ${summary.action}${mode ? ` with a ${mode} publish (${summary.publish?.reason ?? 'no reason given'})` : ''}`);
  }
  return { wallMs, summary, seen };
}

async function remove(job: string, workspace: GitRepo): Promise<void> {
  build += 1;
  const r = await runGkube(['delete', job, '-o', 'json'], env.jenkinsEnv(job, build, 'HEAD', { WORKSPACE: workspace.dir, GKUBE_IMAGE: image }), workspace.dir);
  if (r.exitCode !== 0) throw new Error(`gkube delete ${job} exited ${r.exitCode}:\n${String(r.stderr)}`);
}

function stepMs(run: DeployRun, step: string): number {
  const s = run.summary.steps.find((x) => x.step === step);
  if (!s) throw new Error(`the summary has no ${step} step: ${run.summary.steps.map((x) => x.step).join(', ')}`);
  return s.ms;
}

// ---- the large tree ----

/** A deterministic generator of numbers in [0, 1) (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An AES-256-CTR keystream with a fixed key: the same bytes on every machine, and incompressible. */
function keystream(nonce: number): (n: number) => Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(nonce, 0);
  const cipher = createCipheriv('aes-256-ctr', Buffer.alloc(32, 7), iv);
  return (n) => cipher.update(Buffer.alloc(n));
}

/** Path of file `i` of the tree: 20 × 20 directories of 50 files. */
function treePath(i: number): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `assets/a${pad(Math.floor(i / 1000))}/b${pad(Math.floor(i / 50) % 20)}/f${pad(i % 50)}.bin`;
}

/** Writes the tree into the workspace (sizes 0.1–1.9× the mean, content from one keystream) and commits it. */
async function commitTree(repo: GitRepo): Promise<{ commit: string; bytes: number; sizes: number[] }> {
  const rand = random(20_000);
  const next = keystream(0);
  const mean = treeBytes / treeFiles;
  const sizes = Array.from({ length: treeFiles }, () => Math.round(mean * (0.1 + 1.8 * rand())));
  let total = 0;
  const dirs = new Set<string>();
  for (let i = 0; i < treeFiles; i++) {
    const file = join(repo.dir, treePath(i));
    if (!dirs.has(dirname(file))) {
      dirs.add(dirname(file));
      await mkdir(dirname(file), { recursive: true });
    }
    await writeFile(file, next(sizes[i]!));
    total += sizes[i]!;
  }
  // Loose objects at the lowest zlib level: the content does not compress, and level 1 is the fastest.
  await repo.git('-c', 'core.looseCompression=1', 'add', '-A');
  await repo.git('commit', '-q', '-m', `${treeFiles} generated files`);
  return { commit: await repo.git('rev-parse', 'HEAD'), bytes: total, sizes };
}

/** Commits a new content of one file of the tree (same size), a different file each time. */
async function commitOneFileChange(repo: GitRepo, n: number, sizes: number[]): Promise<{ commit: string; path: string; size: number }> {
  const i = (n * 7919) % treeFiles;
  const path = treePath(i);
  await writeFile(join(repo.dir, path), keystream(n)(sizes[i]!));
  await repo.git('add', '--', path);
  await repo.git('commit', '-q', '-m', `change ${path}`);
  return { commit: await repo.git('rev-parse', 'HEAD'), path, size: sizes[i]! };
}

// ---- the machine ----

function version(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).split('\n')[0]!.trim();
  } catch {
    return `${cmd}: unknown`;
  }
}

const machine = {
  cpu: `${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}`,
  memory: `${Math.round(totalmem() / 1024 ** 3)} GiB`,
  kernel: `Linux ${release()}`,
  node: process.version,
  etcd: version('etcd', ['--version']),
  git: version('git', ['--version']),
};

// ---- 1. no-op redeploy ----

/**
 * The adapters a deploy loads, as the snapshot's chunks (scripts/build.mjs bundles the Kubernetes client, execa and
 * simple-git into them; etcd3 stays in node_modules), and client-node from node_modules for comparison.
 */
async function importSubjects(): Promise<[string, string[]][]> {
  const chunks = await readdir(join(gkube.dir, 'dist'));
  const chunk = (adapter: string): string => {
    const file = chunks.find((f) => f.startsWith(`${adapter}-`) && f.endsWith('.mjs'));
    if (!file) throw new Error(`no ${adapter}-*.mjs chunk in ${join(gkube.dir, 'dist')}`);
    return pathToFileURL(join(gkube.dir, 'dist', file)).href;
  };
  const adapters: [string, string[]][] = [
    ['Kubernetes adapter (client-node bundled in)', [chunk('kube')]],
    ['etcd adapter (etcd3 from node_modules)', [chunk('etcd')]],
    ['git adapter (simple-git and execa bundled in)', [chunk('git')]],
  ];
  return [...adapters, [allAdapters, adapters.flatMap(([, specifiers]) => specifiers)], ['for comparison, @kubernetes/client-node from node_modules', ['@kubernetes/client-node']]];
}
const allAdapters = 'all three adapters';

interface NoopResult {
  wall: number[];
  inProcess: number[];
  kube: number[];
  etcd: number[];
  registry: number[];
  example: Seen;
  /** Median ms of `import(x)` in a fresh node, less `node -e 0`, by what was imported. */
  imports: [string, number][];
}

/** Wall time of one fresh node process that imports `specifiers` (none: `node -e 0`), from the project's directory. */
async function nodeMs(specifiers: string[]): Promise<number> {
  const code = specifiers.length ? specifiers.map((s) => `await import(${JSON.stringify(s)});`).join(' ') : '0';
  const t0 = process.hrtime.bigint();
  const r = await execa(process.execPath, [...(specifiers.length ? ['--input-type=module'] : []), '-e', code], { cwd: root, reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new Error(`node importing ${specifiers.join(', ')} exited ${r.exitCode}: ${String(r.stderr)}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function importCosts(runs: number): Promise<[string, number][]> {
  const subjects = await importSubjects();
  const extra = new Map<string, number[]>(subjects.map(([name]) => [name, []]));
  for (let i = 0; i < runs; i++) {
    // Each subject right after its own baseline, so that drift of the shared machine hits both alike.
    for (const [name, specifiers] of subjects) {
      const base = await nodeMs([]);
      extra.get(name)!.push((await nodeMs(specifiers)) - base);
    }
  }
  return subjects.map(([name]) => [name, median(extra.get(name)!)]);
}

async function noopBench(): Promise<NoopResult> {
  await env.registry.pushImage('examples/hello', 'v1.0.0');
  const job = 'bench/hello/deploy';
  const commit = await env.repo.git('rev-parse', 'HEAD');
  process.stderr.write(`[bench] no-op: provisioning ${job}\n`);
  await deploy(job, commit, env.repo, { action: 'provision', mode: 'full' });
  // The first no-op warms the page cache (node, the bundle, the SDKs); it is not counted.
  await sleep(1_000);
  await deploy(job, commit, env.repo, { action: 'noop' });
  const out: NoopResult = { wall: [], inProcess: [], kube: [], etcd: [], registry: [], example: { kube: [], execs: 0, etcd: new Map(), registry: [] }, imports: [] };
  for (let i = 0; i < noopRuns; i++) {
    const r = await deploy(job, commit, env.repo, { action: 'noop' });
    out.wall.push(r.wallMs);
    out.inProcess.push(r.summary.durationMs);
    out.kube.push(kubeTotal(r.seen));
    out.etcd.push(etcdTotal(r.seen, 'started'));
    out.registry.push(r.seen.registry.length);
    if (i === 0) out.example = r.seen;
  }
  process.stderr.write(`[bench] no-op: ${noopRuns} runs, median ${ms(median(out.wall))}; timing the adapter imports\n`);
  out.imports = await importCosts(Math.min(noopRuns, 7));
  // The large tree's jobs run alone.
  await remove(job, env.repo);
  return out;
}

// ---- 2. publishing a one-file change in a large tree ----

interface PublishBench {
  treeBytes: number;
  treeCommitMs: number;
  full: DeployRun[];
  delta: DeployRun[];
  changed: number[];
}

async function publishBench(): Promise<PublishBench> {
  const repo = await env.workspace();
  process.stderr.write(`[bench] publish: generating and committing ${treeFiles} files, ${bytes(treeBytes)}\n`);
  const t0 = Date.now();
  const tree = await commitTree(repo);
  const treeCommitMs = Date.now() - t0;
  const changes: { commit: string; path: string; size: number }[] = [];
  for (let n = 1; n <= publishRuns; n++) changes.push(await commitOneFileChange(repo, n, tree.sizes));

  // Full: the first deploy of a job publishes the whole tree; each job but the last is deleted before the next.
  const full: DeployRun[] = [];
  let job = '';
  for (let i = 1; i <= publishRuns; i++) {
    if (job) await remove(job, repo);
    job = `bench/big/deploy-${i}`;
    await flushWrites();
    const r = await deploy(job, tree.commit, repo, { action: 'provision', mode: 'full' });
    full.push(r);
    process.stderr.write(`[bench] publish: full ${i}/${publishRuns}: ${bytes(r.summary.publish!.bytes)} in ${ms(stepMs(r, 'publish'))}\n`);
  }
  // Delta: each next commit changes one file.
  const delta: DeployRun[] = [];
  for (const [i, change] of changes.entries()) {
    await flushWrites();
    const r = await deploy(job, change.commit, repo, { action: 'update', mode: 'delta' });
    if (r.summary.publish!.files !== 1) throw new Error(`a one-file change sent ${r.summary.publish!.files} files`);
    delta.push(r);
    process.stderr.write(`[bench] publish: delta ${i + 1}/${publishRuns}: ${bytes(r.summary.publish!.bytes)} in ${ms(stepMs(r, 'publish'))}\n`);
  }
  await remove(job, repo);
  return { treeBytes: tree.bytes, treeCommitMs, full, delta, changed: changes.map((c) => c.size) };
}

/** Writes the earlier runs left in the page cache go to disk first, so that no run pays for the one before it. */
async function flushWrites(): Promise<void> {
  await execa('sync');
}

// ---- report ----

const load = (): string => loadavg().map((l) => l.toFixed(1)).join(' ');
const loadBefore = load();

function report(noop: NoopResult, pub: PublishBench): { summary: string; markdown: string } {
  const date = new Date().toISOString().slice(0, 10);
  const ex = noop.example;
  const kubeLines = [...tally(ex.kube), ...(ex.execs ? [`${ex.execs} × exec session`] : [])];
  const etcdLines = [...ex.etcd].map(([k, c]) => `${c.started} × ${k}${c.handled !== c.started ? ` (${c.handled} handled)` : ''}`);
  const col = (runs: DeployRun[], f: (r: DeployRun) => number) => median(runs.map(f));
  const fullPublish = col(pub.full, (r) => stepMs(r, 'publish'));
  const deltaPublish = col(pub.delta, (r) => stepMs(r, 'publish'));
  const fullBytes = col(pub.full, (r) => r.summary.publish!.bytes);
  const deltaBytes = col(pub.delta, (r) => r.summary.publish!.bytes);
  const fullWall = col(pub.full, (r) => r.wallMs);
  const deltaWall = col(pub.delta, (r) => r.wallMs);
  const inside = median(noop.inProcess);
  const wall = median(noop.wall);
  const allSdks = noop.imports.find(([name]) => name === allAdapters)?.[1] ?? NaN;
  const spread = (runs: DeployRun[], f: (r: DeployRun) => number) => {
    const xs = runs.map(f);
    return `${ms(median(xs))} (${ms(Math.min(...xs))}–${ms(Math.max(...xs))})`;
  };
  const publishRow = (name: string, runs: DeployRun[]) =>
    `| ${name} | ${runs.length} | ${col(runs, (r) => r.summary.publish!.files)} | ${bytes(col(runs, (r) => r.summary.publish!.bytes))} | ${spread(runs, (r) => stepMs(r, 'publish'))} | ${spread(runs, (r) => r.wallMs)} | ` +
    `${col(runs, (r) => r.seen.kube.length)} + ${col(runs, (r) => r.seen.execs)} | ${col(runs, (r) => etcdTotal(r.seen, 'started'))} |`;
  // Every step either kind of deploy ran, in the order the first deploy ran them.
  const stepNames = [...new Set([...pub.full, ...pub.delta].flatMap((r) => r.summary.steps.map((s) => s.step)))];
  const stepCell = (runs: DeployRun[], step: string) => {
    const values = runs.map((r) => r.summary.steps.find((s) => s.step === step)?.ms).filter((v): v is number => v !== undefined);
    return values.length ? ms(median(values)) : '—';
  };

  const summary = [
    `no-op redeploy (median of ${noopRuns}): ${ms(wall)} wall, ${ms(inside)} of it inside gkube's deploy action; ` +
      `${median(noop.kube)} Kubernetes API requests, ${median(noop.etcd)} etcd RPCs, ${median(noop.registry)} registry requests`,
    `  Kubernetes: ${kubeLines.join('; ') || 'none'}`,
    `  etcd: ${etcdLines.join('; ') || 'none'}`,
    `  registry: ${tally(ex.registry).join('; ') || 'none'}`,
    `  importing the adapters alone (median of ${Math.min(noopRuns, 7)}, less node -e 0): ${noop.imports.map(([n, t]) => `${n} ${ms(t)}`).join(', ')}`,
    `publish, ${treeFiles} files / ${bytes(pub.treeBytes)} (median of ${publishRuns} each): full ${bytes(fullBytes)} in ${ms(fullPublish)}, ` +
      `one-file delta ${bytes(deltaBytes)} in ${ms(deltaPublish)}: ${Math.round(fullBytes / deltaBytes)}× fewer bytes, ${(fullPublish / deltaPublish).toFixed(1)}× faster publish step; ` +
      `whole deploy ${ms(fullWall)} (first) vs ${ms(deltaWall)} (update)`,
  ].join('\n');

  const markdown = [
    `## ${date}`,
    '',
    `Machine: ${machine.cpu}, ${machine.memory}, ${machine.kernel}; Node ${machine.node}; ${machine.etcd}; ${machine.git}. ` +
      `Load average (1/5/15 min) ${loadBefore} at the start, ${load()} at the end.`,
    `Command: \`npm run bench:deploy -- ${noopRuns} ${publishRuns}\`, gkube ${gkubeSource} (\`git describe --always --dirty\`).`,
    '',
    `### No-op redeploy (median of ${noopRuns} runs; range in brackets)`,
    '',
    '| wall time | inside the deploy action | Kubernetes API requests | etcd RPCs | registry requests |',
    '|---|---|---|---|---|',
    `| ${ms(wall)} (${ms(Math.min(...noop.wall))}–${ms(Math.max(...noop.wall))}) | ${ms(inside)} | ${median(noop.kube)} (${range(noop.kube)}) | ${median(noop.etcd)} (${range(noop.etcd)}) | ${median(noop.registry)} (${range(noop.registry)}) |`,
    '',
    'The requests of one no-op:',
    '',
    ...kubeLines.map((l) => `- Kubernetes: \`${l}\``),
    ...etcdLines.map((l) => `- etcd: \`${l}\``),
    ...tally(ex.registry).map((l) => `- registry: \`${l}\``),
    '',
    `Importing the adapters a deploy loads, each in a fresh \`node\` less \`node -e 0\` (median of ${Math.min(noopRuns, 7)}): ` +
      `${noop.imports.map(([n, t]) => `${n} ${ms(t)}`).join(', ')}. ` +
      `The no-op's wall time less its deploy action is ${ms(wall - inside)}; importing all three adapters alone takes ${ms(allSdks)}.`,
    '',
    `### Publishing a one-file change: ${treeFiles} files, ${bytes(pub.treeBytes)} (median of ${publishRuns} runs each; range in brackets)`,
    '',
    '| publish | runs | files sent | bytes streamed | publish step | whole deploy | Kubernetes API requests (HTTP + exec) | etcd RPCs |',
    '|---|---|---|---|---|---|---|---|',
    publishRow('full (first deploy of a job)', pub.full),
    publishRow('delta (next commit, one file changed)', pub.delta),
    '',
    `Delta against full: ${Math.round(fullBytes / deltaBytes)}× fewer bytes; the publish step ${(fullPublish / deltaPublish).toFixed(1)}× faster ` +
      `(${ms(fullPublish)} → ${ms(deltaPublish)}); the whole deploy ${ms(fullWall)} → ${ms(deltaWall)}. The changed file was ${bytes(median(pub.changed))} (median). ` +
      `Generating and committing the tree took ${ms(pub.treeCommitMs)}.`,
    '',
    'Where the time goes, by gkube step (median ms; the step names of `-o json`):',
    '',
    `| ${['deploy', ...stepNames].join(' | ')} |`,
    `|${'---|'.repeat(stepNames.length + 1)}`,
    `| full | ${stepNames.map((s) => stepCell(pub.full, s)).join(' | ')} |`,
    `| delta | ${stepNames.map((s) => stepCell(pub.delta, s)).join(' | ')} |`,
    '',
  ].join('\n');
  return { summary, markdown };
}

const header = `# Deploy cost

\`npm run bench:deploy [-- NOOP_RUNS PUBLISH_RUNS]\` (bench/deploy.ts; defaults 15 and 5) builds gkube and runs
\`bin/gkube deploy -o json\` as a Jenkins shell step would, against real etcd, the real docker-registry and the
Kubernetes API emulator, all on this machine. It runs a copy of bin/gkube and dist/ taken at its start, so a build
made meanwhile changes nothing; "gkube" in each section names the source it was built from.

- **No-op redeploy**: the job is provisioned, then deployed again at the same commit NOOP_RUNS times (after one
  uncounted warm-up run). Kubernetes API requests are the emulator's request log: HTTP requests, and exec sessions
  (WebSocket upgrades) counted apart; etcd RPCs are the difference in etcd's \`grpc_server_started_total\` counters
  on \`/metrics\` across the run; registry requests are counted by a proxy that gkube reaches the registry through
  (the emulator's kubelet goes to the registry directly). "Inside the deploy action" is the summary's
  \`durationMs\`; the rest of the wall time is process start, loading gkube and its SDKs, and exit.
- **Publish**: a git tree of 20,000 files, 200 MiB of pseudo-random (incompressible, deterministic) content, is
  deployed PUBLISH_RUNS times as the first deploy of a fresh job (a full publish; each job is deleted before the
  next), then PUBLISH_RUNS commits that each change one file are deployed to the last job (delta publishes). Bytes
  and the publish step's time are gkube's own (\`publish.bytes\`, \`steps[].ms\`); "whole deploy" is the wall time.
  Each of these deploys starts after \`sync\`, so none pays for the disk writes of the one before.

Machines here are shared: compare counts and ratios, not absolute times.
`;

try {
  const noop = await noopBench();
  const pub = await publishBench();
  const { summary, markdown } = report(noop, pub);
  console.log(summary);
  const previous = await readFile(resultsFile, 'utf8').catch(() => '');
  if (previous.trim() === '') await writeFile(resultsFile, `${header}\n${markdown}`);
  else await appendFile(resultsFile, `\n${markdown}`);
  console.log(`written to ${resultsFile}`);
} finally {
  await stopAll();
}
