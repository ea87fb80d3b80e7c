// What the emulator's parts share: the store, where they may keep files, the registry, faults and a log.
import type { Faults } from './faults.js';
import type { KubeObject, ObjectStore } from './store.js';

/** Shared by the API server, the kubelet and the volume controller. */
export interface EmulatorContext {
  store: ObjectStore;
  /** A directory the emulator owns: pod roots, container logs, provisioned volumes, mounts. Removed on stop. */
  stateDir: string;
  /** Base URL of the image registry the kubelet pulls from (http://127.0.0.1:PORT); images are refused without one. */
  registryUrl?: string;
  faults: Faults;
  /** Diagnostic lines (not the request log). */
  log(line: string): void;
}

/** A volume of a pod, resolved to a directory on this machine. */
export interface HostVolume {
  hostPath: string;
  readOnly: boolean;
  /** Groups the pod's containers get because of this volume (a PV's `pv.beta.kubernetes.io/gid` annotation). */
  supplementalGroups?: number[];
}

/** The kubelet's view of storage (implemented by volumes.ts). */
export interface VolumePort {
  /**
   * Resolves every volume in pod.spec.volumes to a host directory, mounting what needs mounting (a
   * GlusterFS PV is FUSE-mounted) and applying the pod's fsGroup where the volume plugin does. Throws an
   * Error whose message the kubelet reports in a FailedMount / FailedScheduling event when a claim is
   * unbound or a mount fails; the kubelet retries.
   */
  prepare(pod: KubeObject): Promise<Map<string, HostVolume>>;
  /** Called when the pod is gone: releases what prepare set up for it (emptyDir contents, mount refs). */
  release(pod: KubeObject): Promise<void>;
}

/** What the API server needs from the kubelet (implemented by kubelet.ts). */
export interface KubeletPort {
  /** Checks an exec request before the connection is upgraded (pod, container, command); returns the container name or throws an ApiError. */
  checkExec(namespace: string, pod: string, container: string | undefined, command: string[]): string;
  /** Runs a command in a running container (exec subresource) over an upgraded WebSocket. */
  exec(request: ExecRequest): void;
  /** Streams a container's log (log subresource) to `write`; resolves when done (follow: when the container ends or `signal` aborts). */
  logs(request: LogRequest, write: (chunk: Buffer) => void, signal: AbortSignal): Promise<void>;
  /** Where a pod's port listens, for the proxy subresource; throws an ApiError when the pod is not running. */
  podAddress(namespace: string, name: string): { ip: string };
}

/** An exec request after the server has upgraded the connection. */
export interface ExecRequest {
  namespace: string;
  pod: string;
  container?: string;
  command: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
  /** The negotiated subprotocol: v5.channel.k8s.io, v4.channel.k8s.io, … */
  protocol: string;
  /** The upgraded socket (a `ws` WebSocket). */
  socket: import('ws').WebSocket;
}

/** A log request, from the log subresource's query. */
export interface LogRequest {
  namespace: string;
  pod: string;
  container?: string;
  follow: boolean;
  previous: boolean;
  tailLines?: number;
  timestamps: boolean;
  sinceSeconds?: number;
  limitBytes?: number;
}
