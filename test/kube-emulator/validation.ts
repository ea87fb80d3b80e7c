// Validation as the API server does it: the published OpenAPI models (kubernetes-models, generated from the
// upstream schema) for structure and types, then the API server's own rules for names, labels, pods and claims.
import { Endpoints, Event, Namespace, PersistentVolume, PersistentVolumeClaim, Pod, Service } from 'kubernetes-models/v1';
import { StorageClass } from 'kubernetes-models/storage.k8s.io/v1';
import { ApiError, cause, invalid, type StatusCause } from './errors.js';
import type { ResourceType } from './resources.js';
import type { KubeObject } from './store.js';
import { parseQuantity } from './volumes.js';

type Model = { validate(): void };
const models: Record<string, new (data: Record<string, unknown>) => Model> = {
  Pod, Namespace, PersistentVolumeClaim, PersistentVolume, Service, Endpoints, Event, StorageClass,
} as unknown as Record<string, new (data: Record<string, unknown>) => Model>;

const dns1123LabelRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123SubdomainRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const dns1035LabelRe = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const qualifiedNameRe = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const labelValueRe = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const msg = {
  dns1123Label: `a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
  dns1123Subdomain: `a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
  dns1035Label: `a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`,
  qualifiedName: `name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
  labelValue: `a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
};

/** Which name rule each kind's metadata.name follows in the API server. */
const nameRule: Record<string, 'label' | 'subdomain' | 'dns1035'> = {
  Namespace: 'label', Service: 'dns1035', Pod: 'subdomain', PersistentVolumeClaim: 'subdomain', PersistentVolume: 'subdomain',
  Endpoints: 'subdomain', Event: 'subdomain', StorageClass: 'subdomain',
};

/** Validates an object for create; throws the API server's 400/422. */
export function validateCreate(type: ResourceType, obj: KubeObject): void {
  const name = obj.metadata?.name ?? '';
  validateSchema(type, obj, name);
  const causes = [...metadataCauses(type, obj), ...kindCauses(type, obj)];
  if (causes.length) throw invalid(type.kind, type.group, name, causes);
}

/** Validates an update against the stored object: schema, metadata, then what may not change. */
export function validateUpdate(type: ResourceType, obj: KubeObject, old: KubeObject, subresource?: string): void {
  const name = obj.metadata?.name ?? '';
  validateSchema(type, obj, name);
  const causes: StatusCause[] = [...metadataCauses(type, obj)];
  if (subresource !== 'status') causes.push(...kindCauses(type, obj), ...immutabilityCauses(type, obj, old));
  if (causes.length) throw invalid(type.kind, type.group, name, causes);
}

function validateSchema(type: ResourceType, obj: KubeObject, name: string): void {
  const Model = models[type.kind];
  if (!Model) return;
  try {
    new Model(obj as unknown as Record<string, unknown>).validate();
  } catch (err) {
    const errors = (err as { errors?: Array<{ instancePath: string; keyword: string; message?: string; params: Record<string, unknown> }> }).errors;
    if (!errors) throw err;
    // A value of the wrong JSON type fails decoding (400) in the API server; a missing required field is a 422.
    const typeError = errors.find((e) => e.keyword === 'type');
    if (typeError) {
      const field = jsonPathToField(typeError.instancePath);
      throw new ApiError(400, 'BadRequest', `${type.kind} in version "${type.version}" cannot be handled as a ${type.kind}: json: cannot unmarshal into Go struct field ${type.kind}.${field} of type ${String(typeError.params['type'])}`);
    }
    const causes = errors.map((e) => {
      const base = jsonPathToField(e.instancePath);
      if (e.keyword === 'required') return cause.required(base ? `${base}.${String(e.params['missingProperty'])}` : String(e.params['missingProperty']));
      if (e.keyword === 'enum') return cause.notSupported(base, valueAt(obj, e.instancePath), (e.params['allowedValues'] as string[]) ?? []);
      return cause.invalid(base, valueAt(obj, e.instancePath), e.message ?? e.keyword);
    });
    throw invalid(type.kind, type.group, name, causes);
  }
}

