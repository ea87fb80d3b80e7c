// Which revision a rollback returns to, and how a job's Gluster volume is laid out: pure functions, in tables.
import { describe, expect, test } from '@jest/globals';
import { Endpoints, PersistentVolume, PersistentVolumeClaim, Service } from 'kubernetes-models/v1';
import { chooseRevision } from '../../src/deploy/deploy.js';
import { loadConfig } from '../../src/config/index.js';
import { jobNames } from '../../src/jobs/naming.js';
import type { HistoryEntry, JobRecord } from '../../src/jobs/record.js';
import { glusterManifests } from '../../src/provision/manifests.js';
import { glusterLayout, glusterQuota } from '../../src/provision/storage.js';
import { gkubeErrorFrom } from '../helpers/errors.js';

const names = jobNames('team/app');
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);

function entry(revision: number, commit: string, result: HistoryEntry['result'], tag = 'v1'): HistoryEntry {
  return { version: 1, revision, action: revision === 1 ? 'provision' : 'update', result, commit, gitTag: tag, imageTag: tag, image: `reg/app:${tag}`, startedAt: '', finishedAt: '' };
}

function live(commit: string, tag: string): JobRecord {
  return {
    version: 1, job: 'team/app', resourceName: names.resourceName, kind: 'job', writeId: '',
    spec: { namespace: 'default', storage: { provider: 'storageclass' } },
    status: { phase: 'ready', commit, image: `reg/app:${tag}`, imageTag: tag, revision: 4, createdAt: '', updatedAt: '' },
  };
}

const history = [entry(1, A, 'succeeded', 'v1'), entry(2, B, 'succeeded', 'v2'), entry(3, C, 'rolled-back', 'v3'), entry(4, B, 'succeeded', 'v2')];

describe('chooseRevision', () => {
  test.each([
    ['by default, the newest succeeded revision that is not what is live', {}, 1],
    ['--to-revision of a succeeded revision', { toRevision: 2 }, 2],
    ['--to-tag: the newest succeeded revision with that git or image tag', { toTag: 'v2' }, 4],
    ['--to-tag of the first release', { toTag: 'v1' }, 1],
  ] as const)('%s', (_what, request, revision) => {
    expect(chooseRevision({ names, ...request }, live(B, 'v2'), history).revision).toBe(revision);
  });

  test.each([
    ['a revision that does not exist', { toRevision: 9 }, /^--to-revision: job team\/app has no revision 9 \(revisions: 1, 2, 3, 4\); nothing was changed$/],
    ['a revision that failed and was rolled back', { toRevision: 3 }, /^--to-revision: revision 3 of job team\/app did not succeed \(rolled-back\); choose a succeeded one; nothing was changed$/],
    ['a tag never deployed successfully', { toTag: 'v3' }, /^--to-tag: no succeeded revision of job team\/app deployed tag "v3"; nothing was changed$/],
  ] as const)('refuses %s (exit 2)', (_what, request, message) => {
    const err = gkubeErrorFrom(() => chooseRevision({ names, ...request }, live(B, 'v2'), history));
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(message);
  });

  test('a job whose only good revision is live has nothing to roll back to', () => {
    const err = gkubeErrorFrom(() => chooseRevision({ names }, live(A, 'v1'), [entry(1, A, 'succeeded', 'v1')]));
    expect(err.message).toBe('job team/app has no earlier succeeded revision to roll back to; nothing was changed');
  });
});

async function config(sets: string[]) {
  return (await loadConfig({ cwd: '/nonexistent-dir-for-defaults', env: {}, sets, flags: {} })).config;
}

describe('Gluster layout', () => {
  test.each([
    ['replica 1 on one server', ['storage.glusterfs.servers={g1}'], [`g1:/data/gluster/${names.resourceName}-b0`]],
    ['replica 2 spread over two servers', ['storage.glusterfs.servers={g1,g2}', 'storage.glusterfs.replica=2'], [`g1:/data/gluster/${names.resourceName}-b0`, `g2:/data/gluster/${names.resourceName}-b1`]],
    ['replica 3 with an arbiter over two servers (round robin)', ['storage.glusterfs.servers={g1,g2}', 'storage.glusterfs.replica=3', 'storage.glusterfs.arbiter=true', 'storage.glusterfs.brickRoot=/bricks'], [`g1:/bricks/${names.resourceName}-b0`, `g2:/bricks/${names.resourceName}-b1`, `g1:/bricks/${names.resourceName}-b2`]],
  ] as const)('%s', async (_what, sets, bricks) => {
    const cfg = await config(['storage.provider=glusterfs', ...sets]);
    expect(glusterLayout(names, cfg)).toEqual({ volume: names.resourceName, bricks });
  });

  test.each([
    ['1Gi', '1GB'],
    ['512Mi', '512MB'],
    ['2Ti', '2TB'],
    ['10G', '10000000000'],
    ['500M', '500000000'],
    ['1073741824', '1073741824'],
  ])('storage.size %s is the quota %s', (size, quota) => {
    expect(glusterQuota(size)).toBe(quota);
  });

  test('a size gluster cannot take is refused naming storage.size', () => {
    expect(gkubeErrorFrom(() => glusterQuota('1.5Gi')).message).toMatch(/^storage\.size: "1\.5Gi" cannot be a Gluster quota/);
  });

  test('the in-tree objects are valid Kubernetes objects: Endpoints, Service, a Retain PV bound to the job\'s claim, the claim', async () => {
    const cfg = await config(['storage.provider=glusterfs', 'storage.glusterfs.servers={g1}', 'storage.size=2Gi']);
    const [ep, svc, pv, pvc] = glusterManifests(names, cfg, { volume: names.resourceName, addresses: ['10.0.0.5'] });
    new Endpoints(ep as never).validate();
    new Service(svc as never).validate();
    new PersistentVolume(pv as never).validate();
    new PersistentVolumeClaim(pvc as never).validate();
    expect(pv).toMatchObject({
      metadata: { name: `gkube-default-${names.resourceName}` },
      spec: { persistentVolumeReclaimPolicy: 'Retain', capacity: { storage: '2Gi' }, claimRef: { namespace: 'default', name: names.resourceName }, glusterfs: { endpoints: `glusterfs-${names.resourceName}`, path: names.resourceName } },
    });
    expect(pvc).toMatchObject({ spec: { volumeName: `gkube-default-${names.resourceName}`, storageClassName: '', accessModes: ['ReadWriteMany'] } });
    expect(ep).toMatchObject({ subsets: [{ addresses: [{ ip: '10.0.0.5' }] }] });
  });
});
