// Server-side printing: the meta.k8s.io/v1 Table that kubectl asks for (`Accept: …;as=Table`), with the
// columns and cell values the API server's printers produce.
import type { ResourceType } from './resources.js';
import type { KubeObject } from './store.js';

interface Column {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

const col = (name: string, type = 'string', priority = 0, format = ''): Column => ({ name, type, format, description: name, priority });
const nameCol: Column = { ...col('Name', 'string', 0, 'name'), description: 'Name must be unique within a namespace.' };
const ageCol: Column = { ...col('Age'), description: 'CreationTimestamp is a timestamp representing the server time when this object was created.' };

type Printer = { columns: Column[]; cells(obj: KubeObject, now: number): unknown[] };

const printers: Record<string, Printer> = {
  Pod: {
    columns: [nameCol, col('Ready'), col('Status'), col('Restarts'), ageCol, col('IP', 'string', 1), col('Node', 'string', 1), col('Nominated Node', 'string', 1), col('Readiness Gates', 'string', 1)],
    cells: (pod, now) => {
      const { ready, total, status, restarts } = podSummary(pod, now);
      return [pod.metadata.name, `${ready}/${total}`, status, restarts, age(pod, now), pod['status']?.podIP ?? '<none>', pod['spec']?.nodeName ?? '<none>', '<none>', '<none>'];
    },
  },
  Namespace: { columns: [nameCol, col('Status'), ageCol], cells: (ns, now) => [ns.metadata.name, ns['status']?.phase ?? '', age(ns, now)] },
  PersistentVolumeClaim: {
    columns: [nameCol, col('Status'), col('Volume'), col('Capacity'), col('Access Modes'), col('StorageClass'), col('VolumeAttributesClass'), ageCol, col('VolumeMode', 'string', 1)],
    cells: (c, now) => [c.metadata.name, c['status']?.phase ?? '', c['spec']?.volumeName ?? '', c['status']?.capacity?.storage ?? '', modes(c['status']?.accessModes), c['spec']?.storageClassName ?? '<unset>', '<unset>', age(c, now), c['spec']?.volumeMode ?? ''],
  },
  PersistentVolume: {
    columns: [nameCol, col('Capacity'), col('Access Modes'), col('Reclaim Policy'), col('Status'), col('Claim'), col('StorageClass'), col('VolumeAttributesClass'), col('Reason'), ageCol, col('VolumeMode', 'string', 1)],
    cells: (v, now) => {
      const ref = v['spec']?.claimRef;
      return [v.metadata.name, v['spec']?.capacity?.storage ?? '', modes(v['spec']?.accessModes), v['spec']?.persistentVolumeReclaimPolicy ?? '', v['status']?.phase ?? '', ref ? `${ref.namespace}/${ref.name}` : '', v['spec']?.storageClassName ?? '', '<unset>', v['status']?.reason ?? '', age(v, now), v['spec']?.volumeMode ?? ''];
    },
  },
  Service: {
    columns: [nameCol, col('Type'), col('Cluster-IP'), col('External-IP'), col('Port(s)'), ageCol, col('Selector', 'string', 1)],
    cells: (s, now) => [
      s.metadata.name, s['spec']?.type ?? '', s['spec']?.clusterIP ?? '', '<none>',
      ((s['spec']?.ports ?? []) as Array<{ port: number; protocol: string }>).map((p) => `${p.port}/${p.protocol}`).join(',') || '<none>',
      age(s, now), Object.entries(s['spec']?.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '<none>',
    ],
  },
  Endpoints: {
    columns: [nameCol, col('Endpoints'), ageCol],
    cells: (e, now) => {
      const eps: string[] = [];
      for (const s of e['subsets'] ?? []) for (const a of s.addresses ?? []) for (const p of s.ports ?? [{ port: undefined }]) eps.push(p.port ? `${a.ip}:${p.port}` : a.ip);
      return [e.metadata.name, eps.join(',') || '<none>', age(e, now)];
    },
  },
  Event: {
    columns: [col('Last Seen'), col('Type'), col('Reason'), col('Object'), col('Message')],
    cells: (e, now) => [human(now - Date.parse(e['lastTimestamp'] ?? e.metadata.creationTimestamp!)), e['type'], e['reason'], `${String(e['involvedObject']?.kind ?? '').toLowerCase()}/${e['involvedObject']?.name}`, e['message']],
  },
  StorageClass: {
    columns: [nameCol, col('Provisioner'), col('ReclaimPolicy'), col('VolumeBindingMode'), col('AllowVolumeExpansion'), ageCol],
    cells: (s, now) => [
      s.metadata.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true' ? `${s.metadata.name} (default)` : s.metadata.name,
      s['provisioner'], s['reclaimPolicy'] ?? 'Delete', s['volumeBindingMode'] ?? 'Immediate', Boolean(s['allowVolumeExpansion']), age(s, now),
    ],
  },
};

/** Whether an Accept header asks for a Table. */
export function wantsTable(accept: string | undefined): boolean {
  return Boolean(accept && /as=Table/.test(accept) && /g=meta\.k8s\.io/.test(accept));
}

/** Renders objects as a Table (rows carry the object's metadata, as includeObject=Metadata does). */
export function toTable(type: ResourceType, objects: KubeObject[], listMeta: Record<string, unknown>, includeObject = 'Metadata'): KubeObject {
  const printer = printers[type.kind] ?? { columns: [nameCol, ageCol], cells: (o: KubeObject, now: number) => [o.metadata.name, age(o, now)] };
  const now = Date.now();
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMeta,
    columnDefinitions: printer.columns,
    rows: objects.map((o) => ({
      cells: printer.cells(o, now),
      object: includeObject === 'Object' ? o : includeObject === 'None' ? undefined : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  };
}

function podSummary(pod: KubeObject, now: number): { ready: number; total: number; status: string; restarts: string } {
  const status = pod['status'] ?? {};
  const containers = (pod['spec']?.containers ?? []) as unknown[];
  let reason: string = status.reason || status.phase || '';
  let restarts = 0;
  let lastRestart = 0;
  let ready = 0;
  let initializing = false;
  const initStatuses = (status.initContainerStatuses ?? []) as Array<Record<string, any>>;
  const initCount = (pod['spec']?.initContainers ?? []).length;
  initStatuses.forEach((c, i) => {
    restarts += c['restartCount'] ?? 0;
    const t = c['state']?.terminated;
    const w = c['state']?.waiting;
    if (t && t.exitCode === 0) return;
    if (initializing) return;
    if (t) reason = t.reason ? `Init:${t.reason}` : t.signal ? `Init:Signal:${t.signal}` : `Init:ExitCode:${t.exitCode}`;
    else if (w && w.reason && w.reason !== 'PodInitializing') reason = `Init:${w.reason}`;
    else reason = `Init:${i}/${initCount}`;
    initializing = true;
  });
  if (!initializing) {
    restarts = 0;
    let hasRunning = false;
    const statuses = [...((status.containerStatuses ?? []) as Array<Record<string, any>>)].reverse();
    for (const c of statuses) {
      restarts += c['restartCount'] ?? 0;
      const finished = c['lastState']?.terminated?.finishedAt;
      if (finished) lastRestart = Math.max(lastRestart, Date.parse(finished));
      const w = c['state']?.waiting;
      const t = c['state']?.terminated;
      if (w?.reason) reason = w.reason;
      else if (t?.reason) reason = t.reason;
      else if (t) reason = t.signal ? `Signal:${t.signal}` : `ExitCode:${t.exitCode}`;
      else if (c['ready'] && c['state']?.running) {
        hasRunning = true;
        ready++;
      }
    }
    if (reason === 'Completed' && hasRunning) {
      const readyCond = (status.conditions ?? []).find((c: { type: string }) => c.type === 'Ready');
      reason = readyCond?.status === 'True' ? 'Running' : 'NotReady';
    }
  }
  if (pod.metadata.deletionTimestamp) reason = status.reason === 'NodeLost' ? 'Unknown' : 'Terminating';
  const restartText = lastRestart ? `${restarts} (${human(now - lastRestart)} ago)` : String(restarts);
  return { ready, total: containers.length, status: reason, restarts: restartText };
}

function modes(list: string[] | undefined): string {
  const short: Record<string, string> = { ReadWriteOnce: 'RWO', ReadOnlyMany: 'ROX', ReadWriteMany: 'RWX', ReadWriteOncePod: 'RWOP' };
  return (list ?? []).map((m) => short[m] ?? m).join(',');
}

function age(obj: KubeObject, now: number): string {
  const created = obj.metadata.creationTimestamp;
  return created ? human(now - Date.parse(created)) : '<unknown>';
}

/** apimachinery's duration.HumanDuration. */
export function human(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (h < 24 * 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (d < 365 * 2) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}
