// Turns flags and environment into the action context: etcd and Kubernetes connections (opened lazily),
// the clock, who is running, and where progress goes.
import { readFileSync } from 'node:fs';
import { homedir, hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Context, Identity } from '../context.js';
import { systemClock } from '../clock.js';
import { GkubeError } from '../errors.js';
import { isRunning } from '../process.js';
import { redact, redactValue } from '../output/redact.js';
import type { EtcdConnection, EtcdPort } from '../adapters/etcd.js';
import type { KubePort } from '../adapters/kube.js';
import type { LoadedConfig } from '../config/index.js';
import type { GitPort } from '../adapters/git.js';
import type { RegistryPort } from '../adapters/registry.js';
import type { GlusterPort } from '../adapters/gluster.js';
import { defaultPrefix } from '../jobs/keys.js';
import type { CommandInvocation } from './commands.js';

/** Per-call deadline for etcd; an unreachable etcd fails within this (exit 4). */
const etcdCallTimeoutMs = 5_000;
const kubeCallTimeoutMs = 15_000;

/** The options every command shares (commander's merged globals). */
export interface GlobalOptions {
  config?: string;
  set?: string[];
  namespace?: string;
  image?: string;
  tagPolicy?: string;
  etcdEndpoints?: string;
  etcdPrefix?: string;
  kubeconfig?: string;
  context?: string;
  output: 'text' | 'json';
  summaryFile?: string;
  verbose?: boolean;
}

/** Builds the context; validates connection settings now (exit 2), connects only on first use. */
export async function buildContext(invocation: CommandInvocation): Promise<Context & { close(): void }> {
  const options = invocation.options as unknown as GlobalOptions;
  const env = invocation.cli.env;
  const connection = etcdConnection(options, env);
  const prefix = etcdPrefix(options, env);
  const kubeconfig = options.kubeconfig ?? firstPath(env['KUBECONFIG']);
  const inCluster = env['KUBERNETES_SERVICE_HOST'] !== undefined;
  // The SDKs are loaded here, by the commands that need them, never at start-up; the Kubernetes client
  // only when there is a cluster to talk to.
  const hasCluster = Boolean(kubeconfig) || inCluster;
  const [{ connectEtcd }, kubeModule] = await Promise.all([import('../adapters/etcd.js'), hasCluster ? import('../adapters/kube.js') : Promise.resolve(undefined)]);
  let etcd: EtcdPort | undefined;
  let kube: KubePort | undefined;
  const { loadConfig } = await import('../config/index.js');
  let config: Promise<LoadedConfig> | undefined;
  const loadOnce = () =>
    (config ??= loadConfig({
      file: options.config,
      cwd: invocation.cli.cwd,
      env,
      sets: options.set ?? [],
      flags: { namespace: options.namespace, imageRepository: options.image, tagPolicy: options.tagPolicy },
    }));
  // A --config or --set given to any command is checked now: a typo must not be ignored silently.
  if (options.config !== undefined || (options.set ?? []).length > 0) await loadOnce();
  let git: Promise<GitPort> | undefined;
  const { createRegistry } = await import('../adapters/registry.js');
  // The Gluster adapter (and execa with it) loads only when a job's storage is on Gluster.
  const glusters = new Map<string, Promise<GlusterPort>>();
  let registry: RegistryPort | undefined;
  const killAt = env['GKUBE_TEST_KILL_AT_STEP'];
  return {
    registry: () => (registry ??= createRegistry(registryOptions(env))),
    gluster: (ssh) => {
      let port = glusters.get(ssh ?? '');
      if (!port) glusters.set(ssh ?? '', (port = import('../adapters/gluster.js').then((m) => m.connectGluster(ssh ? { ssh } : {}))));
      return port;
    },
    signal: invocation.cli.signal ?? new AbortController().signal,
    // Test-only fault hook: the process kills itself (SIGKILL, no clean-up) as the named step begins.
    stepStarting: (step) => {
      if (killAt && killAt === step) process.kill(process.pid, 'SIGKILL');
    },
    git: () => (git ??= import('../adapters/git.js').then((m) => m.openGit(invocation.cli.cwd))),
    config: loadOnce,
    etcd: () => (etcd ??= connectEtcd(connection)),
    prefix,
    kube: () => {
      if (!kubeModule) return undefined;
      return (kube ??= kubeModule.connectKube({ ...(kubeconfig ? { kubeconfig } : {}), ...(options.context ? { context: options.context } : {}), callTimeoutMs: kubeCallTimeoutMs }));
    },
    clock: systemClock,
    identity: identity(env),
    // Progress lines may quote what a failed command said (exec output, error messages): mask them as errors are.
    progress: (line) => void invocation.cli.stderr.write(`${redact(line)}\n`),
    isRunning,
    close: () => etcd?.close(),
  };
}

