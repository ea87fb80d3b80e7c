import { describe, expect, test } from '@jest/globals';
import { planDeploy, type Desired, type Observed } from '../../src/deploy/plan.js';
import type { JobRecord } from '../../src/jobs/record.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const desired: Desired = { commit: A, image: 'reg/app:v1', configDigest: 'sha256:1' };

function record(status: Partial<JobRecord['status']> = {}, configDigest = 'sha256:1'): JobRecord {
  return {
    version: 1, job: 'j', resourceName: 'j-0', kind: 'job',
    spec: { namespace: 'default', storage: { provider: 'storageclass' }, configDigest },
    status: { phase: 'ready', commit: A, image: 'reg/app:v1', pvc: 'j-0', pod: 'j-0', revision: 1, createdAt: '', updatedAt: '', ...status },
    writeId: '',
  };
}

const healthy: Observed = { pod: { image: 'reg/app:v1', ready: true, deleting: false }, claimExists: true, needsClaim: true };

describe('planDeploy', () => {
  test.each([
    ['no record', undefined, healthy, desired, { kind: 'provision' }],
    ['an unfinished provisioning', record({ phase: 'provisioning', revision: 0 }), { claimExists: false, needsClaim: true }, desired, { kind: 'provision' }],
    ['same commit, image and config, pod ready', record(), healthy, desired, { kind: 'noop' }],
    ['a new commit with the same image', record(), healthy, { ...desired, commit: B }, { kind: 'update', recreatePod: false, rollImage: false, syncCode: true }],
    ['a new image tag', record(), healthy, { ...desired, commit: B, image: 'reg/app:v2' }, { kind: 'update', recreatePod: false, rollImage: true, syncCode: true }],
    ['the pod is gone', record(), { claimExists: true, needsClaim: true }, desired, { kind: 'update', recreatePod: true, rollImage: false, syncCode: true }],
    ['the pod is terminating', record(), { ...healthy, pod: { image: 'reg/app:v1', ready: true, deleting: true } }, desired, { kind: 'update', recreatePod: true }],
    ['gkube.yaml changed the pod spec', record({}, 'sha256:0'), healthy, desired, { kind: 'update', recreatePod: true, rollImage: false, syncCode: true }],
    ['the pod was made with another spec than the record says (a killed run)', record(), { ...healthy, pod: { ...healthy.pod!, specDigest: 'sha256:0' } }, desired, { kind: 'update', recreatePod: true }],
    ['the pod has the wanted spec though the record is older', record({}, 'sha256:0'), { ...healthy, pod: { ...healthy.pod!, specDigest: desired.configDigest } }, desired, { kind: 'noop' }],
    ['the last deploy failed', record({ phase: 'failed' }), healthy, desired, { kind: 'update', syncCode: true }],
    ['the last deploy failed and was rolled back', record({ phase: 'failed', rolledBack: true }), healthy, desired, { kind: 'noop' }],
    ['a killed or stopped provisioning', record({ phase: 'aborted', revision: 0 }), healthy, desired, { kind: 'provision' }],
    ['nothing changed but the pod is not ready', record(), { ...healthy, pod: { image: 'reg/app:v1', ready: false, deleting: false } }, desired, { kind: 'update', recreatePod: false, rollImage: false, syncCode: false }],
    ['the claim is gone', record(), { ...healthy, claimExists: false }, desired, { kind: 'inconsistent' }],
    ['no claim needed (storage none)', record({ pvc: undefined }), { ...healthy, claimExists: false, needsClaim: false }, desired, { kind: 'noop' }],
  ] as const)('%s', (_what, rec, observed, want, expected) => {
    expect(planDeploy(rec as JobRecord | undefined, observed as Observed, want)).toMatchObject(expected);
  });

  test('reasons say why, for the Jenkins console', () => {
    const plan = planDeploy(record(), { claimExists: true, needsClaim: true }, { ...desired, commit: B });
    expect(plan).toEqual({ kind: 'update', recreatePod: true, rollImage: false, syncCode: true, reasons: ['the pod is gone', `new commit ${B.slice(0, 12)}`] });
  });
});
