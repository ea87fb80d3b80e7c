// Validation as the API server does it: the published OpenAPI models (kubernetes-models, generated from the
// upstream schema) for structure and types, then the API server's own rules (pkg/apis/core/validation) for
// names, labels, pods, claims, services and endpoints, and the admission plugins that refuse updates.
import { isIP } from 'node:net';
import { Endpoints, Event, Namespace, PersistentVolume, PersistentVolumeClaim, Pod, Service } from 'kubernetes-models/v1';
import { StorageClass } from 'kubernetes-models/storage.k8s.io/v1';
import { ApiError, cause, forbidden, invalid, type StatusCause } from './errors.js';
import { findType, type ResourceType } from './resources.js';
import type { KubeObject, ObjectStore } from './store.js';
import { parseQuantity, storageAnnotations } from './volumes.js';

type Model = { validate(): void };
const models: Record<string, new (data: Record<string, unknown>) => Model> = {
  Pod, Namespace, PersistentVolumeClaim, PersistentVolume, Service, Endpoints, Event, StorageClass,
} as unknown as Record<string, new (data: Record<string, unknown>) => Model>;

type Json = Record<string, unknown>;
type JsonList = Json[];

const dns1123LabelRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123SubdomainRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const dns1035LabelRe = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const qualifiedNameRe = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const labelValueRe = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const envVarNameRe = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const maxInt32 = 2147483647;

const qualifiedNameText = `must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`;
const msg = {
  dns1123Label: `a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
  dns1123Subdomain: `a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
  dns1035Label: `a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`,
  qualifiedName: `name part ${qualifiedNameText}`,
  qualifiedNameSlashes: `a qualified name ${qualifiedNameText} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
  labelValue: `a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
  envVarName: `a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')`,
  immutable: 'field is immutable',
  portRange: 'must be between 1 and 65535, inclusive',
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
  const causes: StatusCause[] = [...metadataUpdateCauses(obj, old), ...metadataCauses(type, obj)];
  if (subresource !== 'status') causes.push(...kindCauses(type, obj), ...immutabilityCauses(type, obj, old));
  if (causes.length) throw invalid(type.kind, type.group, name, causes);
}

/**
 * Drops the fields of disabled feature gates, as the registry strategies' PrepareForCreate/PrepareForUpdate do:
 * VolumeAttributesClass is beta and off by default in 1.31, so a claim's volumeAttributesClassName is cleared
 * unless the stored claim already has one.
 */
export function dropDisabledFields(type: ResourceType, obj: KubeObject, old?: KubeObject): void {
  if (type.kind !== 'PersistentVolumeClaim') return;
  const spec = obj['spec'] as Json | undefined;
  if (spec && (old?.['spec']?.volumeAttributesClassName === undefined || old?.['spec']?.volumeAttributesClassName === null)) delete spec['volumeAttributesClassName'];
}

/**
 * Validating admission on update, after validation (403): PersistentVolumeClaimResize lets a claim's storage
 * request grow only when it is Bound and its StorageClass (the same before and after) has allowVolumeExpansion.
 */
export function admitUpdate(store: ObjectStore, type: ResourceType, obj: KubeObject, old: KubeObject, subresource?: string): void {
  if (type.kind !== 'PersistentVolumeClaim' || subresource) return;
  const oldSize = parseQuantity(old['spec']?.resources?.requests?.storage);
  const newSize = parseQuantity(obj['spec']?.resources?.requests?.storage);
  if (!(newSize > oldSize)) return;
  const name = obj.metadata.name ?? '';
  const refuse = (why: string) => forbidden(`persistentvolumeclaims "${name}" is forbidden: ${why}`, { name, group: '', kind: 'persistentvolumeclaims' });
  if (old['status']?.phase !== 'Bound') throw refuse('Only bound persistent volume claims can be expanded');
  const className = claimClass(obj);
  const oldClassName = claimClass(old);
  const sc = className ? store.get(findType('storage.k8s.io', 'storageclasses')!, undefined, className) : undefined;
  if (!className || !oldClassName || className !== oldClassName || sc?.['allowVolumeExpansion'] !== true) {
    throw refuse('only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize');
  }
}

