// Bad input to gkube deploy and rollback: one clear line, the documented exit code, nothing changed. And
// --dry-run: the plan and the manifests, nothing changed.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { jobNames } from '../../src/jobs/naming.js';
import { jobKeys } from '../../src/jobs/keys.js';
import { DeployEnv, expectExit, prefix } from '../helpers/deploy-env.js';

let env: DeployEnv;
let tagged: string;

function errorLines(stderr: unknown): string[] {
  return String(stderr).split('\n').filter((l) => l.startsWith('error:'));
}

/** Nothing of the job exists: no record, no history, no lock, no pod, no claim. */
async function expectUntouched(job: string) {
  expect(await env.record(job)).toBeUndefined();
  expect(await env.store.list(`${prefix}/`)).toEqual(expect.not.arrayContaining([expect.objectContaining({ key: expect.stringContaining(jobNames(job).key) })]));
  expect(await env.store.get(jobKeys(prefix, jobNames(job)).lock)).toBeUndefined();
  expect(await env.objects(job)).toEqual({ pods: 0, claims: 0 });
}

beforeAll(async () => {
  env = await DeployEnv.start();
  await env.registry.pushImage('examples/hello', 'v1.0.0');
  tagged = await env.repo.git('rev-parse', 'HEAD');
}, 120_000);

afterAll(async () => {
  await env?.stop();
});

describe('bad input changes nothing', () => {
  test('an untagged commit under the exact policy: exit 2', async () => {
    const commit = await env.repo.commit('untagged', { 'message.txt': 'untagged\n' });
    const r = await env.gkube(['deploy', '--tag-policy', 'exact'], env.jenkinsEnv('bad/exact', 1, commit));
    expectExit(r, 2);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(/^error: tag policy exact: commit [0-9a-f]{12} has no git tag; nothing was changed$/)]);
    await expectUntouched('bad/exact');
  });

  test('an image the registry lacks: exit 1 naming the exact reference', async () => {
    await env.repo.tag('v9.9.9');
    const r = await env.gkube(['deploy'], env.jenkinsEnv('bad/no-image', 1, await env.repo.git('rev-parse', 'HEAD')));
    expectExit(r, 1);
    expect(errorLines(r.stderr)).toEqual([`error: image ${env.image}:v9.9.9 is not in the registry; nothing was changed`]);
    await expectUntouched('bad/no-image');
  });

  test('a git tag that is no valid image tag maps to one (documented) and is checked as such', async () => {
    const commit = await env.repo.commit('hotfix', { 'message.txt': 'hotfix\n' });
    await env.repo.tag('v1/hotfix+1');
    const r = await env.gkube(['deploy'], env.jenkinsEnv('bad/tag-mapping', 1, commit));
    expectExit(r, 1);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(new RegExp(`^error: image ${env.image.replace(/[.]/g, '\\.')}:v1-hotfix-1-[0-9a-f]{7} is not in the registry; nothing was changed$`))]);
    await expectUntouched('bad/tag-mapping');
  });

  test('an unknown tag policy: exit 2 naming the flag', async () => {
    const r = await env.gkube(['deploy', '--tag-policy', 'latest'], env.jenkinsEnv('bad/policy', 1, tagged));
    expectExit(r, 2);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(/^error: .*tag-?[pP]olicy.*latest/)]);
    await expectUntouched('bad/policy');
  });

  test('a ref that is an option in disguise is refused: exit 6, git never runs it', async () => {
    const r = await env.gkube(['deploy', '--ref', '--upload-pack=touch pwned'], env.jenkinsEnv('bad/ref', 1, tagged));
    expectExit(r, 6);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(/^error: --ref: "--upload-pack=touch pwned" starts with "-" and would be read as a git option; refused, nothing was changed$/)]);
    expect(existsSync(join(env.repo.dir, 'pwned'))).toBe(false);
    await expectUntouched('bad/ref');
  });

  test('a workspace that is not a git repository: exit 2', async () => {
    const dir = await env.temp.make('not-git');
    const vars = { ...env.jenkinsEnv('bad/not-git', 1, tagged), WORKSPACE: dir };
    const r = await env.gkube(['deploy', '--image', env.image], vars, dir);
    expectExit(r, 2);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(/^error: workspace \S+ is not a git checkout; nothing was changed$/)]);
    await expectUntouched('bad/not-git');
  });

  test('GlusterFS in-tree on a Kubernetes 1.26+ cluster: exit 2 naming the removal, before anything is made', async () => {
    const r = await env.gkube(['deploy', '--set', 'storage.provider=glusterfs', '--set', 'storage.glusterfs.servers={gluster-1.invalid}'], env.jenkinsEnv('bad/in-tree', 1, tagged));
    expectExit(r, 2);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(/^error: storage\.glusterfs\.mode: in-tree needs Kubernetes 1\.25 or older \(the glusterfs volume plugin was removed in 1\.26\), and this cluster is v1\.31\.\d+; nothing was changed$/)]);
    await expectUntouched('bad/in-tree');
  });

  test('rollback of a job gkube does not know: exit 2', async () => {
    const r = await env.gkube(['rollback', 'bad/unknown'], env.jenkinsEnv('bad/unknown', 1, tagged));
    expectExit(r, 2);
    expect(errorLines(r.stderr)).toEqual(['error: job bad/unknown has no record under /gkube/v1; there is nothing to roll back; nothing was changed']);
    await expectUntouched('bad/unknown');
  });

  test('rollback to a revision that is not a number: exit 2', async () => {
    const r = await env.gkube(['rollback', 'bad/unknown', '--to-revision', 'last'], env.jenkinsEnv('bad/unknown', 1, tagged));
    expectExit(r, 2);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(/^error: --to-revision: "last" is not a revision number/)]);
  });
});