function metadataCauses(type: ResourceType, obj: KubeObject): StatusCause[] {
  const causes: StatusCause[] = [];
  const meta = obj.metadata ?? {};
  const name = meta.name;
  if (!name) {
    if (!meta.generateName) causes.push(cause.required('metadata.name'));
  } else {
    const rule = nameRule[type.kind] ?? 'subdomain';
    const [re, text, max] = rule === 'label' ? [dns1123LabelRe, msg.dns1123Label, 63] : rule === 'dns1035' ? [dns1035LabelRe, msg.dns1035Label, 63] : [dns1123SubdomainRe, msg.dns1123Subdomain, 253];
    if (name.length > max) causes.push(cause.invalid('metadata.name', name, `must be no more than ${max} characters`));
    else if (!re.test(name)) causes.push(cause.invalid('metadata.name', name, text));
  }
  if (type.namespaced && meta.namespace !== undefined && !dns1123LabelRe.test(meta.namespace)) {
    causes.push(cause.invalid('metadata.namespace', meta.namespace, msg.dns1123Label));
  }
  for (const [k, v] of Object.entries(meta.labels ?? {})) {
    causes.push(...qualifiedKeyCauses('metadata.labels', k));
    if (typeof v !== 'string' || v.length > 63) causes.push(cause.invalid('metadata.labels', v, 'must be no more than 63 characters'));
    else if (!labelValueRe.test(v)) causes.push(cause.invalid('metadata.labels', v, msg.labelValue));
  }
  let annotationBytes = 0;
  for (const [k, v] of Object.entries(meta.annotations ?? {})) {
    causes.push(...qualifiedKeyCauses('metadata.annotations', k.toLowerCase()));
    annotationBytes += k.length + String(v).length;
  }
  if (annotationBytes > 256 * 1024) causes.push(cause.invalid('metadata.annotations', '', `must have at most 262144 bytes`));
  return causes;
}

function qualifiedKeyCauses(field: string, key: string): StatusCause[] {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const namepart = slash >= 0 ? key.slice(slash + 1) : key;
  const causes: StatusCause[] = [];
  if (prefix !== undefined && (!dns1123SubdomainRe.test(prefix) || prefix.length > 253)) {
    causes.push(cause.invalid(field, key, `prefix part ${msg.dns1123Subdomain}`));
  }
  if (!namepart || namepart.length > 63 || !qualifiedNameRe.test(namepart)) causes.push(cause.invalid(field, key, msg.qualifiedName));
  return causes;
}

function kindCauses(type: ResourceType, obj: KubeObject): StatusCause[] {
  if (type.kind === 'Pod') return podSpecCauses(obj['spec']);
  if (type.kind === 'PersistentVolumeClaim') return claimCauses(obj['spec']);
  return [];
}

