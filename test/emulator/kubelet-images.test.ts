// Image references as the emulator's kubelet reads them (pure helpers, table-tested).
import { describe, expect, test } from '@jest/globals';
import { goDuration, ImagePullError, parseImageReference, pullImage } from '../kube-emulator/images.js';
import { expandVars, qosClass } from '../kube-emulator/kubelet.js';
import { parseQuantity } from '../kube-emulator/volumes.js';
import { freePort } from '../harness/index.js';

describe('parseImageReference', () => {
  test.each([
    ['nginx', { repository: 'nginx', reference: 'latest', display: 'nginx:latest' }],
    ['team/app:v1', { repository: 'team/app', tag: 'v1', reference: 'v1', display: 'team/app:v1' }],
    ['127.0.0.1:5000/team/app:v1', { host: '127.0.0.1:5000', repository: 'team/app', reference: 'v1', display: '127.0.0.1:5000/team/app:v1' }],
    ['registry.example.com/team/app', { host: 'registry.example.com', repository: 'team/app', reference: 'latest', display: 'registry.example.com/team/app:latest' }],
    ['localhost/app:1.2.3', { host: 'localhost', repository: 'app', reference: '1.2.3' }],
    [`app@sha256:${'a'.repeat(64)}`, { repository: 'app', digest: `sha256:${'a'.repeat(64)}`, reference: `sha256:${'a'.repeat(64)}`, display: `app@sha256:${'a'.repeat(64)}` }],
  ])('%s', (image, expected) => {
    expect(parseImageReference(image)).toMatchObject(expected);
  });

  test.each(['', 'Team/App', 'app:', 'app:bad tag', ' nginx'])('refuses %j as InvalidImageName', (image) => {
    expect(() => parseImageReference(image)).toThrow(ImagePullError);
    try {
      parseImageReference(image);
    } catch (err) {
      expect((err as ImagePullError).reason).toBe('InvalidImageName');
      expect((err as Error).message).toContain(`couldn't parse image name "${image}"`);
    }
  });

  test('without a registry every image is not found, and says why', async () => {
    await expect(pullImage(undefined, 'team/app:v1')).rejects.toMatchObject({
      reason: 'ErrImagePull',
      message: expect.stringMatching(/^rpc error: code = NotFound desc = failed to pull and unpack image "team\/app:v1": .*not found \(the Kubernetes emulator has no image registry configured/),
    });
  });

  test('an unreachable registry is reported as containerd does', async () => {
    const port = await freePort();
    await expect(pullImage(`http://127.0.0.1:${port}`, 'app:v1')).rejects.toMatchObject({
      message: `rpc error: code = Unknown desc = failed to pull and unpack image "app:v1": failed to resolve reference "app:v1": failed to do request: Head "http://127.0.0.1:${port}/v2/app/manifests/v1": dial tcp 127.0.0.1:${port}: connect: connection refused`,
    });
  });
});

describe('kubelet helpers', () => {
  test.each([
    [1.5, '1.5ms'],
    [25.123456, '25.123456ms'],
    [1500, '1.5s'],
    [10_000, '10s'],
    [90_500, '1m30.5s'],
  ])('goDuration(%p) = %s', (ms, text) => {
    expect(goDuration(ms)).toBe(text);
  });

  test.each([
    ['500m', 0.5],
    ['2', 2],
    ['1Gi', 2 ** 30],
    ['128Mi', 128 * 2 ** 20],
    ['1k', 1000],
  ])('parseQuantity(%s)', (q, n) => {
    expect(parseQuantity(q)).toBe(n);
  });

  test('qosClass', () => {
    const pod = (resources: Record<string, unknown>[]) => ({ metadata: {}, spec: { containers: resources.map((r, i) => ({ name: `c${i}`, resources: r })) } });
    expect(qosClass(pod([{}]))).toBe('BestEffort');
    expect(qosClass(pod([{ limits: { cpu: '1', memory: '1Gi' } }]))).toBe('Guaranteed');
    expect(qosClass(pod([{ requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } }]))).toBe('Guaranteed');
    expect(qosClass(pod([{ requests: { cpu: '500m' }, limits: { cpu: '1', memory: '1Gi' } }]))).toBe('Burstable');
    expect(qosClass(pod([{ limits: { cpu: '1', memory: '1Gi' } }, {}]))).toBe('Burstable');
  });

  test('expandVars', () => {
    const env = new Map([['A', 'x'], ['B', 'y']]);
    const look = (n: string) => env.get(n);
    expect(expandVars('$(A)-$(B)', look)).toBe('x-y');
    expect(expandVars('$(MISSING)', look)).toBe('$(MISSING)');
    expect(expandVars('$$(A)', look)).toBe('$(A)');
    expect(expandVars('cost $5', look)).toBe('cost $5');
  });
});
