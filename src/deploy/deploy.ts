// `gkube deploy` and `gkube rollback`: create the job's environment when it has none, else update it in
// place; a failed change is rolled back to the previous revision. See README "What a deploy does".
//
// The order of every run:
//   resolve the target (commit, image tag, image) → check the image in the registry → (dry run: plan and
//   print) → no-op fast path (record ready, pod ready, same commit and image: nothing is written) → lock →
//   read record, look at the cluster, plan → provision or update → record + history.
// Every step begins at a safe point: SIGTERM stops the run there (record `aborted`, lock released, exit 143),
// and a SIGKILL anywhere leaves a record the next run converges from (plan.ts).
import type { Context } from '../context.js';
import type { KubePort } from '../adapters/kube.js';
import type { AppConfig } from '../config/index.js';
import { timestamp } from '../clock.js';
import { GkubeError, stoppedMidway } from '../errors.js';
import { lockJob } from '../jobs/holder.js';
import type { HeldLock } from '../jobs/lock.js';
import type { JobNames } from '../jobs/naming.js';
import { recordVersion, type HistoryEntry, type JobRecord, type JobStatus } from '../jobs/record.js';
import { JobRegistry, type StoredRecord } from '../jobs/registry.js';
import { annotationKeys, claimManifest, podManifest, podSpecDigest, type Deployment } from '../provision/manifests.js';
import { storageFor, type StoragePort } from '../provision/storage.js';
import { redact } from '../output/redact.js';
import { formatBytes, shortCommit as short } from '../output/format.js';
import { checkHealth } from './health.js';
import { planDeploy, type Observed, type Plan } from './plan.js';
import { publishDelta, publishFull, type PublishResult } from './publish.js';
import { resolveSource } from './source.js';

/** What to deploy: a commit with the image that runs it. */
export interface Target {
  commit: string;
  image: string;
  imageTag: string;
  gitTag?: string;
}

/** One finished step, as printed. */
export interface StepReport {
  step: string;
  text: string;
  ms: number;
}

/** What a deploy or rollback did (the CLI prints it; `-o json` gives it whole). */
export interface DeployResult {
  job: string;
  action: 'provision' | 'update' | 'rollback' | 'noop';
  /** `unchanged`: nothing to do; `planned`: a dry run; `rolled-back`: the change failed and was undone. */
  result: 'succeeded' | 'unchanged' | 'planned' | 'failed' | 'rolled-back' | 'aborted';
  namespace: string;
  pod: string | null;
  image: string;
  imageTag: string;
  gitTag: string | null;
  commit: string;
  /** The record's revision after the run (unchanged for no-op, dry run and abort). */
  revision: number;
  reasons: string[];
  publish: Pick<PublishResult, 'mode' | 'files' | 'deleted' | 'bytes' | 'reason'> | null;
  /** After a failed change: what the job was returned to. */
  rolledBackTo: { commit: string; image: string } | null;
  durationMs: number;
  steps: StepReport[];
  /** Dry run: the objects the run would create or apply. */
  manifests?: Record<string, unknown>[];
  /** Why the run failed (exit code from its code). */
  error?: { code: string; message: string; hint?: string };
}

/** A deploy's inputs beyond the context. */
export interface DeployRequest {
  names: JobNames;
  ref: { value: string; field: string };
  dryRun: boolean;
  waitLockMs: number;
  timeoutMs: number;
}

/** A rollback's inputs: which revision to return to. */
export interface RollbackRequest {
  names: JobNames;
  toRevision?: number;
  toTag?: string;
  dryRun: boolean;
  waitLockMs: number;
  timeoutMs: number;
}

/** Deploys the ref: provision, update, or nothing; see the file header. */
export async function deploy(ctx: Context, request: DeployRequest): Promise<DeployResult> {
  const run = new Run(ctx, request.names, request);
  const loaded = await ctx.config();
  const source = await run.step('source', async () => resolveSource(ctx, request.ref), (s) => `${request.ref.field === 'HEAD' ? 'HEAD' : `${request.ref.field} ${s.ref}`} is commit ${short(s.commit)}; image tag ${s.imageTag}${s.gitTag ? ` (git tag ${s.gitTag}, policy ${s.policy})` : ` (policy ${s.policy})`}`);
  const repository = loaded.config.image.repository;
  if (!repository) {
    throw new GkubeError('INVALID_CONFIG', 'image.repository: not set; name the image repository in gkube.yaml (image.repository), GKUBE_IMAGE or --image; nothing was changed');
  }
  const target: Target = { commit: source.commit, image: `${repository}:${source.imageTag}`, imageTag: source.imageTag, ...(source.gitTag ? { gitTag: source.gitTag } : {}) };
  return run.execute(loaded.config, target, 'deploy');
}

