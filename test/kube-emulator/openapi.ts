// The OpenAPI v3 documents kubectl reads (/openapi/v3 and one per group-version), and strict field checking.
// Both come from @kubernetes/client-node's models, which are generated from the upstream Kubernetes OpenAPI spec.
import { createHash } from 'node:crypto';
import * as models from '@kubernetes/client-node';
import { badRequest } from './errors.js';
import { patchMeta } from './patch.js';
import { apiVersionOf, resourceTypes, type ResourceType } from './resources.js';
import type { KubeObject } from './store.js';

interface Attribute {
  baseName: string;
  type: string;
  format: string;
}
type ModelClass = { attributeTypeMap?: Attribute[] };

const modelOfKind: Record<string, string> = {
  Pod: 'V1Pod', Namespace: 'V1Namespace', PersistentVolumeClaim: 'V1PersistentVolumeClaim', PersistentVolume: 'V1PersistentVolume',
  Service: 'V1Service', Endpoints: 'V1Endpoints', Event: 'CoreV1Event', StorageClass: 'V1StorageClass',
};

function attributes(model: string): Attribute[] | undefined {
  return ((models as unknown as Record<string, ModelClass>)[model])?.attributeTypeMap;
}

function unwrap(type: string): { kind: 'array' | 'map' | 'plain'; inner: string } {
  const arr = type.match(/^Array<(.+)>$/);
  if (arr) return { kind: 'array', inner: arr[1]! };
  const map = type.match(/^\{ \[key: string\]: (.+); \}$/);
  if (map) return { kind: 'map', inner: map[1]! };
  return { kind: 'plain', inner: type };
}

/**
 * Finds fields the schema does not know, as the API server's strict decoder does, and removes them from `obj`
 * (an unknown field is dropped when the object is decoded). Returns their paths: `spec.containers[0].foo`.
 */
export function pruneUnknownFields(kind: string, obj: KubeObject): string[] {
  const model = modelOfKind[kind];
  if (!model) return [];
  const unknown: string[] = [];
  walk(model, obj, '', unknown);
  return unknown;
}

function walk(model: string, value: unknown, path: string, unknown: string[]): void {
  const attrs = attributes(model);
  if (!attrs || value === null || typeof value !== 'object' || Array.isArray(value)) return;
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const attr = attrs.find((a) => a.baseName === key);
    const here = path ? `${path}.${key}` : key;
    if (!attr) {
      unknown.push(here);
      delete record[key];
      continue;
    }
    const { kind, inner } = unwrap(attr.type);
    const child = record[key];
    if (kind === 'array' && Array.isArray(child)) child.forEach((item, i) => walk(inner, item, `${here}[${i}]`, unknown));
    else if (kind === 'map' && child && typeof child === 'object') for (const [k, v] of Object.entries(child)) walk(inner, v, `${here}[${k}]`, unknown);
    else if (kind === 'plain') walk(inner, child, here, unknown);
  }
}

/** Applies the request's fieldValidation directive: Strict refuses unknown fields (400), Warn returns warnings, Ignore drops them. */
export function checkFields(type: ResourceType, obj: KubeObject, directive: string | null): string[] {
  const unknown = pruneUnknownFields(type.kind, obj);
  if (unknown.length === 0 || directive === 'Ignore') return [];
  if (directive === 'Strict') {
    const list = unknown.map((u) => `unknown field "${u}"`);
    throw badRequest(`strict decoding error: ${list.join(', ')}`);
  }
  return unknown.map((u) => `unknown field "${u}"`);
}

/** The /openapi/v3 discovery document and the per-group-version documents, built once. */
export class OpenApiV3 {
  private readonly docs = new Map<string, string>();
  readonly root: string;

