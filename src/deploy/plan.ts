// The deploy decision as a pure function: what `gkube deploy` must do, given the job's record, what the
// cluster has, and what is wanted. Tested with a table; the deploy action only carries the plan out.
import type { JobRecord } from '../jobs/record.js';
import { shortCommit } from '../output/format.js';

/** What is wanted for the job. */
export interface Desired {
  commit: string;
  image: string;
  configDigest: string;
}

/** What the cluster has for the job (looked up by the deploy action). */
export interface Observed {
  /** specDigest: the pod's gkube.dev/config-digest annotation ('' when it has none). */
  pod?: { image: string; ready: boolean; deleting: boolean; specDigest?: string };
  claimExists: boolean;
  /** Whether the job's storage needs a claim (provider none: it does not). */
  needsClaim: boolean;
}

/** The decision. */
export type Plan =
  | { kind: 'provision'; reason: string }
  | { kind: 'noop'; reason: string }
  | {
      kind: 'update';
      /** Make the pod again on the same claim: it is gone, or a spec field other than the image changed. */
      recreatePod: boolean;
      /** Patch the pod's image (the one spec field Kubernetes lets change in place), then run init. */
      rollImage: boolean;
      /** Publish the new commit's code (a delta from the deployed commit when there is one). */
      syncCode: boolean;
      reasons: string[];
    }
  | { kind: 'inconsistent'; reason: string };

/** Decides what a deploy does. */
export function planDeploy(record: JobRecord | undefined, observed: Observed, desired: Desired): Plan {
  if (!record) return { kind: 'provision', reason: 'the job has no environment yet' };
  const s = record.status;
  // A provisioning run that was killed or stopped before it finished left no usable environment: start it again.
  if (s.revision === 0) return { kind: 'provision', reason: `an earlier provisioning run did not finish (${s.phase})` };
  if (observed.needsClaim && !observed.claimExists) {
    return { kind: 'inconsistent', reason: `the record names claim ${s.pvc ?? '(none)'} and it does not exist; the job's data may be gone` };
  }
  const reasons: string[] = [];
  const podUsable = observed.pod !== undefined && !observed.pod.deleting;
  // The pod's own annotation says what spec it was made with; the record is the fallback for a pod that says nothing.
  const podSpec = observed.pod?.specDigest || record.spec.configDigest;
  const specChanged = podUsable && podSpec !== undefined && podSpec !== desired.configDigest;
  const recreatePod = !podUsable || specChanged;
  if (!podUsable) reasons.push(observed.pod?.deleting ? 'the pod is being deleted' : 'the pod is gone');
  if (specChanged) reasons.push('the pod spec changed (gkube.yaml): the pod is recreated on the same claim');
  const currentImage = observed.pod && !recreatePod ? observed.pod.image : s.image;
  const rollImage = !recreatePod && currentImage !== desired.image;
  if (rollImage) reasons.push(`new image ${desired.image}`);
  // A failed change that was rolled back left the recorded commit live and healthy.
  const settled = s.phase === 'ready' || (s.phase === 'failed' && s.rolledBack === true);
  const syncCode = s.commit !== desired.commit || recreatePod || !settled;
  if (s.commit !== desired.commit) reasons.push(`new commit ${shortCommit(desired.commit)}`);
  else if (!settled) reasons.push(`the last deploy ended ${s.phase}`);
  if (!recreatePod && !rollImage && !syncCode) {
    if (observed.pod?.ready) return { kind: 'noop', reason: 'same commit, same image, pod healthy' };
    return { kind: 'update', recreatePod: false, rollImage: false, syncCode: false, reasons: ['the pod is not ready: checking its health again'] };
  }
  return { kind: 'update', recreatePod, rollImage, syncCode, reasons };
}