/** Returns the job to an earlier revision's commit and image (default: the last good one before the live one). */
export async function rollback(ctx: Context, request: RollbackRequest): Promise<DeployResult> {
  if (request.toRevision !== undefined && request.toTag !== undefined) {
    throw new GkubeError('INVALID_INPUT', '--to-revision and --to-tag: give one of them, not both');
  }
  const registry = new JobRegistry(ctx.etcd(), ctx.prefix);
  const stored = await registry.get(request.names);
  if (!stored) {
    throw new GkubeError('JOB_NOT_FOUND', `job ${request.names.name} has no record under ${ctx.prefix}; there is nothing to roll back; nothing was changed`, { hint: 'gkube list shows the jobs gkube knows' });
  }
  const entries = await registry.history(request.names);
  const entry = chooseRevision(request, stored.record, entries);
  const run = new Run(ctx, request.names, request);
  const loaded = await ctx.config();
  const git = await ctx.git();
  // The code comes from git: the checkout must have the revision's commit.
  await git.resolveCommit(entry.commit!, `revision ${entry.revision}'s commit`).catch((err: unknown) => {
    throw new GkubeError('INVALID_INPUT', `revision ${entry.revision}'s commit ${entry.commit} is not in the git repository here; nothing was changed`, {
      hint: 'run gkube rollback in a checkout of the job\'s repository that has the commit (git fetch --tags first)',
      cause: err,
    });
  });
  const target: Target = { commit: entry.commit!, image: entry.image!, imageTag: entry.imageTag!, ...(entry.gitTag ? { gitTag: entry.gitTag } : {}) };
  run.note(`rolling back to revision ${entry.revision}: commit ${short(target.commit)}, image ${target.image}`);
  return run.execute(loaded.config, target, 'rollback');
}

/** The history entry a rollback returns to. */
export function chooseRevision(request: Pick<RollbackRequest, 'names' | 'toRevision' | 'toTag'>, record: JobRecord, entries: HistoryEntry[]): HistoryEntry {
  const usable = (e: HistoryEntry) => e.result === 'succeeded' && e.commit !== undefined && e.image !== undefined && e.imageTag !== undefined;
  const job = request.names.name;
  if (request.toRevision !== undefined) {
    const entry = entries.find((e) => e.revision === request.toRevision);
    if (!entry) {
      throw new GkubeError('INVALID_INPUT', `--to-revision: job ${job} has no revision ${request.toRevision} (revisions: ${entries.map((e) => e.revision).join(', ') || 'none'}); nothing was changed`, { hint: `gkube history ${job}` });
    }
    if (!usable(entry)) throw new GkubeError('INVALID_INPUT', `--to-revision: revision ${entry.revision} of job ${job} ${entry.result === 'succeeded' ? 'names no commit and image' : `did not succeed (${entry.result})`}; choose a succeeded one; nothing was changed`, { hint: `gkube history ${job}` });
    return entry;
  }
  if (request.toTag !== undefined) {
    const entry = [...entries].reverse().find((e) => usable(e) && (e.gitTag === request.toTag || e.imageTag === request.toTag));
    if (!entry) throw new GkubeError('INVALID_INPUT', `--to-tag: no succeeded revision of job ${job} deployed tag ${JSON.stringify(request.toTag)}; nothing was changed`, { hint: `gkube history ${job}` });
    return entry;
  }
  const live = record.status;
  const entry = [...entries].reverse().find((e) => usable(e) && (e.commit !== live.commit || e.image !== live.image));
  if (!entry) throw new GkubeError('INVALID_INPUT', `job ${job} has no earlier succeeded revision to roll back to; nothing was changed`, { hint: `gkube history ${job}` });
  return entry;
}

/** The state of one run: its steps, its clock and its way out. */
class Run {
  readonly steps: StepReport[] = [];
  readonly notes: string[] = [];
  private readonly started = Date.now();
  private readonly deadline: number;
  private current = 'start';
  /** The job lock once taken: a step does not begin once its lease is lost. */
  private held: HeldLock | undefined;

  constructor(
    private readonly ctx: Context,
    private readonly names: JobNames,
    private readonly options: { dryRun: boolean; waitLockMs: number; timeoutMs: number },
  ) {
    this.deadline = this.started + options.timeoutMs;
  }

  /** Runs one step: a safe point first (SIGTERM stops here; the test fault hook may kill here), then one line with its duration. */
  async step<T>(name: string, fn: () => Promise<T>, describe: (value: T) => string): Promise<T> {
    if (this.ctx.signal.aborted) throw new GkubeError('ABORTED', `stopped by ${String(this.ctx.signal.reason ?? 'a signal')} before step ${name}`);
    // Another run may hold the job once the lease is lost: nothing more is done to it from here.
    this.held?.assertHeld(`stopped before step ${name}`, 'rerun: the next deploy converges from what this run did');
    this.current = name;
    this.ctx.stepStarting(name);
    const t0 = Date.now();
    const value = await fn();
    const report = { step: name, text: describe(value), ms: Date.now() - t0 };
    this.steps.push(report);
    this.ctx.progress(`[gkube] ${report.text} (${seconds(report.ms)})`);
    return value;
  }

  note(line: string): void {
    this.notes.push(line);
    this.ctx.progress(`[gkube] ${line}`);
  }

  /** Milliseconds left of --timeout, at least `floor`. */
  remaining(floor = 30_000): number {
    return Math.max(floor, this.deadline - Date.now());
  }

