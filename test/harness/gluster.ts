import { networkInterfaces } from 'node:os';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { requireProgram, sleep, TempDirs, waitUntil } from './process.js';

const cliTimeoutMs = 60_000;

/** A Gluster volume made for one test: unique name, bricks in temp dirs, mounts tracked for removal. */
export interface TestVolume {
  name: string;
  /** `host:/path` of each brick, as gluster reports them. */
  bricks: string[];
  /** Local directories of the bricks: what a file written through the volume really lands in. */
  brickDirs: string[];
}

/** The machine's glusterd, reached through the real `gluster` CLI, with every volume it made removed on `cleanup`. */
export class GlusterPool {
  private readonly temp = new TempDirs();
  private readonly volumes: TestVolume[] = [];
  private readonly mounts: string[] = [];
  private counter = 0;

  private constructor(readonly host: string) {}

  /** Checks that glusterd is installed and answering (the jest global setup starts it when it is not). */
  static async connect(): Promise<GlusterPool> {
    await requireProgram('glusterd', 'glusterfs-server');
    await requireProgram('mount.glusterfs', 'glusterfs-client');
    await waitUntil('glusterd to answer `gluster pool list`', async () => (await gluster(['pool', 'list'], false)).exitCode === 0, 20_000, 250);
    return new GlusterPool(glusterHost());
  }

  /** Creates and starts a volume with `replica` bricks (1 = distribute) on this host, using `force` for same-host bricks. */
  async createVolume(options: { replica?: number; start?: boolean } = {}): Promise<TestVolume> {
    const replica = options.replica ?? 1;
    const name = `gkt-${process.pid}-${Date.now().toString(36)}-${this.counter++}`;
    const root = await this.temp.make(`brick-${name}`);
    const brickDirs: string[] = [];
    for (let i = 0; i < replica; i++) {
      const dir = join(root, `b${i}`);
      await mkdir(dir);
      brickDirs.push(dir);
    }
    const bricks = brickDirs.map((d) => `${this.host}:${d}`);
    const layout = replica > 1 ? ['replica', String(replica)] : [];
    await glusterChecked(['volume', 'create', name, ...layout, ...bricks, 'force']);
    const volume: TestVolume = { name, bricks, brickDirs };
    this.volumes.push(volume);
    if (options.start !== false) await glusterChecked(['volume', 'start', name]);
    return volume;
  }

  /** FUSE-mounts a volume on a new temporary directory (unmounted by cleanup) and returns the directory. */
  async mount(volume: TestVolume): Promise<string> {
    await requireProgram('mount.glusterfs', 'glusterfs-client');
    const dir = await this.temp.make(`mnt-${volume.name}`);
    await execa('mount', ['-t', 'glusterfs', `${this.host}:/${volume.name}`, dir], { timeout: cliTimeoutMs });
    this.mounts.push(dir);
    return dir;
  }

  /** Unmounts, stops and deletes every volume this pool made, then removes the brick directories. */
  async cleanup(): Promise<void> {
    for (const dir of this.mounts.splice(0)) await execa('umount', ['-l', dir], { reject: false });
    for (const v of this.volumes.splice(0)) {
      await gluster(['volume', 'stop', v.name, 'force'], true);
      await glusterChecked(['volume', 'delete', v.name]);
    }
    await this.temp.removeAll();
  }

  /** Names of all volumes glusterd knows. */
  async volumeNames(): Promise<string[]> {
    const out = await glusterChecked(['volume', 'list']);
    return out.split('\n').map((l) => l.trim()).filter((l) => l && l !== 'No volumes present in cluster');
  }
}

/** The address bricks are created on and the pool is reached at: this host's first IPv4 address that is not loopback. */
export function glusterHost(): string {
  const fromEnv = process.env['GKUBE_TEST_GLUSTER_HOST'];
  if (fromEnv) return fromEnv;
  // An address of this host that is not loopback: Gluster refuses bricks on loopback, and Kubernetes refuses
  // loopback addresses in the Endpoints of an in-tree GlusterFS volume (the host name may resolve to 127.x).
  for (const addrs of Object.values(networkInterfaces())) {
    const v4 = addrs?.find((a) => a.family === 'IPv4' && !a.internal);
    if (v4) return v4.address;
  }
  throw new Error('this host has no IPv4 address other than loopback for the Gluster pool; set GKUBE_TEST_GLUSTER_HOST to one');
}

// glusterd runs one transaction at a time across the pool; parallel test files collide and must retry.
const busy = /another transaction is in progress|locking failed|please try again after some time/i;

async function gluster(args: string[], retryBusy: boolean) {
  for (let attempt = 0; ; attempt++) {
    const result = await execa('gluster', ['--mode=script', ...args], { reject: false, timeout: cliTimeoutMs });
    const text = `${result.stdout}\n${result.stderr}`;
    if (result.exitCode === 0 || !retryBusy || !busy.test(text) || attempt >= 20) return result;
    await sleep(200 + attempt * 200);
  }
}

/** Runs a gluster CLI command (always non-interactive), retrying while glusterd is busy; throws with its output on failure. */
export async function glusterChecked(args: string[]): Promise<string> {
  const result = await gluster(args, true);
  if (result.exitCode !== 0) {
    throw new Error(`gluster ${args.join(' ')} failed (exit ${result.exitCode}): ${`${result.stdout} ${result.stderr}`.trim()}`);
  }
  return result.stdout;
}