/** GetPersistentVolumeClaimClass: the beta annotation first, then spec.storageClassName. */
function claimClass(claim: KubeObject): string {
  const annotated = claim.metadata.annotations?.[storageAnnotations.betaStorageClass];
  if (annotated !== undefined) return annotated;
  return (claim['spec']?.storageClassName as string | undefined) ?? '';
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

/** IsDNS1123Label / IsDNS1123Subdomain / IsDNS1035Label: every message that applies, as the API server lists them. */
function nameMessages(rule: 'label' | 'subdomain' | 'dns1035', value: string): string[] {
  const [re, text, max] = rule === 'label' ? [dns1123LabelRe, msg.dns1123Label, 63] : rule === 'dns1035' ? [dns1035LabelRe, msg.dns1035Label, 63] : [dns1123SubdomainRe, msg.dns1123Subdomain, 253];
  const out: string[] = [];
  if (value.length > max) out.push(`must be no more than ${max} characters`);
  if (!re.test(value)) out.push(text);
  return out;
}

function metadataCauses(type: ResourceType, obj: KubeObject): StatusCause[] {
  const causes: StatusCause[] = [];
  const meta = obj.metadata ?? {};
  const rule = nameRule[type.kind] ?? 'subdomain';
  if (meta.generateName) {
    // A prefix may end in '-' (the random suffix follows): maskTrailingDash, as the API server writes it.
    const g = meta.generateName;
    const prefix = g.length > 1 && g.endsWith('-') ? `${g.slice(0, -2)}a` : g;
    for (const m of nameMessages(rule, prefix)) causes.push(cause.invalid('metadata.generateName', meta.generateName, m));
  }
  const name = meta.name;
  if (!name) causes.push({ reason: 'FieldValueRequired', message: 'Required value: name or generateName is required', field: 'metadata.name' });
  else for (const m of nameMessages(rule, name)) causes.push(cause.invalid('metadata.name', name, m));
  if (type.namespaced && meta.namespace !== undefined) {
    for (const m of nameMessages('label', meta.namespace)) causes.push(cause.invalid('metadata.namespace', meta.namespace, m));
  }
  causes.push(...labelCauses('metadata.labels', meta.labels));
  let annotationBytes = 0;
  for (const [k, v] of Object.entries(meta.annotations ?? {})) {
    causes.push(...qualifiedNameMessages(k.toLowerCase()).map((m) => cause.invalid('metadata.annotations', k, m)));
    annotationBytes += k.length + String(v).length;
  }
  if (annotationBytes > 256 * 1024) causes.push({ reason: 'FieldValueTooLong', message: 'Too long: must have at most 262144 bytes', field: 'metadata.annotations' });
  return causes;
}

/** ValidateLabels: keys are qualified names, values label values. */
function labelCauses(field: string, labels: Record<string, string> | undefined): StatusCause[] {
  const causes: StatusCause[] = [];
  for (const [k, v] of Object.entries(labels ?? {})) {
    causes.push(...qualifiedNameMessages(k).map((m) => cause.invalid(field, k, m)));
    const value = String(v);
    if (value.length > 63) causes.push(cause.invalid(field, value, 'must be no more than 63 characters'));
    if (!labelValueRe.test(value)) causes.push(cause.invalid(field, value, msg.labelValue));
  }
  return causes;
}

/** IsQualifiedName. */
function qualifiedNameMessages(value: string): string[] {
  const parts = value.split('/');
  if (parts.length > 2) return [msg.qualifiedNameSlashes];
  const out: string[] = [];
  const name = parts.length === 2 ? parts[1]! : parts[0]!;
  if (parts.length === 2) {
    const prefix = parts[0]!;
    if (!prefix) out.push('prefix part must be non-empty');
    else out.push(...nameMessages('subdomain', prefix).map((m) => `prefix part ${m}`));
  }
  if (!name) out.push('name part must be non-empty');
  else if (name.length > 63) out.push('name part must be no more than 63 characters');
  if (!qualifiedNameRe.test(name)) out.push(msg.qualifiedName);
  return out;
}

/**
 * ValidateObjectMetaUpdate, after the server has carried over what a client may leave out (uid, creation
 * and deletion timestamps): what is left different is refused.
 */
function metadataUpdateCauses(obj: KubeObject, old: KubeObject): StatusCause[] {
  const causes: StatusCause[] = [];
  const meta = obj.metadata ?? {};
  if (old.metadata.deletionTimestamp) {
    const known = new Set(old.metadata.finalizers ?? []);
    const added = [...new Set((meta.finalizers ?? []).filter((f) => !known.has(f)))].sort();
    if (added.length) {
      causes.push(cause.forbidden('metadata.finalizers', `no new finalizers can be added if the object is being deleted, found new finalizers []string{${added.map((f) => JSON.stringify(f)).join(', ')}}`));
    }
  }
  if (meta.uid !== old.metadata.uid) causes.push(cause.invalid('metadata.uid', meta.uid ?? '', msg.immutable));
  if (meta.deletionTimestamp !== old.metadata.deletionTimestamp) {
    causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${goTime(meta.deletionTimestamp)}: ${msg.immutable}`, field: 'metadata.deletionTimestamp' });
  }
  if (meta.deletionGracePeriodSeconds !== old.metadata.deletionGracePeriodSeconds) {
    causes.push(cause.invalid('metadata.deletionGracePeriodSeconds', meta.deletionGracePeriodSeconds ?? 'null', msg.immutable));
  }
  return causes;
}

/** A *metav1.Time as a field error prints it (time.Time's String), or "null". */
function goTime(value: string | undefined): string {
  if (!value) return '"null"';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return JSON.stringify(value);
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} +0000 UTC`;
}

function kindCauses(type: ResourceType, obj: KubeObject): StatusCause[] {
  switch (type.kind) {
    case 'Pod':
      return podSpecCauses(obj['spec']);
    case 'PersistentVolumeClaim':
      return claimCauses(obj['spec']);
    case 'Service':
      return serviceCauses(obj['spec']);
    case 'Endpoints':
      return endpointsCauses(obj['subsets']);
    default:
      return [];
  }
}

function podSpecCauses(spec: Json | undefined): StatusCause[] {
  const causes: StatusCause[] = [];
  if (!spec) return [cause.required('spec')];
  const containers = (spec['containers'] as JsonList | undefined) ?? [];
  const initContainers = (spec['initContainers'] as JsonList | undefined) ?? [];
  if (containers.length === 0) causes.push(cause.required('spec.containers'));
  const volumes = (spec['volumes'] as JsonList | undefined) ?? [];
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
  const check = (list: JsonList, field: string): void => {
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
      ((c['ports'] as JsonList | undefined) ?? []).forEach((p, j) => {
        const port = Number(p['containerPort']);
        if (!(port >= 1 && port <= 65535)) causes.push(cause.invalid(`${at}.ports[${j}].containerPort`, p['containerPort'], msg.portRange));
      });
      causes.push(...envCauses((c['env'] as JsonList | undefined) ?? [], `${at}.env`));
      causes.push(...volumeMountCauses((c['volumeMounts'] as JsonList | undefined) ?? [], `${at}.volumeMounts`, volumeNames));
      causes.push(...resourceCauses(c['resources'] as Json | undefined, `${at}.resources`));
    });
  };
  check(initContainers, 'spec.initContainers');
  check(containers, 'spec.containers');
  const restart = spec['restartPolicy'];
  if (restart !== undefined && !['Always', 'OnFailure', 'Never'].includes(String(restart))) {
    causes.push(cause.notSupported('spec.restartPolicy', restart, ['Always', 'OnFailure', 'Never']));
  }
  const deadline = spec['activeDeadlineSeconds'];
  if (typeof deadline === 'number' && (deadline < 1 || deadline > maxInt32)) {
    causes.push(cause.invalid('spec.activeDeadlineSeconds', deadline, `must be between 1 and ${maxInt32}, inclusive`));
  }
  return causes;
}

