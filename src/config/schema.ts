// The gkube.yaml contract: the TypeScript shape of a loaded configuration, its built-in defaults,
// and the JSON Schema (draft-07) every source of configuration is validated against.
//
// Schema annotations of our own, read by validate.ts to word errors (ajv ignores them):
//   x-rule   the rule, as the user reads it after `<file>: <key.path>: ` (e.g. "must be an integer from 1 to 65535")
//   x-blame  for a cross-field rule: the keys it ties together, space-separated; the error names the
//            source (file, env, --set, flag) that set the last of them, the one that made the conflict
import type { SchemaObject } from 'ajv';

/** How an image tag is derived from git: the nearest tag, an exact tag, or `sha-<commit>`. */
export type TagPolicy = 'nearest' | 'exact' | 'commit';

/** Where the job's persistent volume comes from. */
export type StorageProvider = 'glusterfs' | 'storageclass' | 'none';

/** How a GlusterFS volume is handed to Kubernetes: an in-tree glusterfs PV, or a CSI StorageClass. */
export type GlusterMode = 'in-tree' | 'storageclass';

/** CPU and memory as Kubernetes quantities (`500m`, `1Gi`). */
export interface ResourceQuantities {
  cpu?: string;
  memory?: string;
}

/** A fully defaulted gkube.yaml. Durations stay as written (validated); read them with parseDuration. */
export interface AppConfig {
  image: {
    /** `registry.example.com:5000/team/app`; no tag or digest. Unset until a file, env or flag names it. */
    repository?: string;
    tagPolicy: TagPolicy;
  };
  namespace: string;
  container: {
    /** Overrides the image's entrypoint when set. */
    command?: string[];
    /** Overrides the image's cmd when set. */
    args?: string[];
    port: number;
    /** May hold secrets: never echoed in errors. */
    env: Record<string, string>;
    resources: { requests?: ResourceQuantities; limits?: ResourceQuantities };
    runAsUser: number;
    runAsNonRoot: boolean;
  };
  code: { path: string; exclude: string[] };
  /** Shell commands run once after provisioning and after an image change. */
  init: string[];
  /** Shell commands run after a code sync. */
  reload: string[];
  health: {
    /** At most one of exec and http; neither means readiness of the pod is the only check. */
    exec?: string[];
    /** `port` defaults to container.port. */
    http?: { path: string; port: number };
    timeout: string;
    retries: number;
  };
  storage: {
    provider: StorageProvider;
    size: string;
    /** For provider storageclass; unset means the cluster's default StorageClass. */
    storageClassName?: string;
    retain: boolean;
    glusterfs: {
      servers: string[];
      brickRoot: string;
      replica: 1 | 2 | 3;
      arbiter: boolean;
      /** `user@host` to run the gluster CLI over ssh; unset runs it locally. */
      ssh?: string;
      mode: GlusterMode;
      /** Required when mode is storageclass. */
      storageClassName?: string;
    };
  };
  /** Default time to live of ad-hoc environments. */
  ttl: string;
}

/** A read-only view of a value, all the way down. */
export type DeepReadonly<T> = T extends (infer E)[]
  ? readonly DeepReadonly<E>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** The built-in defaults (frozen); a key absent here has no default and stays unset. */
export const defaults: DeepReadonly<AppConfig> = deepFreeze<AppConfig>({
  image: { tagPolicy: 'nearest' },
  namespace: 'default',
  container: { port: 8080, env: {}, resources: {}, runAsUser: 1000, runAsNonRoot: true },
  code: { path: '/srv/app', exclude: [] },
  init: [],
  reload: [],
  health: { timeout: '60s', retries: 5 },
  storage: {
    provider: 'storageclass',
    size: '1Gi',
    retain: false,
    glusterfs: { servers: [], brickRoot: '/data/gluster', replica: 1, arbiter: false, mode: 'in-tree' },
  },
  ttl: '8h',
});

