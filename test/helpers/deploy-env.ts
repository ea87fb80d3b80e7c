// What the deploy tests share: real etcd, the real registry, the emulator with a default StorageClass, a git
// workspace holding examples/hello, and ways to run the built gkube as Jenkins does.
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type Result } from 'execa';
import * as k8s from '@kubernetes/client-node';
import { connectEtcd, type EtcdPort } from '../../src/adapters/etcd.js';
import { jobNames } from '../../src/jobs/naming.js';
import type { HistoryEntry, JobRecord } from '../../src/jobs/record.js';
import { JobRegistry, type StoredRecord } from '../../src/jobs/registry.js';
import { KubeEmulator } from '../kube-emulator/emulator.js';
import { hostpathProvisioner } from '../kube-emulator/volumes.js';
import { GitRepo, startEtcd, startRegistry, TempDirs, type EtcdCluster, type TestRegistry } from '../harness/index.js';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const gkubeBin = join(root, 'bin/gkube');
export const prefix = '/gkube/v1';

/** The running services and the workspace of one test file. */
export class DeployEnv {
  readonly temp = new TempDirs();
  etcd!: EtcdCluster;
  store!: EtcdPort;
  registry!: TestRegistry;
  emulator!: KubeEmulator;
  kubeconfig!: string;
  core!: k8s.CoreV1Api;
  /** examples/hello in a git repository, with its image repository pointed at the test registry. */
  repo!: GitRepo;
  image!: string;

  /** kubeVersion: what the emulator's /version says (default: the emulator's own default, 1.31). */
  static async start(options: { kubeVersion?: string } = {}): Promise<DeployEnv> {
    const env = new DeployEnv();
    try {
      await env.startServices(options);
    } catch (err) {
      // Whatever did start is stopped: a failed start leaves nothing behind.
      await env.stop().catch(() => undefined);
      throw err;
    }
    return env;
  }

