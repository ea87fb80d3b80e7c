// The emulator through the machine's real kubectl: each command exits and prints as against a real cluster.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { KubeEmulator } from '../kube-emulator/emulator.js';
import { requireProgram, startRegistry, TempDirs, type TestRegistry } from '../harness/index.js';

let emulator: KubeEmulator;
let registry: TestRegistry;
let kubeconfig: string;
let dir: string;
const temp = new TempDirs();

function kubectl(...args: string[]) {
  return execa('kubectl', ['--kubeconfig', kubeconfig, ...args], { reject: false, timeout: 30_000, cwd: dir });
}

beforeAll(async () => {
  await requireProgram('kubectl', 'kubernetes-client');
  registry = await startRegistry();
  await registry.pushImage('team/web', 'v1');
  emulator = await KubeEmulator.start({ registryUrl: registry.url });
  dir = await temp.make('kubectl');
  kubeconfig = join(dir, 'kubeconfig');
  await emulator.writeKubeconfig(kubeconfig);
  const volume = await temp.make('kubectl-pv');
  await writeFile(join(volume, 'hello'), 'hello from the claim\n');
  await writeFile(
    join(dir, 'storage.yaml'),
    `apiVersion: v1
kind: PersistentVolume
metadata: {name: web-code}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  hostPath: {path: ${volume}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: web-code}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  volumeName: web-code
  resources: {requests: {storage: 1Gi}}
`,
  );
  await writeFile(
    join(dir, 'pod.yaml'),
    `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: ${registry.host}/team/web:v1
    command: [sh, -c, 'echo serving; exec sleep 3600']
    env: [{name: MODE, value: a}]
    volumeMounts: [{name: code, mountPath: /app}]
  volumes:
  - name: code
    persistentVolumeClaim: {claimName: web-code}
`,
  );
});

afterAll(async () => {
  await emulator?.stop();
  await registry?.stop();
  await temp.removeAll();
});