// The downward API fields an env var's fieldRef may name (validEnvDownwardAPIFieldPathExpressions).
const envFieldPaths = ['metadata.name', 'metadata.namespace', 'metadata.uid', 'spec.nodeName', 'spec.serviceAccountName', 'status.hostIP', 'status.hostIPs', 'status.podIP', 'status.podIPs'];

/** ValidateEnv with the 1.31 default gates (RelaxedEnvironmentVariableValidation off: IsEnvVarName). */
function envCauses(env: JsonList, field: string): StatusCause[] {
  const causes: StatusCause[] = [];
  env.forEach((e, j) => {
    const at = `${field}[${j}]`;
    const name = e['name'];
    if (typeof name !== 'string' || name === '') causes.push(cause.required(`${at}.name`));
    else {
      if (!envVarNameRe.test(name)) causes.push(cause.invalid(`${at}.name`, name, msg.envVarName));
      if (name === '.') causes.push(cause.invalid(`${at}.name`, name, `must not be '.'`));
      else if (name === '..') causes.push(cause.invalid(`${at}.name`, name, `must not be '..'`));
      else if (name.startsWith('..')) causes.push(cause.invalid(`${at}.name`, name, `must not start with '..'`));
    }
    const from = e['valueFrom'] as Json | undefined;
    if (!from) return;
    const sources = ['fieldRef', 'resourceFieldRef', 'configMapKeyRef', 'secretKeyRef'].filter((k) => from[k] !== undefined && from[k] !== null);
    const fieldRef = from['fieldRef'] as Json | undefined;
    if (fieldRef) {
      const path = fieldRef['fieldPath'];
      if (!fieldRef['apiVersion']) causes.push(cause.required(`${at}.valueFrom.fieldRef.apiVersion`));
      else if (typeof path !== 'string' || !path) causes.push(cause.required(`${at}.valueFrom.fieldRef.fieldPath`));
      else if (!/^metadata\.(labels|annotations)\['.+'\]$/.test(path) && !envFieldPaths.includes(path)) {
        causes.push(cause.notSupported(`${at}.valueFrom.fieldRef.fieldPath`, path, envFieldPaths));
      }
    }
    const value = e['value'];
    if (sources.length === 0) causes.push(cause.invalid(`${at}.valueFrom`, '', 'must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`'));
    else if (typeof value === 'string' && value.length > 0) causes.push(cause.invalid(`${at}.valueFrom`, '', 'may not be specified when `value` is not empty'));
    else if (sources.length > 1) causes.push(cause.invalid(`${at}.valueFrom`, '', 'may not have more than one field specified at a time'));
  });
  return causes;
}

