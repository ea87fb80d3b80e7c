import type { Context } from '../context.js';
import { GkubeError } from '../errors.js';
import { jobNames, type JobNames } from '../jobs/naming.js';
import { notFound } from '../jobs/read.js';
import type { HistoryEntry } from '../jobs/record.js';
import { JobRegistry } from '../jobs/registry.js';
import { annotationKeys } from '../provision/manifests.js';

/** pod → image → commit → git tag → build, and the history revision that deployed it. */
export interface Trace {
  job: string | null;
  pod: { namespace: string; name: string; phase: string; ready: boolean } | null;
  image: string | null;
  imageTag: string | null;
  commit: string | null;
  gitTag: string | null;
  build: { number: string | null; url: string | null };
  /** The newest history entry that deployed this commit and image. */
  revision: HistoryEntry | null;
  /** Where the pod and the job's record disagree (someone changed the pod by hand, or a deploy was cut short). */
  drift: string[];
}

/** Traces `pod/NAME` (in `namespace`) or a job name: from the pod's gkube annotations and the job's record and history. */
export async function trace(ctx: Context, target: string, namespace: string): Promise<Trace> {
  const kube = ctx.kube();
  const registry = new JobRegistry(ctx.etcd(), ctx.prefix);
  let names: JobNames | undefined;
  let podRef: { namespace: string; name: string } | undefined;
  if (target.startsWith('pod/')) {
    podRef = { namespace, name: target.slice(4) };
    if (!podRef.name) throw new GkubeError('INVALID_INPUT', 'TARGET: pod/ needs a pod name, like pod/team-app-1a2b3c4d5e6f');
    if (!kube) throw new GkubeError('INVALID_CONFIG', 'tracing a pod needs the cluster: pass --kubeconfig FILE or set KUBECONFIG');
  } else {
    names = jobNames(target, 'TARGET');
  }

  const stored = names ? await registry.get(names) : undefined;
  if (names && !stored) throw notFound(names);
  if (!podRef && stored?.record.status.pod) podRef = { namespace: stored.record.spec.namespace, name: stored.record.status.pod };
  const pod = podRef && kube ? await kube.findPod(podRef.namespace, podRef.name) : undefined;
  if (target.startsWith('pod/') && !pod) throw new GkubeError('INVALID_INPUT', `TARGET: pod ${podRef!.namespace}/${podRef!.name} does not exist`);
  const a = pod?.annotations ?? {};
  if (pod && !names) {
    const jobName = a[annotationKeys.jobName];
    if (!jobName) throw new GkubeError('INVALID_INPUT', `TARGET: pod ${pod.namespace}/${pod.name} was not made by gkube (no ${annotationKeys.jobName} annotation)`);
    names = jobNames(jobName, `annotation ${annotationKeys.jobName}`);
  }
  const record = stored?.record ?? (names ? (await registry.get(names))?.record : undefined);
  const history = names ? await registry.history(names) : [];

  // The pod is the truth about what runs; the record says what gkube last did.
  const image = pod ? (pod.images[0] ?? null) : (record?.status.image ?? null);
  const commit = pod ? (a[annotationKeys.commit] ?? null) : (record?.status.commit ?? null);
  const result: Trace = {
    job: names?.name ?? null,
    pod: pod ? { namespace: pod.namespace, name: pod.name, phase: pod.phase, ready: pod.ready } : null,
    image,
    imageTag: pod ? (a[annotationKeys.imageTag] ?? null) : (record?.status.imageTag ?? null),
    commit,
    gitTag: pod ? (a[annotationKeys.gitTag] ?? null) : (record?.status.gitTag ?? null),
    build: pod ? { number: a[annotationKeys.buildNumber] ?? null, url: a[annotationKeys.buildUrl] ?? null } : { number: record?.status.build?.number ?? null, url: record?.status.build?.url ?? null },
    revision: [...history].reverse().find((h) => h.commit === commit && (!image || !h.image || h.image === image)) ?? null,
    drift: [],
  };
  if (pod && record) {
    if (record.status.image && image !== record.status.image) result.drift.push(`the pod runs image ${image}, the record says ${record.status.image}`);
    if (record.status.commit && commit !== record.status.commit) result.drift.push(`the pod's code is commit ${commit ?? '(unknown)'}, the record says ${record.status.commit}`);
  }
  if (!pod && record?.status.pod) result.drift.push(`the record names pod ${record.status.pod}, which ${kube ? 'does not exist' : 'was not looked up (no cluster configuration)'}`);
  return result;
}