  async execute(config: AppConfig, target: Target, kind: 'deploy' | 'rollback'): Promise<DeployResult> {
    const ctx = this.ctx;
    const names = this.names;
    await this.step('image', async () => {
      const digest = await ctx.registry().manifestDigest(target.image);
      if (!digest) {
        throw new GkubeError('OPERATION_FAILED', `image ${target.image} is not in the registry; nothing was changed`, {
          hint: `build and push it first: docker build -t ${target.image} . && docker push ${target.image}`,
        });
      }
      return digest;
    }, (digest) => `image ${target.image} is in the registry (${digest.slice(0, 19)}…)`);

    const kube = ctx.kube();
    if (!kube) throw new GkubeError('INVALID_CONFIG', 'no Kubernetes cluster configured: pass --kubeconfig FILE or set KUBECONFIG (or run in a pod with a service account); nothing was changed');
    const storage = storageFor(kube, config, () => ctx.gluster(config.storage.glusterfs.ssh), (step) => ctx.stepStarting(step));
    const registry = new JobRegistry(ctx.etcd(), ctx.prefix);
    const claimName = config.storage.provider === 'none' ? undefined : names.resourceName;
    const deployment = (t: Target): Deployment => ({
      image: t.image,
      imageTag: t.imageTag,
      commit: t.commit,
      configDigest: '',
      ...(t.gitTag ? { gitTag: t.gitTag } : {}),
      ...(ctx.identity.buildNumber ? { buildNumber: ctx.identity.buildNumber } : {}),
      ...(ctx.identity.buildUrl ? { buildUrl: ctx.identity.buildUrl } : {}),
    });
    const specDigest = podSpecDigest(podManifest(names, config, deployment(target), claimName));
    const manifestFor = (t: Target) => podManifest(names, config, { ...deployment(t), configDigest: specDigest }, claimName);
    const look = async (stored: StoredRecord | undefined) => this.observe(kube, storage, config, stored);

    if (this.options.dryRun) {
      const stored = await registry.get(names);
      if (stored) checkSameHome(names, stored.record, config);
      const plan = planDeploy(stored?.record, await look(stored), { commit: target.commit, image: target.image, configDigest: specDigest });
      if (plan.kind === 'provision') await storage.check(config);
      const result = this.result(kind, plan, 'planned', config.namespace, target, stored?.record.status.revision ?? 0, null);
      result.manifests = [...(claimName && plan.kind === 'provision' ? [claimManifest(names, config)] : []), manifestFor(target)];
      return result;
    }

    // The common rebuild: nothing changed. Answered without the lock and without a write.
    const before = await registry.get(names);
    if (before) {
      checkSameHome(names, before.record, config);
      if (before.record.status.phase === 'ready' || before.record.status.rolledBack === true) {
        const plan = planDeploy(before.record, await look(before), { commit: target.commit, image: target.image, configDigest: specDigest });
        if (plan.kind === 'noop') return this.unchanged(kind, plan, before.record, target);
      }
    }

    const lock = await this.step('lock', () => this.lock(), () => `locked job ${names.name}`);
    try {
      const stored = await registry.get(names);
      if (stored) checkSameHome(names, stored.record, config);
      const plan = planDeploy(stored?.record, await look(stored), { commit: target.commit, image: target.image, configDigest: specDigest });
      if (plan.kind === 'noop') return this.unchanged(kind, plan, stored!.record, target);
      // Storage this cluster cannot serve is refused before anything is recorded or created.
      if (plan.kind === 'provision') await storage.check(config);
      if (plan.kind === 'inconsistent') {
        throw new GkubeError('INCONSISTENT_STATE', `job ${names.name}: ${plan.reason}; nothing was changed`, { hint: `if the data is lost for good: gkube delete ${names.name}, then deploy again onto a new, empty claim` });
      }
      this.note(plan.kind === 'provision' ? `provisioning job ${names.name}: ${plan.reason}` : `updating job ${names.name}: ${plan.reasons.join('; ')}`);
      const change = new Change(this, ctx, kube, registry, lock, names, config, { storage, claimName, specDigest, manifestFor });
      return plan.kind === 'provision' ? await change.provision(stored, target, kind) : await change.update(stored!, plan, target, kind);
    } finally {
      await lock.release().catch(() => undefined);
    }
  }

  private async lock(): Promise<HeldLock> {
    this.held = await lockJob(this.ctx, this.names, 'deploy', this.options.waitLockMs, (line) => this.ctx.progress(`[gkube] ${line}`));
    return this.held;
  }

  private async observe(kube: KubePort, storage: StoragePort, config: AppConfig, stored: StoredRecord | undefined): Promise<Observed> {
    const namespace = stored?.record.spec.namespace ?? config.namespace;
    const [pod, claimExists] = await Promise.all([
      kube.findPod(namespace, this.names.resourceName),
      stored ? storage.exists(namespace, stored.record.status.pvc ? { claim: stored.record.status.pvc } : {}) : Promise.resolve(false),
    ]);
    return {
      ...(pod ? { pod: { image: pod.images[0] ?? '', ready: pod.ready, deleting: pod.deleting, specDigest: pod.annotations[annotationKeys.configDigest] ?? '' } } : {}),
      claimExists,
      needsClaim: config.storage.provider !== 'none' && stored?.record.status.pvc !== undefined,
    };
  }

  private unchanged(kind: 'deploy' | 'rollback', plan: Plan, record: JobRecord, target: Target): DeployResult {
    const result = this.result(kind, plan, 'unchanged', record.spec.namespace, target, record.status.revision, record.status.pod ?? null);
    this.ctx.progress(`[gkube] nothing to do for job ${this.names.name}: ${plan.kind === 'noop' ? plan.reason : ''}`);
    return result;
  }

