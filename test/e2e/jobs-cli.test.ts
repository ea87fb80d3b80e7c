// The job commands as a Jenkins shell runs them: real etcd, the Kubernetes API emulator, no TTY.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { readFile, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import * as k8s from '@kubernetes/client-node';
import { connectEtcd, type EtcdPort } from '../../src/adapters/etcd.js';
import { jobNames } from '../../src/jobs/naming.js';
import type { HistoryEntry, JobRecord } from '../../src/jobs/record.js';
import { JobRegistry } from '../../src/jobs/registry.js';
import { KubeEmulator } from '../kube-emulator/emulator.js';
import { loadConfig } from '../../src/config/index.js';
import { podManifest } from '../../src/provision/manifests.js';
import { startEtcd, startRegistry, TempDirs, waitUntil, type EtcdCluster, type TestRegistry } from '../harness/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const gkube = join(root, 'bin/gkube');
const temp = new TempDirs();
let etcd: EtcdCluster;
let port: EtcdPort;
let emulator: KubeEmulator;
let registry: TestRegistry;
let kubeconfig: string;
let core: k8s.CoreV1Api;
const prefix = '/gkube/v1';
const job = 'team/app folder/deploy ünïcode';

function run(args: string[], env: Record<string, string> = {}, cwd?: string) {
  return execa(gkube, args, {
    reject: false,
    ...(cwd ? { cwd } : {}),
    stdin: 'ignore',
    env: { GKUBE_ETCD_ENDPOINTS: etcd.endpoints[0]!, KUBECONFIG: kubeconfig, JOB_NAME: job, BUILD_NUMBER: '7', BUILD_TAG: 'jenkins-team-app-7', ...env },
  });
}

function seedRecord(name: string, status: Partial<JobRecord['status']>, storage: JobRecord['spec']['storage'] = { provider: 'storageclass', size: '1Gi' }): JobRecord {
  const names = jobNames(name);
  return {
    version: 1, job: name, resourceName: names.resourceName, kind: 'job',
    spec: { namespace: 'default', imageRepository: `${registry.host}/team/app`, storage, configDigest: 'sha256:abc' },
    status: { phase: 'ready', revision: 1, createdAt: '2026-11-22T10:00:00Z', updatedAt: '2026-11-22T10:05:00Z', ...status },
    writeId: '',
  };
}

const entry: HistoryEntry = {
  version: 1, revision: 1, action: 'provision', result: 'succeeded', commit: 'a'.repeat(40), gitTag: 'v1.0.0', imageTag: 'v1.0.0',
  image: 'registry/team/app:v1.0.0', build: { number: '7', url: 'http://jenkins.invalid/job/7/' }, startedAt: '2026-11-22T10:00:00Z', finishedAt: '2026-11-22T10:05:00Z',
};

beforeAll(async () => {
  etcd = await startEtcd();
  port = connectEtcd({ endpoints: etcd.endpoints, callTimeoutMs: 5_000 });
  registry = await startRegistry();
  await registry.pushImage('team/app', 'v1.0.0');
  emulator = await KubeEmulator.start({ registryUrl: registry.url, kubelet: { terminationGraceScale: 0.1 } });
  kubeconfig = join(await temp.make('jobs-cli'), 'kubeconfig');
  await emulator.writeKubeconfig(kubeconfig);
  const kc = new k8s.KubeConfig();
  kc.loadFromString(emulator.kubeconfig);
  core = kc.makeApiClient(k8s.CoreV1Api);
  const names = jobNames(job);
  const reg = new JobRegistry(port, prefix);
  await reg.write(names, undefined, seedRecord(job, { pod: names.resourceName, pvc: names.resourceName, imageTag: 'v1.0.0', gitTag: 'v1.0.0', commit: 'a'.repeat(40), build: { number: '7' } }), { history: entry });
  await core.createNamespacedPersistentVolumeClaim({ namespace: 'default', body: { metadata: { name: names.resourceName }, spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'none', resources: { requests: { storage: '1Gi' } } } } });
  await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name: names.resourceName }, spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'app', image: `${registry.host}/team/app:v1.0.0`, command: ['sleep', '3600'] }] } } });
});

