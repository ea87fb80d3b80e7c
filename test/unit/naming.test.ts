import { describe, expect, test } from '@jest/globals';
import { jobNameFromKey, jobNames, prefixedResourceName } from '../../src/jobs/naming.js';
import { glusterObjectNames } from '../../src/provision/manifests.js';
import { gkubeErrorFrom } from '../helpers/errors.js';

const dns1123Label = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

// Real-looking Jenkins JOB_NAMEs: folders, multibranch (%2F), spaces, unicode, long names.
const corpus = [
  'deploy',
  'team/app/deploy',
  'team/app folder/deploy ünïcode',
  'shop/checkout-service/feature%2Flogin',
  'shop/checkout-service/feature/login',
  'shop/checkout-service/PR-1234',
  'Platform Team/Ops/Nightly Cleanup',
  '日本語/ジョブ',
  '123-numeric-start',
  'a'.repeat(300),
  'a'.repeat(299) + 'b',
  'x/'.repeat(100) + 'end',
  'Ωmega.release_v1.2',
  'café',
  'cafe\u0301', // the same visible name, decomposed
];

describe('jobNames', () => {
  test.each(corpus)('%s → a DNS-1123 label ≤ 63 chars and a reversible key without "/"', (name) => {
    const n = jobNames(name);
    expect(n.resourceName.length).toBeLessThanOrEqual(63);
    expect(n.resourceName).toMatch(dns1123Label);
    expect(n.key).not.toContain('/');
    expect(jobNameFromKey(n.key)).toBe(name.normalize('NFC'));
    expect(jobNames(name)).toEqual(n); // stable
  });

  test('different names never share a key or a resource name', () => {
    const distinct = [...new Set(corpus.map((n) => n.normalize('NFC')))];
    const keys = new Set(distinct.map((n) => jobNames(n).key));
    const resources = new Set(distinct.map((n) => jobNames(n).resourceName));
    expect(keys.size).toBe(distinct.length);
    expect(resources.size).toBe(distinct.length);
  });

  test('names with a prefix (the Gluster Service and Endpoints) stay DNS-1035 labels ≤ 63 that never collide', () => {
    const long = 'platform-team/payments-service-backend/feature-branches';
    const distinct = [...new Set([...corpus, `${long}/PR-6`, `${long}/PR-16`].map((n) => n.normalize('NFC')))];
    const prefixed = distinct.map((n) => prefixedResourceName(jobNames(n), 'glusterfs'));
    for (const [i, p] of prefixed.entries()) {
      expect(p.length).toBeLessThanOrEqual(63);
      expect(p).toMatch(/^glusterfs-([-a-z0-9]*[a-z0-9])?$/);
      // The readable part is cut, never the hash that tells jobs apart.
      expect(p.endsWith(`-${jobNames(distinct[i]!).resourceName.slice(-12)}`)).toBe(true);
    }
    expect(new Set(prefixed).size).toBe(distinct.length);
    expect(glusterObjectNames(jobNames(`${long}/PR-6`), 'default').endpoints).not.toBe(glusterObjectNames(jobNames(`${long}/PR-16`), 'default').endpoints);
    expect(prefixedResourceName(jobNames('team/app'), 'glusterfs')).toBe(`glusterfs-${jobNames('team/app').resourceName}`);
  });

  test('the same visible name in NFC and NFD is one job', () => {
    expect(jobNames('café')).toEqual(jobNames('cafe\u0301'));
  });

  test.each([
    ['team/app folder/deploy ünïcode', /^team-app-folder-deploy-unicode-[0-9a-f]{12}$/],
    ['shop/checkout-service/feature%2Flogin', /^shop-checkout-service-feature-login-[0-9a-f]{12}$/],
    ['123-numeric-start', /^j-123-numeric-start-[0-9a-f]{12}$/],
    ['日本語/ジョブ', /^j-[0-9a-f]{12}$/],
  ])('%s reads as %s', (name, pattern) => {
    expect(jobNames(name).resourceName).toMatch(pattern);
  });

  test.each([
    ['', 'job: the job name is empty'],
    ['   ', 'job: the job name is empty'],
    ['x'.repeat(10 * 1024), 'job: the job name is 10240 bytes long; at most 1024 are allowed'],
    ['bad\nname', 'job: the job name contains a control character (newline, tab, …)'],
    [' padded', 'job: the job name starts or ends with white space'],
  ])('refuses %j', (name, message) => {
    const error = gkubeErrorFrom(() => jobNames(name));
    expect(error.message).toBe(message);
    expect(error.exitCode).toBe(2);
  });
});