/** ValidateVolumeMounts: known volume, a mountPath unique in the container, relative subPath without '..'. */
function volumeMountCauses(mounts: JsonList, field: string, volumeNames: Set<string>): StatusCause[] {
  const causes: StatusCause[] = [];
  const paths = new Set<string>();
  mounts.forEach((m, j) => {
    const at = `${field}[${j}]`;
    const vname = String(m['name'] ?? '');
    if (!vname) causes.push(cause.required(`${at}.name`));
    if (!volumeNames.has(vname)) causes.push({ reason: 'FieldValueNotFound', message: `Not found: ${JSON.stringify(vname)}`, field: `${at}.name` });
    const path = String(m['mountPath'] ?? '');
    if (!path) causes.push(cause.required(`${at}.mountPath`));
    if (paths.has(path)) causes.push(cause.invalid(`${at}.mountPath`, path, 'must be unique'));
    paths.add(path);
    const subPath = typeof m['subPath'] === 'string' ? m['subPath'] : '';
    const subPathExpr = typeof m['subPathExpr'] === 'string' ? m['subPathExpr'] : '';
    // The API server reports these two at `volumeMounts.subPath`, without the mount's index.
    if (subPath) causes.push(...localDescendingPathCauses(subPath, `${field}.subPath`));
    if (subPathExpr) {
      if (subPath) causes.push(cause.invalid(`${at}.subPathExpr`, subPathExpr, 'subPathExpr and subPath are mutually exclusive'));
      causes.push(...localDescendingPathCauses(subPathExpr, `${field}.subPathExpr`));
    }
  });
  return causes;
}

