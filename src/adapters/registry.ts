// The image registry edge: one verb-shaped call over the registry HTTP API (distribution v2 / OCI), with
// credentials from the Docker config file. Every request has a deadline; only the idempotent manifest HEAD
// is retried, and only on 5xx, 429 and connection errors. A lookup returns undefined only for a 404.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { GkubeError } from '../errors.js';
import { redact } from '../output/redact.js';

/** An image reference split the way Docker splits it. */
export interface ImageReference {
  /** host[:port]; `docker.io` when the reference names none. */
  registry: string;
  /** The repository path, e.g. `team/app`; single-component Docker Hub names get `library/`. */
  repository: string;
  tag?: string;
  digest?: string;
}

/** The registry host of references that name none. */
export const DOCKER_HUB = 'docker.io';

// distribution/reference's grammar, restricted to sha256 digests (the only kind registries hand out today).
const pathComponent = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const hostPattern = new RegExp(`^(?:${domainComponent}(?:\\.${domainComponent})*|\\[[a-fA-F0-9:]+\\])(?::([0-9]{1,5}))?$`);
const tagPattern = /^[\w][\w.-]{0,127}$/;
const digestPattern = /^sha256:[0-9a-f]{64}$/;
/** Any well-formed content digest, as a registry may return one in Docker-Content-Digest. */
const anyDigestPattern = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const nameMaxLength = 255;

const rules = {
  empty: 'it is empty',
  length: `the name may be at most ${nameMaxLength} characters`,
  host: 'the registry host must be a DNS name, an IPv4 address or a bracketed IPv6 address, with an optional port 1-65535',
  path: "each repository path component must be lowercase letters and digits, separated by '.', '_', '__' or dashes, and none may be empty",
  tag: "the tag must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
  digest: 'the digest must be sha256: followed by 64 lowercase hex digits',
} as const;