  constructor() {
    const paths: Record<string, { serverRelativeURL: string }> = {};
    for (const gv of new Set(resourceTypes.map(apiVersionOf))) {
      const prefix = gv === 'v1' ? 'api/v1' : `apis/${gv}`;
      const body = JSON.stringify(groupVersionDoc(gv));
      const hash = createHash('sha512').update(body).digest('hex').slice(0, 128).toUpperCase();
      this.docs.set(prefix, body);
      paths[prefix] = { serverRelativeURL: `/openapi/v3/${prefix}?hash=${hash}` };
    }
    this.root = JSON.stringify({ paths });
  }

  /** The document for `api/v1` or `apis/GROUP/VERSION`. */
  document(prefix: string): string | undefined {
    return this.docs.get(prefix);
  }
}

function groupVersionDoc(gv: string): Record<string, unknown> {
  const types = resourceTypes.filter((t) => apiVersionOf(t) === gv);
  const schemas: Record<string, unknown> = {};
  const addSchema = (model: string): void => {
    if (schemas[model] !== undefined) return;
    const attrs = attributes(model);
    if (!attrs) return;
    const properties: Record<string, unknown> = {};
    schemas[model] = { type: 'object', properties };
    for (const a of attrs) {
      properties[a.baseName] = schemaOf(a, addSchema);
      // The patch tags kubectl reads to build strategic merge patches (as the API server publishes them).
      const tags = patchMeta[model.replace(/^V1/, '')]?.[a.baseName];
      if (tags?.strategy) (properties[a.baseName] as Record<string, unknown>)['x-kubernetes-patch-strategy'] = tags.strategy;
      if (tags?.mergeKey) (properties[a.baseName] as Record<string, unknown>)['x-kubernetes-patch-merge-key'] = tags.mergeKey;
    }
  };
  const paths: Record<string, unknown> = {};
  for (const t of types) {
    const model = modelOfKind[t.kind]!;
    addSchema(model);
    const gvk = { group: t.group, version: t.version, kind: t.kind };
    (schemas[model] as Record<string, unknown>)['x-kubernetes-group-version-kind'] = [gvk];
    const base = `/${t.group ? `apis/${t.group}` : 'api'}/${t.version}${t.namespaced ? '/namespaces/{namespace}' : ''}/${t.plural}`;
    const params = [{ name: 'dryRun', in: 'query', schema: { type: 'string' } }, { name: 'fieldManager', in: 'query', schema: { type: 'string' } }, { name: 'fieldValidation', in: 'query', schema: { type: 'string' } }];
    const op = (id: string, extra: Record<string, unknown> = {}) => ({
      operationId: id, 'x-kubernetes-action': extra['action'] ?? id, 'x-kubernetes-group-version-kind': gvk, parameters: params,
      responses: { '200': { content: { 'application/json': { schema: { $ref: `#/components/schemas/${model}` } } } } },
    });
    paths[base] = { post: op('post'), get: op('list') };
    paths[`${base}/{name}`] = { get: op('get'), put: op('put'), patch: op('patch'), delete: op('delete') };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.31.0' }, paths, components: { schemas } };
}

function schemaOf(a: Attribute, addSchema: (model: string) => void): Record<string, unknown> {
  const { kind, inner } = unwrap(a.type);
  const leaf = (t: string): Record<string, unknown> => {
    switch (t) {
      case 'string':
        return { type: 'string' };
      case 'number':
        return a.format === 'double' ? { type: 'number', format: 'double' } : { type: 'integer', format: a.format || 'int64' };
      case 'boolean':
        return { type: 'boolean' };
      case 'Date':
        return { type: 'string', format: 'date-time' };
      case 'IntOrString':
        return { 'x-kubernetes-int-or-string': true };
      case 'any':
      case 'object':
        return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
      default:
        addSchema(t);
        return { allOf: [{ $ref: `#/components/schemas/${t}` }] };
    }
  };
  if (kind === 'array') return { type: 'array', items: leaf(inner) };
  if (kind === 'map') return { type: 'object', additionalProperties: leaf(inner) };
  return leaf(inner);
}