  private async startServices(options: { kubeVersion?: string }): Promise<void> {
    const env = this;
    env.etcd = await startEtcd();
    env.store = connectEtcd({ endpoints: env.etcd.endpoints, callTimeoutMs: 5_000 });
    env.registry = await startRegistry();
    env.emulator = await KubeEmulator.start({ registryUrl: env.registry.url, kubelet: { terminationGraceScale: 0.05, crashLoopBackOffInitialMs: 200, imagePullBackOffInitialMs: 200 }, ...(options.kubeVersion ? { kubeVersion: options.kubeVersion } : {}) });
    env.kubeconfig = join(await env.temp.make('deploy-kube'), 'kubeconfig');
    await env.emulator.writeKubeconfig(env.kubeconfig);
    const kc = new k8s.KubeConfig();
    kc.loadFromString(env.emulator.kubeconfig);
    env.core = kc.makeApiClient(k8s.CoreV1Api);
    await kc.makeApiClient(k8s.StorageV1Api).createStorageClass({
      body: { metadata: { name: 'local', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } }, provisioner: hostpathProvisioner, volumeBindingMode: 'WaitForFirstConsumer' },
    });
    env.image = `${env.registry.host}/examples/hello`;
    env.repo = await env.workspace();
  }

  /** A fresh git repository with examples/hello committed and tagged v1.0.0. */
  async workspace(): Promise<GitRepo> {
    const repo = await GitRepo.create(await this.temp.make('workspace'));
    const dir = join(root, 'examples/hello');
    const files: Record<string, string> = {};
    for (const name of await readdir(dir)) files[name] = await readFile(join(dir, name), 'utf8');
    files['gkube.yaml'] = files['gkube.yaml']!.replace('127.0.0.1:5000/examples/hello', this.image);
    // The summary jenkins/deploy.sh writes into the workspace is never part of a commit the tests make.
    await writeFile(join(repo.dir, '.git', 'info', 'exclude'), 'gkube-summary.json\n');
    await repo.commit('hello', files);
    await repo.tag('v1.0.0', { annotated: true });
    return repo;
  }

  async stop(): Promise<void> {
    this.store?.close();
    await this.emulator?.stop();
    await this.registry?.stop();
    await this.etcd?.stop();
    await this.temp.removeAll();
  }

  /** The environment Jenkins gives an Execute shell step of `job`, build `build`. */
  jenkinsEnv(job: string, build: number, commit: string, extra: Record<string, string> = {}): Record<string, string> {
    return {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: process.env['HOME'] ?? '/root',
      JOB_NAME: job,
      BUILD_NUMBER: String(build),
      BUILD_TAG: `jenkins-${job.replace(/[^A-Za-z0-9]+/g, '-')}-${build}`,
      BUILD_URL: `http://jenkins.invalid/job/${encodeURIComponent(job)}/${build}/`,
      WORKSPACE: this.repo.dir,
      GIT_COMMIT: commit,
      GIT_BRANCH: 'origin/main',
      GKUBE_ETCD_ENDPOINTS: this.etcd.endpoints[0]!,
      KUBECONFIG: this.kubeconfig,
      GKUBE: gkubeBin,
      ...extra,
    };
  }

  /** Runs a script as Jenkins' Execute shell does: a file run with /bin/sh -xe, cwd $WORKSPACE, no TTY. */
  async jenkins(script: string, env: Record<string, string>): Promise<Result> {
    const file = join(await this.temp.make('jenkins-step'), 'script.sh');
    await writeFile(file, script);
    return execa('/bin/sh', ['-xe', file], { cwd: env['WORKSPACE'] ?? this.repo.dir, env, extendEnv: false, reject: false, stdin: 'ignore' });
  }

  /** Runs gkube directly with Jenkins-like variables. */
  gkube(args: string[], env: Record<string, string>, cwd = this.repo.dir) {
    return execa(gkubeBin, args, { cwd, env, extendEnv: false, reject: false, stdin: 'ignore' });
  }

  registryOf(): JobRegistry {
    return new JobRegistry(this.store, prefix);
  }

  async record(job: string): Promise<StoredRecord | undefined> {
    return this.registryOf().get(jobNames(job));
  }

  async history(job: string): Promise<HistoryEntry[]> {
    return this.registryOf().history(jobNames(job));
  }

  async pod(job: string): Promise<k8s.V1Pod | undefined> {
    const name = jobNames(job).resourceName;
    const list = await this.core.listNamespacedPod({ namespace: 'default', labelSelector: `gkube.dev/job=${name}` });
    const live = list.items.filter((p) => !p.metadata?.deletionTimestamp);
    if (live.length > 1) throw new Error(`job ${job} has ${live.length} pods`);
    return live[0];
  }

  /** Pods and claims of the job (all of them, terminating ones included). */
  async objects(job: string): Promise<{ pods: number; claims: number }> {
    const selector = `gkube.dev/job=${jobNames(job).resourceName}`;
    const [pods, claims] = await Promise.all([
      this.core.listNamespacedPod({ namespace: 'default', labelSelector: selector }),
      this.core.listNamespacedPersistentVolumeClaim({ namespace: 'default', labelSelector: selector }),
    ]);
    return { pods: pods.items.filter((p) => !p.metadata?.deletionTimestamp).length, claims: claims.items.length };
  }

  /** GET from the job's pod, straight to its IP (as a Service would). */
  async serve(job: string, path = '/'): Promise<{ status: number; body: string }> {
    const pod = await this.pod(job);
    const ip = pod?.status?.podIP;
    if (!ip) throw new Error(`job ${job} has no running pod`);
    const r = await fetch(`http://${ip}:8080${path}`, { signal: AbortSignal.timeout(5_000) });
    return { status: r.status, body: await r.text() };
  }
}

export type { JobRecord };

/** Fails with the command's stderr in the message when its exit code is not `code`. */
export function expectExit(r: { exitCode?: number | undefined; stderr?: unknown }, code: number): void {
  if (r.exitCode !== code) throw new Error(`expected exit ${code}, got ${r.exitCode}; stderr:\n${String(r.stderr)}`);
}
