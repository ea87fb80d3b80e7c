// Helpers shared by the volume controller suites.
import { expect } from '@jest/globals';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EmulatorContext } from '../kube-emulator/context.js';
import { Faults } from '../kube-emulator/faults.js';
import { ObjectStore, type KubeObject } from '../kube-emulator/store.js';
import { VolumeManager, VolumeSetupError } from '../kube-emulator/volumes.js';

/** A started volume manager on a fresh store and state directory, with its log lines collected. */
export async function startVolumeManager(prefix: string): Promise<{ stateDir: string; store: ObjectStore; logs: string[]; vm: VolumeManager }> {
  const stateDir = await mkdtemp(join(tmpdir(), prefix));
  const store = new ObjectStore();
  const logs: string[] = [];
  const ctx: EmulatorContext = { store, stateDir, faults: new Faults(), log: (line) => logs.push(line) };
  const vm = new VolumeManager(ctx, { resyncMs: 0 });
  vm.start();
  return { stateDir, store, logs, vm };
}

/** Runs prepare(pod), which must fail with a VolumeSetupError, and returns that error. */
export async function prepareError(vm: VolumeManager, pod: KubeObject): Promise<VolumeSetupError> {
  try {
    await vm.prepare(pod);
  } catch (err) {
    expect(err).toBeInstanceOf(VolumeSetupError);
    return err as VolumeSetupError;
  }
  throw new Error('prepare did not fail');
}
