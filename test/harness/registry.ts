import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { freePort, requireProgram, ServiceProcess, TempDirs, waitUntil } from './process.js';

/** Media types of a Docker v2 schema 2 image, which every OCI registry accepts. */
export const mediaTypes = {
  manifest: 'application/vnd.docker.distribution.manifest.v2+json',
  config: 'application/vnd.docker.container.image.v1+json',
  layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** What pushImage stored. */
export interface PushedImage {
  reference: string;
  /** The manifest's digest, as the registry returns in Docker-Content-Digest. */
  digest: string;
}

/** A real docker-registry (distribution v2) on a loopback port, deletion enabled, storage in a temp dir. */
export interface TestRegistry {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  /** host:port, as it appears in an image reference. */
  host: string;
  /** Pushes a small image (one layer, a config blob and a manifest) as `repo:tag` through the HTTP API. */
  pushImage(repo: string, tag: string): Promise<PushedImage>;
  stop(): Promise<void>;
}

/** Starts Debian's docker-registry with a generated config. */
export async function startRegistry(): Promise<TestRegistry> {
  const binary = await requireProgram('docker-registry', 'docker-registry');
  const temp = new TempDirs();
  const dir = await temp.make('registry');
  const port = await freePort();
  const config = [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
  ].join('\n');
  const configFile = join(dir, 'config.yml');
  await writeFile(configFile, config + '\n');
  const proc = new ServiceProcess('docker-registry', binary, ['serve', configFile], join(dir, 'registry.log'));
  const url = `http://127.0.0.1:${port}`;
  proc.start();
  try {
    await waitUntil(`docker-registry at ${url}`, async () => {
      if (!proc.running) throw new Error(`exited:\n${proc.logTail()}`);
      return (await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1_000) })).status === 200;
    });
  } catch (err) {
    await proc.stop('SIGKILL');
    await temp.removeAll();
    throw err;
  }
  return {
    url,
    host: `127.0.0.1:${port}`,
    pushImage: (repo, tag) => pushImage(url, repo, tag),
    async stop() {
      await proc.stop();
      await temp.removeAll();
    },
  };
}

async function pushImage(url: string, repo: string, tag: string): Promise<PushedImage> {
  // An empty tar (two zero blocks) is a valid layer; the image's content does not matter to gkube.
  const layer = gzipSync(Buffer.alloc(1024));
  const diffId = sha256(Buffer.alloc(1024));
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Labels: { 'org.opencontainers.image.version': tag } },
      rootfs: { type: 'layers', diff_ids: [diffId] },
    }),
  );
  await uploadBlob(url, repo, layer);
  await uploadBlob(url, repo, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: mediaTypes.manifest,
      config: { mediaType: mediaTypes.config, size: config.length, digest: sha256(config) },
      layers: [{ mediaType: mediaTypes.layer, size: layer.length, digest: sha256(layer) }],
    }),
  );
  const res = await fetch(`${url}/v2/${repo}/manifests/${encodeURIComponent(tag)}`, {
    method: 'PUT',
    headers: { 'content-type': mediaTypes.manifest },
    body: manifest,
  });
  if (res.status !== 201) throw new Error(`registry refused manifest ${repo}:${tag}: HTTP ${res.status} ${await res.text()}`);
  return { reference: `${repo}:${tag}`, digest: res.headers.get('docker-content-digest') ?? sha256(manifest) };
}

async function uploadBlob(url: string, repo: string, blob: Buffer): Promise<void> {
  const digest = sha256(blob);
  const start = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`registry refused an upload to ${repo}: HTTP ${start.status}`);
  const location = new URL(start.headers.get('location') ?? '', url);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: blob });
  if (put.status !== 201) throw new Error(`registry refused blob ${digest}: HTTP ${put.status} ${await put.text()}`);
}

/** `sha256:<hex>` of the bytes, as registries name content. */
export function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}