  result(kind: 'deploy' | 'rollback', plan: Plan, outcome: DeployResult['result'], namespace: string, target: Target, revision: number, pod: string | null): DeployResult {
    return {
      job: this.names.name,
      action: plan.kind === 'noop' ? 'noop' : kind === 'rollback' ? 'rollback' : plan.kind === 'provision' ? 'provision' : 'update',
      result: outcome,
      namespace,
      pod,
      image: target.image,
      imageTag: target.imageTag,
      gitTag: target.gitTag ?? null,
      commit: target.commit,
      revision,
      reasons: plan.kind === 'update' ? plan.reasons : [plan.reason],
      publish: null,
      rolledBackTo: null,
      durationMs: Date.now() - this.started,
      steps: this.steps,
    };
  }

  get currentStep(): string {
    return this.current;
  }
}

interface Shape {
  storage: StoragePort;
  claimName: string | undefined;
  specDigest: string;
  manifestFor: (t: Target) => Record<string, unknown>;
}

/** A provision or an update under the lock: the cluster work and the record writes. */
class Change {
  private stored: StoredRecord | undefined;
  private readonly startedAt: string;
  private readonly namespace: string;
  private publishResult: PublishResult | null = null;

  constructor(
    private readonly run: Run,
    private readonly ctx: Context,
    private readonly kube: KubePort,
    private readonly registry: JobRegistry,
    private readonly lock: HeldLock,
    private readonly names: JobNames,
    private readonly config: AppConfig,
    private readonly shape: Shape,
  ) {
    this.startedAt = timestamp(ctx.clock);
    this.namespace = config.namespace;
  }

  private get pod(): string {
    return this.names.resourceName;
  }

  async provision(stored: StoredRecord | undefined, target: Target, kind: 'deploy' | 'rollback'): Promise<DeployResult> {
    this.stored = stored;
    const base = stored?.record;
    const now = timestamp(this.ctx.clock);
    const record: JobRecord = {
      version: recordVersion,
      job: this.names.name,
      resourceName: this.names.resourceName,
      kind: base?.kind ?? 'job',
      spec: this.spec(),
      status: {
        phase: 'provisioning',
        pod: this.pod,
        ...(this.shape.claimName ? { pvc: this.shape.claimName } : {}),
        revision: base?.status.revision ?? 0,
        reason: `provisioning ${short(target.commit)} (${this.ctx.identity.id})`,
        createdAt: base?.status.createdAt ?? now,
        updatedAt: now,
        ...(base?.status.expiresAt ? { expiresAt: base.status.expiresAt } : {}),
      },
      writeId: '',
    };
    const plan: Plan = { kind: 'provision', reason: 'the job has no environment yet' };
    await this.write('record-start', record, undefined, () => `recorded job ${this.names.name} as provisioning`);
    try {
      const made = await this.run.step('storage', () => this.shape.storage.ensure(this.names, this.config), (s) => (s.claim ? `${s.created ? 'created' : 'adopted'} persistentvolumeclaim ${this.namespace}/${s.claim}${s.detail ? ` (${s.detail})` : ''}` : 'no volume (storage.provider none): the code lives as long as the pod'));
      await this.run.step('pod', () => this.createPod(target, true), (how) => `${how} pod ${this.namespace}/${this.pod} with image ${target.image}`);
      await this.bringUp(target, { init: true, fromCommit: undefined });
      // The storage's own volume (a Gluster volume), else the PV the claim is bound to.
      const volume = made.volume ?? (made.claim ? (await this.kube.findClaim(this.namespace, made.claim))?.volumeName : undefined);
      const done = this.status(target, 'ready', { revision: this.revision() + 1, ...(volume ? { volume } : {}) });
      await this.write('record-done', { ...this.current(), status: done }, this.history(done.revision, kind === 'rollback' ? 'rollback' : 'provision', 'succeeded', target), () => `recorded revision ${done.revision}: job ${this.names.name} is ready`);
      return this.finish(kind, plan, 'succeeded', target, null, undefined);
    } catch (err) {
      return this.fail(err, kind, plan, target, undefined);
    }
  }

  async update(stored: StoredRecord, plan: Extract<Plan, { kind: 'update' }>, target: Target, kind: 'deploy' | 'rollback'): Promise<DeployResult> {
    this.stored = stored;
    const live = stored.record.status;
    const previous: Target | undefined = live.commit && live.image && live.imageTag ? { commit: live.commit, image: live.image, imageTag: live.imageTag, ...(live.gitTag ? { gitTag: live.gitTag } : {}) } : undefined;
    // The spec (and its digest) is recorded once the pod has it: until then the record keeps the old one.
    const updating: JobRecord = {
      ...stored.record,
      status: { ...live, phase: 'updating', reason: `deploying ${short(target.commit)} (${this.ctx.identity.id})`, updatedAt: timestamp(this.ctx.clock) },
    };
    await this.write('record-start', updating, undefined, () => `recorded job ${this.names.name} as updating`);
    try {
      if (plan.recreatePod) {
        await this.run.step('pod', () => this.createPod(target, false), (how) => `${how} pod ${this.namespace}/${this.pod} on the same claim with image ${target.image}`);
      } else if (plan.rollImage) {
        await this.run.step('roll-image', () => this.kube.patchPod(this.namespace, this.pod, { image: target.image, annotations: this.annotations(target) }), () => `set the image of pod ${this.namespace}/${this.pod} to ${target.image}`);
      }
      await this.bringUp(target, { init: plan.recreatePod || plan.rollImage, fromCommit: live.commit, waitImage: plan.recreatePod || plan.rollImage });
      const done = this.status(target, 'ready', { revision: this.revision() + 1 });
      await this.write('record-done', { ...this.current(), spec: this.spec(), status: done }, this.history(done.revision, kind === 'rollback' ? 'rollback' : 'update', 'succeeded', target), () => `recorded revision ${done.revision}: job ${this.names.name} is ready`);
      return this.finish(kind, plan, 'succeeded', target, null, undefined);
    } catch (err) {
      return this.fail(err, kind, plan, target, previous);
    }
  }

