// glusterd is one per machine: the jest global setup starts it when it is installed but not running,
// and the global teardown stops it only if the setup started it and no volume is left in the pool (a
// concurrent run's volumes mean that run still needs it). Plain JS because jest loads these outside its module mapper.
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);
const pidFile = '/run/gkube-test-glusterd.pid';

async function answering() {
  try {
    await run('gluster', ['--mode=script', 'pool', 'list'], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

async function waitFor(what, probe, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts glusterd if it is installed and not answering; returns its pid when this call started it. */
export async function ensureGlusterd() {
  try {
    await run('sh', ['-c', 'command -v glusterd']);
  } catch {
    return undefined; // the Gluster suites fail loudly, naming the package to install
  }
  if (await answering()) return undefined;
  // glusterd daemonizes itself; its pid lands in the pid file.
  await run('glusterd', ['-p', pidFile], { timeout: 30_000 });
  await waitFor('glusterd to answer `gluster pool list`', answering, 30_000);
  // Another process may have started glusterd at the same moment; then ours exited and that one is not ours to stop.
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  return pid > 0 && alive(pid) ? pid : undefined;
}

/** Whether the pool has volumes: another test run on this machine (or the machine's owner) is using glusterd. */
async function inUse() {
  try {
    const { stdout } = await run('gluster', ['--mode=script', 'volume', 'list'], { timeout: 10_000 });
    return !/No volumes present/.test(stdout) && stdout.trim() !== '';
  } catch {
    return false;
  }
}

/** Stops a glusterd that ensureGlusterd started, unless volumes are still in the pool (another run uses it). */
export async function stopGlusterd(pid) {
  if (!alive(pid)) return;
  if (await inUse()) return;
  process.kill(pid, 'SIGTERM');
  await waitFor('glusterd to stop', async () => !alive(pid), 15_000).catch(() => process.kill(pid, 'SIGKILL'));
  await rm(pidFile, { force: true });
}
