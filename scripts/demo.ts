// `npm run demo`: gkube deploying examples/hello from Jenkins-style builds on one machine, on the same real
// services the tests use (etcd, docker-registry, glusterd) and the project's Kubernetes API emulator, whose
// kubelet runs each container's command on this host. Four builds (provision, delta sync, new image, a broken
// change rolled back), then history, trace and a rollback. It checks every result it shows, exits 0 only when
// each was as documented, and removes everything it started.
import { spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { ensureGlusterd, stopGlusterd } from '../test/harness/glusterd.mjs';
import { GitRepo, GlusterPool, glusterHost, startEtcd, startRegistry, TempDirs, type EtcdCluster, type TestRegistry, type TestVolume } from '../test/harness/index.js';
import { KubeEmulator } from '../test/kube-emulator/emulator.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const gkube = join(root, 'bin/gkube');
const job = 'demo/hello';
/** examples/hello's gkube.yaml names this registry; the demo points it at its own. */
const exampleRepository = '127.0.0.1:5000/examples/hello';
/** Every gkube run is bounded, so a stuck step fails the demo instead of hanging it. */
const deployTimeout = '2m';

/** What the demo started, in start order; `stop` removes it in reverse. */
interface Services {
  temp: TempDirs;
  glusterdPid?: number;
  etcd?: EtcdCluster;
  registry?: TestRegistry;
  gluster?: GlusterPool;
  emulator?: KubeEmulator;
}

function heading(text: string): void {
  process.stdout.write(`\n== ${text}\n`);
}

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function main(): Promise<void> {
  const started = Date.now();
  const services: Services = { temp: new TempDirs() };
  let failure: unknown;
  try {
    await demo(services);
  } catch (err) {
    failure = err;
  }
  heading('removing everything the demo started');
  const leftovers = await stop(services);
  for (const problem of leftovers) process.stderr.write(`demo: cleanup: ${problem}\n`);
  if (failure !== undefined) {
    process.stderr.write(`demo failed: ${failure instanceof Error ? failure.message : String(failure)}\n`);
    process.exitCode = 1;
    return;
  }
  if (leftovers.length > 0) {
    process.exitCode = 1;
    return;
  }
  say(`demo finished in ${Math.round((Date.now() - started) / 1000)} s`);
}

async function demo(s: Services): Promise<void> {
  heading('starting the real services on loopback: etcd, docker-registry, glusterd, and the Kubernetes API emulator');
  s.glusterdPid = await ensureGlusterd();
  s.etcd = await startEtcd();
  s.registry = await startRegistry();
  s.gluster = await GlusterPool.connect();
  // Test timings: a stopped container gets 5% of its grace period, and back-offs start at 0.2 s.
  s.emulator = await KubeEmulator.start({ registryUrl: s.registry.url, kubelet: { terminationGraceScale: 0.05, crashLoopBackOffInitialMs: 200, imagePullBackOffInitialMs: 200 } });
  const scratch = await s.temp.make('demo');
  const kubeconfig = join(scratch, 'kubeconfig');
  await s.emulator.writeKubeconfig(kubeconfig);
  const kubectl = async (...args: string[]): Promise<string> => (await execa('kubectl', ['--kubeconfig', kubeconfig, ...args])).stdout;
  say(`etcd ${s.etcd.endpoints[0]}   registry ${s.registry.url}   gluster host ${s.gluster.host}   Kubernetes API ${s.emulator.url}`);

  heading('the cluster\'s storage, set up once by its administrator with kubectl: a GlusterFS volume behind the default StorageClass');
  const volume = await s.gluster.createVolume();
  say(`gluster volume ${volume.name} on ${volume.bricks.join(', ')}`);
  await writeFile(join(scratch, 'storage.yaml'), await storageManifests(volume));
  say(await kubectl('apply', '-f', join(scratch, 'storage.yaml')));
  say('gkube.yaml of examples/hello asks for storage.provider storageclass, so its claim binds to that volume.');

  heading('the Jenkins job "demo/hello": a git workspace holding examples/hello, and its images in the registry');
  const image = `${s.registry.host}/examples/hello`;
  const workspace = await GitRepo.create(join(scratch, 'workspace'));
  const commits = [await workspace.commit('hello', await exampleFiles(image))];
  await workspace.tag('v1.0.0', { annotated: true });
  say(`commit ${short(commits[0]!)} tagged v1.0.0; gkube.yaml's image.repository set to ${image}`);
  for (const tag of ['v1.0.0', 'v1.1.0']) {
    const pushed = await s.registry.pushImage('examples/hello', tag);
    say(`pushed ${image}:${tag} (${pushed.digest.slice(0, 19)}…)`);
  }

  const jenkins = new Jenkins(workspace.dir, join(scratch, 'jenkins'), { GKUBE_ETCD_ENDPOINTS: s.etcd.endpoints[0]!, KUBECONFIG: kubeconfig });
  const served = async (expected: string): Promise<void> => {
    const { url, status, body } = await get(jenkins.env());
    say(`GET ${url} → ${status} ${JSON.stringify(body)}`);
    if (status !== 200 || body !== expected) throw new Error(`the pod served ${status} ${JSON.stringify(body)}, not 200 ${JSON.stringify(expected)}`);
  };

  heading('build #1: the job\'s first deploy. Expect gkube to provision: a claim, a pod of image v1.0.0, init, publish, reload, health check, revision 1');
  await jenkins.build(commits[0]!, `gkube --version\ngkube deploy --timeout ${deployTimeout}\n`, 0);
  await served('Hello from gkube!\n');
  say(await kubectl('get', 'pods,pvc', '-l', 'app.kubernetes.io/managed-by=gkube'));

  heading('build #2: a commit changes message.txt. Expect the same pod, only that file synced (delta), revision 2');
  commits.push(await workspace.commit('new message', { 'message.txt': 'Hello again, delta!\n' }));
  say(`commit ${short(commits[1]!)}: message.txt → "Hello again, delta!"`);
  await jenkins.build(commits[1]!, `gkube deploy --timeout ${deployTimeout}\n`, 0);
  await served('Hello again, delta!\n');

  heading('build #3: a commit tagged v1.1.0. Expect the pod\'s image rolled to v1.1.0 in place, the code synced, revision 3');
  commits.push(await workspace.commit('release 1.1', { 'message.txt': 'Hello 1.1\n' }));
  await workspace.tag('v1.1.0', { annotated: true });
  say(`commit ${short(commits[2]!)} tagged v1.1.0: message.txt → "Hello 1.1"`);
  await jenkins.build(commits[2]!, `gkube image-tag\ngkube deploy --timeout ${deployTimeout}\n`, 0);
  await served('Hello 1.1\n');

  heading('build #4: a commit breaks config.json. Expect the health check to fail, gkube to roll the change back and exit 1 (the build fails), v1.1 still served');
  commits.push(await workspace.commit('broken config', { 'message.txt': 'Broken!\n', 'config.json': '{ not json' }));
  say(`commit ${short(commits[3]!)}: config.json → "{ not json"`);
  await jenkins.build(commits[3]!, `gkube deploy --timeout ${deployTimeout}\n`, 1);
  await served('Hello 1.1\n');

  heading('an operator in the workspace: what ran when (history), what runs now (trace), then back to revision 1');
  await jenkins.shell(`gkube history ${job}\ngkube trace ${job}\ngkube rollback ${job} --to-revision 1 --timeout ${deployTimeout}\n`, 0);
  await served('Hello from gkube!\n');
}

/** Runs steps as Jenkins' "Execute shell" does: the script as a file run by /bin/sh -xe, cwd $WORKSPACE, no TTY. */
class Jenkins {
  private number = 0;
  private steps = 0;
  private commit = '';

  constructor(
    private readonly workspace: string,
    private readonly scripts: string,
    private readonly agentEnv: Record<string, string>,
  ) {}

  /** The environment of the current build: Jenkins' variables plus what the agent's configuration exports. */
  env(): Record<string, string> {
    const url = `http://jenkins.example.com/job/${job.split('/').join('/job/')}/${this.number}/`;
    return {
      PATH: `${join(root, 'bin')}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
      HOME: process.env['HOME'] ?? '/root',
      JOB_NAME: job,
      BUILD_NUMBER: String(this.number),
      BUILD_TAG: `jenkins-${job.replace(/[^A-Za-z0-9]+/g, '-')}-${this.number}`,
      BUILD_URL: url,
      WORKSPACE: this.workspace,
      GIT_COMMIT: this.commit,
      GIT_BRANCH: 'origin/main',
      ...this.agentEnv,
    };
  }

  /** One build of `commit`: prints its console log and fails the demo when its exit code is not `expected`. */
  async build(commit: string, script: string, expected: number): Promise<void> {
    this.number += 1;
    this.commit = commit;
    say(`Jenkins build #${this.number} of ${job} at ${short(commit)}, console output:`);
    const exitCode = await this.run(script, this.env());
    say(`  Finished: ${exitCode === 0 ? 'SUCCESS' : 'FAILURE'} (exit ${exitCode})`);
    if (exitCode !== expected) throw new Error(`build #${this.number} exited ${exitCode}, expected ${expected}`);
    if (expected !== 0) say(`exit ${exitCode} is what gkube documents for a failed change it rolled back.`);
  }

  /** A shell in the workspace outside any build (an operator's), with the same agent settings. */
  async shell(script: string, expected: number): Promise<void> {
    const buildOnly = new Set(['JOB_NAME', 'BUILD_NUMBER', 'BUILD_TAG', 'BUILD_URL', 'GIT_COMMIT', 'GIT_BRANCH']);
    const env = Object.fromEntries(Object.entries(this.env()).filter(([name]) => !buildOnly.has(name)));
    const exitCode = await this.run(script, env);
    if (exitCode !== expected) throw new Error(`the operator's shell exited ${exitCode}, expected ${expected}`);
  }

  /** Runs the script and streams its log, indented; returns the exit code. */
  private async run(script: string, env: Record<string, string>): Promise<number> {
    await mkdir(this.scripts, { recursive: true });
    const file = join(this.scripts, `step-${++this.steps}.sh`);
    await writeFile(file, script);
    // One pipe for both streams keeps sh -x's trace (stderr) in order with gkube's output, as Jenkins' log does.
    const child = spawn('/bin/sh', ['-c', 'exec /bin/sh -xe "$0" 2>&1', file], { cwd: this.workspace, env, stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: child.stdout }).on('line', (line) => say(`  | ${line}`));
    return new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve(code ?? 128));
    });
  }
}