describe('real kubectl against the emulator', () => {
  test('get ns', async () => {
    const r = await kubectl('get', 'ns');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^NAME\s+STATUS\s+AGE$/m);
    expect(r.stdout).toMatch(/^default\s+Active\s+\d+s$/m);
  });

  test('create -f, get -o json, get -w until Ready, describe', async () => {
    expect((await kubectl('create', '-f', 'storage.yaml')).exitCode).toBe(0);
    const created = await kubectl('create', '-f', 'pod.yaml');
    expect(created.stdout).toBe('pod/web created');
    expect(created.exitCode).toBe(0);

    const json = await kubectl('get', 'pods', '-o', 'json');
    expect(json.exitCode).toBe(0);
    const list = JSON.parse(json.stdout) as { items: Array<{ metadata: { name: string; uid: string } }> };
    expect(list.items.map((p) => p.metadata.name)).toEqual(['web']);

    const watch = execa('kubectl', ['--kubeconfig', kubeconfig, 'get', 'pod', 'web', '-w'], { reject: false, timeout: 30_000 });
    let seen = '';
    await new Promise<void>((resolve) => {
      watch.stdout!.on('data', (d: Buffer) => {
        seen += d.toString();
        if (/^web\s+1\/1\s+Running\s+0\s+/m.test(seen)) resolve();
      });
      void watch.then(() => resolve());
    });
    watch.kill('SIGTERM');
    await watch;
    expect(seen).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/m);
    expect(seen).toMatch(/^web\s+1\/1\s+Running\s+0\s+/m);

    const described = await kubectl('describe', 'pod', 'web');
    expect(described.exitCode).toBe(0);
    expect(described.stdout).toMatch(/^Status:\s+Running$/m);
    expect(described.stdout).toMatch(/^IP:\s+127\.\d+\.\d+\.\d+$/m);
    expect(described.stdout).toMatch(/ClaimName:\s+web-code/);
    expect(described.stdout).toMatch(/Normal\s+Scheduled\s.*Successfully assigned default\/web to emulator-node/);
    expect(described.stdout).toMatch(/Normal\s+Started\s/);
  });

  test('exec reads a file on the claim; logs shows the container output', async () => {
    const exec = await kubectl('exec', 'web', '--', 'cat', '/app/hello');
    expect(exec.exitCode).toBe(0);
    expect(exec.stdout).toBe('hello from the claim');
    const failing = await kubectl('exec', 'web', '--', 'sh', '-c', 'exit 3');
    expect(failing.exitCode).toBe(3);
    expect(failing.stderr).toContain('command terminated with exit code 3');
    const logs = await kubectl('logs', 'web');
    expect(logs.exitCode).toBe(0);
    expect(logs.stdout).toBe('serving');
  });

  test('invalid pods are refused with the API server\'s reasons', async () => {
    const badName = await execa('kubectl', ['--kubeconfig', kubeconfig, 'create', '-f', '-'], {
      input: 'apiVersion: v1\nkind: Pod\nmetadata: {name: Web_1}\nspec:\n  containers: [{name: app, image: x}]\n',
      reject: false,
    });
    expect(badName.exitCode).toBe(1);
    expect(badName.stderr).toContain('The Pod "Web_1" is invalid: metadata.name: Invalid value: "Web_1": a lowercase RFC 1123 subdomain');

    const noImage = await execa('kubectl', ['--kubeconfig', kubeconfig, 'create', '-f', '-'], {
      input: 'apiVersion: v1\nkind: Pod\nmetadata: {name: noimage}\nspec:\n  containers: [{name: app}]\n',
      reject: false,
    });
    expect(noImage.exitCode).toBe(1);
    expect(noImage.stderr).toContain('The Pod "noimage" is invalid: spec.containers[0].image: Required value');

    const envChange = await kubectl('patch', 'pod', 'web', '-p', '{"spec":{"containers":[{"name":"app","env":[{"name":"MODE","value":"b"}]}]}}');
    expect(envChange.exitCode).toBe(1);
    expect(envChange.stderr).toContain('The Pod "web" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`');
  });

  test('apply twice: the second apply\'s strategic merge patch merges Service ports by port and deletes the dropped one', async () => {
    const service = (ports: string) => `apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports:\n${ports}`;
    await writeFile(join(dir, 'svc.yaml'), service('  - {name: http, port: 80, targetPort: 8080}\n  - {name: admin, port: 81, targetPort: 8081}\n'));
    expect((await kubectl('apply', '-f', 'svc.yaml')).exitCode).toBe(0);
    await writeFile(join(dir, 'svc.yaml'), service('  - {name: admin, port: 81, targetPort: 9091}\n'));
    const applied = await kubectl('apply', '-f', 'svc.yaml');
    expect(applied.stderr).toBe('');
    expect(applied.stdout).toBe('service/web configured');
    const patch = emulator.requestLog.filter((e) => e.method === 'PATCH' && e.resource === 'services').at(-1);
    expect(patch?.status).toBe(200);
    const ports = JSON.parse((await kubectl('get', 'svc', 'web', '-o', 'json')).stdout).spec.ports;
    expect(ports).toEqual([{ name: 'admin', port: 81, protocol: 'TCP', targetPort: 9091 }]);

    const patched = await kubectl('patch', 'svc', 'web', '-p', '{"spec":{"ports":[{"port":82,"name":"metrics","targetPort":9092},{"port":81,"targetPort":9191}]}}');
    expect(patched.exitCode).toBe(0);
    const after = JSON.parse((await kubectl('get', 'svc', 'web', '-o', 'json')).stdout).spec.ports;
    expect(after.map((p: { name: string; port: number; targetPort: number }) => [p.name, p.port, p.targetPort])).toEqual([['metrics', 82, 9092], ['admin', 81, 9191]]);
  });

  test('delete pod waits until it is gone', async () => {
    const deleted = await kubectl('delete', 'pod', 'web');
    expect(deleted.exitCode).toBe(0);
    expect(deleted.stdout).toBe('pod "web" deleted');
    const after = await kubectl('get', 'pod', 'web');
    expect(after.exitCode).toBe(1);
    expect(after.stderr).toBe('Error from server (NotFound): pods "web" not found');
  });
});
