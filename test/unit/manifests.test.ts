import { describe, expect, test } from '@jest/globals';
import { Pod, PersistentVolumeClaim } from 'kubernetes-models/v1';
import { loadConfig } from '../../src/config/index.js';
import { jobNames } from '../../src/jobs/naming.js';
import { claimManifest, podManifest } from '../../src/provision/manifests.js';

async function config(sets: string[] = []) {
  return (await loadConfig({ cwd: '/nonexistent-dir-for-defaults', env: {}, sets, flags: {} })).config;
}

const names = jobNames('team/app folder/deploy ünïcode');
const deployment = {
  image: 'registry.example.com:5000/team/app:v1.4.2',
  imageTag: 'v1.4.2',
  gitTag: 'v1.4.2',
  commit: '0123456789abcdef0123456789abcdef01234567',
  buildNumber: '42',
  buildUrl: 'https://jenkins.example.com/job/team/job/app/42/',
  configDigest: 'sha256:abc',
};

describe('podManifest', () => {
  test('defaults: a schema-valid pod, non-root, code at /srv/app on the claim, traceable', async () => {
    const pod = podManifest(names, await config(), deployment, names.resourceName) as { metadata: Record<string, any>; spec: Record<string, any> };
    expect(() => new Pod(pod as never).validate()).not.toThrow();
    expect(pod.metadata['name']).toBe(names.resourceName);
    expect(pod.metadata['labels']).toEqual({ 'app.kubernetes.io/managed-by': 'gkube', 'gkube.dev/job': names.resourceName });
    expect(pod.metadata['annotations']).toMatchObject({
      'gkube.dev/job-name': 'team/app folder/deploy ünïcode',
      'gkube.dev/image': deployment.image,
      'gkube.dev/commit': deployment.commit,
      'gkube.dev/git-tag': 'v1.4.2',
      'gkube.dev/build-number': '42',
      'gkube.dev/build-url': deployment.buildUrl,
    });
    const c = pod.spec['containers'][0];
    expect(c.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 1000, allowPrivilegeEscalation: false });
    expect(c.volumeMounts).toEqual([{ name: 'code', mountPath: '/srv/app' }]);
    expect(pod.spec['volumes']).toEqual([{ name: 'code', persistentVolumeClaim: { claimName: names.resourceName } }]);
    expect(c.readinessProbe).toBeUndefined();
  });

  test('command, env (sorted), resources, an HTTP health check and no claim (emptyDir)', async () => {
    const cfg = await config(['container.command={node,server.js}', 'container.env.B="2"', 'container.env.A="1"', 'container.resources.limits.memory=256Mi', 'health.http.path=/healthz', 'container.port=3000']);
    const pod = podManifest(names, cfg, deployment, undefined) as { spec: Record<string, any> };
    expect(() => new Pod(pod as never).validate()).not.toThrow();
    const c = pod.spec['containers'][0];
    expect(c.command).toEqual(['node', 'server.js']);
    expect(c.env).toEqual([
      { name: 'A', value: '1' },
      { name: 'B', value: '2' },
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    ]);
    expect(c.resources).toEqual({ limits: { memory: '256Mi' } });
    expect(c.ports).toEqual([{ name: 'http', containerPort: 3000, protocol: 'TCP' }]);
    expect(c.readinessProbe.httpGet).toEqual({ path: '/healthz', port: 3000 });
    expect(pod.spec['volumes']).toEqual([{ name: 'code', emptyDir: {} }]);
  });
});

test('claimManifest: size and class from the configuration, schema-valid', async () => {
  const claim = claimManifest(names, await config(['storage.size=5Gi', 'storage.storageClassName=fast'])) as { spec: Record<string, unknown> };
  expect(() => new PersistentVolumeClaim(claim as never).validate()).not.toThrow();
  expect(claim.spec).toEqual({ accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '5Gi' } }, storageClassName: 'fast' });
});
