import { describe, expect, test } from '@jest/globals';
import { describe as describeImage, parseImageReference, type ImageReference } from '../../src/adapters/registry.js';
import { GkubeError } from '../../src/errors.js';

const digest = `sha256:${'0123456789abcdef'.repeat(4)}`;

describe('parseImageReference: valid references', () => {
  test.each<[string, ImageReference]>([
    ['nginx', { registry: 'docker.io', repository: 'library/nginx' }],
    ['nginx:1.25', { registry: 'docker.io', repository: 'library/nginx', tag: '1.25' }],
    ['team/app:v1', { registry: 'docker.io', repository: 'team/app', tag: 'v1' }],
    ['docker.io/nginx', { registry: 'docker.io', repository: 'library/nginx' }],
    ['index.docker.io/team/app', { registry: 'docker.io', repository: 'team/app' }],
    ['localhost/app', { registry: 'localhost', repository: 'app' }],
    ['localhost:5000/team/app:v1.4.2', { registry: 'localhost:5000', repository: 'team/app', tag: 'v1.4.2' }],
    ['registry.example.com/team/sub/app:1.0', { registry: 'registry.example.com', repository: 'team/sub/app', tag: '1.0' }],
    ['Registry.Example.com/app', { registry: 'Registry.Example.com', repository: 'app' }],
    ['127.0.0.1:41234/team/app:v1', { registry: '127.0.0.1:41234', repository: 'team/app', tag: 'v1' }],
    ['[::1]:5000/app:v1', { registry: '[::1]:5000', repository: 'app', tag: 'v1' }],
    ['registry:5000/app', { registry: 'registry:5000', repository: 'app' }],
    [`registry.example.com/app@${digest}`, { registry: 'registry.example.com', repository: 'app', digest }],
    [`registry.example.com/app:v1@${digest}`, { registry: 'registry.example.com', repository: 'app', tag: 'v1', digest }],
    ['a__b/c.d/e-f--g:V_1.0-rc', { registry: 'docker.io', repository: 'a__b/c.d/e-f--g', tag: 'V_1.0-rc' }],
    [`app:_${'x'.repeat(127)}`, { registry: 'docker.io', repository: 'library/app', tag: `_${'x'.repeat(127)}` }],
    // Docker reads a lone `host:port` as a Docker Hub name with a tag, and so does gkube.
    ['localhost:5000', { registry: 'docker.io', repository: 'library/localhost', tag: '5000' }],
  ])('%s', (ref, expected) => {
    expect(parseImageReference(ref)).toEqual(expected);
  });
});

describe('parseImageReference: each rule', () => {
  const rule = {
    empty: 'it is empty',
    length: 'at most 255 characters',
    host: 'the registry host must be',
    path: 'each repository path component must be lowercase',
    tag: 'the tag must be 1 to 128',
    digest: 'the digest must be sha256:',
  };
  test.each<[string, string]>([
    ['', rule.empty],
    ['Team/app', rule.path],
    ['team/App', rule.path],
    ['team//app', rule.path],
    ['team/app/', rule.path],
    ['-app', rule.path],
    ['app_', rule.path],
    ['a___b', rule.path],
    ['a..b', rule.path],
    ['registry.example.com/', rule.path],
    ['team/app name', rule.path],
    ['registry.example.com:99999/app', rule.host],
    ['registry.example.com:0/app', rule.host],
    ['my_host.example.com/app', rule.host],
    ['-bad.example.com/app', rule.host],
    ['https://registry.example.com/app', rule.host],
    ['[::g]:5000/app', rule.host],
    ['app:', rule.tag],
    ['app:.v1', rule.tag],
    ['app:-v1', rule.tag],
    [`app:${'x'.repeat(129)}`, rule.tag],
    ['team/app:v1 extra', rule.tag],
    ['app:v1+build', rule.tag],
    ['app@sha256:abc', rule.digest],
    [`app@sha512:${'ab'.repeat(64)}`, rule.digest],
    [`app@${digest.toUpperCase()}`, rule.digest],
    [`app@${digest}@${digest}`, rule.digest],
    [`registry.example.com/${'a/'.repeat(120)}app`, rule.length],
  ])('%j: %s', (ref, expected) => {
    let caught: unknown;
    try {
      parseImageReference(ref);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(GkubeError);
    const err = caught as GkubeError;
    expect(err.code).toBe('INVALID_INPUT');
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(/^image: ".*" is not a valid image reference: /);
    expect(err.message.startsWith(`image: ${JSON.stringify(ref)} is not a valid image reference: `)).toBe(true);
    expect(err.message).toContain(expected);
  });

  test('credentials written into a reference are masked in the message', () => {
    expect(() => parseImageReference('https://ci:hunter2@registry.example.com/app')).toThrow(/^image: "https:\/\/\*\*\*@registry\.example\.com\/app" is not a valid/);
  });

  test('control characters are escaped, so the error stays one line', () => {
    expect(() => parseImageReference('app:v1\nerror: fake')).toThrow(/^image: "app:v1\\nerror: fake" is not a valid image reference: the tag/);
  });
});

describe('describe', () => {
  test.each<[ImageReference | string, string]>([
    ['nginx', 'docker.io/library/nginx'],
    ['127.0.0.1:5000/team/app:v1', '127.0.0.1:5000/team/app:v1'],
    [{ registry: 'registry.example.com', repository: 'team/app', tag: 'v1', digest }, `registry.example.com/team/app:v1@${digest}`],
  ])('%j', (image, expected) => {
    expect(describeImage(image)).toBe(expected);
  });
});
