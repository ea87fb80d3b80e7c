// The emulator as one object: store, API server, kubelet and volume controller, started and stopped together.
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { EmulatorContext } from './context.js';
import { Faults } from './faults.js';
import { Kubelet, type KubeletOptions } from './kubelet.js';
import { findType } from './resources.js';
import { ApiServer, type RequestLogEntry } from './server.js';
import { ObjectStore } from './store.js';
import { kubeconfigYaml, makeServerTls } from './tls.js';
import { VolumeManager } from './volumes.js';

/** How to start the emulator. */
export interface EmulatorOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** Serve HTTPS with a generated CA (default) or plain HTTP. */
  tls?: boolean;
  /** The image registry the kubelet pulls from, e.g. http://127.0.0.1:5000. */
  registryUrl?: string;
  /** Where pod roots, logs and volumes live; a new temp dir by default. Removed on stop only if the emulator made it. */
  stateDir?: string;
  /** What /version reports, e.g. "1.31" (default). */
  kubeVersion?: string;
  /** Kubelet timings (back-off, probe scaling), for tests. */
  kubelet?: KubeletOptions;
  /** Diagnostic log sink (default: silent). */
  log?: (line: string) => void;
}

/** A running emulator. */
export class KubeEmulator {
  private constructor(
    /** Base URL of the API server. */
    readonly url: string,
    /** A kubeconfig (YAML) that trusts the emulator's CA and carries its token. */
    readonly kubeconfig: string,
    readonly store: ObjectStore,
    readonly faults: Faults,
    private readonly server: ApiServer,
    private readonly kubelet: Kubelet,
    private readonly volumes: VolumeManager,
    private readonly stateDir: string,
    private readonly ownsStateDir: boolean,
  ) {}

  /** Starts everything and creates the namespaces a new cluster has. */
  static async start(options: EmulatorOptions = {}): Promise<KubeEmulator> {
    const ownsStateDir = options.stateDir === undefined;
    const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), 'gkube-emulator-')));
    const store = new ObjectStore();
    const faults = new Faults();
    const ctx: EmulatorContext = { store, stateDir, faults, log: options.log ?? (() => undefined) };
    if (options.registryUrl) ctx.registryUrl = options.registryUrl;
    const nsType = findType('', 'namespaces')!;
    for (const name of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      store.create(nsType, { metadata: { name, labels: { 'kubernetes.io/metadata.name': name } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } });
    }
    const volumes = new VolumeManager(ctx);
    const kubelet = new Kubelet(ctx, volumes, options.kubelet);
    const tls = options.tls === false ? undefined : await makeServerTls(join(stateDir, 'pki'));
    const token = randomBytes(24).toString('hex');
    const server = new ApiServer(ctx, kubelet, { kubeVersion: options.kubeVersion ?? '1.31', token, ...(tls ? { tls } : {}) });
    volumes.start();
    kubelet.start();
    let url: string;
    try {
      url = await server.listen(options.port ?? 0);
    } catch (err) {
      await kubelet.stop();
      await volumes.stop();
      if (ownsStateDir) await rm(stateDir, { recursive: true, force: true });
      throw err;
    }
    return new KubeEmulator(url, kubeconfigYaml(url, token, tls?.caPem), store, faults, server, kubelet, volumes, stateDir, ownsStateDir);
  }

  /** Every request served so far (method, path, status, bytes, verb, resource, ms). */
  get requestLog(): readonly RequestLogEntry[] {
    return this.server.requestLog;
  }

  /**
   * Writes the kubeconfig to `file` (mode 600: it holds the token) atomically, through a temporary file
   * beside it and a rename: whoever waits for the file to appear reads it whole, never empty or half written.
   */
  async writeKubeconfig(file: string): Promise<void> {
    const partial = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
    try {
      await writeFile(partial, this.kubeconfig, { mode: 0o600 });
      await rename(partial, file);
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
  }

  /** Stops the server, kills every container, unmounts volumes and removes what the emulator made. */
  async stop(): Promise<void> {
    await this.server.close();
    await this.kubelet.stop();
    await this.volumes.stop();
    if (this.ownsStateDir) await rm(this.stateDir, { recursive: true, force: true });
    else await rm(join(this.stateDir, 'pki'), { recursive: true, force: true });
  }
}
