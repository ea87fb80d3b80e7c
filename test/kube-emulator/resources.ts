// The resource types the emulator serves, with what discovery reports for each.

/** One served resource type. */
export interface ResourceType {
  /** Plural, as in URLs: `pods`. */
  plural: string;
  singular: string;
  kind: string;
  listKind: string;
  /** '' for the core group. */
  group: string;
  version: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  verbs: string[];
  subresources?: string[];
  /** Field selector labels the API server supports for this type (beyond metadata.name/namespace). */
  fieldLabels: string[];
}

const allVerbs = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

/** Every resource type the emulator serves. */
export const resourceTypes: ResourceType[] = [
  { plural: 'namespaces', singular: 'namespace', kind: 'Namespace', listKind: 'NamespaceList', group: '', version: 'v1', namespaced: false, shortNames: ['ns'], verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], subresources: ['status'], fieldLabels: ['status.phase'] },
  {
    plural: 'pods', singular: 'pod', kind: 'Pod', listKind: 'PodList', group: '', version: 'v1', namespaced: true, shortNames: ['po'], categories: ['all'], verbs: allVerbs,
    subresources: ['status', 'log', 'exec', 'proxy', 'attach', 'portforward', 'binding', 'eviction', 'ephemeralcontainers'],
    fieldLabels: ['spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'spec.hostNetwork', 'status.phase', 'status.podIP', 'status.podIPs', 'status.nominatedNodeName'],
  },
  { plural: 'persistentvolumeclaims', singular: 'persistentvolumeclaim', kind: 'PersistentVolumeClaim', listKind: 'PersistentVolumeClaimList', group: '', version: 'v1', namespaced: true, shortNames: ['pvc'], verbs: allVerbs, subresources: ['status'], fieldLabels: [] },
  { plural: 'persistentvolumes', singular: 'persistentvolume', kind: 'PersistentVolume', listKind: 'PersistentVolumeList', group: '', version: 'v1', namespaced: false, shortNames: ['pv'], verbs: allVerbs, subresources: ['status'], fieldLabels: [] },
  { plural: 'services', singular: 'service', kind: 'Service', listKind: 'ServiceList', group: '', version: 'v1', namespaced: true, shortNames: ['svc'], categories: ['all'], verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'], subresources: ['status', 'proxy'], fieldLabels: [] },
  { plural: 'endpoints', singular: 'endpoints', kind: 'Endpoints', listKind: 'EndpointsList', group: '', version: 'v1', namespaced: true, shortNames: ['ep'], verbs: allVerbs, fieldLabels: [] },
  { plural: 'events', singular: 'event', kind: 'Event', listKind: 'EventList', group: '', version: 'v1', namespaced: true, shortNames: ['ev'], verbs: allVerbs, fieldLabels: ['involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name', 'involvedObject.uid', 'involvedObject.apiVersion', 'involvedObject.resourceVersion', 'involvedObject.fieldPath', 'reason', 'reportingComponent', 'source', 'type'] },
  { plural: 'storageclasses', singular: 'storageclass', kind: 'StorageClass', listKind: 'StorageClassList', group: 'storage.k8s.io', version: 'v1', namespaced: false, shortNames: ['sc'], verbs: allVerbs, fieldLabels: [] },
];

/** Looks a type up by group and plural. */
export function findType(group: string, plural: string): ResourceType | undefined {
  return resourceTypes.find((t) => t.group === group && t.plural === plural);
}

/** Looks a type up by kind (for objects posted with apiVersion/kind). */
export function typeOfKind(kind: string): ResourceType | undefined {
  return resourceTypes.find((t) => t.kind === kind);
}

/** `v1` or `storage.k8s.io/v1`. */
export function apiVersionOf(t: ResourceType): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}