/** GET / from the job's pod, straight to the pod IP that `gkube describe` reports (as a Service would). */
async function get(env: Record<string, string>): Promise<{ url: string; status: number; body: string }> {
  const r = await execa(gkube, ['describe', job, '-o', 'json'], { cwd: env['WORKSPACE'], env, extendEnv: false });
  const ip: unknown = JSON.parse(r.stdout)?.pod?.ip;
  if (typeof ip !== 'string' || ip === '') throw new Error(`gkube describe ${job} names no pod IP`);
  const url = `http://${ip}:8080/`;
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return { url, status: res.status, body: await res.text() };
}

/** examples/hello's files, with gkube.yaml's image repository pointed at the demo's registry. */
async function exampleFiles(image: string): Promise<Record<string, string>> {
  const dir = join(root, 'examples/hello');
  const files: Record<string, string> = {};
  for (const name of await readdir(dir)) files[name] = await readFile(join(dir, name), 'utf8');
  if (!files['gkube.yaml']?.includes(exampleRepository)) throw new Error(`examples/hello/gkube.yaml no longer names ${exampleRepository}`);
  files['gkube.yaml'] = files['gkube.yaml'].replace(exampleRepository, image);
  return files;
}

/**
 * The administrator's objects: the Gluster servers as Endpoints, one PersistentVolume on the volume, and a
 * default StorageClass with no provisioner, so that a claim of that class binds to a volume made in advance.
 */
