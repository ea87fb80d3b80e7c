// gkube deploy heals what went missing: a deleted pod is made again on the same claim (the code is still
// there); a deleted claim means the job's data may be gone, which gkube names and refuses to paper over.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { jobNames } from '../../src/jobs/naming.js';
import { DeployEnv, expectExit } from '../helpers/deploy-env.js';
import { waitUntil } from '../harness/index.js';

let env: DeployEnv;
let commit: string;

function deploy(job: string, build: number) {
  return env.gkube(['deploy', '--timeout', '2m'], env.jenkinsEnv(job, build, commit));
}

beforeAll(async () => {
  env = await DeployEnv.start();
  await env.registry.pushImage('examples/hello', 'v1.0.0');
  commit = await env.repo.git('rev-parse', 'HEAD');
}, 120_000);

afterAll(async () => {
  await env?.stop();
});

describe('healing', () => {
  test('a deleted pod is recreated on the same claim and serves the code that was there', async () => {
    const job = 'heal/pod';
    expectExit(await deploy(job, 1), 0);
    const before = await env.pod(job);
    const claim = before?.spec?.volumes?.[0]?.persistentVolumeClaim?.claimName;
    await env.core.deleteNamespacedPod({ name: jobNames(job).resourceName, namespace: 'default' });
    await waitUntil('the pod to go', async () => (await env.objects(job)).pods === 0, 30_000, 200);
    const r = await deploy(job, 2);
    expectExit(r, 0);
    expect(r.stderr).toMatch(/updating job heal\/pod: the pod is gone/);
    expect(r.stderr).toMatch(/recreated|created pod/);
    // The code was still on the claim: nothing had to be sent.
    expect(r.stderr).toMatch(/code: the pod already has [0-9a-f]{12}/);
    const after = await env.pod(job);
    expect(after?.metadata?.uid).not.toBe(before?.metadata?.uid);
    expect(after?.spec?.volumes?.[0]?.persistentVolumeClaim?.claimName).toBe(claim);
    expect(await env.serve(job)).toEqual({ status: 200, body: 'Hello from gkube!\n' });
    expect((await env.record(job))?.record.status).toMatchObject({ phase: 'ready', revision: 2 });
  }, 120_000);

  test('a deleted claim is exit 5 naming it, and nothing is changed', async () => {
    const job = 'heal/claim';
    expectExit(await deploy(job, 1), 0);
    const name = jobNames(job).resourceName;
    await env.core.deleteNamespacedPersistentVolumeClaim({ name, namespace: 'default' });
    await env.core.deleteNamespacedPod({ name, namespace: 'default' });
    await waitUntil('the claim to go', async () => (await env.objects(job)).claims === 0, 30_000, 200);
    const before = await env.record(job);
    const r = await deploy(job, 2);
    expectExit(r, 5);
    expect(String(r.stderr).split('\n').filter((l) => l.startsWith('error:'))).toEqual([
      `error: job heal/claim: the record names claim ${name} and it does not exist; the job's data may be gone; nothing was changed`,
    ]);
    expect((await env.record(job))?.modRevision).toBe(before?.modRevision);
    expect(await env.objects(job)).toEqual({ pods: 0, claims: 0 });
  }, 120_000);
});
