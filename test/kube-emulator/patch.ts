// PATCH bodies as the API server applies them: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and
// strategic merge patch for the list fields gkube and kubectl patch (merged by their patch merge keys).
import fastJsonPatch from 'fast-json-patch';
import { ApiError } from './errors.js';
import type { KubeObject } from './store.js';

/** Applies a patch of the given content type to a copy of `current`. */
export function applyPatch(current: KubeObject, contentType: string, body: unknown): KubeObject {
  const type = contentType.split(';')[0]!.trim();
  switch (type) {
    case 'application/merge-patch+json':
      return mergePatch(structuredClone(current), body, false) as KubeObject;
    case 'application/strategic-merge-patch+json':
      return mergePatch(structuredClone(current), body, true) as KubeObject;
    case 'application/json-patch+json': {
      if (!Array.isArray(body)) throw new ApiError(400, 'BadRequest', 'json: cannot unmarshal object into Go value of type jsonpatch.Patch');
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

// Patch merge keys of the core/v1 list fields (from the API's x-kubernetes-patch-merge-key).
const mergeKeys: Record<string, string> = {
  containers: 'name', initContainers: 'name', ephemeralContainers: 'name', volumes: 'name', volumeMounts: 'mountPath',
  env: 'name', ports: 'containerPort', conditions: 'type', imagePullSecrets: 'name', tolerations: 'key', hostAliases: 'ip',
  containerStatuses: 'name', initContainerStatuses: 'name', ownerReferences: 'uid', finalizers: '',
};

function mergePatch(target: unknown, patch: unknown, strategic: boolean, key?: string): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
    if (strategic && Array.isArray(patch) && Array.isArray(target) && key && mergeKeys[key] !== undefined) return mergeList(target, patch, mergeKeys[key]!);
    return structuredClone(patch);
  }
  const base: Record<string, unknown> = target && typeof target === 'object' && !Array.isArray(target) ? (target as Record<string, unknown>) : {};
  const p = patch as Record<string, unknown>;
  if (strategic && p['$patch'] === 'replace') {
    const { $patch: _drop, ...rest } = p;
    return structuredClone(rest);
  }
  if (strategic && p['$patch'] === 'delete') return undefined;
  for (const [k, v] of Object.entries(p)) {
    if (strategic && k.startsWith('$')) continue;
    if (v === null) delete base[k];
    else {
      const merged = mergePatch(base[k], v, strategic, k);
      if (merged === undefined) delete base[k];
      else base[k] = merged;
    }
  }
  return base;
}

function mergeList(target: unknown[], patch: unknown[], mergeKey: string): unknown[] {
  // finalizers and other primitive lists merge as sets.
  if (!mergeKey) return [...new Set([...target, ...patch])];
  const out = structuredClone(target) as Array<Record<string, unknown>>;
  for (const item of patch as Array<Record<string, unknown>>) {
    const idx = out.findIndex((o) => o?.[mergeKey] === item?.[mergeKey]);
    if (item?.['$patch'] === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
    } else if (idx >= 0) out[idx] = mergePatch(out[idx], item, true) as Record<string, unknown>;
    else out.push(structuredClone(item));
  }
  return out;
}
