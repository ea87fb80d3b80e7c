// PATCH bodies as the API server applies them: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and
// strategic merge patch (apimachinery's strategicpatch with the server's options: parallel deletion lists
// merged, unmatched nulls ignored), driven by the patch strategies and merge keys of the served types.
import fastJsonPatch from 'fast-json-patch';
import { ApiError, badRequest, unmappedError } from './errors.js';
import type { KubeObject } from './store.js';

/** Applies a patch of the given content type to a copy of `current`, an object of `kind`. */
export function applyPatch(kind: string, current: KubeObject, contentType: string, body: unknown): KubeObject {
  const type = contentType.split(';')[0]!.trim();
  switch (type) {
    case 'application/merge-patch+json':
      return jsonMergePatch(structuredClone(current), body) as KubeObject;
    case 'application/strategic-merge-patch+json': {
      if (!isMap(body)) throw badRequest('json: cannot unmarshal array into Go value of type map[string]interface {}');
      return mergeMap(structuredClone(current) as JsonMap, structuredClone(body), typeMeta(kind)) as KubeObject;
    }
    case 'application/json-patch+json': {
      if (!Array.isArray(body)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
      try {
        return fastJsonPatch.applyPatch(structuredClone(current), body as fastJsonPatch.Operation[], true, false).newDocument as KubeObject;
      } catch (err) {
        const e = err as { name?: string; message: string };
        if (e.name === 'TEST_OPERATION_FAILED') throw new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request`);
        throw new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: ${e.message.split('\n')[0]}`);
      }
    }
    case 'application/apply-patch+yaml':
      throw new ApiError(415, 'UnsupportedMediaType', 'the emulator does not implement server-side apply; use a merge, strategic-merge or JSON patch');
    default:
      throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`);
  }
}

type JsonMap = Record<string, unknown>;

function isMap(v: unknown): v is JsonMap {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function jsonMergePatch(target: unknown, patch: unknown): unknown {
  if (!isMap(patch)) return structuredClone(patch);
  const base: JsonMap = isMap(target) ? target : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete base[k];
    else base[k] = jsonMergePatch(base[k], v);
  }
  return base;
}

// ---- Patch metadata: the `patchStrategy`/`patchMergeKey` tags of the core/v1 and storage/v1 Go types. ----

/** How one field of a Go type is patched: its strategy, its list's merge key, and the Go type of its value (or items). */
interface FieldPatchMeta {
  strategy?: 'merge' | 'merge,retainKeys';
  mergeKey?: string;
  type?: string;
}

/**
 * Per Go type, the fields that are not plain: merged lists, and the struct fields that lead to them. Any other
 * list (tolerations, command, args, accessModes, endpoint subsets, containerStatuses…) is replaced whole, and any
 * other map is merged key by key. Kinds map to their root types by name.
 */
export const patchMeta: Record<string, Record<string, FieldPatchMeta>> = {
  Pod: { metadata: { type: 'ObjectMeta' }, spec: { type: 'PodSpec' }, status: { type: 'PodStatus' } },
  Service: { metadata: { type: 'ObjectMeta' }, spec: { type: 'ServiceSpec' }, status: { type: 'ServiceStatus' } },
  PersistentVolumeClaim: { metadata: { type: 'ObjectMeta' }, status: { type: 'PersistentVolumeClaimStatus' } },
  PersistentVolume: { metadata: { type: 'ObjectMeta' } },
  Namespace: { metadata: { type: 'ObjectMeta' }, status: { type: 'NamespaceStatus' } },
  Endpoints: { metadata: { type: 'ObjectMeta' } },
  Event: { metadata: { type: 'ObjectMeta' } },
  StorageClass: { metadata: { type: 'ObjectMeta' } },
  ObjectMeta: { finalizers: { strategy: 'merge' }, ownerReferences: { strategy: 'merge', mergeKey: 'uid' } },
  PodSpec: {
    volumes: { strategy: 'merge,retainKeys', mergeKey: 'name' },
    initContainers: { strategy: 'merge', mergeKey: 'name', type: 'Container' },
    containers: { strategy: 'merge', mergeKey: 'name', type: 'Container' },
    ephemeralContainers: { strategy: 'merge', mergeKey: 'name', type: 'Container' },
    imagePullSecrets: { strategy: 'merge', mergeKey: 'name' },
    hostAliases: { strategy: 'merge', mergeKey: 'ip' },
    topologySpreadConstraints: { strategy: 'merge', mergeKey: 'topologyKey' },
    schedulingGates: { strategy: 'merge', mergeKey: 'name' },
    resourceClaims: { strategy: 'merge,retainKeys', mergeKey: 'name' },
  },
  Container: {
    ports: { strategy: 'merge', mergeKey: 'containerPort' },
    env: { strategy: 'merge', mergeKey: 'name' },
    volumeMounts: { strategy: 'merge', mergeKey: 'mountPath' },
    volumeDevices: { strategy: 'merge', mergeKey: 'devicePath' },
  },
  PodStatus: {
    conditions: { strategy: 'merge', mergeKey: 'type' },
    podIPs: { strategy: 'merge', mergeKey: 'ip' },
    hostIPs: { strategy: 'merge', mergeKey: 'ip' },
    resourceClaimStatuses: { strategy: 'merge,retainKeys', mergeKey: 'name' },
  },
  ServiceSpec: { ports: { strategy: 'merge', mergeKey: 'port' } },
  ServiceStatus: { conditions: { strategy: 'merge', mergeKey: 'type' } },
  PersistentVolumeClaimStatus: { conditions: { strategy: 'merge', mergeKey: 'type' } },
  NamespaceStatus: { conditions: { strategy: 'merge', mergeKey: 'type' } },
};

type TypeMeta = Record<string, FieldPatchMeta>;

function typeMeta(name: string | undefined): TypeMeta | undefined {
  return name ? patchMeta[name] : undefined;
}

// ---- strategicpatch.mergeMap and friends ----

const directive = '$patch';
const retainKeys = '$retainKeys';
const deleteFromPrimitiveList = '$deleteFromPrimitiveList/';
const setElementOrder = '$setElementOrder/';

function mergeMap(original: JsonMap | undefined, patch: JsonMap, meta: TypeMeta | undefined): JsonMap {
  if (directive in patch) {
    const d = patch[directive];
    if (d === 'replace') {
      const { [directive]: _drop, ...rest } = patch;
      return rest;
    }
    if (d === 'delete') return {};
    throw unmappedError(`unknown patch type: ${goValue(d)} in map: ${goValue(patch)}`);
  }
  const out: JsonMap = original ?? {};
  applyRetainKeys(out, patch);
  mergeSetElementOrder(out, patch, meta);
  for (const [key, patchV] of Object.entries(patch)) {
    let k = key;
    const isDeleteList = key.startsWith(deleteFromPrimitiveList);
    if (isDeleteList) k = key.slice(deleteFromPrimitiveList.length);
    if (patchV === null) {
      delete out[k];
      continue;
    }
    if (!(k in out)) {
      // Not in the object: the patch value is taken as it is (a deletion list for a missing field deletes nothing).
      if (!isDeleteList) out[k] = patchV;
      continue;
    }
    const orig = out[k];
    if (kindOf(orig) !== kindOf(patchV)) {
      if (!isDeleteList) out[k] = patchV;
      continue;
    }
    const field = meta?.[k];
    if (isMap(orig)) out[k] = mergeMap(orig, patchV as JsonMap, typeMeta(field?.type));
    else if (Array.isArray(orig)) out[k] = isMerged(field) || isDeleteList ? mergeList(orig, patchV as unknown[], field, isDeleteList) : patchV;
    else out[k] = patchV;
  }
  return out;
}

function kindOf(v: unknown): string {
  return Array.isArray(v) ? 'list' : v === null ? 'null' : typeof v;
}

function applyRetainKeys(original: JsonMap, patch: JsonMap): void {
  if (!(retainKeys in patch)) return;
  const keep = patch[retainKeys];
  delete patch[retainKeys];
  if (!Array.isArray(keep)) throw badRequest('invalid patch format of retainKeys');
  for (const [k, v] of Object.entries(patch)) {
    if (v === null || k.startsWith(deleteFromPrimitiveList) || k.startsWith(setElementOrder)) continue;
    if (!keep.includes(k)) throw badRequest('invalid patch format of retainKeys');
  }
  for (const k of Object.keys(original)) if (!keep.includes(k)) delete original[k];
}

/** `$setElementOrder/<field>`: merges that field's patch list and orders the result as the directive says. */
function mergeSetElementOrder(original: JsonMap, patch: JsonMap, meta: TypeMeta | undefined): void {
  for (const key of Object.keys(patch)) {
    if (!key.startsWith(setElementOrder)) continue;
    const order = patch[key];
    delete patch[key];
    if (!Array.isArray(order)) throw unmappedError(`expected []interface{}, but got ${goType(order)}`);
    const field = key.slice(setElementOrder.length);
    const foundOriginal = field in original;
    const foundPatch = field in patch;
    if (!foundOriginal && !foundPatch) continue;
    const originalList = foundOriginal ? original[field] : [];
    const patchList = foundPatch ? patch[field] : [];
    if (!Array.isArray(originalList)) throw unmappedError(`expected []interface{}, but got ${goType(originalList)}`);
    if (!Array.isArray(patchList)) throw unmappedError(`expected []interface{}, but got ${goType(patchList)}`);
    const fm = meta?.[field];
    const mergeKey = fm?.mergeKey ?? '';
    let merged: unknown[];
    if (foundOriginal && !foundPatch) merged = originalList;
    else if (!foundOriginal) merged = patchList;
    else merged = isMerged(fm) ? mergeList(originalList, patchList, fm, false) : patchList;
    const [inOrder, serverOnly] = partition(merged, order, mergeKey);
    original[field] = normalizeElementOrder(inOrder, serverOnly, order, originalList, mergeKey);
    delete patch[field];
  }
}

function isMerged(field: FieldPatchMeta | undefined): boolean {
  return field?.strategy?.split(',').includes('merge') ?? false;
}

function mergeList(original: unknown[], patch: unknown[], field: FieldPatchMeta | undefined, isDeleteList: boolean): unknown[] {
  if (original.length === 0 && patch.length === 0) return original;
  const elementIsMap = isMap(original[0] ?? patch[0]);
  const mergeKey = field?.mergeKey ?? '';
  let merged: unknown[];
  let orig = original;
  let items = patch;
  if (!elementIsMap) {
    if (isDeleteList) return original.filter((v) => !patch.some((p) => p === v));
    merged = dedupe([...original, ...patch]);
  } else {
    if (!mergeKey) throw unmappedError('cannot merge lists without merge key for type struct');
    [orig, items] = mergeSpecialElements(original, patch, mergeKey);
    merged = orig.slice();
    for (const v of items) {
      const item = v as JsonMap;
      if (!(mergeKey in item)) throw unmappedError(`map: ${goValue(item)} does not contain declared merge key: ${mergeKey}`);
      const at = merged.findIndex((o) => isMap(o) && mergeKey in o && o[mergeKey] === item[mergeKey]);
      if (at >= 0) merged[at] = mergeMap(merged[at] as JsonMap, item, typeMeta(field?.type));
      else merged.push(v);
    }
  }
  const [inPatch, serverOnly] = partition(merged, items, mergeKey);
  return normalizeElementOrder(inPatch, serverOnly, items, orig, mergeKey);
}

/** `$patch: delete` and `$patch: replace` elements of a merged list. */
function mergeSpecialElements(original: unknown[], patch: unknown[], mergeKey: string): [unknown[], unknown[]] {
  const rest: unknown[] = [];
  let replace = false;
  let out = original;
  for (const v of patch) {
    if (!isMap(v)) throw unmappedError(`value for key ${patch.indexOf(v)} is not a map.`);
    if (!(directive in v)) {
      rest.push(v);
      continue;
    }
    switch (v[directive]) {
      case 'delete':
        if (!(mergeKey in v)) throw unmappedError(`map: ${goValue(v)} does not contain declared merge key: ${mergeKey}`);
        out = out.filter((o) => !(isMap(o) && o[mergeKey] === v[mergeKey]));
        break;
      case 'replace':
        replace = true;
        break;
      case 'merge':
        throw unmappedError('merging lists cannot yet be specified in the patch');
      default:
        throw unmappedError(`unknown patch type: ${goValue(v[directive])} in map: ${goValue(v)}`);
    }
  }
  return replace ? [rest, []] : [out, rest];
}

function dedupe(list: unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const v of list) if (!out.includes(v)) out.push(v);
  return out;
}

function indexIn(list: unknown[], item: unknown, mergeKey: string): number {
  if (!mergeKey) return list.indexOf(item);
  return list.findIndex((o) => isMap(o) && isMap(item) && o[mergeKey] === item[mergeKey]);
}

/** Splits `list` into the items present in `by` (compared by merge key, or by value) and the others. */
function partition(list: unknown[], by: unknown[], mergeKey: string): [unknown[], unknown[]] {
  const inBy: unknown[] = [];
  const rest: unknown[] = [];
  for (const v of list) (indexIn(by, v, mergeKey) >= 0 ? inBy : rest).push(v);
  return [inBy, rest];
}

/** Patch items in the patch's order, server-only items in the live order, interleaved as strategicpatch does. */
function normalizeElementOrder(patchItems: unknown[], serverOnly: unknown[], patchOrder: unknown[], serverOrder: unknown[], mergeKey: string): unknown[] {
  const sortBy = (items: unknown[], order: unknown[]): unknown[] => {
    const [known, unknown] = partition(items, order, mergeKey);
    known.sort((a, b) => indexIn(order, a, mergeKey) - indexIn(order, b, mergeKey));
    return [...known, ...unknown];
  };
  const right = sortBy(patchItems, patchOrder);
  const left = sortBy(serverOnly, serverOrder);
  const out: unknown[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    if (i >= left.length) out.push(right[j++]);
    else if (j >= right.length) out.push(left[i++]);
    else {
      const li = indexIn(serverOrder, left[i], mergeKey);
      const ri = indexIn(serverOrder, right[j], mergeKey);
      // A server-only item goes first only when both are in the live list and it came earlier there.
      if (li >= 0 && ri >= 0 && li < ri) out.push(left[i++]);
      else out.push(right[j++]);
    }
  }
  return out;
}

/** A value as Go's %v prints the decoded JSON (maps with sorted keys), for the error texts. */
function goValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(goValue).join(' ')}]`;
  if (isMap(v)) return `map[${Object.keys(v).sort().map((k) => `${k}:${goValue(v[k])}`).join(' ')}]`;
  if (v === null || v === undefined) return '<nil>';
  return String(v);
}

function goType(v: unknown): string {
  if (Array.isArray(v)) return '[]interface {}';
  if (isMap(v)) return 'map[string]interface {}';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int64' : 'float64';
  if (typeof v === 'boolean') return 'bool';
  return '<nil>';
}