  /** Pod running → init → publish → reload → health → Ready → annotations. */
  private async bringUp(target: Target, how: { init: boolean; fromCommit: string | undefined; waitImage?: boolean }): Promise<void> {
    const ns = this.namespace;
    await this.run.step('wait-running', () => this.kube.waitForPod(ns, this.pod, {
      until: 'running',
      timeoutMs: this.run.remaining(),
      ...(how.waitImage ? { image: target.image } : {}),
      signal: this.ctx.signal,
      onChange: (s) => this.ctx.progress(`[gkube]   pod ${ns}/${this.pod}: ${s}`),
    }), (p) => `pod ${ns}/${this.pod} is running${p.node ? ` on ${p.node}` : ''}${p.ip ? ` (${p.ip})` : ''}`);
    if (how.fromCommit === undefined) {
      await this.run.step('preflight', () => this.preflight(), (free) => `${this.config.code.path} in the pod is writable, ${free} free`);
    }
    if (how.init && this.config.init.length > 0) {
      await this.run.step('init', () => this.commands(this.config.init, this.config.code.path, 'init'), () => `ran ${this.config.init.length} init command${this.config.init.length === 1 ? '' : 's'}`);
    }
    const result = await this.run.step('publish', () => this.publish(target.commit, how.fromCommit), (r) => describePublish(r));
    this.publishResult = result;
    // Reload even when the pod already had the commit: a run killed between the switch and the reload left
    // the app on the old code, and reload commands are idempotent by contract.
    if (this.config.reload.length > 0) {
      await this.run.step('reload', () => this.commands(this.config.reload, `${this.config.code.path}/current`, 'reload'), () => `ran ${this.config.reload.length} reload command${this.config.reload.length === 1 ? '' : 's'}`);
    }
    await this.run.step('health', () => checkHealth({ kube: this.kube, namespace: ns, pod: this.pod, signal: this.ctx.signal }, this.config), (h) => `healthy: ${h.detail}${h.attempts > 1 ? ` (attempt ${h.attempts})` : ''}`);
    await this.run.step('wait-ready', () => this.kube.waitForPod(ns, this.pod, { until: 'ready', timeoutMs: this.run.remaining(), settleMs: 0, signal: this.ctx.signal }), () => `pod ${ns}/${this.pod} is ready`);
    await this.run.step('annotate', () => this.kube.patchPod(ns, this.pod, { annotations: this.annotations(target) }), () => `annotated pod ${ns}/${this.pod} with commit ${short(target.commit)}${this.ctx.identity.buildNumber ? ` and build ${this.ctx.identity.buildNumber}` : ''}`);
  }

  /** Makes the pod; an existing one is adopted when it is what is wanted, else deleted first. */
  private async createPod(target: Target, adopt: boolean): Promise<string> {
    const ns = this.namespace;
    const existing = await this.kube.findPod(ns, this.pod);
    let how = 'created';
    if (existing) {
      const wanted = !existing.deleting && existing.images[0] === target.image && existing.annotations[annotationKeys.configDigest] === this.shape.specDigest;
      if (adopt && wanted) return 'adopted';
      await this.kube.deletePod(ns, this.pod);
      if (!(await this.kube.waitForPodGone(ns, this.pod, this.run.remaining(), this.ctx.signal))) {
        throw new GkubeError('OPERATION_FAILED', `pod ${ns}/${this.pod} did not go within the deadline after it was deleted`, { hint: `kubectl get pod -n ${ns} ${this.pod}` });
      }
      how = 'recreated';
    }
    if (!(await this.kube.create(this.shape.manifestFor(target)))) how = 'adopted';
    return how;
  }

  private async publish(commit: string, fromCommit: string | undefined): Promise<PublishResult> {
    const git = await this.ctx.git();
    const common = {
      exec: (r: Parameters<KubePort['exec']>[0]) => this.kube.exec(r),
      namespace: this.namespace,
      pod: this.pod,
      container: 'app',
      codePath: this.config.code.path,
      gitCwd: git.cwd,
      excludes: this.config.code.exclude,
    };
    return fromCommit ? publishDelta({ ...common, fromCommit, toCommit: commit }) : publishFull({ ...common, commit });
  }