/** Endpoints from --etcd-endpoints, GKUBE_ETCD_ENDPOINTS or ETCDCTL_ENDPOINTS (etcdctl's default otherwise; an empty variable counts as unset); TLS and auth as etcdctl reads them. */
export function etcdConnection(options: Pick<GlobalOptions, 'etcdEndpoints'>, env: Record<string, string | undefined>): EtcdConnection {
  const [source, raw] = options.etcdEndpoints !== undefined
    ? ['--etcd-endpoints', options.etcdEndpoints]
    : fromEnv(env, 'GKUBE_ETCD_ENDPOINTS') ?? fromEnv(env, 'ETCDCTL_ENDPOINTS') ?? ['default', 'http://127.0.0.1:2379'];
  const endpoints = raw.split(',').map((e) => e.trim()).filter(Boolean);
  if (endpoints.length === 0) throw new GkubeError('INVALID_INPUT', `${source}: no etcd endpoint given (expected a comma-separated list like https://etcd-1:2379)`);
  for (const e of endpoints) {
    let url: URL | undefined;
    try {
      url = new URL(e);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname || !url.port || (url.pathname !== '/' && url.pathname !== '') || url.username || url.password) {
      throw new GkubeError('INVALID_INPUT', `${source}: ${JSON.stringify(redactValue(e))} is not an etcd endpoint URL like https://etcd-1:2379 (scheme http or https, host and port, no path)`);
    }
  }
  const connection: EtcdConnection = { endpoints, callTimeoutMs: etcdCallTimeoutMs };
  const file = (name: string): Buffer | undefined => {
    const path = env[name];
    if (!path) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new GkubeError('INVALID_CONFIG', `${name}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  const ca = file('ETCDCTL_CACERT');
  const cert = file('ETCDCTL_CERT');
  const key = file('ETCDCTL_KEY');
  if ((cert && !key) || (key && !cert)) throw new GkubeError('INVALID_CONFIG', 'ETCDCTL_CERT and ETCDCTL_KEY: set both (a client certificate and its key) or neither');
  if (ca || cert || endpoints.some((e) => e.startsWith('https:'))) {
    connection.tls = { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
  }
  const user = env['ETCDCTL_USER'];
  if (user) {
    const colon = user.indexOf(':');
    const username = colon >= 0 ? user.slice(0, colon) : user;
    const password = colon >= 0 ? user.slice(colon + 1) : env['ETCDCTL_PASSWORD'];
    if (!username || password === undefined) throw new GkubeError('INVALID_CONFIG', 'ETCDCTL_USER: give user:password, or the user with ETCDCTL_PASSWORD');
    connection.auth = { username, password };
  }
  return connection;
}

/** The key prefix from --etcd-prefix or GKUBE_ETCD_PREFIX (an empty variable counts as unset), default /gkube/v1. */
export function etcdPrefix(options: Pick<GlobalOptions, 'etcdPrefix'>, env: Record<string, string | undefined>): string {
  const [source, raw] = options.etcdPrefix !== undefined ? ['--etcd-prefix', options.etcdPrefix] : fromEnv(env, 'GKUBE_ETCD_PREFIX') ?? ['default', defaultPrefix];
  if (!/^(\/[A-Za-z0-9._-]+)+$/.test(raw)) {
    throw new GkubeError('INVALID_INPUT', `${source}: ${JSON.stringify(raw)} is not a key prefix like /gkube/v1 (starts with /, segments of letters, digits, . _ -, no trailing /)`);
  }
  return raw;
}

/** Registry credentials from the Docker config ($DOCKER_CONFIG/config.json, else ~/.docker/config.json); GKUBE_INSECURE_REGISTRIES lists hosts reached over plain http. */
export function registryOptions(env: Record<string, string | undefined>): { dockerConfigPath: string; insecureHosts: string[] } {
  const dir = env['DOCKER_CONFIG'] || join(env['HOME'] || homedir(), '.docker');
  const insecureHosts = (env['GKUBE_INSECURE_REGISTRIES'] ?? '').split(',').map((h) => h.trim()).filter(Boolean);
  return { dockerConfigPath: join(dir, 'config.json'), insecureHosts };
}

/** Who runs gkube: Jenkins' BUILD_TAG when set, else user@host:pid. */
export function identity(env: Record<string, string | undefined>): Identity {
  const host = hostname();
  const user = env['USER'] ?? env['LOGNAME'] ?? safeUser();
  const id: Identity = { id: env['BUILD_TAG'] || `${user}@${host}:${process.pid}`, user, host, pid: process.pid };
  if (env['BUILD_NUMBER']) id.buildNumber = env['BUILD_NUMBER'];
  if (env['BUILD_URL']) id.buildUrl = env['BUILD_URL'];
  return id;
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

function firstPath(value: string | undefined): string | undefined {
  return value ? value.split(':').find(Boolean) : undefined;
}

/** The variable's name and value when it is set and not empty: Jenkins often exports empty variables, which mean "not set", as in the config loader. */
function fromEnv(env: Record<string, string | undefined>, name: string): [string, string] | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : [name, value];
}
