// Helpers shared by the volume controller suites.
import { expect } from '@jest/globals';
import { VolumeSetupError, type VolumeManager } from '../kube-emulator/volumes.js';
import type { KubeObject } from '../kube-emulator/store.js';

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