afterAll(async () => {
  port?.close();
  await emulator?.stop();
  await registry?.stop();
  await etcd?.stop();
  await temp.removeAll();
});

describe('read commands', () => {
  test('list -o json is the documented shape', async () => {
    const r = await run(['list', '-o', 'json']);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      jobs: [{
        job, kind: 'job', phase: 'ready', namespace: 'default', pod: jobNames(job).resourceName, imageTag: 'v1.0.0', gitTag: 'v1.0.0',
        commit: 'a'.repeat(40), revision: 1, updatedAt: '2026-11-22T10:05:00Z', expiresAt: null,
      }],
      unreadable: [],
    });
  });

  test('list as text is a plain table', async () => {
    const r = await run(['list']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^JOB\s+PHASE\s+NAMESPACE\s+IMAGE TAG\s+COMMIT\s+REV\s+UPDATED$/);
    expect(r.stdout).toContain(`${job}   ready`);
    expect(r.stdout).not.toMatch(/\u001b\[/);
  });

  test('an empty GKUBE_ETCD_ENDPOINTS or GKUBE_ETCD_PREFIX counts as unset, as Jenkins exports empty variables', async () => {
    const r = await run(['list'], { GKUBE_ETCD_ENDPOINTS: '', ETCDCTL_ENDPOINTS: etcd.endpoints[0]!, GKUBE_ETCD_PREFIX: '' });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`${job}   ready`);
  });

  test('get -o json is the record without its write nonce', async () => {
    const r = await run(['get', job, '-o', 'json']);
    expect(r.exitCode).toBe(0);
    const got = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(got).sort()).toEqual(['job', 'kind', 'resourceName', 'spec', 'status', 'version']);
    expect(got['status']).toMatchObject({ phase: 'ready', revision: 1, imageTag: 'v1.0.0' });
  });

  test('history -o json lists the entries, oldest first', async () => {
    const r = await run(['history', job, '-o', 'json']);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ job, entries: [entry] });
    const t = await run(['history', job]);
    expect(t.stdout).toMatch(/^1\s+provision\s+succeeded\s+aaaaaaaaaaaa\s+v1\.0\.0\s+v1\.0\.0\s+#7\s+2026-11-22T10:05:00Z/m);
  });

  test('describe shows the record, the lock, the pod and its events', async () => {
    await waitUntil('the pod to run', async () => (await core.readNamespacedPod({ name: jobNames(job).resourceName, namespace: 'default' })).status?.phase === 'Running');
    const r = await run(['describe', job, '-o', 'json']);
    expect(r.exitCode).toBe(0);
    const d = JSON.parse(r.stdout) as { record: { job: string }; lock: unknown; history: unknown[]; pod: { phase: string; ready: boolean }; events: Array<{ reason: string }>; clusterNote: unknown };
    expect(d.record.job).toBe(job);
    expect(d.lock).toBeNull();
    expect(d.history).toHaveLength(1);
    expect(d.pod).toMatchObject({ phase: 'Running', ready: true });
    expect(d.events.map((e) => e.reason)).toContain('Started');
    const text = await run(['describe', job]);
    expect(text.stdout).toMatch(/^Pod:\s+\S+ Running, ready$/m);
    expect(text.stdout).toMatch(/^Lock:\s+free$/m);
  });

  test('JOB defaults to $JOB_NAME for get, describe and history', async () => {
    const r = await run(['get', '-o', 'json']);
    expect(r.exitCode).toBe(0);
    expect((JSON.parse(r.stdout) as { job: string }).job).toBe(job);
    const none = await execa(gkube, ['history'], { reject: false, env: { GKUBE_ETCD_ENDPOINTS: etcd.endpoints[0]! }, extendEnv: false });
    expect(none.exitCode).toBe(2);
    expect(none.stderr.split('\n')[0]).toBe('error: JOB: no job named; give it as an argument or run inside Jenkins (JOB_NAME)');
  });

  test('credentials in stored URLs are masked in every output', async () => {
    const name = 'secret/urls';
    const names = jobNames(name);
    const leaky = { ...entry, build: { number: '8', url: 'https://jenkins-user:s3cret-token@jenkins.invalid/job/8/' } };
    await new JobRegistry(port, prefix).write(names, undefined, seedRecord(name, { build: leaky.build }), { history: leaky });
    const summary = join(await temp.make('summary'), 'history.json');
    for (const args of [['history', name, '-o', 'json', '--summary-file', summary], ['history', name], ['get', name], ['get', name, '-o', 'json'], ['describe', name, '-o', 'json'], ['list', '-o', 'json']]) {
      const r = await run(args);
      expect(r.exitCode).toBe(0);
      expect(r.stdout).not.toContain('s3cret-token');
    }
    expect(await readFile(summary, 'utf8')).not.toContain('s3cret-token');
    expect(await readFile(summary, 'utf8')).toContain('https://***@jenkins.invalid/job/8/');
    await run(['delete', name]);
  });

  test('one damaged record does not hide the others from list; it is named on stderr', async () => {
    const key = `${prefix}/jobs/${jobNames('damaged').key}`;
    await port.txn([{ key, target: 'Create', op: '==', value: 0 }], [{ put: key, value: JSON.stringify({ version: 1, job: 'damaged' }) }]);
    const r = await run(['list', '-o', 'json']);
    expect(r.exitCode).toBe(0);
    const listed = JSON.parse(r.stdout) as { jobs: Array<{ job: string }>; unreadable: string[] };
    expect(listed.jobs.map((j) => j.job)).toContain(job);
    expect(listed.unreadable).toEqual([`etcd key ${key} is not a complete job record (resourceName is missing or of the wrong type); gkube will not act on it`]);
    expect(r.stderr).toBe(`warning: ${listed.unreadable[0]}`);
    const get = await run(['get', 'damaged']);
    expect(get.exitCode).toBe(5);
    await port.txn([{ key, target: 'Create', op: '!=', value: 0 }], [{ delete: key }]);
  });

  test('an unwritable --summary-file is refused before anything changes', async () => {
    const names = jobNames('summary/first');
    await new JobRegistry(port, prefix).write(names, undefined, seedRecord('summary/first', {}));
    const r = await run(['delete', 'summary/first', '--summary-file', '/nonexistent/dir/s.json']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('error: --summary-file: cannot write /nonexistent/dir/s.json: directory /nonexistent/dir is not writable (ENOENT); nothing was changed');
    expect(await new JobRegistry(port, prefix).get(names)).toBeDefined();
    expect((await run(['delete', 'summary/first'])).exitCode).toBe(0);
  });

  test('an unknown job is one line and exit 2', async () => {
    const r = await run(['get', 'no/such/job']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('error: gkube has no record of job no/such/job');
  });

  test('a record written by a newer gkube (unknown version) is refused with exit 5, naming the key', async () => {
    const names = jobNames('from/the/future');
    const key = `${prefix}/jobs/${names.key}`;
    await port.txn([{ key, target: 'Create', op: '==', value: 0 }], [{ put: key, value: JSON.stringify({ version: 2, job: 'from/the/future' }) }]);
    const r = await run(['get', 'from/the/future']);
    expect(r.exitCode).toBe(5);
    expect(r.stderr.split('\n')[0]).toBe(`error: etcd key ${key} has record version 2; this gkube reads version 1`);
    await port.txn([{ key, target: 'Create', op: '!=', value: 0 }], [{ delete: key }]);
  });

  test('doctor reaches etcd and the API server', async () => {
    const r = await run(['doctor', '-o', 'json']);
    expect(r.exitCode).toBe(0);
    const { checks } = JSON.parse(r.stdout) as { checks: Array<{ name: string; ok: boolean; detail: string }> };
    expect(checks.map((c) => [c.name, c.ok])).toEqual([['config', true], ['etcd', true], ['records', true], ['kubernetes', true], ['image', true]]);
    expect(checks[2]!.detail).toBe(`1 job record under ${prefix}`);
    expect(checks[3]!.detail).toMatch(/v1\.31\.0/);
    // No image repository is configured here: nothing to look up, which is no failure.
    expect(checks[4]).toMatchObject({ skipped: true, detail: 'no image.repository configured (gkube.yaml, GKUBE_IMAGE or --image)' });
  });
});