  /** Before the first publish: code.path takes a write (1 MiB) and has room; returns the free space. */
  private async preflight(): Promise<string> {
    const script = 'cd -- "$1" || exit 97; dd if=/dev/zero of=.gkube-write-test bs=1024 count=1024 2>&1 >/dev/null || { rm -f .gkube-write-test; exit 98; }; rm -f .gkube-write-test; df -Pk . | tail -n 1';
    const path = this.config.code.path;
    const r = await this.kube.exec({ namespace: this.namespace, pod: this.pod, container: 'app', command: ['sh', '-c', script, 'sh', path], timeoutMs: this.run.remaining(60_000) });
    const said = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' ');
    if (r.exitCode !== 0) {
      const what = r.exitCode === 97 ? 'cannot be entered' : /No space left|Disk quota exceeded/i.test(said) ? 'is full' : /Read-only/i.test(said) ? 'is read-only' : 'cannot be written';
      throw new GkubeError('OPERATION_FAILED', `${path} in pod ${this.namespace}/${this.pod} ${what}${said ? `: ${said}` : ''}`, { hint: 'check the job\'s volume (its size: storage.size; its state: gkube describe)' });
    }
    const available = Number(r.stdout.trim().split(/\s+/)[3]);
    return Number.isFinite(available) ? formatBytes(available * 1024) : 'unknown space';
  }

  private async commands(commands: readonly string[], dir: string, what: 'init' | 'reload'): Promise<void> {
    for (const command of commands) {
      // The command is a shell line from gkube.yaml; the directory is passed as an argument, never spliced in.
      const r = await this.kube.exec({ namespace: this.namespace, pod: this.pod, container: 'app', command: ['sh', '-c', 'cd -- "$1" || exit 97; eval "$2"', 'sh', dir, command], timeoutMs: this.run.remaining(60_000) });
      if (r.exitCode !== 0) {
        const said = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-5).join('\n');
        throw new GkubeError('OPERATION_FAILED', `${what} command ${JSON.stringify(command)} exited ${r.exitCode} in pod ${this.namespace}/${this.pod}${r.exitCode === 97 ? ` (cannot enter ${dir})` : ''}`, said ? { hint: `its last output:\n${said}` } : {});
      }
    }
  }

  /** After a failure: diagnostics, rollback when there is something to return to, record + history, the result. */
  private async fail(err: unknown, kind: 'deploy' | 'rollback', plan: Plan, target: Target, previous: Target | undefined): Promise<DeployResult> {
    if (!(err instanceof GkubeError)) throw err;
    if (err.code === 'ABORTED') {
      await this.bestEffortWrite({ ...this.current(), status: { ...this.current().status, phase: 'aborted', reason: `${err.message} (step ${this.run.currentStep})`, updatedAt: timestamp(this.ctx.clock) } });
      throw new GkubeError('ABORTED', `job ${this.names.name}: ${err.message}; recorded as aborted, lock released; the next deploy continues from here`);
    }
    if (err.code !== 'OPERATION_FAILED') {
      // etcd or the API server went away, or the lock was lost: no rollback can be trusted now.
      await this.bestEffortWrite({ ...this.current(), status: { ...this.current().status, phase: 'failed', reason: `${err.message} (step ${this.run.currentStep})`, updatedAt: timestamp(this.ctx.clock) } });
      throw stoppedMidway(err, `job ${this.names.name} was changed up to step ${this.run.currentStep}`, 'rerun once it answers: the next deploy converges from what this run did');
    }
    const diagnostics = await this.diagnostics();
    if (plan.kind === 'provision') {
      // Nothing was ever live: the record stays at revision 0 (so the next deploy provisions again and adopts
      // what this run made) and says why; the pod's last words go into the reason's hint on the console.
      const status: JobStatus = { ...this.current().status, phase: 'failed', reason: `${err.message} (step ${this.run.currentStep})`, updatedAt: timestamp(this.ctx.clock) };
      await this.write('record-failed', { ...this.current(), status }, undefined, () => `recorded job ${this.names.name} as failed; the next deploy provisions it again`);
      const shown = new GkubeError(err.code, err.message, { hint: err.hint ? `${err.hint}\n${diagnostics}` : diagnostics, cause: err });
      return this.finish(kind, plan, 'failed', target, null, shown);
    }
    let rolledBack: Target | null = null;
    let reason = `${err.message} (step ${this.run.currentStep})`;
    if (previous) {
      this.run.note(`the change failed: ${err.message}; rolling back to commit ${short(previous.commit)} with image ${previous.image}`);
      try {
        await this.restore(previous, target);
        rolledBack = previous;
      } catch (rollbackError) {
        reason += `; rolling back failed too: ${(rollbackError as Error).message}`;
        this.run.note(`rolling back failed: ${(rollbackError as Error).message}`);
      }
    }
    const revision = this.revision() + 1;
    const live = rolledBack ?? target;
    // Rolled back: the live code is what an earlier build deployed, and the record says that build, as the pod does.
    const liveBuild = rolledBack ? this.current().status.build : undefined;
    const status: JobStatus = { ...this.status(live, 'failed', { revision, ...(liveBuild ? { build: liveBuild } : {}) }), reason, ...(rolledBack ? { rolledBack: true } : {}) };
    if (!rolledBack) {
      // What runs is uncertain: keep the last known commit and image, so the next deploy syncs from them.
      const before = this.current().status;
      for (const k of ['commit', 'image', 'imageTag', 'gitTag'] as const) {
        if (before[k] === undefined) delete status[k];
        else status[k] = before[k];
      }
    }
    const entry = { ...this.history(revision, kind === 'rollback' ? 'rollback' : 'update', rolledBack ? 'rolled-back' : 'failed', target), reason, diagnostics };
    await this.write('record-failed', { ...this.current(), status }, entry, () => `recorded revision ${revision}: ${rolledBack ? `failed and rolled back to ${short(rolledBack.commit)}` : 'failed'}`);
    const result = this.finish(kind, plan, rolledBack ? 'rolled-back' : 'failed', target, rolledBack, err);
    return result;
  }

  /** Returns the pod to `previous`: its image (init again), its code, reload, a health check, Ready. Not interruptible. */
  private async restore(previous: Target, failed: Target): Promise<void> {
    const ns = this.namespace;
    // The pod goes back to what an earlier build deployed: the annotations name that build, not this one.
    const previousBuild = this.current().status.build;
    const pod = await this.kube.findPod(ns, this.pod);
    if (!pod || pod.deleting) {
      await this.run.step('rollback-pod', () => this.createPod(previous, true), (how) => `${how} pod ${ns}/${this.pod} with image ${previous.image}`);
    }
    const rollImage = pod !== undefined && !pod.deleting && pod.images[0] !== previous.image;
    if (rollImage) await this.run.step('rollback-image', () => this.kube.patchPod(ns, this.pod, { image: previous.image, annotations: this.annotations(previous, previousBuild) }), () => `set the image of pod ${ns}/${this.pod} back to ${previous.image}`);
    const calm = new AbortController().signal;
    await this.run.step('rollback-running', () => this.kube.waitForPod(ns, this.pod, { until: 'running', timeoutMs: this.run.remaining(120_000), image: previous.image, signal: calm }), () => `pod ${ns}/${this.pod} is running`);
    if ((rollImage || !pod) && this.config.init.length > 0) await this.run.step('rollback-init', () => this.commands(this.config.init, this.config.code.path, 'init'), () => 'ran the init commands again');
    const published = await this.run.step('rollback-publish', () => this.publish(previous.commit, failed.commit), (r) => describePublish(r));
    if (this.config.reload.length > 0 && published.mode !== 'none') await this.run.step('rollback-reload', () => this.commands(this.config.reload, `${this.config.code.path}/current`, 'reload'), () => 'ran the reload commands');
    await this.run.step('rollback-health', () => checkHealth({ kube: this.kube, namespace: ns, pod: this.pod }, this.config), (h) => `healthy again: ${h.detail}`);
    // The failed change made the readiness probe fail too: until it passes again the pod takes no traffic through
    // a Service, and the next deploy would find it not ready.
    await this.run.step('rollback-ready', () => this.kube.waitForPod(ns, this.pod, { until: 'ready', timeoutMs: this.run.remaining(120_000), settleMs: 0, signal: calm }), () => `pod ${ns}/${this.pod} is ready again`);
    await this.run.step('rollback-annotate', () => this.kube.patchPod(ns, this.pod, { annotations: this.annotations(previous, previousBuild) }), () => `annotated pod ${ns}/${this.pod} with commit ${short(previous.commit)}`);
  }

  private async diagnostics(): Promise<string> {
    const [pod, logs, previous, events] = await Promise.all([
      this.kube.findPod(this.namespace, this.pod).catch(() => undefined),
      this.kube.logTail(this.namespace, this.pod, 40).catch(() => ''),
      this.kube.logTail(this.namespace, this.pod, 20, true).catch(() => ''),
      this.kube.events(this.namespace, this.pod).catch(() => []),
    ]);
    const lines = [
      ...(pod && pod.restarts > 0 ? [`the container restarted ${pod.restarts} time${pod.restarts === 1 ? '' : 's'}${pod.lastEnd ? `; the last one ended with ${pod.lastEnd}` : ''}`] : []),
      `last log lines of pod ${this.namespace}/${this.pod}:`,
      logs || '(none)',
      // A container that restarted took its output with it: what it said before it ended is often the cause.
      ...(previous ? ['last log lines of the container before it restarted:', previous] : []),
      'events:',
      ...events.slice(-10).map((e) => `${e.lastSeen} ${e.type} ${e.reason}: ${e.message}${e.count > 1 ? ` (x${e.count})` : ''}`),
    ];
    const text = redact(lines.join('\n'));
    return text.length > 8_000 ? `…${text.slice(-8_000)}` : text;
  }

  private spec(): JobRecord['spec'] {
    const s = this.config.storage;
    return {
      namespace: this.namespace,
      ...(this.config.image.repository ? { imageRepository: this.config.image.repository } : {}),
      storage: {
        provider: s.provider,
        size: s.size,
        retain: s.retain,
        ...(s.storageClassName ? { storageClassName: s.storageClassName } : {}),
        // What delete needs to find the pool again, without gkube.yaml.
        ...(s.provider === 'glusterfs' ? { glusterfs: { mode: s.glusterfs.mode, ...(s.glusterfs.ssh ? { ssh: s.glusterfs.ssh } : {}) } } : {}),
      },
      configDigest: this.shape.specDigest,
    };
  }

  private status(target: Target, phase: JobStatus['phase'], extra: { revision: number; volume?: string; build?: JobStatus['build'] }): JobStatus {
    const before = this.current().status;
    const build = extra.build ?? { ...this.thisBuild(), tag: this.ctx.identity.id };
    const status: JobStatus = {
      phase,
      pod: this.pod,
      ...(this.shape.claimName ? { pvc: this.shape.claimName } : {}),
      ...(extra.volume ?? before.volume ? { volume: extra.volume ?? before.volume! } : {}),
      image: target.image,
      imageTag: target.imageTag,
      ...(target.gitTag ? { gitTag: target.gitTag } : {}),
      commit: target.commit,
      build,
      revision: extra.revision,
      createdAt: before.createdAt,
      updatedAt: timestamp(this.ctx.clock),
      ...(before.expiresAt ? { expiresAt: before.expiresAt } : {}),
    };
    return status;
  }

  private history(revision: number, action: HistoryEntry['action'], result: HistoryEntry['result'], target: Target): HistoryEntry {
    return {
      version: recordVersion,
      revision,
      action,
      result,
      commit: target.commit,
      ...(target.gitTag ? { gitTag: target.gitTag } : {}),
      imageTag: target.imageTag,
      image: target.image,
      // The build that ran this deploy (even when a rollback left an earlier build's code live).
      build: { ...this.thisBuild(), tag: this.ctx.identity.id },
      startedAt: this.startedAt,
      finishedAt: timestamp(this.ctx.clock),
    };
  }

  /** The pod's trace annotations for `target`, deployed by `build` (default: this run's build). */
  private annotations(target: Target, build: { number?: string; url?: string } | undefined = this.thisBuild()): Record<string, string> {
    const a: Record<string, string> = {
      [annotationKeys.image]: target.image,
      [annotationKeys.imageTag]: target.imageTag,
      [annotationKeys.commit]: target.commit,
      [annotationKeys.configDigest]: this.shape.specDigest,
    };
    // A strategic merge patch removes an annotation given as null; a rollback to an untagged commit must not keep the newer tag.
    (a as Record<string, string | null>)[annotationKeys.gitTag] = target.gitTag ?? null;
    // A run outside Jenkins has no build: the annotations of an earlier build must not stay behind.
    (a as Record<string, string | null>)[annotationKeys.buildNumber] = build?.number ?? null;
    (a as Record<string, string | null>)[annotationKeys.buildUrl] = build?.url ?? null;
    return a;
  }

  private thisBuild(): { number?: string; url?: string } {
    return { ...(this.ctx.identity.buildNumber ? { number: this.ctx.identity.buildNumber } : {}), ...(this.ctx.identity.buildUrl ? { url: this.ctx.identity.buildUrl } : {}) };
  }

  private current(): JobRecord {
    return this.stored!.record;
  }

  private revision(): number {
    return this.current().status.revision;
  }

  private async write(step: string, record: JobRecord, history: HistoryEntry | undefined, describe: () => string): Promise<void> {
    this.stored = await this.run.step(step, () => this.registry.write(this.names, this.stored, record, { fence: this.lock.fence, ...(history ? { history } : {}) }), describe);
  }

  private async bestEffortWrite(record: JobRecord): Promise<void> {
    try {
      this.stored = await this.registry.write(this.names, this.stored, record, { fence: this.lock.fence });
    } catch {
      // The record keeps its earlier phase; the next deploy reads it and converges from there.
    }
  }

  private finish(kind: 'deploy' | 'rollback', plan: Plan, outcome: DeployResult['result'], target: Target, rolledBack: Target | null, err: GkubeError | undefined): DeployResult {
    const result = this.run.result(kind, plan, outcome, this.namespace, target, this.revision(), this.pod);
    if (this.publishResult) {
      const p = this.publishResult;
      result.publish = { mode: p.mode, files: p.files, deleted: p.deleted, bytes: p.bytes, reason: p.reason };
    }
    if (rolledBack) result.rolledBackTo = { commit: rolledBack.commit, image: rolledBack.image };
    if (err) result.error = { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
    return result;
  }
}