describe('GlusterFS through a CSI StorageClass (Kubernetes 1.26+)', () => {
  test('storage.glusterfs.mode storageclass makes a ReadWriteMany claim on that class and never runs gluster', async () => {
    const job = 'gluster/csi';
    const r = await env.gkube(['deploy', '--timeout', '2m', '--set', 'storage.provider=glusterfs', '--set', 'storage.glusterfs.servers={gluster-1.invalid}', '--set', 'storage.glusterfs.mode=storageclass', '--set', 'storage.glusterfs.storageClassName=local'], env.jenkinsEnv(job, 1, tagged));
    expectExit(r, 0);
    const claim = await env.core.readNamespacedPersistentVolumeClaim({ name: jobNames(job).resourceName, namespace: 'default' });
    expect(claim.spec).toMatchObject({ storageClassName: 'local', accessModes: ['ReadWriteMany'] });
    expect((await env.record(job))?.record.spec.storage).toMatchObject({ provider: 'glusterfs', glusterfs: { mode: 'storageclass' } });
    expect(await env.serve(job)).toEqual({ status: 200, body: 'Hello from gkube!\n' });
  }, 120_000);
});

describe('--dry-run', () => {
  test('prints the plan and the manifests as YAML; nothing is created or recorded', async () => {
    const r = await env.gkube(['deploy', '--dry-run'], env.jenkinsEnv('dry/run', 1, tagged));
    expectExit(r, 0);
    expect(String(r.stdout)).toMatch(/^dry run: would provision job dry\/run; nothing was changed$/m);
    expect(String(r.stdout)).toMatch(/^kind: PersistentVolumeClaim$/m);
    expect(String(r.stdout)).toMatch(/^kind: Pod$/m);
    expect(String(r.stdout)).toContain(`image: ${env.image}:v1.0.0`);
    await expectUntouched('dry/run');
  });

  test('-o json carries the plan and the manifests as objects', async () => {
    const r = await env.gkube(['deploy', '--dry-run', '-o', 'json'], env.jenkinsEnv('dry/json', 1, tagged));
    expectExit(r, 0);
    const plan = JSON.parse(String(r.stdout));
    expect(plan).toMatchObject({ job: 'dry/json', action: 'provision', result: 'planned', commit: tagged, imageTag: 'v1.0.0', revision: 0 });
    expect(plan.manifests.map((m: { kind: string }) => m.kind)).toEqual(['PersistentVolumeClaim', 'Pod']);
    await expectUntouched('dry/json');
  });
});