function localDescendingPathCauses(path: string, field: string): StatusCause[] {
  const causes: StatusCause[] = [];
  if (path.startsWith('/')) causes.push(cause.invalid(field, path, 'must be a relative path'));
  if (path.split('/').includes('..')) causes.push(cause.invalid(field, path, "must not contain '..'"));
  return causes;
}

/** ValidateContainerResourceRequirements: quantities not negative, each request at most its limit (equal to it when not overcommitable). */
function resourceCauses(resources: Json | undefined, field: string): StatusCause[] {
  const causes: StatusCause[] = [];
  const limits = (resources?.['limits'] as Record<string, string> | undefined) ?? {};
  const requests = (resources?.['requests'] as Record<string, string> | undefined) ?? {};
  for (const [name, value] of Object.entries(limits)) {
    if (parseQuantity(value) < 0) causes.push(cause.invalid(`${field}.limits[${name}]`, String(value), 'must be greater than or equal to 0'));
  }
  for (const [name, value] of Object.entries(requests)) {
    const q = parseQuantity(value);
    if (q < 0) causes.push(cause.invalid(`${field}.requests[${name}]`, String(value), 'must be greater than or equal to 0'));
    const limit = limits[name];
    if (limit !== undefined) {
      if (!overcommitAllowed(name) && q !== parseQuantity(limit)) causes.push(cause.invalid(`${field}.requests`, String(value), `must be equal to ${name} limit of ${String(limit)}`));
      else if (q > parseQuantity(limit)) causes.push(cause.invalid(`${field}.requests`, String(value), `must be less than or equal to ${name} limit of ${String(limit)}`));
    } else if (!overcommitAllowed(name)) {
      causes.push({ reason: 'FieldValueRequired', message: 'Required value: Limit must be set for non overcommitable resources', field: `${field}.limits` });
    }
  }
  return causes;
}

/** helper.IsOvercommitAllowed: native resources (no prefix, or kubernetes.io/) except hugepages. */
function overcommitAllowed(name: string): boolean {
  const native = !name.includes('/') || name.includes('kubernetes.io/');
  return native && !name.startsWith('hugepages-');
}

function claimCauses(spec: Json | undefined): StatusCause[] {
  if (!spec) return [cause.required('spec')];
  const causes: StatusCause[] = [];
  const modes = (spec['accessModes'] as string[] | undefined) ?? [];
  if (modes.length === 0) causes.push({ reason: 'FieldValueRequired', message: 'Required value: at least 1 access mode is required', field: 'spec.accessModes' });
  // ValidatePersistentVolumeClaimSpec: a storage request is required, bound to a volume or not, and positive.
  const request = (spec['resources'] as { requests?: Record<string, string> } | undefined)?.requests?.['storage'];
  if (request === undefined) causes.push(cause.required('spec.resources[storage]'));
  else if (!(parseQuantity(request) > 0)) causes.push(cause.invalid('spec.resources[storage]', String(request), 'must be greater than zero'));
  return causes;
}

/** ValidateService's port rules: ports unless headless or ExternalName; names when several; no duplicates. */
function serviceCauses(spec: Json | undefined): StatusCause[] {
  const causes: StatusCause[] = [];
  const ports = (spec?.['ports'] as JsonList | undefined) ?? [];
  const type = spec?.['type'] ?? 'ClusterIP';
  const clusterIPs = (spec?.['clusterIPs'] as string[] | undefined) ?? [];
  const headless = type === 'ClusterIP' && clusterIPs[0] === 'None';
  if (ports.length === 0 && !headless && type !== 'ExternalName') causes.push(cause.required('spec.ports'));
  const names = new Set<string>();
  ports.forEach((p, i) => {
    const at = `spec.ports[${i}]`;
    causes.push(...portNameCauses(p, at, ports.length));
    const name = typeof p['name'] === 'string' ? p['name'] : '';
    if (name && names.has(name)) causes.push(cause.duplicate(`${at}.name`, name));
    if (name) names.add(name);
    causes.push(...portNumberCauses(p, at));
  });
  const seen = new Set<string>();
  ports.forEach((p, i) => {
    const key = `${String(p['protocol'] ?? '')}/${String(p['port'] ?? 0)}`;
    if (seen.has(key)) {
      const value = `core.ServicePort{Name:"", Protocol:${JSON.stringify(String(p['protocol'] ?? ''))}, AppProtocol:(*string)(nil), Port:${Number(p['port'] ?? 0)}, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}`;
      causes.push({ reason: 'FieldValueDuplicate', message: `Duplicate value: ${value}`, field: `spec.ports[${i}]` });
    }
    seen.add(key);
  });
  return causes;
}