describe('trace', () => {
  test('pod → image → commit → tag → build → revision, from a job name or from pod/NAME; drift is reported', async () => {
    const name = 'trace/me';
    const names = jobNames(name);
    const image = `${registry.host}/team/app:v1.0.0`;
    const commit = 'c'.repeat(40);
    const cfg = (await loadConfig({ cwd: '/nonexistent', env: {}, sets: ['container.command={sleep,"3600"}'], flags: {} })).config;
    await core.createNamespacedPod({
      namespace: 'default',
      body: podManifest(names, cfg, { image, imageTag: 'v1.0.0', gitTag: 'v1.0.0', commit, buildNumber: '12', buildUrl: 'http://jenkins.invalid/job/12/', configDigest: 'sha256:x' }, undefined) as k8s.V1Pod,
    });
    const history: HistoryEntry = { ...entry, commit, image, build: { number: '12', url: 'http://jenkins.invalid/job/12/' } };
    await new JobRegistry(port, prefix).write(names, undefined, seedRecord(name, { pod: names.resourceName, image, commit, imageTag: 'v1.0.0', gitTag: 'v1.0.0' }), { history });

    const byJob = await run(['trace', name, '-o', 'json']);
    expect(byJob.exitCode).toBe(0);
    const t = JSON.parse(byJob.stdout) as Record<string, any>;
    expect(t).toMatchObject({ job: name, image, imageTag: 'v1.0.0', commit, gitTag: 'v1.0.0', build: { number: '12', url: 'http://jenkins.invalid/job/12/' }, drift: [] });
    expect(t['pod']).toMatchObject({ namespace: 'default', name: names.resourceName });
    expect(t['revision']).toMatchObject({ revision: 1, commit });

    const byPod = await run(['trace', `pod/${names.resourceName}`]);
    expect(byPod.exitCode).toBe(0);
    expect(byPod.stdout).toContain(`job:       ${name}`);
    expect(byPod.stdout).toContain(`commit:    ${commit}`);
    expect(byPod.stdout).toMatch(/^revision:  1 \(provision, succeeded, /m);

    // The record moves on while the pod stays: trace says they disagree.
    await new JobRegistry(port, prefix).modify(names, (cur) => ({ ...cur!.record, status: { ...cur!.record.status, commit: 'd'.repeat(40) } }));
    const drift = JSON.parse((await run(['trace', name, '-o', 'json'])).stdout) as { drift: string[] };
    expect(drift.drift).toEqual([`the pod's code is commit ${commit}, the record says ${'d'.repeat(40)}`]);
  });

  test('a pod gkube did not make, or that does not exist: one line, exit 2', async () => {
    await core.createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'not-ours' }, spec: { containers: [{ name: 'c', image: `${registry.host}/team/app:v1.0.0`, command: ['sleep', '60'] }] } } });
    const foreign = await run(['trace', 'pod/not-ours']);
    expect(foreign.exitCode).toBe(2);
    expect(foreign.stderr.split('\n')[0]).toBe('error: TARGET: pod default/not-ours was not made by gkube (no gkube.dev/job-name annotation)');
    const missing = await run(['trace', 'pod/nope', '--namespace', 'kube-system']);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr.split('\n')[0]).toBe('error: TARGET: pod kube-system/nope does not exist');
  });
});

