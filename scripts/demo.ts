// `npm run demo`: a Jenkins-style run of gkube on one machine, on the same real services the tests use.
// This version of gkube ships its command surface and contracts; the deploy flow is not in it yet, and the
// demo says so rather than pretend. It exits 0 when every part it shows worked as documented.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ensureGlusterd, stopGlusterd } from '../test/harness/glusterd.mjs';
import { GitRepo, GlusterPool, startEtcd, startRegistry } from '../test/harness/index.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const gkube = `${root}bin/gkube`;

function step(text: string): void {
  process.stdout.write(`\n== ${text}\n`);
}

async function main(): Promise<void> {
  step('starting the real services on loopback: etcd, docker-registry, glusterd');
  const glusterdPid = await ensureGlusterd();
  const etcd = await startEtcd();
  const registry = await startRegistry();
  const gluster = await GlusterPool.connect();
  const workspace = await GitRepo.create();
  try {
    process.stdout.write(`etcd ${etcd.endpoints[0]}   registry ${registry.url}   gluster host ${gluster.host}\n`);

    step('a Jenkins workspace: a git checkout tagged v1.0.0, and its image pushed as demo/app:v1.0.0');
    const commit = await workspace.commit('first release', { 'index.html': '<h1>hello</h1>\n', Dockerfile: 'FROM nginx\n' });
    await workspace.tag('v1.0.0', { annotated: true });
    const image = await registry.pushImage('demo/app', 'v1.0.0');
    process.stdout.write(`commit ${commit.slice(0, 12)}  tag v1.0.0  image ${registry.host}/${image.reference}@${image.digest.slice(0, 19)}…\n`);

    step('storage for the job: a GlusterFS volume, started');
    const volume = await gluster.createVolume();
    process.stdout.write(`volume ${volume.name} on ${volume.bricks.join(', ')}\n`);

    step('the Jenkins "Execute shell" step: /bin/sh -xe, no TTY, Jenkins variables');
    const script = ['exec 2>&1', `"${gkube}" --version`, `"${gkube}" deploy --image "${registry.host}/demo/app" || echo "exit code $?"`].join('\n');
    const shell = await run('/bin/sh', ['-xe', '-c', script], {
      cwd: workspace.dir,
      env: { ...process.env, JOB_NAME: 'demo/app', BUILD_NUMBER: '1', GIT_COMMIT: commit, GKUBE_ETCD_ENDPOINTS: etcd.endpoints[0] },
    });
    process.stdout.write(shell.stdout.replace(/^/gm, '  ') + '\n');
    if (!shell.stdout.includes('exit code 2')) throw new Error('gkube deploy did not exit 2 as documented for this version');
    process.stdout.write('\ngkube deploy is not in this version yet: it said so and exited 2, changing nothing.\n');
  } finally {
    step('removing everything the demo made');
    await gluster.cleanup();
    await workspace.remove();
    await registry.stop();
    await etcd.stop();
    if (glusterdPid !== undefined) await stopGlusterd(glusterdPid);
  }
  process.stdout.write('demo finished\n');
}

await main();