describe('a first deploy that fails', () => {
  test('says why, with the pod\'s last log lines and events in the hint, and records the job failed at revision 0', async () => {
    const job = 'failing/first';
    const r = await env.gkube(['deploy', '--timeout', '2m', '--set', 'init={"echo preparing; exit 3"}'], env.jenkinsEnv(job, 1, tagged));
    expectExit(r, 1);
    const stderr = String(r.stderr);
    expect(errorLines(stderr)).toEqual([expect.stringMatching(/^error: init command "echo preparing; exit 3" exited 3 in pod default\/failing-first-[0-9a-f]{12}$/)]);
    expect(stderr).toMatch(/^hint: its last output:\npreparing\nlast log lines of pod default\/failing-first-[0-9a-f]{12}:\n[\s\S]*\nevents:\n[\s\S]* Normal Started: /m);
    expect((await env.record(job))?.record.status).toMatchObject({ phase: 'failed', revision: 0 });
    expectExit(await env.gkube(['delete', job], env.jenkinsEnv(job, 2, tagged)), 0);
  }, 120_000);

  test('whose container keeps crashing says how it ended and what the ended container printed', async () => {
    const job = 'failing/crash';
    const r = await env.gkube(['deploy', '--timeout', '2m', '--set', 'container.command={sh,-c,"echo cannot open /srv/app/data/db >&2; exit 7"}'], env.jenkinsEnv(job, 1, tagged));
    expectExit(r, 1);
    const stderr = String(r.stderr);
    expect(errorLines(stderr)).toEqual([expect.stringMatching(/^error: pod default\/failing-crash-[0-9a-f]{12} cannot start: CrashLoopBackOff/)]);
    expect(stderr).toMatch(/^the container restarted \d+ times?; the last one ended with exit code 7 \(Error\) at \d{4}-/m);
    expect(stderr).toMatch(/^last log lines of the container before it restarted:\ncannot open \/srv\/app\/data\/db$/m);
    expect((await env.record(job))?.record.status).toMatchObject({ phase: 'failed', revision: 0 });
    expectExit(await env.gkube(['delete', job], env.jenkinsEnv(job, 2, tagged)), 0);
  }, 120_000);
});

describe('doctor in the job\'s workspace', () => {
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const imageCheck = (stdout: unknown) => (JSON.parse(String(stdout)) as { checks: Array<{ name: string }> }).checks.find((c) => c.name === 'image');

  test('looks up the image a deploy of the ref would use: there (exit 0), or absent (exit 1, named); nothing changes', async () => {
    const vars = env.jenkinsEnv('doctor/image', 1, tagged);
    const there = await env.gkube(['doctor', '-o', 'json'], vars);
    expectExit(there, 0);
    expect(imageCheck(there.stdout)).toEqual({
      name: 'image',
      ok: true,
      detail: expect.stringMatching(new RegExp(`^${escape(env.image)}:v1\\.0\\.0 \\(GIT_COMMIT ${tagged.slice(0, 12)}\\) is in the registry \\(sha256:[0-9a-f]{12}…\\), \\d+ ms$`)),
    });

    const commit = await env.repo.commit('not pushed', { 'message.txt': 'not pushed\n' });
    await env.repo.tag('v7.0.0');
    const absent = await env.gkube(['doctor', '--ref', 'v7.0.0'], vars);
    expectExit(absent, 1);
    expect(String(absent.stdout)).toMatch(new RegExp(`^image +FAILED +${escape(env.image)}:v7\\.0\\.0 \\(--ref ${commit.slice(0, 12)}\\) is not in the registry: a deploy would fail \\(exit 1\\); build and push it first$`, 'm'));
    await expectUntouched('doctor/image');
  });

  test('outside a git checkout the image check is skipped, not failed', async () => {
    const dir = await env.temp.make('doctor-not-git');
    const r = await env.gkube(['doctor', '-o', 'json'], { ...env.jenkinsEnv('doctor/not-git', 1, tagged), WORKSPACE: dir, GKUBE_IMAGE: env.image }, dir);
    expectExit(r, 0);
    expect(imageCheck(r.stdout)).toEqual({ name: 'image', ok: true, skipped: true, detail: `${env.image}: no git checkout here, so no image tag to look up` });
  });
});