describe('unlock', () => {
  test('a lock whose holder process is gone is freed; a live one is refused unless forced by name', async () => {
    const names = jobNames('locked/job');
    const lockKey = `${prefix}/locks/${names.key}`;
    const lease = await port.grantLease(60);
    const dead = { id: 'jenkins-locked-1', user: 'jenkins', host: (await import('node:os')).hostname(), pid: 999_999, operation: 'deploy', startedAt: '2026-11-22T10:00:00Z' };
    await port.txn([{ key: lockKey, target: 'Create', op: '==', value: 0 }], [{ put: lockKey, value: JSON.stringify(dead), lease: lease.id }]);
    const freed = await run(['unlock', 'locked/job']);
    expect(freed.exitCode).toBe(0);
    expect(freed.stdout).toMatch(/^freed the lock of job locked\/job, held by jenkins-locked-1 \(deploy, pid 999999 on /);
    expect(await port.get(lockKey)).toBeUndefined();

    const lease2 = await port.grantLease(60);
    const alive = { ...dead, id: 'jenkins-locked-2', pid: process.pid };
    await port.txn([{ key: lockKey, target: 'Create', op: '==', value: 0 }], [{ put: lockKey, value: JSON.stringify(alive), lease: lease2.id }]);
    const refused = await run(['unlock', 'locked/job']);
    expect(refused.exitCode).toBe(3);
    expect(refused.stderr).toContain(`process ${process.pid} is still running; nothing was changed`);
    const wrongName = await run(['unlock', 'locked/job', '--force', 'someone-else']);
    expect(wrongName.exitCode).toBe(6);
    const forced = await run(['unlock', 'locked/job', '--force', 'jenkins-locked-2']);
    expect(forced.exitCode).toBe(0);
    expect(await port.get(lockKey)).toBeUndefined();
    expect((await run(['unlock', 'locked/job'])).stdout).toBe('job locked/job is not locked');
    await lease.revoke();
    await lease2.revoke();
  });
});

describe('delete', () => {
  test('--keep-storage removes the pod and the record and keeps the claim', async () => {
    const name = 'keep/me';
    const names = jobNames(name);
    await new JobRegistry(port, prefix).write(names, undefined, seedRecord(name, { pod: names.resourceName, pvc: names.resourceName }));
    await core.createNamespacedPersistentVolumeClaim({ namespace: 'default', body: { metadata: { name: names.resourceName }, spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'none', resources: { requests: { storage: '1Gi' } } } } });
    const r = await run(['delete', name, '--keep-storage', '-o', 'json']);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      job: name,
      removed: [`record and history of job ${name}`],
      kept: [`persistentvolumeclaim default/${names.resourceName}`],
      alreadyGone: [`pod default/${names.resourceName}`],
    });
    expect(await new JobRegistry(port, prefix).get(names)).toBeUndefined();
    expect((await core.readNamespacedPersistentVolumeClaim({ name: names.resourceName, namespace: 'default' })).metadata?.name).toBe(names.resourceName);
  });

  test('delete removes pod, claim, record and history', async () => {
    const names = jobNames(job);
    const r = await run(['delete', job]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe([`removed pod default/${names.resourceName}`, `removed persistentvolumeclaim default/${names.resourceName}`, `removed record and history of job ${job}`].join('\n'));
    expect(await new JobRegistry(port, prefix).get(names)).toBeUndefined();
    expect(await new JobRegistry(port, prefix).history(names)).toEqual([]);
    await waitUntil('pod and claim gone', async () => {
      const pods = await core.listNamespacedPod({ namespace: 'default', fieldSelector: `metadata.name=${names.resourceName}` });
      const claims = await core.listNamespacedPersistentVolumeClaim({ namespace: 'default', fieldSelector: `metadata.name=${names.resourceName}` });
      return pods.items.length === 0 && claims.items.length === 0;
    });
  });
});

