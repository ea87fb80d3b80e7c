// The Kubernetes objects of a job, as pure functions of the job, its configuration and what is deployed.
// Plain objects in the API's JSON shape; the kube adapter sends them as they are.
import { createHash } from 'node:crypto';
import type { AppConfig } from '../config/index.js';
import { prefixedResourceName, type JobNames } from '../jobs/naming.js';

/** Labels gkube puts on everything it makes (selectable; values fit the 63-character label rule). */
export const labelKeys = {
  managedBy: 'app.kubernetes.io/managed-by',
  job: 'gkube.dev/job',
} as const;

/** Annotations that trace a pod to its image, commit, git tag and build (`gkube trace` reads them). */
export const annotationKeys = {
  jobName: 'gkube.dev/job-name',
  image: 'gkube.dev/image',
  imageTag: 'gkube.dev/image-tag',
  gitTag: 'gkube.dev/git-tag',
  commit: 'gkube.dev/commit',
  buildNumber: 'gkube.dev/build-number',
  buildUrl: 'gkube.dev/build-url',
  configDigest: 'gkube.dev/config-digest',
} as const;

/** What is being deployed into the pod. */
export interface Deployment {
  /** `registry/repo:tag`. */
  image: string;
  imageTag: string;
  gitTag?: string;
  commit: string;
  buildNumber?: string;
  buildUrl?: string;
  configDigest: string;
}

/** Environment variables every container gets from the downward API, unless container.env sets them. */
const downwardEnv: Array<[string, string]> = [
  ['POD_NAME', 'metadata.name'],
  ['POD_NAMESPACE', 'metadata.namespace'],
  ['POD_IP', 'status.podIP'],
];

/** The labels of every object of the job. */
export function jobLabels(names: JobNames): Record<string, string> {
  return { [labelKeys.managedBy]: 'gkube', [labelKeys.job]: names.resourceName };
}

/**
 * The pod's fsGroup: the app's own user id, so that the code volume and what the app makes there are its
 * group's too. A Gluster volume's root is given this group (storage.owner-gid): the kubelet applies fsGroup
 * to volumes it manages, never to a GlusterFS mount.
 */
export function podFsGroup(config: Pick<AppConfig, 'container'>): number {
  return config.container.runAsUser;
}

/** The job's pod: the image, the code volume at code.path, non-root by default, traceable annotations. */
export function podManifest(names: JobNames, config: AppConfig, deployment: Deployment, claimName: string | undefined): Record<string, unknown> {
  const annotations: Record<string, string> = {
    [annotationKeys.jobName]: names.name,
    [annotationKeys.image]: deployment.image,
    [annotationKeys.imageTag]: deployment.imageTag,
    [annotationKeys.commit]: deployment.commit,
    [annotationKeys.configDigest]: deployment.configDigest,
  };
  if (deployment.gitTag) annotations[annotationKeys.gitTag] = deployment.gitTag;
  if (deployment.buildNumber) annotations[annotationKeys.buildNumber] = deployment.buildNumber;
  if (deployment.buildUrl) annotations[annotationKeys.buildUrl] = deployment.buildUrl;

  const c = config.container;
  const container: Record<string, unknown> = {
    name: 'app',
    image: deployment.image,
    ports: [{ name: 'http', containerPort: c.port, protocol: 'TCP' }],
    env: [
      ...Object.keys(c.env)
        .sort()
        .map((name) => ({ name, value: c.env[name] })),
      // Where the pod is, from the downward API (an app binds to POD_IP when pods share a network, as in tests).
      ...downwardEnv.filter(([name]) => !(name in c.env)).map(([name, fieldPath]) => ({ name, valueFrom: { fieldRef: { fieldPath } } })),
    ],
    volumeMounts: [{ name: 'code', mountPath: config.code.path }],
    securityContext: { runAsNonRoot: c.runAsNonRoot, runAsUser: c.runAsUser, allowPrivilegeEscalation: false },
  };
  if (c.command) container['command'] = [...c.command];
  if (c.args) container['args'] = [...c.args];
  if (c.resources.requests || c.resources.limits) container['resources'] = structuredClone(c.resources);
  const probe = readinessProbe(config);
  if (probe) container['readinessProbe'] = probe;

  const volume = claimName ? { name: 'code', persistentVolumeClaim: { claimName } } : { name: 'code', emptyDir: {} };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: names.resourceName, namespace: config.namespace, labels: jobLabels(names), annotations },
    spec: {
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      securityContext: { fsGroup: podFsGroup(config) },
      containers: [container],
      volumes: [volume],
    },
  };
}