// ---- patterns (ECMAScript syntax, as JSON Schema `pattern` requires) ----

const dnsLabel = '[a-z0-9](?:[-a-z0-9]*[a-z0-9])?';
const hostLabel = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const hostName = `(?=.{1,253}$)${hostLabel}(?:\\.${hostLabel})*`;
// Loose on purpose: IPv6 literals are checked for shape here and for meaning when gluster dials them.
const ipv6 = '(?=[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:)[0-9A-Fa-f:.]{2,45}';
// The image reference grammar of distribution/reference: a registry host is told apart from the
// first path component by a dot, a port or the name localhost.
const pathComponent = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const registryHost = `(?:localhost(?::[0-9]{1,5})?|${domainComponent}(?:\\.${domainComponent})+(?::[0-9]{1,5})?|${domainComponent}:[0-9]{1,5})`;
const durationTerm = '(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:ns|us|\\u00b5s|\\u03bcs|ms|s|m|h|d)';
const quantityNumber = '(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)';
const quantitySuffix = '(?:[KMGTPE]i|[numkMGTPE]|[eE][-+]?[0-9]+)?';

/** The patterns the schema uses, exported so tests and other validators agree with it. */
export const patterns = {
  dns1123Label: `^${dnsLabel}$`,
  dns1123Subdomain: `^(?=.{1,253}$)${dnsLabel}(?:\\.${dnsLabel})*$`,
  imageRepository: `^(?:${registryHost}/)?${pathComponent}(?:/${pathComponent})*$`,
  // Absolute, not `/`, no `.` or `..` segment, no empty segment, no NUL.
  absolutePath: '^(?:/(?!\\.{1,2}(?:/|$))[^/\\u0000]+)+$',
  duration: `^(?:${durationTerm})+$`,
  quantity: `^${quantityNumber}${quantitySuffix}$`,
  zeroQuantity: `^(?:0+(?:\\.0*)?|\\.0+)${quantitySuffix}$`,
  envName: '^[A-Za-z_][A-Za-z0-9_]*$',
  host: `^(?:${hostName}|${ipv6})$`,
  // The user part may not start with `-`, so the value can never be read by ssh as an option.
  sshTarget: `^[A-Za-z0-9_][A-Za-z0-9._-]{0,31}@(?:${hostName}|${ipv6})$`,
  httpPath: '^/[^\\s]*$',
} as const;

// ---- the schema ----

const rules = {
  duration: 'must be a positive duration like 90s, 10m or 1h30m',
  quantity: 'must be a quantity like 1Gi or 500M',
  port: 'must be an integer from 1 to 65535',
  stringList: 'must be a list of strings',
  commandList: 'must be a list of shell commands (strings)',
  absolutePath: 'must be an absolute path other than / (like /srv/app), without . or .. segments',
  resourceName: 'must be a Kubernetes resource name (lowercase letters, digits, - and ., at most 253)',
} as const;

function strictObject(properties: Record<string, SchemaObject>, extra: SchemaObject = {}): SchemaObject {
  return { type: 'object', properties, additionalProperties: false, ...extra };
}

function stringList(rule: string, item: SchemaObject = {}, extra: SchemaObject = {}): SchemaObject {
  return { type: 'array', 'x-rule': rule, items: { type: 'string', 'x-rule': 'must be a string', ...item }, ...extra };
}

const duration = (description: string, fallback: string): SchemaObject => ({
  type: 'string',
  pattern: patterns.duration,
  format: 'gkube-duration', // exact check (positive, not too long) registered by validate.ts
  'x-rule': rules.duration,
  description,
  default: fallback,
});

// Kubernetes takes a bare number as a quantity (`cpu: 1`); so does gkube, and the loader turns it into text.
const quantity: SchemaObject = { type: ['string', 'number'], minimum: 0, pattern: patterns.quantity, 'x-rule': rules.quantity };

