import type { EtcdPort } from './adapters/etcd.js';
import type { KubePort } from './adapters/kube.js';
import type { GitPort } from './adapters/git.js';
import type { RegistryPort } from './adapters/registry.js';
import type { GlusterPort } from './adapters/gluster.js';
import type { Clock } from './clock.js';
import type { LoadedConfig } from './config/index.js';

/** Who is running gkube: recorded as the lock holder and in history. */
export interface Identity {
  /** BUILD_TAG in Jenkins, else user@host:pid. */
  id: string;
  user: string;
  host: string;
  pid: number;
  buildNumber?: string;
  buildUrl?: string;
}

/** What every action gets, built once by the CLI; connections open on first use. */
export interface Context {
  /** The etcd client (connects on the first call). */
  etcd(): EtcdPort;
  /** The etcd key prefix, default /gkube/v1. */
  prefix: string;
  /** The Kubernetes API, or undefined when neither a kubeconfig nor an in-cluster configuration exists. */
  kube(): KubePort | undefined;
  /** The git checkout in the working directory (INVALID_INPUT when it is none). */
  git(): Promise<GitPort>;
  /** The app configuration (gkube.yaml + env + --set + flags), loaded and validated on first use. */
  config(): Promise<LoadedConfig>;
  /** The Gluster pool's CLI, on this host or over ssh on `ssh` (user@host); loaded on first use, one port per target. */
  gluster(ssh: string | undefined): Promise<GlusterPort>;
  /** The image registry (credentials from the Docker config file when there is one). */
  registry(): RegistryPort;
  clock: Clock;
  /** Fires when the run should stop at its next safe point (SIGTERM from an aborted Jenkins build). */
  signal: AbortSignal;
  /**
   * Called as each step of a deploy begins, with the step's name. Tests use it to kill the process at a
   * chosen step (GKUBE_TEST_KILL_AT_STEP); otherwise it does nothing.
   */
  stepStarting(step: string): void;
  identity: Identity;
  /** A progress line for the person or the Jenkins console (stderr); never data. */
  progress(line: string): void;
  /** Whether a process of this host is alive (for locks whose holder died). */
  isRunning(pid: number): boolean;
}
