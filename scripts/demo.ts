// `npm run demo`: a Jenkins-style run of gkube on one machine, on the same real services the tests use.
// This version of gkube ships its command surface and contracts; the deploy flow is not in it yet, and the
// demo says so rather than pretend. It exits 0 when every part it shows worked as documented.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ensureGlusterd, stopGlusterd } from '../test/harness/glusterd.mjs';
import { GitRepo, GlusterPool, glusterHost, startEtcd, startRegistry, tempDir } from '../test/harness/index.js';
import { KubeEmulator } from '../test/kube-emulator/emulator.js';
import { lookup } from 'node:dns/promises';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const gkube = `${root}bin/gkube`;

function step(text: string): void {
  process.stdout.write(`\n== ${text}\n`);
}

async function main(): Promise<void> {
  step('starting the real services on loopback: etcd, docker-registry, glusterd, and the Kubernetes API emulator');
  const glusterdPid = await ensureGlusterd();
  const etcd = await startEtcd();
  const registry = await startRegistry();
  const gluster = await GlusterPool.connect();
  const workspace = await GitRepo.create();
  const emulator = await KubeEmulator.start({ registryUrl: registry.url });
  const scratch = await tempDir('demo');
  const kubeconfig = join(scratch, 'kubeconfig');
  await emulator.writeKubeconfig(kubeconfig);
  try {
    process.stdout.write(`etcd ${etcd.endpoints[0]}   registry ${registry.url}   gluster host ${gluster.host}   Kubernetes API ${emulator.url}\n`);

    step('a Jenkins workspace: a git checkout tagged v1.0.0, and its image pushed as demo/app:v1.0.0');
    const commit = await workspace.commit('first release', { 'index.html': '<h1>hello</h1>\n', Dockerfile: 'FROM nginx\n' });
    await workspace.tag('v1.0.0', { annotated: true });
    const image = await registry.pushImage('demo/app', 'v1.0.0');
    process.stdout.write(`commit ${commit.slice(0, 12)}  tag v1.0.0  image ${registry.host}/${image.reference}@${image.digest.slice(0, 19)}…\n`);

    step('storage for the job: a GlusterFS volume, started');
    const volume = await gluster.createVolume();
    process.stdout.write(`volume ${volume.name} on ${volume.bricks.join(', ')}\n`);

    step('what gkube deploy will do, done here by hand with kubectl: a pod of that image on the Gluster volume');
    const { address } = await lookup(glusterHost(), { family: 4 });
    await writeFile(join(scratch, 'app.yaml'), manifests(address.startsWith('127.') ? glusterHost() : address, volume.name, `${registry.host}/demo/app:v1.0.0`));
    const kubectl = (...args: string[]) => run('kubectl', ['--kubeconfig', kubeconfig, ...args]);
    process.stdout.write((await kubectl('apply', '-f', join(scratch, 'app.yaml'))).stdout + '\n');
    process.stdout.write((await kubectl('wait', '--for=condition=Ready', 'pod/demo-app', '--timeout=60s')).stdout + '\n');
    process.stdout.write((await kubectl('get', 'pods', '-o', 'wide')).stdout + '\n');
    process.stdout.write(`kubectl exec demo-app -- cat /srv/code/index.html → ${(await kubectl('exec', 'demo-app', '--', 'cat', '/srv/code/index.html')).stdout}\n`);

    step('the Jenkins "Execute shell" step: /bin/sh -xe, no TTY, Jenkins variables');
    const script = ['exec 2>&1', `"${gkube}" --version`, `"${gkube}" doctor`, `"${gkube}" list`, `"${gkube}" deploy --image "${registry.host}/demo/app" || echo "exit code $?"`].join('\n');
    const shell = await run('/bin/sh', ['-xe', '-c', script], {
      cwd: workspace.dir,
      env: { ...process.env, JOB_NAME: 'demo/app', BUILD_NUMBER: '1', GIT_COMMIT: commit, GKUBE_ETCD_ENDPOINTS: etcd.endpoints[0], KUBECONFIG: kubeconfig },
    });
    process.stdout.write(shell.stdout.replace(/^/gm, '  ') + '\n');
    if (!shell.stdout.includes('exit code 2')) throw new Error('gkube deploy did not exit 2 as documented for this version');
    process.stdout.write('\ngkube deploy is not in this version yet: it said so and exited 2, changing nothing.\n');
  } finally {
    step('removing everything the demo made');
    await emulator.stop();
    await rm(scratch, { recursive: true, force: true });
    await gluster.cleanup();
    await workspace.remove();
    await registry.stop();
    await etcd.stop();
    if (glusterdPid !== undefined) await stopGlusterd(glusterdPid);
  }
  process.stdout.write('demo finished\n');
}

/** The objects a deploy of the demo app makes: Gluster endpoints, a PV and claim on the volume, and the pod. */
function manifests(glusterAddress: string, volume: string, image: string): string {
  return `apiVersion: v1
kind: Endpoints
metadata: {name: glusterfs-pool}
subsets: [{addresses: [{ip: "${glusterAddress}"}], ports: [{port: 24007}]}]
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: demo-app-code}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteMany]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  glusterfs: {endpoints: glusterfs-pool, path: ${volume}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: demo-app-code}
spec:
  accessModes: [ReadWriteMany]
  storageClassName: ""
  volumeName: demo-app-code
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: demo-app, labels: {app.kubernetes.io/managed-by: demo}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: ${image}
    command: [sh, -c, 'echo "<h1>hello from the pod</h1>" > /srv/code/index.html; exec sleep 3600']
    readinessProbe: {exec: {command: [test, -f, /srv/code/index.html]}, periodSeconds: 1}
    volumeMounts: [{name: code, mountPath: /srv/code}]
  volumes: [{name: code, persistentVolumeClaim: {claimName: demo-app-code}}]
`;
}

await main();