/** The keys holding Kubernetes quantities: a number there is read as its decimal text (`1` → `"1"`). */
export const quantityKeys: readonly (readonly string[])[] = [
  ['storage', 'size'],
  ...['requests', 'limits'].flatMap((kind) => ['cpu', 'memory'].map((name) => ['container', 'resources', kind, name])),
];
const resourceName: SchemaObject = { type: 'string', pattern: patterns.dns1123Subdomain, 'x-rule': rules.resourceName };
const resources = strictObject({ cpu: quantity, memory: quantity });

/** `{ properties: { a: { properties: { b: leaf } } } }` for the path a.b: a nested subschema at a key path. */
function at(path: readonly string[], leaf: SchemaObject): SchemaObject {
  return path.reduceRight<SchemaObject>((inner, key) => ({ properties: { [key]: inner } }), leaf);
}

/** A condition that holds when the key at `path` is present and matches `schema`. */
function when(path: readonly string[], schema: SchemaObject): SchemaObject {
  return path.reduceRight<SchemaObject>((inner, key) => ({ properties: { [key]: inner }, required: [key] }), schema);
}

/** Like `when`, but an absent key counts as matching (use when the default matches). */
function whenDefaulted(path: readonly string[], schema: SchemaObject): SchemaObject {
  return at(path, schema);
}

const crossRule = {
  servers: 'must list at least one server when storage.provider is glusterfs',
  storageClassName: 'is required when storage.glusterfs.mode is storageclass',
  arbiter: 'can be true only when storage.glusterfs.replica is 3',
  runAsUser: 'must not be 0 while container.runAsNonRoot is true',
} as const;

