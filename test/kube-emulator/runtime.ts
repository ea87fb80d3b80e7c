// The emulator's container runtime: each container is a real process tree on this machine, in its own
// mount, UTS and PID namespaces, chrooted into a per-pod root directory that shows the host's
// /usr, /etc, /bin… read-only plus the pod's volumes at their mountPaths.
//
// Safety rules (the host must never be harmed by a pod):
// - Every mount is made by the setup script inside `unshare --mount --propagation private`: nothing is
//   ever mounted in the host's namespace, so the pod root seen from the host holds only empty mount
//   points, and removing it (removeTree) never reaches a host directory. removeTree also refuses to run
//   when the host's mount table shows anything below the directory.
// - Mount targets are created and resolved inside the chroot, and a target whose path goes through a
//   symbolic link is refused, so a volume's symlink cannot redirect a mount or a mkdir to the host.
// - The container's command is PID 1 of its own PID namespace: when it dies the kernel kills every
//   process left in the container (exec sessions included), so nothing is left behind. `setpriv
//   --pdeathsig KILL` and `unshare --kill-child` make the whole container die if the Node process dies.
//
// Users: every mount is made as root; then, inside the chroot and after changing into the working
// directory (runc does both as root), `setpriv` switches to the container's user, group and supplementary
// groups, as runc does before it execs the command. The command, exec sessions and exec probes all run
// with those credentials, so a non-root container gets EACCES where a real one would. A root container
// goes through setpriv too: its supplementary groups are the pod's, not the emulator's. Changing the
// credentials clears the parent-death signal, so the container's `setpriv` sets it again (KILL): PID 1
// still dies with `unshare`. Capabilities are not reduced to a container runtime's default set: a root
// container keeps root's.
//
// Signals come from the kernel the emulator runs on. Linux drops a signal sent from inside a PID namespace
// to its PID 1 when PID 1 has no handler for it; the gVisor kernel of these test machines sometimes
// delivers it instead while PID 1 is starting (measured: `kill -HUP 1` every 10 ms from an exec session
// killed a starting Node server in 3 to 6 tries of 12), as it would on a gVisor node (GKE Sandbox). The
// emulator does not hide that: an app that signals PID 1 should wait until PID 1 handles the signal, as
// examples/hello's reload command does.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, statSync, type WriteStream } from 'node:fs';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { EventEmitter } from 'node:events';
import { constants as osConstants } from 'node:os';

/** The PATH a process gets when neither the image nor the pod sets one (containerd's default). */
export const defaultPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The environment the runtime's own helpers (setpriv, unshare, nsenter, mount) run with. */
const helperEnv = { PATH: defaultPath, LC_ALL: 'C' };

/** Host directories shown read-only in every container (a symlinked one, such as /bin -> usr/bin, is recreated as the same link). */
const hostDirs = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32', 'usr', 'etc'];

/** A bind mount into the container. */
export interface ContainerMount {
  /** Host path (a directory or a file). */
  source: string;
  /** Absolute path inside the container. */
  target: string;
  readOnly: boolean;
}

/** Who a container's processes run as (the OCI spec's process.user), and whether they may gain privileges. */
export interface ContainerUser {
  uid: number;
  gid: number;
  /** Supplementary groups, as setgroups(2) gets them (containerd puts the primary group first). */
  groups: number[];
  /** no_new_privs: securityContext.allowPrivilegeEscalation false. */
  noNewPrivs: boolean;
}

/** The `setpriv` argv that switches to `user` and execs what follows (setgroups, then setgid, then setuid). */
export function setprivArgv(user: ContainerUser, pdeathsig: boolean): string[] {
  for (const id of [user.uid, user.gid, ...user.groups]) {
    if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe) throw new Error(`invalid user or group id ${id}`);
  }
  return [
    'setpriv',
    `--reuid=${user.uid}`,
    `--regid=${user.gid}`,
    user.groups.length > 0 ? `--groups=${user.groups.join(',')}` : '--clear-groups',
    ...(user.noNewPrivs ? ['--no-new-privs'] : []),
    ...(pdeathsig ? ['--pdeathsig', 'KILL'] : []),
    '--',
  ];
}