/** Splits `[host[:port]/]path[:tag][@digest]` by Docker's rules; anything else is INVALID_INPUT naming the rule. */
export function parseImageReference(ref: string): ImageReference {
  const invalid = (rule: string) => {
    const shown = ref.length > 300 ? `${ref.slice(0, 300)}…` : ref;
    return new GkubeError('INVALID_INPUT', `image: ${redact(JSON.stringify(shown))} is not a valid image reference: ${rule}`);
  };
  if (ref === '') throw invalid(rules.empty);

  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digestPattern.test(digest)) throw invalid(rules.digest);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  // A colon after the last slash starts the tag; one before it belongs to the host's port.
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagPattern.test(tag)) throw invalid(rules.tag);
  }
  if (rest.length > nameMaxLength) throw invalid(rules.length);

  let registry = DOCKER_HUB;
  let path = rest;
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    const host = hostPattern.exec(first);
    const port = host?.[1];
    if (!host || (port !== undefined && (Number(port) < 1 || Number(port) > 65535))) throw invalid(rules.host);
    registry = first === 'index.docker.io' ? DOCKER_HUB : first;
    path = rest.slice(slash + 1);
  }
  const components = path.split('/');
  if (!components.every((c) => pathComponent.test(c))) throw invalid(rules.path);
  if (registry === DOCKER_HUB && components.length === 1) path = `library/${path}`;

  return { registry, repository: path, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** `host/repo[:tag][@digest]` for messages, e.g. `registry.example.com/team/app:v1.4.2`. */
export function describe(image: ImageReference | string): string {
  const ref = typeof image === 'string' ? parseImageReference(image) : image;
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** What the rest of gkube may ask an image registry. */
export interface RegistryPort {
  /**
   * The manifest digest of `host/repo:tag` (or `…@digest`; no tag means `latest`), or undefined when the
   * registry answers 404. Unreachable → DEPENDENCY_UNREACHABLE (exit 4); credentials refused or missing →
   * INVALID_CONFIG (exit 2).
   */
  manifestDigest(image: string): Promise<string | undefined>;
}

/** How to reach registries; the CLI resolves paths and environment. */
export interface RegistryOptions {
  /** The Docker config file to take credentials from (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`); a missing file means anonymous. */
  dockerConfigPath?: string;
  /** Deadline of each HTTP request; default 10 s. */
  timeoutMs?: number;
  /** Registry hosts (`host` or `host:port`) reached over plain http, besides loopback hosts (127.x, localhost, [::1]), which always are. */
  insecureHosts?: string[];
}

/** The media types gkube accepts for a tag: Docker v2 manifest and list, OCI manifest and index. */
export const manifestMediaTypes = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
] as const;

/** Builds the port; nothing is read or dialled until the first call. */
export function createRegistry(options: RegistryOptions = {}): RegistryPort {
  return new HttpRegistry(options);
}

const defaultTimeoutMs = 10_000;
const headTries = 3;
const backoffBaseMs = 250;
/** distribution's own limit on a manifest's size. */
const manifestMaxBytes = 4 * 1024 * 1024;
const tokenMaxBytes = 1024 * 1024;

interface Credentials {
  username: string;
  password: string;
}

/** What the Docker config says about one registry host. */
interface HostAuth {
  credentials?: Credentials;
  /** A credential helper the config names for this host (`credHelpers`/`credsStore`), which gkube does not run. */
  helper?: string;
  /** The entry holds only a token form gkube does not support (identitytoken, registrytoken). */
  unsupportedField?: string;
}

/** The parsed Docker config, or why there is none. */
type DockerConfig = { kind: 'none'; why: string } | { kind: 'file'; path: string; json: Record<string, unknown> };

/** One manifest lookup, for requests and messages. */
interface Lookup {
  ref: ImageReference;
  /** The host requests go to (registry-1.docker.io for docker.io). */
  apiHost: string;
  url: string;
  what: string;
}

interface Authorization {
  header: string;
  withCredentials: boolean;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

class HttpRegistry implements RegistryPort {
  private readonly timeoutMs: number;
  private readonly insecure: Set<string>;
  private config: Promise<DockerConfig> | undefined;

  constructor(private readonly options: RegistryOptions) {
    this.timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    this.insecure = new Set((options.insecureHosts ?? []).map((h) => h.toLowerCase()));
  }

  async manifestDigest(image: string): Promise<string | undefined> {
    const ref = parseImageReference(image);
    const apiHost = ref.registry === DOCKER_HUB ? 'registry-1.docker.io' : ref.registry;
    const reference = ref.digest ?? ref.tag ?? 'latest';
    const lookup: Lookup = {
      ref,
      apiHost,
      url: `${this.scheme(apiHost)}://${apiHost}/v2/${ref.repository}/manifests/${reference}`,
      what: describe({ ...ref, ...(ref.digest === undefined && ref.tag === undefined ? { tag: 'latest' } : {}) }),
    };

    let authorization: Authorization | undefined;
    let res = await this.request(lookup, lookup.url, 'HEAD', undefined);
    if (res.status === 401) {
      authorization = await this.authorize(lookup, res.headers.get('www-authenticate'));
      res = await this.request(lookup, lookup.url, 'HEAD', authorization);
    }
    if (res.status === 401 || res.status === 403) {
      if (authorization?.withCredentials) throw await this.refused(lookup, `HTTP ${res.status}`);
      throw await this.credentialsNeeded(lookup, res.status);
    }
    if (res.status === 404) return undefined;
    if (res.status === 200) {
      const digest = res.headers.get('docker-content-digest');
      if (digest && anyDigestPattern.test(digest)) return digest;
      // The OCI spec makes the header optional: the digest of a by-digest lookup is known, else hash the body.
      if (ref.digest) return ref.digest;
      return this.digestOfBody(lookup, authorization);
    }
    if (res.status === 400) {
      throw new GkubeError('INVALID_INPUT', `registry ${ref.registry} rejected ${lookup.what} as invalid (HTTP 400); nothing was changed`, {
        hint: 'check the image repository and tag',
      });
    }
    throw unusable(lookup, `HTTP ${res.status}`);
  }

  /** GETs the manifest and hashes it, for registries that send no Docker-Content-Digest. */
  private async digestOfBody(lookup: Lookup, authorization: Authorization | undefined): Promise<string | undefined> {
    const res = await this.request(lookup, lookup.url, 'GET', authorization);
    if (res.status === 404) {
      await discard(res);
      return undefined;
    }
    if (res.status !== 200) {
      await discard(res);
      throw unusable(lookup, `HTTP ${res.status} to GET after 200 to HEAD`);
    }
    const header = res.headers.get('docker-content-digest');
    const body = await this.readBody(lookup, res, manifestMaxBytes);
    if (header && anyDigestPattern.test(header)) return header;
    return `sha256:${createHash('sha256').update(body).digest('hex')}`;
  }

  /** Answers a 401 challenge: Basic with the config's credentials, or a Bearer token from the realm. */
  private async authorize(lookup: Lookup, header: string | null): Promise<Authorization> {
    const challenge = parseChallenge(header);
    const auth = await this.hostAuth(lookup.ref.registry);
    const basic = auth.credentials ? `Basic ${Buffer.from(`${auth.credentials.username}:${auth.credentials.password}`).toString('base64')}` : undefined;

    if (challenge?.scheme === 'basic') {
      if (!basic) throw await this.credentialsNeeded(lookup, 401);
      return { header: basic, withCredentials: true };
    }
    if (challenge?.scheme !== 'bearer') {
      throw new GkubeError('INVALID_CONFIG', `registry ${lookup.ref.registry} asks for ${challenge ? `"${challenge.scheme}"` : 'an unnamed'} authentication, which gkube does not support (Basic and Bearer only)`, {
        hint: `check that ${lookup.ref.registry} is a Docker/OCI registry`,
      });
    }

    let realm: URL;
    try {
      realm = new URL(challenge.params.realm ?? '');
      if (realm.protocol !== 'https:' && realm.protocol !== 'http:') throw new Error(realm.protocol);
    } catch (err) {
      throw unusable(lookup, 'a Bearer challenge without a usable http(s) realm', err);
    }
    // Credentials go in clear over http only to hosts the operator lets gkube reach over http.
    if (basic && realm.protocol === 'http:' && !this.allowsHttp(realm.host)) {
      throw new GkubeError('REFUSED', `registry ${lookup.ref.registry} asks gkube to send its credentials over plain http to ${redact(realm.origin)}; refused`, {
        hint: `serve the token service over https, or list ${realm.host} among the insecure registry hosts`,
      });
    }
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service);
    const scopes = (challenge.params.scope ?? `repository:${lookup.ref.repository}:pull`).split(' ').filter((s) => s !== '');
    for (const scope of scopes) realm.searchParams.append('scope', scope);

    const res = await this.request(lookup, realm, 'GET', basic ? { header: basic, withCredentials: true } : undefined, realm);
    if (res.status === 401 || res.status === 403) {
      await discard(res);
      if (basic) throw await this.refused(lookup, `HTTP ${res.status} from its token service`);
      throw await this.credentialsNeeded(lookup, res.status);
    }
    if (res.status !== 200) {
      await discard(res);
      throw unusable(lookup, `HTTP ${res.status} from its token service ${redact(realm.origin)}`);
    }
    const body = await this.readBody(lookup, res, tokenMaxBytes);
    let token: unknown;
    try {
      const json = JSON.parse(body.toString('utf8')) as { token?: unknown; access_token?: unknown };
      token = json.token ?? json.access_token;
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token === '') throw unusable(lookup, `an answer without a token from its token service ${redact(realm.origin)}`);
    return { header: `Bearer ${token}`, withCredentials: basic !== undefined };
  }

  /**
   * One HTTP request with a deadline. HEAD is retried with backoff on 5xx, 429 and connection errors; a
   * request that ran out its deadline is not retried (the deadline is the budget the operator gave), nor is
   * a TLS failure (it would fail the same way again).
   */
  private async request(lookup: Lookup, url: string | URL, method: 'HEAD' | 'GET', authorization: Authorization | undefined, tokenService?: URL): Promise<Response> {
    const headers: Record<string, string> = { accept: tokenService ? 'application/json' : manifestMediaTypes.join(', ') };
    if (authorization) headers.authorization = authorization.header;
    const via = tokenService ? ` from its token service ${redact(tokenService.origin)}` : '';
    const tries = method === 'HEAD' ? headTries : 1;
    for (let attempt = 1; ; attempt++) {
      let failure: string;
      let transient = true;
      let cause: unknown;
      try {
        const res = await fetch(url, { method, headers, signal: AbortSignal.timeout(this.timeoutMs) });
        if (res.status < 500 && res.status !== 429) return res;
        await discard(res);
        failure = `HTTP ${res.status}`;
      } catch (err) {
        if (isTimeout(err)) throw unreachable(lookup, `no answer${via} within ${seconds(this.timeoutMs)}`, err);
        ({ reason: failure, transient } = networkFailure(err));
        cause = err;
      }
      if (attempt >= tries || !transient) throw unreachable(lookup, `${failure}${via}${attempt > 1 ? `, ${attempt} tries` : ''}`, cause);
      await sleep(backoffBaseMs * 2 ** (attempt - 1));
    }
  }

  /** Reads a body up to `max` bytes within the request's deadline (the fetch signal covers the body). */
  private async readBody(lookup: Lookup, res: Response, max: number): Promise<Buffer> {
    if (Number(res.headers.get('content-length') ?? 0) > max) {
      await discard(res);
      throw unusable(lookup, `an answer larger than ${max} bytes`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      const reader = res.body?.getReader();
      for (;;) {
        const chunk = await reader?.read();
        if (!chunk || chunk.done) break;
        size += chunk.value.byteLength;
        if (size > max) {
          await reader?.cancel();
          throw unusable(lookup, `an answer larger than ${max} bytes`);
        }
        chunks.push(Buffer.from(chunk.value));
      }
    } catch (err) {
      if (err instanceof GkubeError) throw err;
      if (isTimeout(err)) throw unreachable(lookup, `no complete answer within ${seconds(this.timeoutMs)}`, err);
      throw unreachable(lookup, networkFailure(err).reason, err);
    }
    return Buffer.concat(chunks);
  }

  private scheme(host: string): 'http' | 'https' {
    return this.allowsHttp(host) ? 'http' : 'https';
  }

  /** Loopback hosts and the listed insecure hosts (with or without their port) are reached over http. */
  private allowsHttp(host: string): boolean {
    const lower = host.toLowerCase();
    const hostname = lower.startsWith('[') ? lower.slice(0, lower.indexOf(']') + 1) : lower.replace(/:[0-9]+$/, '');
    if (hostname === 'localhost' || hostname === '[::1]' || /^127(?:\.[0-9]{1,3}){3}$/.test(hostname)) return true;
    return this.insecure.has(lower) || this.insecure.has(hostname);
  }

  private loadConfig(): Promise<DockerConfig> {
    this.config ??= readDockerConfig(this.options.dockerConfigPath);
    return this.config;
  }

  /** The config's credentials (or credential helper) for a registry host; Docker Hub answers to its old names too. */
  private async hostAuth(registry: string): Promise<HostAuth> {
    const config = await this.loadConfig();
    if (config.kind === 'none') return {};
    const names = registry === DOCKER_HUB ? [DOCKER_HUB, 'index.docker.io', 'registry-1.docker.io'] : [registry.toLowerCase()];
    const find = (section: unknown): [string, unknown] | undefined => {
      if (!isObject(section)) return undefined;
      const keys = Object.keys(section);
      // An exact key wins over one written as a URL (`https://index.docker.io/v1/`), as in Docker.
      const key = keys.find((k) => names.includes(k.toLowerCase())) ?? keys.find((k) => names.includes(configKeyHost(k)));
      return key === undefined ? undefined : [key, section[key]];
    };

    const out: HostAuth = {};
    const helper = find(config.json.credHelpers)?.[1] ?? config.json.credsStore;
    if (typeof helper === 'string' && helper !== '') out.helper = helper;

    const found = find(config.json.auths);
    if (!found || !isObject(found[1])) return out;
    const [key, entry] = found;
    if (typeof entry.auth === 'string' && entry.auth !== '') {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const sep = decoded.indexOf(':');
      if (sep <= 0) {
        throw new GkubeError('INVALID_CONFIG', `the "auth" of auths[${JSON.stringify(key)}] in ${config.path} is not base64 of user:password`, {
          hint: `run docker login ${registry}, or write base64 of user:password there`,
        });
      }
      out.credentials = { username: decoded.slice(0, sep), password: decoded.slice(sep + 1) };
    } else if (typeof entry.username === 'string' && entry.username !== '' && typeof entry.password === 'string') {
      out.credentials = { username: entry.username, password: entry.password };
    } else if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') {
      out.unsupportedField = 'identitytoken';
    } else if (typeof entry.registrytoken === 'string' && entry.registrytoken !== '') {
      out.unsupportedField = 'registrytoken';
    }
    return out;
  }

  /** The registry wants credentials that the config does not give. */
  private async credentialsNeeded(lookup: Lookup, status: number): Promise<GkubeError> {
    const host = lookup.ref.registry;
    const config = await this.loadConfig();
    const auth = await this.hostAuth(host);
    const where = config.kind === 'file' ? config.path : config.why;
    let hint: string;
    if (auth.helper) {
      hint = `${where} names the credential helper docker-credential-${auth.helper} for ${host}; gkube does not run credential helpers (credsStore/credHelpers): put an "auth" (base64 of user:password) in its auths entry for ${host}`;
    } else if (auth.unsupportedField) {
      hint = `the auths entry for ${host} in ${where} holds only an ${auth.unsupportedField}, which gkube does not support: give it an "auth" (base64 of user:password)`;
    } else if (config.kind === 'file' && auth.credentials) {
      hint = `check that the user in ${where} may pull ${lookup.ref.repository} on ${host}; some registries answer ${status} for a repository that does not exist`;
    } else {
      hint = `add an auths entry for ${host} to the Docker config (${where}), e.g. with docker login ${host}`;
    }
    const message = auth.credentials
      ? `registry ${host} refused access to ${lookup.what} (HTTP ${status}) without asking for the credentials gkube has; nothing was changed`
      : `registry ${host} requires credentials for ${lookup.what} (HTTP ${status}) and gkube has none for it; nothing was changed`;
    return new GkubeError('INVALID_CONFIG', message, { hint });
  }

  /** The registry or its token service turned the configured credentials down. */
  private async refused(lookup: Lookup, why: string): Promise<GkubeError> {
    const host = lookup.ref.registry;
    const config = await this.loadConfig();
    const where = config.kind === 'file' ? config.path : 'the Docker config';
    return new GkubeError('INVALID_CONFIG', `registry ${host} refused the credentials from ${where} for ${lookup.what} (${why}); nothing was changed`, {
      hint: `check the auths entry for ${host} in ${where} (docker login ${host} rewrites it) and that this user may pull ${lookup.ref.repository}; some registries refuse a repository that does not exist`,
    });
  }
}

/** Reads the Docker config once; a missing file or none given means anonymous access. */
async function readDockerConfig(path: string | undefined): Promise<DockerConfig> {
  if (path === undefined) return { kind: 'none', why: 'no Docker config was given' };
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none', why: `${path}, which does not exist` };
    throw new GkubeError('INVALID_CONFIG', `the Docker config ${path} could not be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // The parser's message quotes the file's text, which may hold credentials: leave it out.
    throw new GkubeError('INVALID_CONFIG', `the Docker config ${path} is not valid JSON`, { hint: 'fix the file or run docker login again' });
  }
  if (!isObject(json)) throw new GkubeError('INVALID_CONFIG', `the Docker config ${path} is not a JSON object`);
  return { kind: 'file', path, json };
}

/** The host part of an auths/credHelpers key, which Docker lets be a URL (`https://index.docker.io/v1/`). */
function configKeyHost(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').split('/')[0]!.toLowerCase();
}

/** Parses the first challenge of a WWW-Authenticate header: a scheme and its (possibly quoted) parameters. */
function parseChallenge(header: string | null): Challenge | undefined {
  const head = header ? /^\s*([A-Za-z][\w!#$%&'*+.^`|~-]*)(?:\s+|$)/.exec(header) : null;
  if (!header || !head) return undefined;
  const params: Record<string, string> = {};
  const param = /\s*([\w.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s"]*))\s*(?:,|$)/y;
  param.lastIndex = head[0].length;
  for (let m = param.exec(header); m; m = param.exec(header)) {
    params[m[1]!.toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!;
  }
  return { scheme: head[1]!.toLowerCase(), params };
}

function unreachable(lookup: Lookup, why: string, cause?: unknown): GkubeError {
  const scheme = lookup.url.slice(0, lookup.url.indexOf(':'));
  return new GkubeError('DEPENDENCY_UNREACHABLE', `registry ${lookup.ref.registry} did not answer for ${lookup.what}: ${why}; nothing was changed`, {
    hint:
      `check that ${lookup.apiHost} is the right registry host and that it runs and is reachable from this machine over ${scheme}` +
      (scheme === 'https' ? '; a registry that serves plain http must be listed among the insecure registry hosts' : ''),
    ...(cause === undefined ? {} : { cause }),
  });
}

/** The registry answered, but not as a registry does: as unusable as one that did not answer. */
function unusable(lookup: Lookup, what: string, cause?: unknown): GkubeError {
  return new GkubeError('DEPENDENCY_UNREACHABLE', `registry ${lookup.ref.registry} did not answer usably for ${lookup.what}: it gave ${what}; nothing was changed`, {
    hint: `check that ${lookup.apiHost} is a Docker/OCI registry (it should answer /v2/)`,
    ...(cause === undefined ? {} : { cause }),
  });
}

function isTimeout(err: unknown): boolean {
  return (err as { name?: unknown } | null)?.name === 'TimeoutError';
}

/** A short reason for a failed connection, from the error under fetch's "fetch failed", and whether trying again could help. */
function networkFailure(err: unknown): { reason: string; transient: boolean } {
  const cause = (err as { cause?: { code?: unknown; message?: unknown; errors?: Array<{ code?: unknown }> } } | null)?.cause;
  const code = cause?.code ?? cause?.errors?.[0]?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return { reason: 'connection refused', transient: true };
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return { reason: 'connection reset', transient: true };
    case 'ENOTFOUND':
      return { reason: 'host not found', transient: true };
    case 'EAI_AGAIN':
      return { reason: 'host name lookup failed', transient: true };
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return { reason: 'no route to host', transient: true };
  }
  // A TLS failure (an untrusted certificate, plain http on the port) will not change on a second try.
  if (typeof code === 'string' && /^(?:ERR_SSL_|ERR_TLS_|CERT_|DEPTH_ZERO_|SELF_SIGNED_|UNABLE_TO_)/.test(code)) return { reason: `TLS failed (${code})`, transient: false };
  if (typeof code === 'string') return { reason: `connection failed (${code})`, transient: true };
  // fetch refuses some ports outright ("bad port") with no system error code.
  if (typeof cause?.message === 'string' && cause.message.length <= 80) return { reason: `connection failed (${redact(cause.message)})`, transient: false };
  return { reason: 'connection failed', transient: true };
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))}s`;
}

async function discard(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => undefined);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