/** The gkube.yaml schema (JSON Schema draft-07). Every key is optional; unknown keys are errors. */
export const configSchema: SchemaObject = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'gkube.yaml',
  ...strictObject({
    image: strictObject({
      repository: {
        type: 'string',
        maxLength: 255,
        pattern: patterns.imageRepository,
        'x-rule': 'must be an image repository like registry.example.com:5000/team/app (lowercase path, no tag or digest)',
        description: 'image repository; the tag comes from git under tagPolicy',
      },
      tagPolicy: { enum: ['nearest', 'exact', 'commit'], default: 'nearest' },
    }),
    namespace: {
      type: 'string',
      maxLength: 63,
      pattern: patterns.dns1123Label,
      'x-rule': 'must be a DNS-1123 label: at most 63 lowercase letters, digits and -, starting and ending with a letter or digit',
      default: 'default',
    },
    container: strictObject({
      command: stringList(rules.stringList),
      args: stringList(rules.stringList),
      port: { type: 'integer', minimum: 1, maximum: 65535, 'x-rule': rules.port, default: 8080 },
      env: {
        type: 'object',
        propertyNames: {
          pattern: patterns.envName,
          'x-rule': 'must be an environment variable name: letters, digits and _, not starting with a digit',
        },
        // The value is never echoed in an error: it may be a secret.
        additionalProperties: { type: 'string', 'x-rule': 'must be a string' },
        default: {},
      },
      resources: strictObject({ requests: resources, limits: resources }),
      runAsUser: { type: 'integer', minimum: 0, maximum: 2147483647, 'x-rule': 'must be an integer from 0 to 2147483647', default: 1000 },
      runAsNonRoot: { type: 'boolean', default: true },
    }),
    code: strictObject({
      path: { type: 'string', maxLength: 4096, pattern: patterns.absolutePath, 'x-rule': rules.absolutePath, default: '/srv/app' },
      exclude: stringList('must be a list of glob patterns', { minLength: 1, 'x-rule': 'must be a non-empty glob pattern' }, { default: [] }),
    }),
    init: stringList(rules.commandList, { minLength: 1, 'x-rule': 'must be a non-empty shell command' }, { default: [] }),
    reload: stringList(rules.commandList, { minLength: 1, 'x-rule': 'must be a non-empty shell command' }, { default: [] }),
    health: strictObject(
      {
        exec: stringList('must be a command as a list of strings, like [curl, -f, localhost:8080]', {}, { minItems: 1 }),
        http: strictObject(
          {
            path: { type: 'string', pattern: patterns.httpPath, 'x-rule': 'must be a URL path starting with / (no spaces)' },
            port: { type: 'integer', minimum: 1, maximum: 65535, 'x-rule': rules.port, description: 'defaults to container.port' },
          },
          { required: ['path'] },
        ),
        timeout: duration('how long the health check may take', '60s'),
        retries: { type: 'integer', minimum: 0, maximum: 1000, 'x-rule': 'must be an integer from 0 to 1000', default: 5 },
      },
      { allOf: [{ not: { required: ['exec', 'http'] }, 'x-rule': 'may set exec or http, not both' }] },
    ),
    storage: strictObject({
      provider: { enum: ['glusterfs', 'storageclass', 'none'], default: 'storageclass' },
      size: {
        allOf: [
          quantity,
          { not: { type: 'string', pattern: patterns.zeroQuantity }, 'x-rule': 'must be larger than zero' },
        ],
        default: '1Gi',
      },
      storageClassName: resourceName,
      retain: { type: 'boolean', default: false },
      glusterfs: strictObject({
        servers: stringList('must be a list of host names or IP addresses', { pattern: patterns.host, 'x-rule': 'must be a host name or IP address' }, {
          uniqueItems: true,
          default: [],
        }),
        brickRoot: { type: 'string', maxLength: 4096, pattern: patterns.absolutePath, 'x-rule': rules.absolutePath, default: '/data/gluster' },
        replica: { enum: [1, 2, 3], 'x-rule': 'must be 1, 2 or 3', default: 1 },
        arbiter: { type: 'boolean', default: false },
        ssh: { type: 'string', pattern: patterns.sshTarget, 'x-rule': 'must be user@host (the user may not start with -)' },
        mode: { enum: ['in-tree', 'storageclass'], default: 'in-tree' },
        storageClassName: resourceName,
      }),
    }),
    ttl: duration('default time to live of ad-hoc environments', '8h'),
  }),
  // Cross-field rules. Each `then` names its rule and the keys it ties together.
  allOf: [
    {
      if: when(['storage', 'provider'], { const: 'glusterfs' }),
      then: at(['storage'], {
        required: ['glusterfs'],
        'x-rule': crossRule.servers,
        'x-blame': 'storage.provider storage.glusterfs.servers',
        properties: {
          glusterfs: {
            required: ['servers'],
            'x-rule': crossRule.servers,
            'x-blame': 'storage.provider storage.glusterfs.servers',
            properties: { servers: { minItems: 1, 'x-rule': crossRule.servers, 'x-blame': 'storage.provider storage.glusterfs.servers' } },
          },
        },
      }),
    },
    {
      if: when(['storage', 'glusterfs', 'mode'], { const: 'storageclass' }),
      then: at(['storage', 'glusterfs'], {
        required: ['storageClassName'],
        'x-rule': crossRule.storageClassName,
        'x-blame': 'storage.glusterfs.mode storage.glusterfs.storageClassName',
      }),
    },
    {
      // replica defaults to 1, so an absent replica counts as "not 3".
      if: whenDefaulted(['storage', 'glusterfs', 'replica'], { not: { const: 3 } }),
      then: at(['storage', 'glusterfs', 'arbiter'], { const: false, 'x-rule': crossRule.arbiter, 'x-blame': 'storage.glusterfs.arbiter storage.glusterfs.replica' }),
    },
    {
      // runAsNonRoot defaults to true, so an absent one counts as true.
      if: whenDefaulted(['container', 'runAsNonRoot'], { const: true }),
      then: at(['container', 'runAsUser'], { not: { const: 0 }, 'x-rule': crossRule.runAsUser, 'x-blame': 'container.runAsUser container.runAsNonRoot' }),
    },
  ],
};

function deepFreeze<T>(value: T): DeepReadonly<T> {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value as DeepReadonly<T>;
}
