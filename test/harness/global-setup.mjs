// Jest global setup: the one machine-wide service, glusterd, is started once for all suites.
import { ensureGlusterd } from './glusterd.mjs';

export default async function globalSetup() {
  globalThis.__gkubeGlusterdPid = await ensureGlusterd();
}
