// Jest global teardown: stop glusterd only if the global setup started it.
import { stopGlusterd } from './glusterd.mjs';

export default async function globalTeardown() {
  if (globalThis.__gkubeGlusterdPid !== undefined) await stopGlusterd(globalThis.__gkubeGlusterdPid);
}