async function storageManifests(volume: TestVolume): Promise<string> {
  // Endpoints need an IP; a host name that resolves to loopback is kept as it is (the emulator mounts from this host).
  const { address } = await lookup(glusterHost(), { family: 4 });
  const server = address.startsWith('127.') ? glusterHost() : address;
  return `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: glusterfs
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: v1
kind: Endpoints
metadata: {name: glusterfs-cluster}
subsets: [{addresses: [{ip: "${server}"}], ports: [{port: 24007}]}]
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: gluster-${volume.name}}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce, ReadWriteMany]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: glusterfs
  glusterfs: {endpoints: glusterfs-cluster, path: ${volume.name}}
`;
}

/** Stops what was started, newest first; each step runs even when an earlier one failed. Returns what failed. */
async function stop(s: Services): Promise<string[]> {
  const problems: string[] = [];
  const attempt = async (what: string, action: () => Promise<unknown>): Promise<void> => {
    try {
      await action();
      say(`stopped ${what}`);
    } catch (err) {
      problems.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  // The emulator first: it kills the containers and unmounts the Gluster volume they used.
  if (s.emulator) await attempt('the Kubernetes API emulator and its containers', () => s.emulator!.stop());
  if (s.gluster) {
    // Deleting a volume needs glusterd; start it again if something stopped it meanwhile.
    const restarted = await ensureGlusterd();
    await attempt('the Gluster volumes', () => s.gluster!.cleanup());
    if (restarted !== undefined) await attempt('glusterd (restarted for the clean-up)', () => stopGlusterd(restarted));
  }
  if (s.registry) await attempt('docker-registry', () => s.registry!.stop());
  if (s.etcd) await attempt('etcd', () => s.etcd!.stop());
  if (s.glusterdPid !== undefined) await attempt('glusterd', () => stopGlusterd(s.glusterdPid!));
  await attempt('the temporary directories', () => s.temp.removeAll());
  return problems;
}

function short(commit: string): string {
  return commit.slice(0, 12);
}

await main();
