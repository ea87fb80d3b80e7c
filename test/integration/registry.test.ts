import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mediaTypes, startRegistry, type TestRegistry } from '../harness/index.js';

describe('real docker-registry (distribution v2)', () => {
  let registry: TestRegistry;

  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  test('a pushed manifest is visible through the registry API by tag and by digest', async () => {
    const pushed = await registry.pushImage('team/app', 'v1.4.2');
    expect(pushed.digest).toMatch(/^sha256:[0-9a-f]{64}$/);

    const tags = (await (await fetch(`${registry.url}/v2/team/app/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags).toContain('v1.4.2');

    const head = await fetch(`${registry.url}/v2/team/app/manifests/v1.4.2`, { method: 'HEAD', headers: { accept: mediaTypes.manifest } });
    expect(head.status).toBe(200);
    expect(head.headers.get('docker-content-digest')).toBe(pushed.digest);

    const manifest = (await (await fetch(`${registry.url}/v2/team/app/manifests/${pushed.digest}`, { headers: { accept: mediaTypes.manifest } })).json()) as {
      config: { digest: string };
    };
    const config = (await (await fetch(`${registry.url}/v2/team/app/blobs/${manifest.config.digest}`)).json()) as { os: string };
    expect(config.os).toBe('linux');
  });

  test('an absent tag is a 404, and deletion is enabled', async () => {
    const missing = await fetch(`${registry.url}/v2/team/app/manifests/v9.9.9`, { method: 'HEAD', headers: { accept: mediaTypes.manifest } });
    expect(missing.status).toBe(404);

    const pushed = await registry.pushImage('team/gone', 'v1');
    const del = await fetch(`${registry.url}/v2/team/gone/manifests/${pushed.digest}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    const after = await fetch(`${registry.url}/v2/team/gone/manifests/v1`, { method: 'HEAD', headers: { accept: mediaTypes.manifest } });
    expect(after.status).toBe(404);
  });
});
