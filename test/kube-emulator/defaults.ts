// Defaulting as the API server applies it on create (and the admission plugins gkube's objects meet).
import type { ResourceType } from './resources.js';
import type { KubeObject } from './store.js';
import { qosClass } from './kubelet.js';

/** Fills in defaults in place, for a new object. */
export function applyDefaults(type: ResourceType, obj: KubeObject, allocateClusterIP: () => string): void {
  switch (type.kind) {
    case 'Namespace':
      obj['spec'] = { finalizers: ['kubernetes'], ...(obj['spec'] ?? {}) };
      obj['status'] = { phase: 'Active' };
      obj.metadata.labels = { ...(obj.metadata.labels ?? {}), 'kubernetes.io/metadata.name': obj.metadata.name! };
      break;
    case 'Pod':
      defaultPod(obj);
      break;
    case 'PersistentVolumeClaim':
      obj['spec'] = { volumeMode: 'Filesystem', ...obj['spec'] };
      obj['status'] = { phase: 'Pending' };
      break;
    case 'PersistentVolume':
      obj['spec'] = { persistentVolumeReclaimPolicy: 'Retain', volumeMode: 'Filesystem', ...obj['spec'] };
      obj['status'] = { phase: 'Pending' };
      break;
    case 'StorageClass':
      obj['reclaimPolicy'] ??= 'Delete';
      obj['volumeBindingMode'] ??= 'Immediate';
      break;
    case 'Service': {
      const spec = (obj['spec'] ??= {});
      spec.type ??= 'ClusterIP';
      spec.sessionAffinity ??= 'None';
      spec.internalTrafficPolicy ??= 'Cluster';
      if (spec.clusterIP === undefined) spec.clusterIP = allocateClusterIP();
      spec.clusterIPs ??= spec.clusterIP === 'None' ? ['None'] : [spec.clusterIP];
      spec.ipFamilies ??= ['IPv4'];
      spec.ipFamilyPolicy ??= 'SingleStack';
      for (const p of spec.ports ?? []) {
        p.protocol ??= 'TCP';
        p.targetPort ??= p.port;
      }
      obj['status'] = { loadBalancer: {} };
      break;
    }
    case 'Endpoints':
      for (const subset of obj['subsets'] ?? []) for (const p of subset.ports ?? []) p.protocol ??= 'TCP';
      break;
  }
}

function defaultPod(pod: KubeObject): void {
  const spec = (pod['spec'] ??= {});
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.securityContext ??= {};
  spec.schedulerName ??= 'default-scheduler';
  spec.serviceAccountName ??= spec.serviceAccount ?? 'default';
  spec.serviceAccount ??= spec.serviceAccountName;
  spec.enableServiceLinks ??= true;
  spec.preemptionPolicy ??= 'PreemptLowerPriority';
  spec.priority ??= 0;
  // DefaultTolerationSeconds admission.
  const tolerations: Array<Record<string, unknown>> = (spec.tolerations ??= []);
  for (const key of ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable']) {
    if (!tolerations.some((t) => t['key'] === key)) tolerations.push({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 });
  }
  for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
    const image = String(c.image ?? '');
    const tag = image.includes('@') ? 'digest' : (image.split('/').pop() ?? '').split(':')[1];
    c.imagePullPolicy ??= tag === undefined || tag === 'latest' ? 'Always' : 'IfNotPresent';
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
    c.resources ??= {};
    // SetDefaults_Pod: a limit without a request makes the request equal to it.
    if (c.resources.limits) {
      c.resources.requests ??= {};
      for (const [name, value] of Object.entries(c.resources.limits)) c.resources.requests[name] ??= value;
    }
    for (const p of c.ports ?? []) p.protocol ??= 'TCP';
    // SetDefaults_ObjectFieldSelector.
    for (const e of c.env ?? []) if (e.valueFrom?.fieldRef) e.valueFrom.fieldRef.apiVersion ??= 'v1';
    for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) {
      if (!probe) continue;
      probe.timeoutSeconds ??= 1;
      probe.periodSeconds ??= 10;
      probe.successThreshold ??= 1;
      probe.failureThreshold ??= 3;
      if (probe.httpGet) {
        probe.httpGet.path ??= '/';
        probe.httpGet.scheme ??= 'HTTP';
      }
    }
  }
  pod['status'] = { phase: 'Pending', qosClass: qosClass(pod) };
}