/** A job stays where it was provisioned: a changed namespace or storage provider is refused, not followed. */
function checkSameHome(names: JobNames, record: JobRecord, config: AppConfig): void {
  if (record.spec.namespace !== config.namespace) {
    throw new GkubeError('INVALID_CONFIG', `namespace: job ${names.name} lives in namespace ${record.spec.namespace}, the configuration says ${config.namespace}; a job is not moved by a deploy; nothing was changed`, {
      hint: `set namespace back to ${record.spec.namespace}, or gkube delete ${names.name} and deploy again`,
    });
  }
  if (record.spec.storage.provider !== config.storage.provider) {
    throw new GkubeError('INVALID_CONFIG', `storage.provider: job ${names.name} has ${record.spec.storage.provider} storage, the configuration says ${config.storage.provider}; its data is not moved by a deploy; nothing was changed`, {
      hint: `set storage.provider back to ${record.spec.storage.provider}, or gkube delete ${names.name} and deploy again`,
    });
  }
}

function describePublish(r: PublishResult): string {
  if (r.mode === 'none') return `code: the pod already has ${short(r.commit)}`;
  const what = r.mode === 'delta' ? `synced ${r.files} changed file${r.files === 1 ? '' : 's'}${r.deleted ? ` and ${r.deleted} deletion${r.deleted === 1 ? '' : 's'}` : ''}` : `published ${r.files} file${r.files === 1 ? '' : 's'}`;
  return `${what} of ${short(r.commit)} (${formatBytes(r.bytes)})${r.reason ? `; ${r.reason}` : ''}`;
}


function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