describe('bad input: one line, exit 2, nothing changed', () => {
  test.each([
    [['get', ''], 'error: JOB: the job name is empty'],
    [['get', 'x'.repeat(10 * 1024)], 'error: JOB: the job name is 10240 bytes long; at most 1024 are allowed'],
    [['list', '--etcd-endpoints', 'etcd-1:2379'], 'error: --etcd-endpoints: "etcd-1:2379" is not an etcd endpoint URL like https://etcd-1:2379 (scheme http or https, host and port, no path)'],
    [['list', '--etcd-endpoints', 'https://root:secret@etcd-1'], 'error: --etcd-endpoints: "https://***@etcd-1" is not an etcd endpoint URL like https://etcd-1:2379 (scheme http or https, host and port, no path)'],
    [['list', '--etcd-prefix', 'gkube/'], 'error: --etcd-prefix: "gkube/" is not a key prefix like /gkube/v1 (starts with /, segments of letters, digits, . _ -, no trailing /)'],
    [['delete', 'some/job', '--wait-lock', '-5m'], 'error: --wait-lock: "-5m" is not a duration of zero or more (like 90s, 10m, 1h30m)'],
    [['list', '-o', 'yaml'], "error: option '-o, --output <format>' argument 'yaml' is invalid. Allowed choices are text, json."],
    // A typo'd flag carrying a credential: the parser's own error is masked too.
    [['list', '--etcd-endpoint=http://root:secret@etcd-1:2379'], "error: unknown option '--etcd-endpoint=http://***@etcd-1:2379'"],
    // A password holding / and @ (the URL does not parse): masked up to the last @.
    [['list', '--etcd-endpoints', 'http://root:s/secret@x@etcd-1:2379'], 'error: --etcd-endpoints: "http://***@etcd-1:2379" is not an etcd endpoint URL like https://etcd-1:2379 (scheme http or https, host and port, no path)'],
    // A secret-named key under a misspelt container.env: the key path and the rule, not the value.
    [['list', '--set', 'containr.env.API_TOKEN=secret'], 'error: --set containr.env.API_TOKEN=***: containr: unknown key (did you mean container?)'],
    [['list', '--set', 'Container.env.DB_PASSWORD=secret'], 'error: --set Container.env.DB_PASSWORD=***: Container: unknown key (did you mean container?)'],
    // Longer than a Node timer can wait.
    [['delete', 'some/job', '--wait-lock', '30d'], 'error: --wait-lock: "30d" is longer than 24d, the longest duration gkube can wait'],
    [['deploy', '--timeout', '30d'], 'error: --timeout: "30d" is longer than 24d, the longest duration gkube can wait'],
  ])('gkube %#', async (args, line) => {
    const r = await run(args);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(line);
    expect(r.stderr).not.toContain('secret');
  });

  test.each([
    [['list', '--set', 'contaner.port=8080'], /^error: --set contaner\.port=\*\*\*: contaner: unknown key \(did you mean container\?\)$/],
    [['list', '--set', 'health.timeout=30d'], /^error: --set health\.timeout=30d: health\.timeout: is longer than 24d, the longest duration gkube can wait$/],
    [['list', '--set', 'container.port=http'], /^error: --set container\.port=http: container\.port: /],
    [['list', '--set', 'health.timeout=-5s'], /^error: --set health\.timeout=-5s: health\.timeout: /],
    [['list', '--config', 'missing.yaml'], /^error: missing\.yaml: file not found \(given with --config\)$/],
  ])('config %#: %j', async (args, line) => {
    const r = await run(args);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(line);
  });

  test('doctor names the key and the rule of a bad gkube.yaml in the workspace, and exits 2', async () => {
    const workspace = await temp.make('bad-config');
    await writeFile(join(workspace, 'gkube.yaml'), 'container:\n  port: "http"\n');
    const r = await run(['doctor'], {}, workspace);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toMatch(/^config\s+FAILED\s+gkube\.yaml: container\.port: /m);
  });

  test('a malformed GKUBE_ETCD_ENDPOINTS names the variable', async () => {
    const r = await run(['list'], { GKUBE_ETCD_ENDPOINTS: 'http://etcd-1:2379/v3' });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('error: GKUBE_ETCD_ENDPOINTS: "http://etcd-1:2379/v3" is not an etcd endpoint URL like https://etcd-1:2379 (scheme http or https, host and port, no path)');
  });
});
