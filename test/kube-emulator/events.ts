// core/v1 Events as the kubelet and controllers record them, aggregated by reason and message.
import type { ObjectStore, KubeObject } from './store.js';
import { now } from './store.js';
import { findType } from './resources.js';

const eventsType = findType('', 'events')!;

/** Records an Event about `involved` (a repeat of the same reason and message bumps its count). */
export function recordEvent(store: ObjectStore, involved: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string, component = 'kubelet', fieldPath?: string): void {
  const namespace = involved.metadata.namespace ?? 'default';
  const involvedObject = {
    kind: involved.kind,
    namespace: involved.metadata.namespace,
    name: involved.metadata.name,
    uid: involved.metadata.uid,
    apiVersion: involved.apiVersion,
    resourceVersion: involved.metadata.resourceVersion,
    ...(fieldPath ? { fieldPath } : {}),
  };
  const existing = store
    .list(eventsType, { namespace })
    .items.find((e) => e['involvedObject']?.uid === involved.metadata.uid && e['reason'] === reason && e['message'] === message);
  const at = now();
  if (existing) {
    store.mutate(eventsType, namespace, existing.metadata.name!, (e) => {
      e['count'] = (e['count'] ?? 1) + 1;
      e['lastTimestamp'] = at;
    });
    return;
  }
  store.create(eventsType, {
    metadata: { name: `${involved.metadata.name}.${Date.now().toString(16)}${Math.floor(Math.random() * 0xfff).toString(16)}`, namespace },
    involvedObject,
    reason,
    message,
    source: { component, ...(component === 'kubelet' ? { host: 'emulator-node' } : {}) },
    firstTimestamp: at,
    lastTimestamp: at,
    count: 1,
    type,
    eventTime: null,
    reportingComponent: component,
    reportingInstance: component === 'kubelet' ? 'emulator-node' : '',
  });
}
