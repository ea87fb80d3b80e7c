import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { createRegistry, manifestMediaTypes, type RegistryPort } from '../../src/adapters/registry.js';
import type { GkubeError } from '../../src/errors.js';
import { freePort, glusterHost, mediaTypes, sha256, startRegistry, tempDir, type PushedImage, type TestRegistry } from '../harness/index.js';
import { gkubeErrorOf } from '../helpers/errors.js';

/** A tiny registry stand-in on loopback, for what the real docker-registry cannot be made to do. */
interface FakeServer {
  host: string;
  requests: Array<{ method: string; url: string; authorization?: string; accept?: string }>;
  close(): Promise<void>;
}

async function serve(handler: (req: IncomingMessage, res: ServerResponse, host: string) => void, listen = '127.0.0.1'): Promise<FakeServer> {
  const requests: FakeServer['requests'] = [];
  let host = '';
  const server: Server = createServer((req, res) => {
    requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      ...(req.headers.accept ? { accept: req.headers.accept } : {}),
    });
    handler(req, res, host);
  });
  await new Promise<void>((resolve) => server.listen(0, listen, resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('no address');
  host = `127.0.0.1:${address.port}`;
  return {
    host,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const digest = sha256(Buffer.from('a manifest'));
const password = 's3cret-pw';

describe('registry adapter against the real docker-registry', () => {
  let registry: TestRegistry;
  let pushed: PushedImage;
  let port: RegistryPort;

  beforeAll(async () => {
    registry = await startRegistry();
    pushed = await registry.pushImage('team/app', 'v1.4.2');
    port = createRegistry({ timeoutMs: 5_000 });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  test('a pushed tag gives the digest the registry stored', async () => {
    expect(await port.manifestDigest(`${registry.host}/team/app:v1.4.2`)).toBe(pushed.digest);
  });

  test('a lookup by digest gives the digest back', async () => {
    expect(await port.manifestDigest(`${registry.host}/team/app@${pushed.digest}`)).toBe(pushed.digest);
  });

  test('two tags of different images give different digests', async () => {
    const other = await registry.pushImage('team/app', 'v1.5.0');
    expect(other.digest).not.toBe(pushed.digest);
    expect(await port.manifestDigest(`${registry.host}/team/app:v1.5.0`)).toBe(other.digest);
  });

  test('an absent tag is undefined', async () => {
    expect(await port.manifestDigest(`${registry.host}/team/app:v9.9.9`)).toBeUndefined();
  });

  test('an absent repository is undefined', async () => {
    expect(await port.manifestDigest(`${registry.host}/team/nothing-here:v1`)).toBeUndefined();
  });

  test('an invalid reference is exit 2 before any request', async () => {
    const err = await gkubeErrorOf(port.manifestDigest(`${registry.host}/Team/App:v1`));
    expect(err.code).toBe('INVALID_INPUT');
    expect(err.exitCode).toBe(2);
  });
});

describe('registry adapter: unreachable and failing registries', () => {
  test('a port nobody listens on is exit 4 within the timeout', async () => {
    const host = `127.0.0.1:${await freePort()}`;
    const started = Date.now();
    const err = await gkubeErrorOf(createRegistry({ timeoutMs: 2_000 }).manifestDigest(`${host}/team/app:v1`));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(err.code).toBe('DEPENDENCY_UNREACHABLE');
    expect(err.exitCode).toBe(4);
    expect(err.message).toBe(`registry ${host} did not answer for ${host}/team/app:v1: connection refused, 3 tries; nothing was changed`);
  });

  test('a registry that accepts the connection but never answers is exit 4 after one deadline, not retried', async () => {
    const server = await serve(() => undefined);
    try {
      const started = Date.now();
      const err = await gkubeErrorOf(createRegistry({ timeoutMs: 300 }).manifestDigest(`${server.host}/team/app:v1`));
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(err.exitCode).toBe(4);
      expect(err.message).toContain('did not answer for');
      expect(err.message).toContain('no answer within 0.3s');
      expect(server.requests).toHaveLength(1);
    } finally {
      await server.close();
    }
  });

  test('a HEAD that meets 503 is retried with backoff and succeeds', async () => {
    let calls = 0;
    const server = await serve((req, res) => {
      calls += 1;
      if (calls <= 2) res.writeHead(503).end();
      else res.writeHead(200, { 'docker-content-digest': digest, 'content-type': mediaTypes.manifest }).end();
    });
    try {
      expect(await createRegistry({ timeoutMs: 2_000 }).manifestDigest(`${server.host}/team/app:v1`)).toBe(digest);
      expect(server.requests.map((r) => r.method)).toEqual(['HEAD', 'HEAD', 'HEAD']);
    } finally {
      await server.close();
    }
  });

  test('a registry that keeps answering 500 is exit 4 after three tries', async () => {
    const server = await serve((req, res) => res.writeHead(500).end());
    try {
      const err = await gkubeErrorOf(createRegistry({ timeoutMs: 2_000 }).manifestDigest(`${server.host}/team/app:v1`));
      expect(err.exitCode).toBe(4);
      expect(err.message).toContain(`registry ${server.host} did not answer for ${server.host}/team/app:v1: HTTP 500, 3 tries`);
      expect(server.requests).toHaveLength(3);
    } finally {
      await server.close();
    }
  });

  test('loopback hosts are reached over http; any other host over https unless it is listed as insecure', async () => {
    const server = await serve((req, res) => res.writeHead(200, { 'docker-content-digest': digest }).end(), '0.0.0.0');
    // The machine's own name (or address): not a loopback name, though it leads to this machine.
    const name = glusterHost();
    const portNumber = server.host.split(':')[1]!;
    try {
      expect(await createRegistry().manifestDigest(`localhost:${portNumber}/team/app:v1`)).toBe(digest);
      expect(await createRegistry({ insecureHosts: [name] }).manifestDigest(`${name}:${portNumber}/team/app:v1`)).toBe(digest);
      expect(await createRegistry({ insecureHosts: [`${name}:${portNumber}`] }).manifestDigest(`${name}:${portNumber}/team/app:v1`)).toBe(digest);
      const seen = server.requests.length;
      const err = await gkubeErrorOf(createRegistry({ timeoutMs: 2_000 }).manifestDigest(`${name}:${portNumber}/team/app:v1`));
      expect(err.exitCode).toBe(4);
      expect(err.message).toMatch(/: TLS failed \(ERR_SSL_[A-Z_]+\); nothing was changed$/);
      expect(err.hint).toContain('over https; a registry that serves plain http must be listed among the insecure registry hosts');
      // A TLS hello is no HTTP request: the server saw none.
      expect(server.requests.length).toBe(seen);
    } finally {
      await server.close();
    }
  });

  test('a registry that sends no Docker-Content-Digest: the digest is that of the manifest body', async () => {
    const manifest = JSON.stringify({ schemaVersion: 2, mediaType: manifestMediaTypes[2] });
    const server = await serve((req, res) => {
      res.writeHead(200, { 'content-type': manifestMediaTypes[2], 'content-length': Buffer.byteLength(manifest) });
      res.end(req.method === 'GET' ? manifest : undefined);
    });
    try {
      expect(await createRegistry().manifestDigest(`${server.host}/team/app:v1`)).toBe(sha256(Buffer.from(manifest)));
      expect(server.requests.map((r) => r.method)).toEqual(['HEAD', 'GET']);
    } finally {
      await server.close();
    }
  });
});

describe('registry adapter: credentials from the Docker config', () => {
  let dir: string;
  let basic: FakeServer;
  let bearer: FakeServer;
  const tokens = { ci: 'tok-ci-1', anonymous: 'tok-anon-1' };

  beforeAll(async () => {
    dir = await tempDir('registry-auth');
    basic = await serve((req, res) => {
      if (req.headers.authorization !== `Basic ${b64(`ci:${password}`)}`) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="gkube-test"' }).end();
      } else if (req.url === '/v2/team/app/manifests/v1') {
        res.writeHead(200, { 'docker-content-digest': digest, 'content-type': mediaTypes.manifest }).end();
      } else {
        res.writeHead(404).end();
      }
    });
    bearer = await serve((req, res, host) => {
      const url = new URL(req.url ?? '/', `http://${host}`);
      if (url.pathname === '/token') {
        const scope = url.searchParams.getAll('scope');
        if (url.searchParams.get('service') !== 'gkube-test') return void res.writeHead(400).end();
        if (!req.headers.authorization && scope.every((s) => s.startsWith('repository:public/'))) {
          return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: tokens.anonymous }));
        }
        if (req.headers.authorization !== `Basic ${b64(`ci:${password}`)}`) return void res.writeHead(401).end();
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: tokens.ci, expires_in: 300 }));
      }
      const repo = /^\/v2\/(.+)\/manifests\/[^/]+$/.exec(url.pathname)?.[1] ?? '';
      const allowed = req.headers.authorization === `Bearer ${tokens.ci}` || (req.headers.authorization === `Bearer ${tokens.anonymous}` && repo.startsWith('public/'));
      if (!allowed) {
        // The scope is quoted and holds a comma, as real registries send it for push+pull.
        const challenge = `Bearer realm="http://${host}/token",service="gkube-test",scope="repository:${repo}:pull,push"`;
        return void res.writeHead(401, { 'www-authenticate': challenge }).end();
      }
      if (url.pathname.endsWith('/manifests/v1')) return void res.writeHead(200, { 'docker-content-digest': digest }).end();
      res.writeHead(404).end();
    });
  });
  afterAll(async () => {
    await basic?.close();
    await bearer?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function dockerConfig(name: string, content: unknown): Promise<string> {
    const path = join(dir, `${name}.json`);
    await writeFile(path, JSON.stringify(content));
    return path;
  }

  function expectNoSecret(err: GkubeError): void {
    const shown = `${err.message}\n${err.hint ?? ''}\n${inspect(err)}`;
    for (const secret of [password, 'wrong-pw', b64(`ci:${password}`), b64('ci:wrong-pw')]) expect(shown).not.toContain(secret);
  }

  test('Basic: a challenge is answered with the "auth" of the config, and the Accept header names all four manifest types', async () => {
    const path = await dockerConfig('basic-ok', { auths: { [basic.host]: { auth: b64(`ci:${password}`) } } });
    basic.requests.length = 0;
    expect(await createRegistry({ dockerConfigPath: path }).manifestDigest(`${basic.host}/team/app:v1`)).toBe(digest);
    expect(basic.requests.map((r) => [r.method, r.authorization ?? null])).toEqual([
      ['HEAD', null],
      ['HEAD', `Basic ${b64(`ci:${password}`)}`],
    ]);
    expect(basic.requests[0]!.accept!.split(/,\s*/).sort()).toEqual([...manifestMediaTypes].sort());
  });

  test('Basic: username/password under a key written as a URL work too, and an absent tag is undefined', async () => {
    const path = await dockerConfig('basic-url-key', { auths: { [`http://${basic.host}/v2/`]: { username: 'ci', password } } });
    const port = createRegistry({ dockerConfigPath: path });
    expect(await port.manifestDigest(`${basic.host}/team/app:v1`)).toBe(digest);
    expect(await port.manifestDigest(`${basic.host}/team/app:v2`)).toBeUndefined();
  });

  test('Basic: wrong credentials are exit 2, and the password appears nowhere', async () => {
    const path = await dockerConfig('basic-wrong', { auths: { [basic.host]: { auth: b64('ci:wrong-pw') } } });
    const err = await gkubeErrorOf(createRegistry({ dockerConfigPath: path }).manifestDigest(`${basic.host}/team/app:v1`));
    expect(err.code).toBe('INVALID_CONFIG');
    expect(err.exitCode).toBe(2);
    expect(err.message).toBe(`registry ${basic.host} refused the credentials from ${path} for ${basic.host}/team/app:v1 (HTTP 401); nothing was changed`);
    expectNoSecret(err);
  });

  test('Basic: no credentials at all is exit 2 saying so', async () => {
    const err = await gkubeErrorOf(createRegistry({ dockerConfigPath: join(dir, 'missing.json') }).manifestDigest(`${basic.host}/team/app:v1`));
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain(`registry ${basic.host} requires credentials for ${basic.host}/team/app:v1 (HTTP 401) and gkube has none`);
    expect(err.hint).toContain('does not exist');
  });

  test('a credential helper named for the host is not run, and the hint says so', async () => {
    const path = await dockerConfig('helper', { auths: { [basic.host]: {} }, credHelpers: { [basic.host]: 'ecr-login' } });
    const err = await gkubeErrorOf(createRegistry({ dockerConfigPath: path }).manifestDigest(`${basic.host}/team/app:v1`));
    expect(err.exitCode).toBe(2);
    expect(err.hint).toContain('docker-credential-ecr-login');
    expect(err.hint).toContain('does not run credential helpers');

    const store = await dockerConfig('store', { auths: { [basic.host]: {} }, credsStore: 'desktop' });
    const err2 = await gkubeErrorOf(createRegistry({ dockerConfigPath: store }).manifestDigest(`${basic.host}/team/app:v1`));
    expect(err2.hint).toContain('docker-credential-desktop');
  });

  test('a Docker config that is not JSON is exit 2 without quoting the file', async () => {
    const path = join(dir, 'broken.json');
    await writeFile(path, `{"auths": {"x": {"auth": "${b64(`ci:${password}`)}"`);
    const err = await gkubeErrorOf(createRegistry({ dockerConfigPath: path }).manifestDigest(`${basic.host}/team/app:v1`));
    expect(err.message).toBe(`the Docker config ${path} is not valid JSON`);
    expect(err.exitCode).toBe(2);
    expectNoSecret(err);
  });

  test('Bearer: a token is fetched from the realm with the credentials, then the HEAD is repeated with it', async () => {
    const path = await dockerConfig('bearer-ok', { auths: { [bearer.host]: { auth: b64(`ci:${password}`) } } });
    bearer.requests.length = 0;
    expect(await createRegistry({ dockerConfigPath: path }).manifestDigest(`${bearer.host}/team/app:v1`)).toBe(digest);
    expect(await createRegistry({ dockerConfigPath: path }).manifestDigest(`${bearer.host}/team/app:v2`)).toBeUndefined();
    const [head, token, retried] = bearer.requests;
    expect([head!.method, head!.authorization]).toEqual(['HEAD', undefined]);
    const tokenUrl = new URL(token!.url, 'http://x');
    expect(tokenUrl.pathname).toBe('/token');
    expect(tokenUrl.searchParams.get('service')).toBe('gkube-test');
    expect(tokenUrl.searchParams.getAll('scope')).toEqual(['repository:team/app:pull,push']);
    expect(token!.authorization).toBe(`Basic ${b64(`ci:${password}`)}`);
    expect([retried!.method, retried!.authorization]).toEqual(['HEAD', `Bearer ${tokens.ci}`]);
  });

  test('Bearer: without credentials an anonymous token is used where the registry allows it', async () => {
    expect(await createRegistry().manifestDigest(`${bearer.host}/public/app:v1`)).toBe(digest);
    const err = await gkubeErrorOf(createRegistry().manifestDigest(`${bearer.host}/team/app:v1`));
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain('requires credentials');
  });

  test('Bearer: wrong credentials are refused by the token service: exit 2, and the password appears nowhere', async () => {
    const path = await dockerConfig('bearer-wrong', { auths: { [bearer.host]: { username: 'ci', password: 'wrong-pw' } } });
    const err = await gkubeErrorOf(createRegistry({ dockerConfigPath: path }).manifestDigest(`${bearer.host}/team/app:v1`));
    expect(err.code).toBe('INVALID_CONFIG');
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain(`registry ${bearer.host} refused the credentials from ${path}`);
    expect(err.message).toContain('HTTP 401 from its token service');
    expectNoSecret(err);
  });

  test('credentials are not sent in clear to a token realm on a host that is not allowed plain http', async () => {
    const server = await serve((req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://auth.example.invalid/token",service="x"' }).end();
    });
    try {
      const path = await dockerConfig('cleartext', { auths: { [server.host]: { auth: b64(`ci:${password}`) } } });
      const err = await gkubeErrorOf(createRegistry({ dockerConfigPath: path }).manifestDigest(`${server.host}/team/app:v1`));
      expect(err.code).toBe('REFUSED');
      expect(err.exitCode).toBe(6);
      expectNoSecret(err);
    } finally {
      await server.close();
    }
  });
});