/** A Service or Endpoints port's name: a DNS-1123 label, required when there are several ports. */
function portNameCauses(p: Json, at: string, count: number): StatusCause[] {
  const name = typeof p['name'] === 'string' ? p['name'] : '';
  if (count > 1 && !name) return [cause.required(`${at}.name`)];
  return name ? nameMessages('label', name).map((m) => cause.invalid(`${at}.name`, name, m)) : [];
}

/** A Service or Endpoints port's number: 1–65535. */
function portNumberCauses(p: Json, at: string): StatusCause[] {
  const port = Number(p['port']);
  return Number.isInteger(port) && port >= 1 && port <= 65535 ? [] : [cause.invalid(`${at}.port`, p['port'] ?? 0, msg.portRange)];
}

/**
 * validateEndpointSubsets: each subset has addresses, each address a usable IP, ports named when several.
 *
 * Addresses follow validateEndpointAddress: IsValidIP, then ValidateNonSpecialIP (no loopback, unspecified,
 * link-local or link-local multicast address).
 */
function endpointsCauses(subsets: JsonList | undefined): StatusCause[] {
  const causes: StatusCause[] = [];
  (subsets ?? []).forEach((s, i) => {
    const at = `subsets[${i}]`;
    const addresses = (s['addresses'] as JsonList | undefined) ?? [];
    const notReady = (s['notReadyAddresses'] as JsonList | undefined) ?? [];
    if (addresses.length === 0 && notReady.length === 0) {
      causes.push({ reason: 'FieldValueRequired', message: 'Required value: must specify `addresses` or `notReadyAddresses`', field: at });
    }
    const checkAddress = (a: Json, field: string): void => {
      const hostname = a['hostname'];
      if (typeof hostname === 'string' && hostname) for (const m of nameMessages('label', hostname)) causes.push(cause.invalid(`${field}.hostname`, hostname, m));
      causes.push(...nonSpecialIpCauses(String(a['ip'] ?? ''), `${field}.ip`));
    };
    addresses.forEach((a, j) => checkAddress(a, `${at}.addresses[${j}]`));
    notReady.forEach((a, j) => checkAddress(a, `${at}.notReadyAddresses[${j}]`));
    const ports = (s['ports'] as JsonList | undefined) ?? [];
    ports.forEach((p, j) => causes.push(...portNameCauses(p, `${at}.ports[${j}]`, ports.length), ...portNumberCauses(p, `${at}.ports[${j}]`)));
  });
  return causes;
}