function podSpecCauses(spec: Record<string, unknown> | undefined): StatusCause[] {
  const causes: StatusCause[] = [];
  if (!spec) return [cause.required('spec')];
  const containers = (spec['containers'] as Array<Record<string, unknown>> | undefined) ?? [];
  const initContainers = (spec['initContainers'] as Array<Record<string, unknown>> | undefined) ?? [];
  if (containers.length === 0) causes.push(cause.required('spec.containers'));
  const volumes = (spec['volumes'] as Array<Record<string, unknown>> | undefined) ?? [];
  const volumeNames = new Set<string>();
  volumes.forEach((v, i) => {
    const name = String(v['name'] ?? '');
    if (!name) causes.push(cause.required(`spec.volumes[${i}].name`));
    else if (!dns1123LabelRe.test(name)) causes.push(cause.invalid(`spec.volumes[${i}].name`, name, msg.dns1123Label));
    else if (volumeNames.has(name)) causes.push(cause.duplicate(`spec.volumes[${i}].name`, name));
    volumeNames.add(name);
    const sources = Object.keys(v).filter((k) => k !== 'name');
    if (sources.length === 0) causes.push({ reason: 'FieldValueRequired', message: 'Required value: must specify a volume type', field: `spec.volumes[${i}]` });
    if (sources.length > 1) causes.push(cause.forbidden(`spec.volumes[${i}].${sources[1]}`, 'may not specify more than 1 volume type'));
  });
  const seen = new Set<string>();
  const check = (list: Array<Record<string, unknown>>, field: string): void => {
    list.forEach((c, i) => {
      const at = `${field}[${i}]`;
      const name = String(c['name'] ?? '');
      if (!name) causes.push(cause.required(`${at}.name`));
      else if (!dns1123LabelRe.test(name)) causes.push(cause.invalid(`${at}.name`, name, msg.dns1123Label));
      else if (seen.has(name)) causes.push(cause.duplicate(`${at}.name`, name));
      seen.add(name);
      const image = c['image'];
      if (typeof image !== 'string' || image.trim() === '') causes.push(cause.required(`${at}.image`));
      else if (image !== image.trim()) causes.push(cause.invalid(`${at}.image`, image, 'must not have leading or trailing whitespace'));
      const policy = c['imagePullPolicy'];
      if (policy !== undefined && !['Always', 'IfNotPresent', 'Never'].includes(String(policy))) {
        causes.push(cause.notSupported(`${at}.imagePullPolicy`, policy, ['Always', 'IfNotPresent', 'Never']));
      }
      ((c['ports'] as Array<Record<string, unknown>> | undefined) ?? []).forEach((p, j) => {
        const port = Number(p['containerPort']);
        if (!(port >= 1 && port <= 65535)) causes.push(cause.invalid(`${at}.ports[${j}].containerPort`, p['containerPort'], 'must be between 1 and 65535, inclusive'));
      });
      ((c['volumeMounts'] as Array<Record<string, unknown>> | undefined) ?? []).forEach((m, j) => {
        const vname = String(m['name'] ?? '');
        if (!volumeNames.has(vname)) causes.push({ reason: 'FieldValueNotFound', message: `Not found: ${JSON.stringify(vname)}`, field: `${at}.volumeMounts[${j}].name` });
        const path = String(m['mountPath'] ?? '');
        if (!path) causes.push(cause.required(`${at}.volumeMounts[${j}].mountPath`));
      });
      ((c['env'] as Array<Record<string, unknown>> | undefined) ?? []).forEach((e, j) => {
        if (!e['name']) causes.push(cause.required(`${at}.env[${j}].name`));
      });
    });
  };
  check(initContainers, 'spec.initContainers');
  check(containers, 'spec.containers');
  const restart = spec['restartPolicy'];
  if (restart !== undefined && !['Always', 'OnFailure', 'Never'].includes(String(restart))) {
    causes.push(cause.notSupported('spec.restartPolicy', restart, ['Always', 'OnFailure', 'Never']));
  }
  return causes;
}

function claimCauses(spec: Record<string, unknown> | undefined): StatusCause[] {
  if (!spec) return [cause.required('spec')];
  const causes: StatusCause[] = [];
  const modes = (spec['accessModes'] as string[] | undefined) ?? [];
  if (modes.length === 0) causes.push({ reason: 'FieldValueRequired', message: 'Required value: at least 1 access mode is required', field: 'spec.accessModes' });
  const request = (spec['resources'] as { requests?: Record<string, string> } | undefined)?.requests?.['storage'];
  if (request === undefined && !spec['volumeName']) causes.push(cause.required('spec.resources[storage]'));
  return causes;
}

// The fields a running pod's spec may change (apimachinery's ValidatePodUpdate).
const podUpdateForbidden =
  'pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)';