/** The claim for the job's code and data, on a StorageClass (or the cluster's default). */
export function claimManifest(names: JobNames, config: AppConfig): Record<string, unknown> {
  const spec: Record<string, unknown> = { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: config.storage.size } } };
  // A Gluster CSI class (storage.glusterfs.mode storageclass) serves ReadWriteMany volumes.
  const gluster = config.storage.provider === 'glusterfs';
  if (gluster) spec['accessModes'] = ['ReadWriteMany'];
  const className = gluster ? config.storage.glusterfs.storageClassName : config.storage.storageClassName;
  if (className) spec['storageClassName'] = className;
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: names.resourceName, namespace: config.namespace, labels: jobLabels(names), annotations: { [annotationKeys.jobName]: names.name } },
    spec,
  };
}

function readinessProbe(config: AppConfig): Record<string, unknown> | undefined {
  const h = config.health;
  const timing = { periodSeconds: 2, failureThreshold: Math.max(1, h.retries) };
  if (h.exec) return { exec: { command: [...h.exec] }, ...timing };
  if (h.http) return { httpGet: { path: h.http.path, port: h.http.port }, ...timing };
  return undefined;
}

/**
 * `sha256:<hex>` of the pod's spec without its image: equal digests mean the pod can stay and only its image
 * (the one field Kubernetes changes in place) may need a patch; a different digest means it is remade.
 */
export function podSpecDigest(pod: Record<string, unknown>): string {
  const spec = structuredClone(pod['spec']) as { containers: Array<Record<string, unknown>> };
  for (const c of spec.containers) delete c['image'];
  return `sha256:${createHash('sha256').update(JSON.stringify(spec)).digest('hex')}`;
}

/** Where a job's Gluster volume is served from, for the in-tree glusterfs plugin. */
export interface GlusterSource {
  /** The Gluster volume's name. */
  volume: string;
  /** The pool's addresses (the in-tree plugin mounts through an Endpoints object, which takes IPs). */
  addresses: string[];
}

/** Names of the job's in-tree GlusterFS objects: Endpoints and Service share one name, the PV is cluster-wide. */
export function glusterObjectNames(names: JobNames, namespace: string): { endpoints: string; persistentVolume: string } {
  // A PV is not namespaced: the namespace is part of its name so that two namespaces never collide.
  return { endpoints: prefixedResourceName(names, 'glusterfs'), persistentVolume: `gkube-${namespace}-${names.resourceName}` };
}

/**
 * The in-tree glusterfs objects of a job (Kubernetes up to 1.25): the pool as Endpoints and a selector-less
 * Service (which keeps the Endpoints from being garbage-collected), a PV with reclaim Retain, and a claim
 * bound to that PV by name.
 */
export function glusterManifests(names: JobNames, config: AppConfig, source: GlusterSource): Record<string, unknown>[] {
  const ns = config.namespace;
  const objects = glusterObjectNames(names, ns);
  const meta = (name: string, namespaced: boolean) => ({
    name,
    ...(namespaced ? { namespace: ns } : {}),
    labels: jobLabels(names),
    annotations: { [annotationKeys.jobName]: names.name, 'gkube.dev/gluster-volume': source.volume },
  });
  return [
    {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: meta(objects.endpoints, true),
      subsets: [{ addresses: source.addresses.map((ip) => ({ ip })), ports: [{ port: 1, protocol: 'TCP' }] }],
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(objects.endpoints, true),
      spec: { ports: [{ port: 1, protocol: 'TCP' }] },
    },
    {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: meta(objects.persistentVolume, false),
      spec: {
        capacity: { storage: config.storage.size },
        accessModes: ['ReadWriteMany'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: '',
        // Only this job's claim may bind it.
        claimRef: { namespace: ns, name: names.resourceName },
        glusterfs: { endpoints: objects.endpoints, path: source.volume },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: meta(names.resourceName, true),
      spec: { accessModes: ['ReadWriteMany'], storageClassName: '', volumeName: objects.persistentVolume, resources: { requests: { storage: config.storage.size } } },
    },
  ];
}