/** IsValidIP, then ValidateNonSpecialIP, as validateEndpointAddress runs them. */
function nonSpecialIpCauses(ip: string, field: string): StatusCause[] {
  const bytes = ipBytes(ip);
  if (!bytes) return [cause.invalid(field, ip, 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'), cause.invalid(field, ip, 'must be a valid IP address')];
  const causes: StatusCause[] = [];
  const v4 = bytes.length === 4;
  if (bytes.every((b) => b === 0)) causes.push(cause.invalid(field, ip, `may not be unspecified (${ip})`));
  if (v4 ? bytes[0] === 127 : bytes.slice(0, 15).every((b) => b === 0) && bytes[15] === 1) {
    causes.push(cause.invalid(field, ip, 'may not be in the loopback range (127.0.0.0/8, ::1/128)'));
  }
  if (v4 ? bytes[0] === 169 && bytes[1] === 254 : bytes[0] === 0xfe && (bytes[1]! & 0xc0) === 0x80) {
    causes.push(cause.invalid(field, ip, 'may not be in the link-local range (169.254.0.0/16, fe80::/10)'));
  }
  if (v4 ? bytes[0] === 224 && bytes[1] === 0 && bytes[2] === 0 : bytes[0] === 0xff && (bytes[1]! & 0x0f) === 0x02) {
    causes.push(cause.invalid(field, ip, 'may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)'));
  }
  return causes;
}

/** The address's bytes (4 for IPv4 and IPv4-mapped IPv6, as Go's net.IP.To4 sees them; 16 otherwise), or undefined. */
function ipBytes(ip: string): number[] | undefined {
  const family = isIP(ip);
  if (family === 4) return ip.split('.').map(Number);
  if (family !== 6) return undefined;
  let text = ip.toLowerCase();
  let tail: number[] = [];
  const dotted = text.match(/^(.*:)(\d+\.\d+\.\d+\.\d+)$/);
  if (dotted) {
    const v4 = dotted[2]!.split('.').map(Number);
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    text = `${dotted[1]!}0:0`;
  }
  const [head, rest] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const parse = (s: string | undefined) => (s ? s.split(':').filter((x) => x !== '').map((x) => parseInt(x, 16)) : []);
  const left = parse(head);
  const right = parse(rest);
  const groups = rest === undefined ? left : [...left, ...new Array(8 - left.length - right.length).fill(0), ...right];
  if (tail.length) groups.splice(6, 2, ...tail);
  const bytes = groups.flatMap((g) => [g >> 8, g & 0xff]);
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped ? bytes.slice(12) : bytes;
}

// The fields a running pod's spec may change (apimachinery's ValidatePodUpdate).
const podUpdateForbidden =
  'pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)';

function immutabilityCauses(type: ResourceType, obj: KubeObject, old: KubeObject): StatusCause[] {
  if (type.kind === 'Pod') return podUpdateCauses(obj, old);
  if (type.kind === 'PersistentVolumeClaim') return claimUpdateCauses(obj, old);
  if (type.kind === 'StorageClass') {
    for (const f of ['provisioner', 'parameters', 'reclaimPolicy', 'volumeBindingMode']) {
      if (stable(obj[f]) !== stable(old[f])) return [cause.forbidden(f, 'updates to ' + f + ' are forbidden.')];
    }
  }
  return [];
}

/** ValidatePodUpdate. */
function podUpdateCauses(obj: KubeObject, old: KubeObject): StatusCause[] {
  const causes: StatusCause[] = [];
  const next = structuredClone(obj['spec'] ?? {}) as Json;
  const prev = structuredClone(old['spec'] ?? {}) as Json;
  for (const list of ['containers', 'initContainers'] as const) {
    const a = (next[list] as JsonList | undefined) ?? [];
    const b = (prev[list] as JsonList | undefined) ?? [];
    if (a.length !== b.length) return [...causes, cause.forbidden(`spec.${list}`, 'pod updates may not add or remove containers')];
  }
  // activeDeadlineSeconds may be set, or lowered, never raised or removed.
  const deadline = next['activeDeadlineSeconds'] as number | undefined;
  const oldDeadline = prev['activeDeadlineSeconds'] as number | undefined;
  if (deadline !== undefined && deadline !== null) {
    if (deadline < 0 || deadline > maxInt32) return [...causes, cause.invalid('spec.activeDeadlineSeconds', deadline, `must be between 0 and ${maxInt32}, inclusive`)];
    if (oldDeadline !== undefined && oldDeadline !== null && oldDeadline < deadline) {
      return [...causes, cause.invalid('spec.activeDeadlineSeconds', deadline, 'must be less than or equal to previous value')];
    }
  } else if (oldDeadline !== undefined && oldDeadline !== null) {
    causes.push(cause.invalid('spec.activeDeadlineSeconds', 'null', 'must not update from a positive integer to nil value'));
  }
  // Tolerations may only be added (an existing one may change its tolerationSeconds).
  const nextTol = (next['tolerations'] as JsonList | undefined) ?? [];
  for (const t of (prev['tolerations'] as JsonList | undefined) ?? []) {
    const found = nextTol.some((n) => stable({ ...t, tolerationSeconds: n['tolerationSeconds'] }) === stable(n));
    if (!found) {
      causes.push(cause.forbidden('spec.tolerations', 'existing toleration can not be modified except its tolerationSeconds'));
      break;
    }
  }
  if (stable(next) === stable(prev)) return causes;
  // Blank out what may change, then any remaining difference is forbidden.
  for (const list of ['containers', 'initContainers'] as const) {
    const a = (next[list] as JsonList | undefined) ?? [];
    const b = (prev[list] as JsonList | undefined) ?? [];
    a.forEach((c, i) => (c['image'] = b[i]!['image']));
  }
  next['activeDeadlineSeconds'] = prev['activeDeadlineSeconds'];
  next['tolerations'] = prev['tolerations'];
  const oldGrace = prev['terminationGracePeriodSeconds'];
  if (typeof oldGrace === 'number' && oldGrace < 0 && next['terminationGracePeriodSeconds'] === 1) next['terminationGracePeriodSeconds'] = oldGrace;
  if (stable(next) !== stable(prev)) causes.push(cause.forbidden('spec', `${podUpdateForbidden}\n${specDiff(prev, next)}`));
  return causes;
}

/** ValidatePersistentVolumeClaimUpdate with the 1.31 default gates (RecoverVolumeExpansionFailure and VolumeAttributesClass off). */
function claimUpdateCauses(obj: KubeObject, old: KubeObject): StatusCause[] {
  const causes: StatusCause[] = [];
  const a = structuredClone(obj['spec'] ?? {}) as Json;
  const b = structuredClone(old['spec'] ?? {}) as Json;
  // The binder may fill volumeName once.
  if (!b['volumeName']) b['volumeName'] = a['volumeName'];
  // storageClassName may be set once when it was nil (and matches the beta annotation, if any).
  const betaClass = old.metadata.annotations?.[storageAnnotations.betaStorageClass];
  if (b['storageClassName'] === undefined && a['storageClassName'] !== undefined && (betaClass === undefined || betaClass === a['storageClassName'])) {
    a['storageClassName'] = b['storageClassName'];
  }
  // A Bound claim may change its storage request (admission and the rules below decide how) and its volumeAttributesClassName.
  const bound = old['status']?.phase === 'Bound';
  const requests = (a['resources'] as Json | undefined)?.['requests'] as Json | undefined;
  if (bound && requests) requests['storage'] = ((b['resources'] as Json | undefined)?.['requests'] as Json | undefined)?.['storage'];
  if (bound && a['volumeAttributesClassName'] !== undefined) a['volumeAttributesClassName'] = b['volumeAttributesClassName'];
  if (stable(a) !== stable(b)) {
    causes.push(cause.forbidden('spec', `spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n${specDiff(b, a)}`));
  }
  const oldSize = parseQuantity(old['spec']?.resources?.requests?.storage);
  const newSize = parseQuantity(obj['spec']?.resources?.requests?.storage);
  if (newSize < oldSize) causes.push(cause.forbidden('spec.resources.requests.storage', 'field can not be less than previous value'));
  if (stable(obj['spec']?.volumeMode) !== stable(old['spec']?.volumeMode)) causes.push(cause.invalid('volumeMode', obj['spec']?.volumeMode ?? 'null', msg.immutable));
  const nextClass = obj['spec']?.volumeAttributesClassName;
  const prevClass = old['spec']?.volumeAttributesClassName;
  if (stable(nextClass) !== stable(prevClass)) {
    causes.push(cause.forbidden('spec.volumeAttributesClassName', 'update is forbidden when the VolumeAttributesClass feature gate is disabled'));
    if (prevClass !== undefined && prevClass !== null) {
      if (nextClass === undefined || nextClass === null) causes.push(cause.forbidden('spec.volumeAttributesClassName', 'update from non-nil value to nil is forbidden'));
      else if (nextClass === '') causes.push(cause.forbidden('spec.volumeAttributesClassName', 'update from non-nil value to an empty string is forbidden'));
    }
  }
  return causes;
}

function stable(v: unknown): string {
  return JSON.stringify(v, (_k, value) =>
    value && typeof value === 'object' && !Array.isArray(value) ? Object.fromEntries(Object.entries(value).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : 1))) : value,
  );
}

/** A short "-old / +new" listing of the top-level spec fields that differ, in the spirit of the API server's diff. */
function specDiff(prev: Json, next: Json): string {
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
