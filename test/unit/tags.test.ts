import { describe, expect, test } from '@jest/globals';
import { highest, imageTagFor, imageTagOf } from '../../src/deploy/tags.js';
import { gkubeErrorFrom } from '../helpers/errors.js';

const commit = '0123456789abcdef0123456789abcdef01234567';
const imageTagRe = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

describe('imageTagFor', () => {
  test.each([
    ['nearest', [], 'v1.4.2', { imageTag: 'v1.4.2', gitTag: 'v1.4.2' }],
    ['nearest', ['v1.5.0'], 'v1.5.0', { imageTag: 'v1.5.0', gitTag: 'v1.5.0' }],
    ['nearest', ['v1.9.0', 'v1.10.0'], 'v1.10.0', { imageTag: 'v1.10.0', gitTag: 'v1.10.0' }],
    ['exact', ['v2.0.0'], 'v2.0.0', { imageTag: 'v2.0.0', gitTag: 'v2.0.0' }],
    ['exact', ['release-2', 'release-10'], 'release-10', { imageTag: 'release-10', gitTag: 'release-10' }],
    ['commit', ['v2.0.0'], 'v2.0.0', { imageTag: 'sha-0123456789ab' }],
    ['commit', [], undefined, { imageTag: 'sha-0123456789ab' }],
  ] as const)('%s with tags %j at the commit, nearest %s', (policy, tagsAtCommit, nearestTag, expected) => {
    expect(imageTagFor(policy, { commit, tagsAtCommit: [...tagsAtCommit], ...(nearestTag ? { nearestTag } : {}) })).toEqual(expected);
  });

  test.each([
    ['exact', [], 'v1.0.0', 'tag policy exact: commit 0123456789ab has no git tag; nothing was changed'],
    ['nearest', [], undefined, 'tag policy nearest: no git tag at or before commit 0123456789ab; nothing was changed'],
  ] as const)('%s refuses (exit 2): tags %j, nearest %s', (policy, tagsAtCommit, nearestTag, message) => {
    const error = gkubeErrorFrom(() => imageTagFor(policy, { commit, tagsAtCommit: [...tagsAtCommit], ...(nearestTag ? { nearestTag } : {}) }));
    expect(error.message).toBe(message);
    expect(error.exitCode).toBe(2);
  });
});

describe('imageTagOf: git tag → image tag', () => {
  test.each(['v1.4.2', 'release_2026-11-22', '1.0.0-rc.1', 'A'.repeat(128)])('%s is used as it is', (tag) => {
    expect(imageTagOf(tag)).toBe(tag);
  });

  test.each([
    ['v1/hotfix', /^v1-hotfix-[0-9a-f]{7}$/],
    ['1.0+build.5', /^1\.0-build\.5-[0-9a-f]{7}$/],
    ['.hidden', /^_hidden-[0-9a-f]{7}$/],
    ['-dash', /^_dash-[0-9a-f]{7}$/],
    ['x'.repeat(200), /^x{120}-[0-9a-f]{7}$/],
    ['ünïcode', /^_n-code-[0-9a-f]{7}$/],
  ])('%s maps to %s', (tag, pattern) => {
    const mapped = imageTagOf(tag);
    expect(mapped).toMatch(pattern);
    expect(mapped).toMatch(imageTagRe);
  });

  test('two git tags that differ only in unsafe characters never share an image tag', () => {
    expect(imageTagOf('v1/hotfix')).not.toBe(imageTagOf('v1+hotfix'));
    expect(imageTagOf('v1/hotfix')).not.toBe(imageTagOf('v1-hotfix'));
  });
});

test('highest compares numbers as numbers', () => {
  expect(highest(['v1.2.10', 'v1.2.9', 'v1.10.0', 'v1.9.99'])).toBe('v1.10.0');
  expect(highest([])).toBeUndefined();
});