function immutabilityCauses(type: ResourceType, obj: KubeObject, old: KubeObject): StatusCause[] {
  if (type.kind === 'Pod') {
    const next = structuredClone(obj['spec'] ?? {}) as Record<string, unknown>;
    const prev = structuredClone(old['spec'] ?? {}) as Record<string, unknown>;
    // Blank out what may change, then any remaining difference is forbidden.
    for (const list of ['containers', 'initContainers'] as const) {
      const a = (next[list] as Array<Record<string, unknown>> | undefined) ?? [];
      const b = (prev[list] as Array<Record<string, unknown>> | undefined) ?? [];
      if (a.length === b.length) a.forEach((c, i) => (c['image'] = b[i]!['image']));
    }
    next['activeDeadlineSeconds'] = prev['activeDeadlineSeconds'];
    const prevTol = JSON.stringify(prev['tolerations'] ?? []);
    const nextTol = (next['tolerations'] as unknown[] | undefined) ?? [];
    if (nextTol.length >= ((prev['tolerations'] as unknown[] | undefined) ?? []).length && JSON.stringify(nextTol.slice(0, ((prev['tolerations'] as unknown[]) ?? []).length)) === prevTol) next['tolerations'] = prev['tolerations'];
    if (next['terminationGracePeriodSeconds'] !== undefined) next['terminationGracePeriodSeconds'] = prev['terminationGracePeriodSeconds'];
    if (stable(next) !== stable(prev)) return [cause.forbidden('spec', `${podUpdateForbidden}\n${specDiff(prev, next)}`)];
    const deadline = obj['spec']?.activeDeadlineSeconds;
    const oldDeadline = old['spec']?.activeDeadlineSeconds;
    if (oldDeadline !== undefined && (deadline === undefined || deadline > oldDeadline)) {
      return [cause.invalid('spec.activeDeadlineSeconds', deadline ?? null, 'must be less than or equal to previous value')];
    }
    return [];
  }
  if (type.kind === 'PersistentVolumeClaim') {
    const causes: StatusCause[] = [];
    const oldReq = parseQuantity(old['spec']?.resources?.requests?.storage);
    const newReq = parseQuantity(obj['spec']?.resources?.requests?.storage);
    if (newReq < oldReq) {
      causes.push(cause.forbidden('spec.resources.requests.storage', 'field can not be less than status.capacity'));
    }
    const a = structuredClone(obj['spec'] ?? {}) as Record<string, unknown>;
    const b = structuredClone(old['spec'] ?? {}) as Record<string, unknown>;
    delete a['resources'];
    delete b['resources'];
    delete a['volumeAttributesClassName'];
    delete b['volumeAttributesClassName'];
    // The binder may fill volumeName (and the default class) once; clients may not change them after.
    if (b['volumeName'] === undefined) delete a['volumeName'];
    if (b['storageClassName'] === undefined) delete a['storageClassName'];
    if (stable(a) !== stable(b)) {
      causes.push(cause.forbidden('spec', `spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n${specDiff(b, a)}`));
    }
    return causes;
  }
  if (type.kind === 'StorageClass') {
    for (const f of ['provisioner', 'parameters', 'reclaimPolicy', 'volumeBindingMode']) {
      if (stable(obj[f]) !== stable(old[f])) return [cause.forbidden(f, 'updates to ' + f + ' are forbidden.')];
    }
  }
  return [];
}

function stable(v: unknown): string {
  return JSON.stringify(v, (_k, value) =>
    value && typeof value === 'object' && !Array.isArray(value) ? Object.fromEntries(Object.entries(value).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : 1))) : value,
  );
}

/** A short "-old / +new" listing of the top-level spec fields that differ, in the spirit of the API server's diff. */
function specDiff(prev: Record<string, unknown>, next: Record<string, unknown>): string {
  const keys = [...new Set([...Object.keys(prev), ...Object.keys(next)])].filter((k) => stable(prev[k]) !== stable(next[k]));
  return keys.map((k) => `  - ${k}: ${stable(prev[k]) ?? 'null'}\n  + ${k}: ${stable(next[k]) ?? 'null'}`).join('\n');
}

function jsonPathToField(path: string): string {
  return path
    .split('/')
    .filter(Boolean)
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`))
    .join('');
}

function valueAt(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const p of path.split('/').filter(Boolean)) cur = (cur as Record<string, unknown> | undefined)?.[p];
  return cur;
}
