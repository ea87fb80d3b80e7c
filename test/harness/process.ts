import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

/** Fails loudly, naming the Debian package, when a program the tests need is not installed. */
export async function requireProgram(program: string, debianPackage: string): Promise<string> {
  const found = await execa('sh', ['-c', `command -v ${program}`], { reject: false });
  if (found.exitCode !== 0 || !found.stdout.trim()) {
    throw new Error(
      `${program} is not installed; the tests need the real one. Install it with: apt-get update && apt-get install -y ${debianPackage} ` +
        '(or run: bash scripts/setup.sh)',
    );
  }
  return found.stdout.trim();
}

/** A loopback TCP port that was free a moment ago (the kernel picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Polls `probe` until it returns true, or throws naming `what` and the last probe error. */
export async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 20_000, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = err;
    }
    await sleep(intervalMs);
  }
  const why = lastError instanceof Error ? `: ${lastError.message}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A fresh temporary directory whose removal is the caller's (see TempDirs). */
export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `gkube-${prefix}-`));
}

/** A long-running service process with its output kept in a log file, killed on stop or when the test process exits. */
export class ServiceProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly command: string,
    readonly args: string[],
    readonly logFile: string,
  ) {}

  /** Starts (or restarts) the process with the same command line. */
  start(): void {
    if (this.running) throw new Error(`${this.name} is already running`);
    const fd = openSync(this.logFile, 'a');
    const child = spawn(this.command, this.args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('error', () => undefined);
    liveChildren.add(child);
    child.once('exit', () => liveChildren.delete(child));
  }

  /** Whether the process is alive. */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The process id, while running. */
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  /** Sends `signal` and waits for the process to exit (SIGKILL after `graceMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<void> {
    if (!this.running) return;
    const child = this.child!;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** The tail of the log, for error messages when the service does not come up. */
  logTail(lines = 20): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

const liveChildren = new Set<ChildProcess>();
// A crashed or interrupted test run must not leave services behind.
process.once('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});

/** Collects temporary directories and removes them all at the end of a suite. */
export class TempDirs {
  private readonly dirs: string[] = [];

  /** Makes a new directory that `removeAll` will delete. */
  async make(prefix: string): Promise<string> {
    const dir = await tempDir(prefix);
    this.dirs.push(dir);
    return dir;
  }

  /** Deletes every directory made so far. */
  async removeAll(): Promise<void> {
    await Promise.all(this.dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  }
}