/** Everything needed to start one container instance. */
export interface ContainerLaunch {
  /** containerd-style 64-hex id (also names its files). */
  id: string;
  /** The pod's root directory (made by preparePodRoot). */
  rootDir: string;
  /** A directory of this instance's own (setup script, overlay scratch); created here. */
  workDir: string;
  hostname: string;
  argv: string[];
  env: Array<[string, string]>;
  workingDir: string;
  /** The credentials the command runs with. */
  user: ContainerUser;
  mounts: ContainerMount[];
  logPath: string;
  /** Keep stdin open as a pipe (container.stdin); otherwise /dev/null. */
  stdin?: boolean;
}

/** How a container instance ended. */
export interface ContainerExit {
  exitCode: number;
  /** Set when the instance never ran its command (setup failed, executable missing). */
  startError?: string;
  /** The signal that ended it, when one did. */
  signal?: NodeJS.Signals;
  finishedAt: Date;
}

/** Makes the pod's root directory: empty mount points and the host's top-level symlinks. */
export async function preparePodRoot(rootDir: string): Promise<void> {
  await mkdir(rootDir, { recursive: true });
  for (const d of hostDirs) {
    const host = `/${d}`;
    let st;
    try {
      st = lstatSync(host);
    } catch {
      continue;
    }
    const inRoot = join(rootDir, d);
    if (existsSync(inRoot) || isLink(inRoot)) continue;
    if (st.isSymbolicLink()) await symlink(readlinkSync(host), inRoot);
    else if (st.isDirectory()) await mkdir(inRoot);
  }
  for (const d of ['proc', 'dev', 'tmp', 'sys', 'run', 'root', 'var/tmp', 'var/run']) await mkdir(join(rootDir, d), { recursive: true });
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Quotes a string for the POSIX shell. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The script run (as PID 1 of the new namespaces) to build the container's view and exec its command. */
function setupScript(launch: ContainerLaunch): string {
  const R = launch.rootDir;
  const lines: string[] = [
    'set -u',
    `R=${shellQuote(R)}`,
    `W=${shellQuote(launch.workDir)}`,
    // Errors go to fd 3, which the runtime reads: "started" or the reason the container could not start.
    `fail() { printf '%s\\n' "$1" >&3; exit 125; }`,
    // unshare already made every mount private; repeat it so nothing here can propagate to the host.
    `mount --make-rprivate / || fail 'cannot make mounts private'`,
    // The helper that checks a mount target inside the chroot: created there, and no symlink on the way.
    `target() { chroot "$R" mkdir -p -- "$1" 2>/dev/null || fail "cannot create mount point $1"; [ "$(chroot "$R" readlink -f -- "$1")" = "$1" ] || fail "mount point $1 goes through a symbolic link"; }`,
    `ftarget() { target "$(dirname -- "$1")"; if [ -L "$R$1" ]; then fail "mount point $1 is a symbolic link"; fi; [ -e "$R$1" ] || : > "$R$1" || fail "cannot create mount point $1"; [ "$(chroot "$R" readlink -f -- "$1")" = "$1" ] || fail "mount point $1 goes through a symbolic link"; }`,
  ];
  // Host directories: read-only binds, or a writable overlay (upper layer in a tmpfs of this
  // namespace) when a volume must be mounted at a path the host directory does not have.
  const overlayNeeded = new Set<string>();
  for (const m of launch.mounts) {
    const top = m.target.split('/')[1] ?? '';
    if (hostDirs.includes(top) && isRealDir(`/${top}`) && !existsSync(m.target)) overlayNeeded.add(top);
  }
  if (overlayNeeded.size > 0) lines.push(`mkdir -p "$W/ovl" && mount -t tmpfs -o mode=0700 tmpfs "$W/ovl" || fail 'cannot mount overlay scratch'`);
  for (const d of hostDirs) {
    if (!isRealDir(`/${d}`)) continue;
    if (overlayNeeded.has(d)) {
      lines.push(
        `mkdir -p "$W/ovl/${d}.up" "$W/ovl/${d}.work" && mount -t overlay overlay -o "lowerdir=/${d},upperdir=$W/ovl/${d}.up,workdir=$W/ovl/${d}.work" "$R/${d}" || fail 'cannot mount /${d}'`,
      );
    } else lines.push(`mount --bind -o ro /${d} "$R/${d}" || fail 'cannot mount /${d}'`);
  }
  lines.push(
    `mount -t proc proc "$R/proc" || fail 'cannot mount /proc'`,
    // A private /dev as runc builds it: a tmpfs with the host's harmless device nodes bound in, so
    // nothing a container writes under /dev (a termination log, say) lands in the host's /dev.
    `mount -t tmpfs -o mode=755,nosuid tmpfs "$R/dev" || fail 'cannot mount /dev'`,
    `for n in null zero full random urandom tty; do : > "$R/dev/$n" && mount --bind "/dev/$n" "$R/dev/$n" || fail "cannot mount /dev/$n"; done`,
    `mkdir -p "$R/dev/pts" "$R/dev/shm" && mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm" || fail 'cannot mount /dev/shm'`,
    `mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$R/dev/pts" 2>/dev/null && ln -s pts/ptmx "$R/dev/ptmx"`,
    `ln -s /proc/self/fd "$R/dev/fd" && ln -s /proc/self/fd/0 "$R/dev/stdin" && ln -s /proc/self/fd/1 "$R/dev/stdout" && ln -s /proc/self/fd/2 "$R/dev/stderr"`,
    `mount -t tmpfs -o mode=1777 tmpfs "$R/tmp" || fail 'cannot mount /tmp'`,
  );
  // Volumes, parents before children.
  const mounts = [...launch.mounts].sort((a, b) => a.target.split('/').length - b.target.split('/').length);
  for (const m of mounts) {
    const t = shellQuote(m.target);
    const src = shellQuote(m.source);
    const ro = m.readOnly ? '-o ro ' : '';
    if (isDir(m.source)) lines.push(`target ${t}`);
    else lines.push(`ftarget ${t}`);
    lines.push(`mount --bind ${ro}${src} "$R"${t} || fail ${shellQuote(`cannot mount ${m.source} at ${m.target}`)}`);
  }
  lines.push(
    `hostname ${shellQuote(launch.hostname)} || fail 'cannot set the hostname'`,
    `target ${shellQuote(launch.workingDir)}`,
  );
  // Inside the chroot, as root: change into the working directory (runc does it before it drops
  // privileges), then switch to the container's user. As that user: check the executable (so a missing
  // or unusable one is a start error as with runc), tell the runtime the container started, close fd 3,
  // and exec the command as PID 1.
  const asRoot = [
    'wd=$1; shift',
    `cd -- "$wd" 2>/dev/null || { printf 'chdir to cwd ("%s") set in config.json failed: no such file or directory\\n' "$wd" >&3; exit 125; }`,
    'exec "$@"',
  ].join('\n');
  const asUser = userWrapper(125);
  const setpriv = setprivArgv(launch.user, true).map(shellQuote).join(' ');
  const envArgs = launch.env.map(([k, v]) => shellQuote(`${k}=${v}`)).join(' ');
  const argv = launch.argv.map(shellQuote).join(' ');
  lines.push(
    `exec chroot "$R" /bin/sh -c ${shellQuote(asRoot)} sh ${shellQuote(launch.workingDir)} ${setpriv} env -i ${envArgs} /bin/sh -c ${shellQuote(asUser)} sh ${argv} 1>&4 2>&5 4>&- 5>&-`,
  );
  return lines.join('\n') + '\n';
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isRealDir(p: string): boolean {
  try {
    return lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** RFC 3339 with nanoseconds, trailing zeros trimmed (Go's RFC3339Nano), as CRI log lines carry. */
export function nanoTimestamp(date = new Date(), subMillisNanos = Number(process.hrtime.bigint() % 1_000_000n)): string {
  const iso = date.toISOString(); // 2024-01-02T03:04:05.678Z
  const nanos = String(date.getUTCMilliseconds() * 1_000_000 + subMillisNanos).padStart(9, '0').replace(/0+$/, '');
  return `${iso.slice(0, 19)}${nanos ? `.${nanos}` : ''}Z`;
}

/** Writes a container's output to its log file in the CRI format: `<time> stdout F <line>`. */
export class LogWriter extends EventEmitter {
  private readonly out: WriteStream;
  private readonly partial: Record<'stdout' | 'stderr', Buffer> = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
  private closed = false;

  constructor(readonly path: string) {
    super();
    this.out = createWriteStream(path, { flags: 'a' });
    this.out.on('error', () => undefined);
  }

  /** Appends a chunk of one stream; complete lines are written at once, a partial one waits for its end. */
  write(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    if (this.closed) return;
    let data = Buffer.concat([this.partial[stream], chunk]);
    let text = '';
    let nl: number;
    while ((nl = data.indexOf(0x0a)) >= 0) {
      text += `${nanoTimestamp()} ${stream} F ${data.subarray(0, nl).toString('utf8')}\n`;
      data = data.subarray(nl + 1);
    }
    // A very long line is cut into partial records, as containerd does at 16 KiB.
    while (data.length >= 16 * 1024) {
      text += `${nanoTimestamp()} ${stream} P ${data.subarray(0, 16 * 1024).toString('utf8')}\n`;
      data = data.subarray(16 * 1024);
    }
    this.partial[stream] = Buffer.from(data);
    if (text) this.out.write(text, () => this.emit('data'));
  }

  /** Flushes what is left (as partial records) and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    let text = '';
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream].length > 0) text += `${nanoTimestamp()} ${stream} P ${this.partial[stream].toString('utf8')}\n`;
      this.partial[stream] = Buffer.alloc(0);
    }
    this.closed = true;
    await new Promise<void>((done) => this.out.end(text, () => done()));
    this.emit('data');
    this.emit('closed');
  }
}

/** One running (or finished) container instance. */
export class ContainerProcess {
  /** Host PID of the container's PID 1 (undefined once it has exited or if it exited at once). */
  initPid: number | undefined;
  readonly startedAt: Date;
  /** Resolves when the process tree is gone and its output is in the log. */
  readonly exited: Promise<ContainerExit>;
  readonly log: LogWriter;
  /** Why the command never ran (setup failed, executable missing), as runc words a StartError. */
  startError: string | undefined;
  private exitInfo: ContainerExit | undefined;
  private sentKill = false;

  private constructor(
    readonly launch: ContainerLaunch,
    private readonly child: ChildProcess,
    startedAt: Date,
    exited: Promise<ContainerExit>,
    log: LogWriter,
  ) {
    this.startedAt = startedAt;
    this.exited = exited.then((e) => (this.exitInfo = e));
    this.log = log;
  }

  /** Whether the instance still runs. */
  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** The container's stdin (when launched with stdin). */
  get stdin(): NodeJS.WritableStream | null {
    return this.child.stdin;
  }

  /**
   * Starts the container. Resolves once its command is exec'd; a setup failure or a missing executable
   * resolves too, with `exited` already carrying `startError` (as runc reports a StartError).
   */
  static async start(launch: ContainerLaunch, diag: (line: string) => void): Promise<ContainerProcess> {
    await mkdir(launch.workDir, { recursive: true });
    await mkdir(dirname(launch.logPath), { recursive: true });
    const script = join(launch.workDir, 'setup.sh');
    await writeFile(script, setupScript(launch), { mode: 0o600 });
    const log = new LogWriter(launch.logPath);
    const child = spawn(
      'setpriv',
      ['--pdeathsig', 'KILL', '--', 'unshare', '--mount', '--uts', '--pid', '--fork', '--kill-child', '--propagation', 'private', 'sh', script],
      { stdio: [launch.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe'], env: helperEnv },
    );
    liveChildren.add(child);
    const startedAt = new Date();
    let diagText = '';
    const onDiag = (chunk: Buffer): void => {
      diagText = (diagText + chunk.toString('utf8')).slice(-4096);
    };
    child.stdout!.on('data', onDiag);
    child.stderr!.on('data', onDiag);
    child.stdin?.on('error', () => undefined);
    const stdio = child.stdio as unknown as Array<NodeJS.ReadableStream | null>;
    const [status, out, err] = [stdio[3], stdio[4], stdio[5]];
    out!.on('data', (c: Buffer) => log.write('stdout', c));
    err!.on('data', (c: Buffer) => log.write('stderr', c));
    let statusText = '';
    const started = new Promise<string>((resolveStarted) => {
      status!.on('data', (c: Buffer) => {
        statusText += c.toString('utf8');
        if (statusText.includes('\n')) resolveStarted(statusText.split('\n')[0]!);
      });
      status!.on('end', () => resolveStarted(statusText.split('\n')[0] ?? ''));
      status!.on('error', () => resolveStarted(''));
    });
    let proc: ContainerProcess | undefined;
    const exited = new Promise<ContainerExit>((resolveExit) => {
      child.once('error', (e) => {
        diagText += `\n${e.message}`;
      });
      child.once('close', (code, signal) => {
        liveChildren.delete(child);
        void (async () => {
          await log.close();
          const line = await started;
          const finishedAt = new Date();
          for (const l of diagText.split('\n').filter(Boolean)) diag(`container ${launch.id.slice(0, 12)}: ${l}`);
          if (line !== 'started') {
            const why = line || diagText.trim().split('\n').pop() || `container init exited (code ${code ?? signal})`;
            resolveExit({ exitCode: 128, startError: why, finishedAt });
            return;
          }
          // unshare re-raises the signal that killed PID 1, except SIGKILL, which it reports as exit 1
          // with "sigprocmask unblock failed".
          if (signal) resolveExit({ exitCode: 128 + (osConstants.signals[signal] ?? 0), signal, finishedAt });
          else if (code === 1 && (proc?.sentKill || diagText.includes('sigprocmask unblock failed'))) resolveExit({ exitCode: 137, signal: 'SIGKILL', finishedAt });
          else resolveExit({ exitCode: code ?? 0, finishedAt });
        })();
      });
    });
    proc = new ContainerProcess(launch, child, startedAt, exited, log);
    const line = await started;
    if (line === 'started') proc.initPid = readChildren(child.pid!)[0];
    else proc.startError = (await proc.exited).startError;
    void proc.exited.then(() => {
      if (proc) proc.initPid = undefined;
    });
    return proc;
  }

  /** Sends a signal to the container's PID 1 (SIGTERM is ignored by a PID 1 without a handler, as in a real container). */
  signal(sig: NodeJS.Signals): void {
    if (!this.running) return;
    if (sig === 'SIGKILL') this.sentKill = true;
    const pid = this.initPid;
    try {
      if (pid) process.kill(pid, sig);
      else if (sig === 'SIGKILL') this.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the whole container is gone. */
  async stop(graceMs: number): Promise<ContainerExit> {
    if (this.running) {
      this.signal('SIGTERM');
      const timer = setTimeout(() => this.kill(), Math.max(0, graceMs));
      try {
        await this.exited;
      } finally {
        clearTimeout(timer);
      }
    }
    return this.exited;
  }

  /** SIGKILL to PID 1 (the kernel then kills the rest of the container), and to the runtime helper. */
  kill(): void {
    if (!this.running) return;
    this.sentKill = true;
    this.signal('SIGKILL');
    // If PID 1 is not known (or the namespace is stuck in setup), killing unshare kills its child too (--kill-child).
    setTimeout(() => {
      if (this.running) {
        try {
          this.child.kill('SIGKILL');
        } catch {
          // gone
        }
      }
    }, 200).unref();
  }
}

/**
 * The script that runs as the container's user before its command: checks the executable (a missing or
 * unusable one is a start error, `exitCode`, as with runc), says 'started' on fd 3, closes it, and execs.
 */
function userWrapper(exitCode: number): string {
  return [
    `case $1 in */*) { [ -f "$1" ] && [ -x "$1" ]; } || { printf 'exec: "%s": stat %s: no such file or directory\\n' "$1" "$1" >&3; exit ${exitCode}; } ;;`,
    `*) command -v -- "$1" >/dev/null 2>&1 || { printf 'exec: "%s": executable file not found in $PATH\\n' "$1" >&3; exit ${exitCode}; } ;; esac`,
    `printf 'started\\n' >&3`,
    'exec 3>&-',
    'exec "$@"',
  ].join('\n');
}

/** An exec session's (or exec probe's) process, inside a container's namespaces and root, as the container's user. */
export function spawnInContainer(initPid: number, user: ContainerUser, env: Array<[string, string]>, workingDir: string, argv: string[]): ChildProcess {
  // As root: into the working directory (as runc exec does before it drops privileges), then setpriv.
  const asRoot = ['wd=$1; shift', 'cd -- "$wd" 2>/dev/null || cd /', 'exec "$@"'].join('\n');
  const asUser = userWrapper(126);
  const child = spawn(
    'nsenter',
    // --wdns=/ (not -w): as runc exec, the session starts in the container's configured working directory
    // (the wrapper cds there from the container's /), never in PID 1's current one, which may since have
    // been removed (a stale handle on FUSE).
    [
      '-t', String(initPid), '-m', '-u', '-p', '-r', '--wdns=/', '--',
      '/bin/sh', '-c', asRoot, 'sh', workingDir,
      ...setprivArgv(user, false),
      'env', '-i', ...env.map(([k, v]) => `${k}=${v}`), '/bin/sh', '-c', asUser, 'sh', ...argv,
    ],
    { stdio: ['pipe', 'pipe', 'pipe', 'pipe'], env: helperEnv },
  );
  liveChildren.add(child);
  child.once('close', () => liveChildren.delete(child));
  child.once('error', () => undefined);
  child.stdin!.on('error', () => undefined);
  return child;
}

/** Reads the start line an in-container process writes on fd 3 ('started' or why it could not start). */
export function startLine(child: ChildProcess): Promise<string> {
  return new Promise((done) => {
    const fd3 = child.stdio[3] as NodeJS.ReadableStream | null;
    if (!fd3) return done('started');
    let text = '';
    fd3.on('data', (c: Buffer) => {
      text += c.toString('utf8');
      if (text.includes('\n')) done(text.split('\n')[0]!);
    });
    fd3.on('end', () => done(text.split('\n')[0] ?? ''));
    fd3.on('error', () => done(''));
  });
}

/** The direct children of a process, from /proc. */
export function readChildren(pid: number): number[] {
  const found: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        found.push(
          ...readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8')
            .trim()
            .split(/\s+/)
            .filter(Boolean)
            .map(Number),
        );
      } catch {
        // task ended
      }
    }
  } catch {
    // process ended
  }
  return found;
}

/** SIGKILLs a process and all its descendants. */
export function killTree(pid: number): void {
  const all: number[] = [];
  const walk = (p: number): void => {
    all.push(p);
    for (const c of readChildren(p)) walk(c);
  };
  walk(pid);
  for (const p of all.reverse()) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/**
 * Removes a directory the kubelet made under `owner` (its state directory), but only when the host's
 * mount table shows nothing mounted below it. Returns false (and removes nothing) otherwise.
 */
export async function removeTree(dir: string, owner: string): Promise<boolean> {
  const target = resolve(dir);
  const base = resolve(owner);
  if (!target.startsWith(base + '/')) return false;
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .map((p) => p.replace(/\\040/g, ' '));
  if (mounts.some((m) => m === target || m.startsWith(target + '/'))) return false;
  await rm(target, { recursive: true, force: true });
  return true;
}

/** Processes started by this module that are still running (killed if the test process exits). */
const liveChildren = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of liveChildren) {
    try {
      if (child.pid) killTree(child.pid);
    } catch {
      // ignore
    }
  }
});
