// The GlusterFS edge: the only code that runs the `gluster` CLI, on this host or over ssh on a pool member.
// Every call is non-interactive (--mode=script, stdin closed), asks for XML (--xml) and has a deadline.
// With --xml, gluster 10 exits 0 for most refused operations, so the answer's <opRet> decides, never the
// exit status alone. Idempotent verbs decide "already so" by reading the volume back, not by gluster's
// wording; gluster's text is read only here, to tell a busy pool, an unreachable glusterd and a brick that
// is already in use apart.
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { patterns } from '../config/schema.js';
import { GkubeError } from '../errors.js';

/** A member of the trusted storage pool; the member that answered lists itself as `localhost`. */
export interface GlusterPeer {
  hostname: string;
  uuid: string;
  connected: boolean;
}

/** One brick: a host and the directory that holds the volume's data there. */
export interface GlusterBrick {
  host: string;
  path: string;
  /** True for the metadata-only brick of an arbiter replica set. */
  arbiter: boolean;
}

/** A volume's lifecycle state as glusterd keeps it. */
export type GlusterVolumeState = 'Created' | 'Started' | 'Stopped';

/** What `gluster volume info` tells about one volume. */
export interface GlusterVolumeInfo {
  name: string;
  id: string;
  status: GlusterVolumeState;
  /** gluster's own type name: `Distribute`, `Replicate`, `Distributed-Replicate`, `Disperse`… */
  type: string;
  replicaCount: number;
  arbiterCount: number;
  /** In replica-set order: each run of `replicaCount` bricks holds the same files. */
  bricks: GlusterBrick[];
  /** Options set on the volume, including those gluster sets itself (`nfs.disable`…). */
  options: Record<string, string>;
}

/** One brick process of a volume, from `gluster volume status`. */
export interface GlusterBrickStatus {
  host: string;
  path: string;
  online: boolean;
  /** The TCP port clients reach the brick on; undefined while it is offline. */
  port: number | undefined;
  pid: number | undefined;
  /** Free and total bytes of the brick's filesystem; only from a detail query (freeSpace). */
  freeBytes?: number;
  totalBytes?: number;
}

/** A pool daemon serving a volume (self-heal, quota), from `gluster volume status`. */
export interface GlusterDaemonStatus {
  name: string;
  host: string;
  online: boolean;
  pid: number | undefined;
}

/** A volume's processes: its bricks and the daemons serving it; all offline while it is not started. */
export interface GlusterVolumeStatus {
  name: string;
  started: boolean;
  bricks: GlusterBrickStatus[];
  daemons: GlusterDaemonStatus[];
}

/** How to lay out a new volume. */
export interface GlusterVolumeSpec {
  /** `host:/absolute/path` of each brick, in replica-set order. */
  bricks: string[];
  /** Copies of each file; 1 is a plain distribute volume. */
  replica: 1 | 2 | 3;
  /** With replica 3 only: the third brick of each set keeps metadata, not data. */
  arbiter: boolean;
  /** Allows bricks on a root filesystem and several bricks of a set on one host; never lets a used brick through. */
  force: boolean;
}

/** A quota limit on a directory of a volume, with its usage (undefined where gluster says N/A). */
export interface GlusterQuotaLimit {
  path: string;
  hardLimitBytes: number;
  usedBytes: number | undefined;
  availableBytes: number | undefined;
}

/** Room left for data on a started volume. */
export interface GlusterFreeSpace {
  freeBytes: number;
  totalBytes: number;
  /** True when the quota on `/` is what limits the room, not the bricks' filesystems. */
  quotaLimited: boolean;
  /** Data bricks that did not answer; a replica set with none online counts as no room. */
  offlineBricks: number;
}

/** Whether a verb changed anything; idempotent verbs say `unchanged` when the volume was already so. */
export type GlusterChange = 'changed' | 'unchanged';

/** Bounded exponential back-off for answers that say glusterd is busy. */
export interface GlusterRetry {
  /** Tries in all, the first included. */
  attempts: number;
  /** Pause after the first busy answer; it doubles after each further one. */
  baseDelayMs: number;
}

/** How to reach gluster: locally, or over ssh on a pool member. */
export interface GlusterConnectOptions {
  /** `user@host` of a pool member to run the CLI on; unset runs it on this host. */
  ssh?: string;
  /** Deadline of each gluster command; 60 s by default. */
  timeoutMs?: number;
  /** Back-off while glusterd is busy; 5 attempts over about 10 s by default. */
  retry?: GlusterRetry;
}

/** What the rest of gkube may do with a Gluster pool. */
export interface GlusterPort {
  /** Where the CLI runs, for messages: `this host (name)` or the ssh target. */
  readonly where: string;
  /** Pool members, the answering one (`localhost`) included. */
  peers(): Promise<GlusterPeer[]>;
  /** Names of every volume of the pool. */
  volumeNames(): Promise<string[]>;
  /** The volume, or undefined only when glusterd answers that it does not exist. */
  volumeInfo(name: string): Promise<GlusterVolumeInfo | undefined>;
  /** Every volume of the pool. */
  volumeInfos(): Promise<GlusterVolumeInfo[]>;
  /** Brick and daemon processes, or undefined only when the volume does not exist. */
  volumeStatus(name: string): Promise<GlusterVolumeStatus | undefined>;
  /** Creates a volume (not started); a brick that already belongs or belonged to a volume is REFUSED. */
  createVolume(name: string, spec: GlusterVolumeSpec): Promise<{ id: string }>;
  /** Starts a volume; already started is `unchanged`. */
  startVolume(name: string): Promise<GlusterChange>;
  /** Stops a volume; already stopped, never started or gone is `unchanged`. */
  stopVolume(name: string): Promise<GlusterChange>;
  /** Deletes a stopped volume (brick directories stay); gone is `unchanged`. */
  deleteVolume(name: string): Promise<GlusterChange>;
  /** Sets a volume option, e.g. a `user.gkube.*` marker. */
  setOption(name: string, key: string, value: string): Promise<void>;
  /** Enables quota on a started volume; already enabled is `unchanged`. */
  enableQuota(name: string): Promise<GlusterChange>;
  /** Sets the hard limit of a directory (`/` for the whole volume) to a size like `1GB` or `512MB`. */
  limitUsage(name: string, path: string, size: string): Promise<void>;
  /** Quota limits and usage; empty when quota is on but no limit is set. */
  quotaLimits(name: string): Promise<GlusterQuotaLimit[]>;
  /** Room left for data on a started replica or distribute volume, within its root quota. */
  freeSpace(name: string): Promise<GlusterFreeSpace>;
}

/** How one gluster command ended. A runner reports failures here and never throws. */
export interface GlusterRun {
  /** Undefined when the command never exited on its own (not started, killed). */
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  /** The deadline passed and the command was killed. */
  timedOut: boolean;
  /** Why gluster could not be reached at all (no gluster program, ssh failed), when that is what happened. */
  unreachable?: string;
}

/** Runs `gluster` with these arguments within the deadline, wherever the port's CLI runs. */
export type GlusterRunner = (args: string[], timeoutMs: number) => Promise<GlusterRun>;

const defaultTimeoutMs = 60_000;
// 650 ms doubling over 5 tries waits about 10 s in all: long enough for another volume operation of the
// pool to finish, short enough that a pool member that is really down fails the run promptly.
const defaultRetry: GlusterRetry = { attempts: 5, baseDelayMs: 650 };
const maxOutputBytes = 16 * 1024 * 1024;

/** Opens a port on this host's gluster CLI, or over ssh on a pool member; nothing runs until the first call. */
export function connectGluster(options: GlusterConnectOptions = {}): GlusterPort {
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  if (options.ssh !== undefined && !new RegExp(patterns.sshTarget).test(options.ssh)) {
    throw new GkubeError('INVALID_CONFIG', `storage.glusterfs.ssh: ${JSON.stringify(options.ssh)} is not user@host`, {
      hint: 'name a pool member as user@host (the user may not start with -)',
    });
  }
  const where = options.ssh ?? `this host (${hostname()})`;
  return createGlusterPort(options.ssh === undefined ? localRunner() : sshRunner(options.ssh), { ...options, timeoutMs, where });
}

/** Builds the port over any runner: connectGluster's runs the real CLI, tests replay recorded answers. */
export function createGlusterPort(run: GlusterRunner, options: { where: string; timeoutMs?: number; retry?: GlusterRetry }): GlusterPort {
  const retry = options.retry ?? defaultRetry;
  if (!Number.isInteger(retry.attempts) || retry.attempts < 1 || !(retry.baseDelayMs >= 0)) {
    throw new GkubeError('INVALID_CONFIG', `gluster retry needs at least 1 attempt and a delay of 0 ms or more (got ${retry.attempts} attempts, ${retry.baseDelayMs} ms)`);
  }
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  if (!(timeoutMs > 0)) throw new GkubeError('INVALID_CONFIG', `gluster timeout must be more than 0 ms (got ${timeoutMs})`);
  return new CliGlusterPort(run, options.where, timeoutMs, retry);
}

// ---- the port ----

/** One gluster command: its arguments (without --mode and --xml), how to name it, and whether it changes the pool. */
interface Operation {
  args: string[];
  what: string;
  mutates: boolean;
}

class CliGlusterPort implements GlusterPort {
  constructor(
    private readonly run: GlusterRunner,
    readonly where: string,
    private readonly timeoutMs: number,
    private readonly retry: GlusterRetry,
  ) {}

  async peers(): Promise<GlusterPeer[]> {
    return this.ask(['pool', 'list'], parsePeers);
  }

  async volumeNames(): Promise<string[]> {
    return this.ask(['volume', 'list'], parseVolumeNames);
  }

  async volumeInfo(name: string): Promise<GlusterVolumeInfo | undefined> {
    checkVolumeName(name);
    const op = query(['volume', 'info', name]);
    const answer = await this.answer(op);
    // EG_NOVOL is the one answer that means "no such volume"; every other failure is a failure.
    if (answer.opRet !== 0 && answer.opErrno === glusterErrno.noSuchVolume) return undefined;
    const ok = this.expectOk(op, answer);
    const found = this.parsed(op, () => parseVolumeInfos(ok)).find((v) => v.name === name);
    if (!found) throw unreadable(op, this.where, `no volume named ${name} in a successful answer`);
    return found;
  }

  async volumeInfos(): Promise<GlusterVolumeInfo[]> {
    return this.ask(['volume', 'info', 'all'], parseVolumeInfos);
  }

  async volumeStatus(name: string): Promise<GlusterVolumeStatus | undefined> {
    checkVolumeName(name);
    const op = query(['volume', 'status', name]);
    const answer = await this.answer(op);
    if (answer.opRet === 0) return this.parsed(op, () => parseVolumeStatus(answer, name));
    // gluster answers status of a stopped or missing volume with a generic error; the volume's own state decides.
    const info = await this.volumeInfo(name);
    if (!info) return undefined;
    if (info.status !== 'Started') return offlineStatus(info);
    throw this.failed(op, answer);
  }

  async createVolume(name: string, spec: GlusterVolumeSpec): Promise<{ id: string }> {
    checkVolumeName(name);
    const args = createArgs(name, spec);
    const op = change(args, `volume create ${name}`);
    const answer = await this.answer(op);
    if (answer.opRet !== 0) {
      const clash = brickClash(answer.opErrstr);
      if (clash) throw await this.refuseBrick(name, spec, clash, answer.opErrstr, undefined);
      throw this.failed(op, answer);
    }
    // With `force`, gluster 10 takes a directory that still carries a former volume's id and only warns in
    // opErrstr (opRet 0). Reusing another volume's data is what gkube must never do: undo the create, refuse.
    const reused = brickClash(answer.opErrstr);
    if (reused) {
      const rollback = await this.deleteVolume(name).then(
        () => undefined,
        (err: unknown) => `; the volume ${name} gluster made anyway could not be removed (${err instanceof Error ? err.message : String(err)})`,
      );
      throw await this.refuseBrick(name, spec, reused, answer.opErrstr, rollback);
    }
    const id = textAt(answer.body, ['volCreate', 'volume', 'id']);
    if (!id) throw unreadable(op, this.where, 'no volume id in a successful answer');
    return { id };
  }

  async startVolume(name: string): Promise<GlusterChange> {
    checkVolumeName(name);
    return this.converge(change(['volume', 'start', name]), async () => (await this.volumeInfo(name))?.status === 'Started');
  }

  async stopVolume(name: string): Promise<GlusterChange> {
    checkVolumeName(name);
    return this.converge(change(['volume', 'stop', name]), async () => (await this.volumeInfo(name))?.status !== 'Started');
  }

  async deleteVolume(name: string): Promise<GlusterChange> {
    checkVolumeName(name);
    return this.converge(change(['volume', 'delete', name]), async () => !(await this.volumeInfo(name)));
  }

  async setOption(name: string, key: string, value: string): Promise<void> {
    checkVolumeName(name);
    if (!optionKey.test(key)) throw invalid(`gluster option key ${JSON.stringify(key)}`, 'must be dotted words of letters, digits, _ and - (e.g. user.gkube.job)');
    // gluster stores one line per option in its volfiles; a control character would corrupt them.
    if (value === '' || /[\u0000-\u001f\u007f]/.test(value)) throw invalid(`value of gluster option ${key}`, 'must be non-empty and hold no control characters');
    const op = change(['volume', 'set', name, key, value], `volume set ${name} ${key}`);
    this.expectOk(op, await this.answer(op));
  }

  async enableQuota(name: string): Promise<GlusterChange> {
    checkVolumeName(name);
    return this.converge(change(['volume', 'quota', name, 'enable']), async () => (await this.volumeInfo(name))?.options['features.quota'] === 'on');
  }

  async limitUsage(name: string, path: string, size: string): Promise<void> {
    checkVolumeName(name);
    if (path !== '/' && !new RegExp(patterns.absolutePath).test(path)) throw invalid(`quota path ${JSON.stringify(path)}`, 'must be / or an absolute path inside the volume');
    if (!quotaSize.test(size)) throw invalid(`quota size ${JSON.stringify(size)}`, 'must be a positive number with an optional unit B, KB, MB, GB, TB or PB (e.g. 1GB)');
    const op = change(['volume', 'quota', name, 'limit-usage', path, size], `volume quota ${name} limit-usage ${path} ${size}`);
    this.expectOk(op, await this.answer(op));
  }

  async quotaLimits(name: string): Promise<GlusterQuotaLimit[]> {
    checkVolumeName(name);
    return this.ask(['volume', 'quota', name, 'list'], parseQuotaLimits);
  }

  async freeSpace(name: string): Promise<GlusterFreeSpace> {
    const info = await this.volumeInfo(name);
    if (!info) throw new GkubeError('OPERATION_FAILED', `gluster volume ${name} does not exist on ${this.where}`);
    const status = await this.ask(['volume', 'status', name, 'detail'], (answer) => parseVolumeStatus(answer, name));
    let limit: GlusterQuotaLimit | undefined;
    if (info.options['features.quota'] === 'on') limit = (await this.quotaLimits(name)).find((l) => l.path === '/');
    return roomOf(info, status, limit);
  }

  /**
   * Runs one command and reads its XML answer, retrying with back-off while glusterd says it is busy.
   * Throws DEPENDENCY_UNREACHABLE when glusterd or the ssh target cannot be reached, OUTCOME_UNKNOWN when a
   * changing command ran out its deadline, OPERATION_FAILED when the answer is not XML or glusterd stayed busy.
   */
  private async answer(op: Operation): Promise<GlusterAnswer> {
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      const result = await this.run(['--mode=script', ...op.args, '--xml'], this.timeoutMs);
      const answer = this.toAnswer(op, result);
      if (answer.opRet === 0 || !isBusy(answer)) return answer;
      if (attempt >= this.retry.attempts) {
        const spent = Math.round((Date.now() - started) / 100) / 10;
        throw new GkubeError('OPERATION_FAILED', `gluster ${op.what} failed on ${this.where}: glusterd stayed busy through ${attempt} attempts over ${spent}s (${oneLine(answer.opErrstr)})`, {
          hint: 'another gluster operation held the pool, or a pool member is down (see `gluster pool list`); run again later',
        });
      }
      // Jitter keeps two runs that collided from colliding again on every retry.
      const delay = this.retry.baseDelayMs * 2 ** (attempt - 1) * (0.75 + Math.random() * 0.5);
      await sleep(delay);
    }
  }

  /** Turns one finished command into its XML answer, or the error that explains why there is none. */
  private toAnswer(op: Operation, result: GlusterRun): GlusterAnswer {
    const seconds = this.timeoutMs < 1000 ? `${this.timeoutMs}ms` : `${Math.round(this.timeoutMs / 100) / 10}s`;
    if (result.timedOut) {
      if (op.mutates) {
        return raise(new GkubeError('OUTCOME_UNKNOWN', `gluster ${op.what} on ${this.where} gave no answer within ${seconds}; it may or may not have been applied`, {
          hint: 'check the volume with `gluster volume info` before running again',
        }));
      }
      return raise(unreachable(op, this.where, `no answer within ${seconds}`));
    }
    if (result.unreachable !== undefined) return raise(unreachable(op, this.where, result.unreachable));
    if (!result.stdout.includes('<cliOutput')) {
      const said = cliText(result);
      // The CLI prints this (not XML, even with --xml) when it cannot reach glusterd's socket or port.
      if (/Connection failed\. Please check if gluster daemon is operational/.test(`${result.stdout}\n${result.stderr}`)) {
        return raise(unreachable(op, this.where, 'Connection failed. Please check if gluster daemon is operational.'));
      }
      if (result.exitCode === 0) return raise(unreadable(op, this.where, `no XML in its answer: ${said || '(nothing)'}`));
      return raise(new GkubeError('OPERATION_FAILED', `gluster ${op.what} failed on ${this.where} (exit ${result.exitCode ?? 'by signal'}): ${said || '(no output)'}`));
    }
    return this.parsed(op, () => parseCliOutput(result.stdout));
  }

  /** A query whose answer must succeed, read with `parse`. */
  private async ask<T>(args: string[], parse: (answer: GlusterAnswer) => T): Promise<T> {
    const op = query(args);
    const answer = this.expectOk(op, await this.answer(op));
    return this.parsed(op, () => parse(answer));
  }

  /**
   * A change gluster refuses once its end state holds (start a started volume, delete a missing one):
   * a refusal counts as done when `reached` says that state holds, else it is the failure.
   */
  private async converge(op: Operation, reached: () => Promise<boolean>): Promise<GlusterChange> {
    const answer = await this.answer(op);
    if (answer.opRet === 0) return 'changed';
    if (await reached()) return 'unchanged';
    throw this.failed(op, answer);
  }

  /** Runs a parser on an answer; what it cannot read becomes an error naming the command and the host. */
  private parsed<T>(op: Operation, parse: () => T): T {
    try {
      return parse();
    } catch (err) {
      throw new GkubeError('OPERATION_FAILED', `gluster ${op.what} on ${this.where}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /** The answer when glusterd carried the command out; OPERATION_FAILED with its own words otherwise. */
  private expectOk(op: Operation, answer: GlusterAnswer): GlusterAnswer {
    if (answer.opRet !== 0) throw this.failed(op, answer);
    return answer;
  }

  private failed(op: Operation, answer: GlusterAnswer): GkubeError {
    return new GkubeError('OPERATION_FAILED', `gluster ${op.what} failed on ${this.where}: ${oneLine(answer.opErrstr) || `opRet ${answer.opRet}, opErrno ${answer.opErrno}`}`);
  }

  /** REFUSED naming the brick and, when volume info shows one, the volume that holds it. */
  private async refuseBrick(name: string, spec: GlusterVolumeSpec, clash: BrickClash, said: string, rollbackNote: string | undefined): Promise<GkubeError> {
    const brick = spec.bricks.find((b) => b === clash.brick) ?? spec.bricks.find((b) => splitBrick(b)?.path === clash.path) ?? clash.brick ?? clash.path;
    // Best effort: the refusal stands whether or not the holder can be named.
    const volumes = await this.volumeInfos().catch(() => [] as GlusterVolumeInfo[]);
    const holder = holderOf(brick, volumes.filter((v) => v.name !== name));
    const why = holder
      ? `is already part of volume ${holder}`
      : clash.kind === 'inside'
        ? 'contains or is inside a brick of another volume'
        : 'still carries the id of a former volume (its data may still be there)';
    return new GkubeError('REFUSED', `gluster volume ${name} was not created on ${this.where}: brick ${brick} ${why}; gkube never reuses a brick (gluster: ${oneLine(said)})${rollbackNote ?? ''}`, {
      hint: holder ? `choose another brick directory, or delete volume ${holder} first` : 'choose another brick directory, or remove this one after checking that its data is not needed',
    });
  }
}

/** A command that only reads. */
function query(args: string[]): Operation {
  return { args, what: args.join(' '), mutates: false };
}

/** A command that changes the pool: when its answer is lost, its outcome is unknown. */
function change(args: string[], what = args.join(' ')): Operation {
  return { args, what, mutates: true };
}

function raise(err: GkubeError): never {
  throw err;
}

function unreachable(op: Operation, where: string, why: string): GkubeError {
  return new GkubeError('DEPENDENCY_UNREACHABLE', `gluster ${op.what}: glusterd on ${where} is unreachable (${why})${op.mutates ? '; nothing was changed' : ''}`, {
    hint: 'check that glusterd runs on that host (`systemctl status glusterd`) and, with storage.glusterfs.ssh, that key-based ssh works without a prompt',
  });
}

function unreadable(op: Operation, where: string, why: string): GkubeError {
  return new GkubeError('OPERATION_FAILED', `gluster ${op.what} on ${where} gave an answer gkube cannot read: ${why}`);
}

// glusterd-errno.h (gluster 10): the few opErrno values gkube acts on; most failures carry EG_INTRNL (30800).
const glusterErrno = { anotherTransaction: 30802, nodeDown: 30804, noSuchVolume: 30806 } as const;

/** True when glusterd refused only because it, or a pool member, is busy or unreachable for a moment. */
function isBusy(answer: GlusterAnswer): boolean {
  if (answer.opErrno === glusterErrno.anotherTransaction || answer.opErrno === glusterErrno.nodeDown) return true;
  // Lock and peer failures on other members arrive with the generic errno; their wording is all there is.
  return /Another transaction is in progress|Locking failed on|Some of the peers are down|Please try again after some time/i.test(answer.opErrstr);
}

/** A brick gluster said is taken: `inside` an existing brick, or carrying a `former` volume's id. */
interface BrickClash {
  kind: 'inside' | 'former';
  brick?: string;
  path: string;
}

function brickClash(said: string): BrickClash | undefined {
  const inside = /Brick: (\S+?) not available\. Brick may be containing or be contained by an existing brick/.exec(said);
  if (inside) {
    const brick = inside[1]!;
    return { kind: 'inside', brick, path: splitBrick(brick)?.path ?? brick };
  }
  const former = /(\/\S*) is already part of a volume/.exec(said);
  if (former) return { kind: 'former', path: former[1]! };
  return undefined;
}

/** The volume with a brick on the same host whose directory is this one, inside it or around it. */
function holderOf(brick: string, volumes: GlusterVolumeInfo[]): string | undefined {
  const wanted = splitBrick(brick);
  if (!wanted) return undefined;
  const overlaps = (path: string) => path === wanted.path || path.startsWith(`${wanted.path}/`) || wanted.path.startsWith(`${path}/`);
  const sameHost = volumes.find((v) => v.bricks.some((b) => b.host === wanted.host && overlaps(b.path)));
  // gluster may know the host by another name or address; a path match alone is the next best guess.
  return (sameHost ?? volumes.find((v) => v.bricks.some((b) => overlaps(b.path))))?.name;
}

// ---- arguments ----

// gluster's CLI rule (letters, digits, - and _); a leading - would read as an option, and `all` means every volume.
const volumeName = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$/;
const optionKey = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+$/;
// What gluster 10's limit-usage accepts (`1GB`, `1.5GB`, `512mb`, `1024`); `1G` and zero it refuses.
const quotaSize = /^(?:[1-9][0-9]*(?:\.[0-9]+)?|0\.[0-9]*[1-9][0-9]*)(?:[KMGTP]?B)?$/i;

function checkVolumeName(name: string): void {
  if (!volumeName.test(name) || name === 'all') {
    throw invalid(`gluster volume name ${JSON.stringify(name)}`, 'must be 1 to 128 letters, digits, - and _, not starting with - and not "all"');
  }
}

function invalid(what: string, rule: string): GkubeError {
  return new GkubeError('INVALID_INPUT', `${what} ${rule}`);
}

/** Splits `host:/path`; undefined when it is not that shape. */
function splitBrick(brick: string): { host: string; path: string } | undefined {
  // The path is absolute, so the first `:/` ends the host, IPv6 literals included.
  const at = brick.indexOf(':/');
  if (at <= 0) return undefined;
  return { host: brick.slice(0, at), path: brick.slice(at + 1) };
}

function createArgs(name: string, spec: GlusterVolumeSpec): string[] {
  if (![1, 2, 3].includes(spec.replica)) throw invalid(`replica ${spec.replica} for gluster volume ${name}`, 'must be 1, 2 or 3');
  if (spec.arbiter && spec.replica !== 3) throw invalid(`arbiter for gluster volume ${name}`, 'needs replica 3');
  if (spec.bricks.length === 0 || spec.bricks.length % spec.replica !== 0) {
    throw invalid(`${spec.bricks.length} bricks for gluster volume ${name}`, `must be a non-zero multiple of the replica count ${spec.replica}`);
  }
  for (const brick of spec.bricks) {
    const parts = splitBrick(brick);
    const hostOk = parts !== undefined && new RegExp(patterns.host).test(parts.host);
    if (!parts || !hostOk || !new RegExp(patterns.absolutePath).test(parts.path) || /\s/.test(parts.path)) {
      throw invalid(`brick ${JSON.stringify(brick)} of gluster volume ${name}`, 'must be host:/absolute/path with no spaces, . or .. segments');
    }
    // gluster refuses loopback names for bricks: other members and clients could not reach them.
    if (/^(?:localhost|127\.[0-9.]+|::1|0\.[0-9.]+)$/i.test(parts.host)) {
      throw invalid(`brick ${brick} of gluster volume ${name}`, 'must name its host by a name or address other members can reach, not a loopback one');
    }
  }
  if (new Set(spec.bricks).size !== spec.bricks.length) throw invalid(`bricks of gluster volume ${name}`, 'must all be different');
  return [
    'volume',
    'create',
    name,
    ...(spec.replica > 1 ? ['replica', String(spec.replica)] : []),
    ...(spec.arbiter ? ['arbiter', '1'] : []),
    ...spec.bricks,
    ...(spec.force ? ['force'] : []),
  ];
}

// ---- runners ----

function localRunner(): GlusterRunner {
  return async (args, timeoutMs) => {
    const result = await execa('gluster', args, { stdin: 'ignore', reject: false, timeout: timeoutMs, maxBuffer: maxOutputBytes });
    const run = { exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr), timedOut: result.timedOut };
    if (result.code === 'ENOENT') return { ...run, unreachable: 'the gluster command is not installed here (Debian package glusterfs-server)' };
    return run;
  };
}

function sshRunner(target: string): GlusterRunner {
  return async (args, timeoutMs) => {
    const argv = sshArgv(target, args, Math.max(1, Math.min(10, Math.ceil(timeoutMs / 1000))));
    const result = await execa('ssh', argv, { stdin: 'ignore', reject: false, timeout: timeoutMs, maxBuffer: maxOutputBytes });
    const run = { exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr), timedOut: result.timedOut };
    if (result.code === 'ENOENT') return { ...run, unreachable: 'the ssh command is not installed here (Debian package openssh-client)' };
    // ssh exits 255 for its own failures (connect, host key, authentication); gluster never does.
    if (result.exitCode === 255) return { ...run, unreachable: `ssh to ${target} failed: ${lastLine(run.stderr) || 'exit 255'}` };
    if (result.exitCode === 127) return { ...run, unreachable: `no gluster command on ${target}'s PATH: ${lastLine(run.stderr)}` };
    return run;
  };
}

/** The ssh argv that runs `gluster <args>` on `target`: no prompts, no tty, every argument quoted for the remote shell. */
export function sshArgv(target: string, args: string[], connectTimeoutSeconds: number): string[] {
  const remote = ['gluster', ...args].map(shellQuote).join(' ');
  return ['-o', 'BatchMode=yes', '-o', `ConnectTimeout=${connectTimeoutSeconds}`, '-T', '--', target, remote];
}

/** Quotes one argument for a POSIX shell: ssh hands the remote command to the login shell as one string. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.trim() ?? '';
}

/** What a non-XML answer said: its lines before any usage text, the last three of them, on one line. */
function cliText(result: GlusterRun): string {
  const source = result.stderr.trim() || result.stdout.trim();
  const lines = source.split('\n').map((l) => l.trim());
  const usage = lines.findIndex((l) => /^Usage:/.test(l));
  const said = (usage >= 0 ? lines.slice(0, usage) : lines).filter(Boolean).slice(-3).join('; ');
  return said.length > 400 ? `${said.slice(0, 400)}…` : said;
}

function oneLine(text: string): string {
  return text.trim().split('\n').map((l) => l.trim()).filter(Boolean).join('; ');
}

// ---- answers ----

/** The envelope of every `--xml` answer: gluster's verdict and the rest of the document. */
export interface GlusterAnswer {
  /** 0 when glusterd carried the command out. */
  opRet: number;
  /** One of glusterd-errno.h's codes on some failures, 0 or 30800 (internal) on most. */
  opErrno: number;
  /** gluster's own message; may be set (as a warning) even when opRet is 0. */
  opErrstr: string;
  /** The `<cliOutput>` element. */
  body: XmlElement;
}

/** Reads the `<cliOutput>` envelope of a `gluster … --xml` answer. */
export function parseCliOutput(xml: string): GlusterAnswer {
  const body = parseXml(xml);
  if (body.name !== 'cliOutput') throw unreadableXml(`the root element is <${body.name}>, not <cliOutput>`);
  return { opRet: intAt(body, ['opRet']), opErrno: intAt(body, ['opErrno'], 0), opErrstr: textAt(body, ['opErrstr']) ?? '', body };
}

/** Pool members from `gluster pool list --xml`. */
export function parsePeers(answer: GlusterAnswer): GlusterPeer[] {
  const status = need(answer.body, 'peerStatus');
  return childrenOf(status, 'peer').map((peer) => ({
    hostname: textAt(peer, ['hostname']) ?? '',
    uuid: textAt(peer, ['uuid']) ?? '',
    connected: intAt(peer, ['connected']) === 1,
  }));
}

/** Volume names from `gluster volume list --xml`. */
export function parseVolumeNames(answer: GlusterAnswer): string[] {
  return childrenOf(need(answer.body, 'volList'), 'volume').map((v) => v.text.trim());
}

const volumeStates: readonly GlusterVolumeState[] = ['Created', 'Started', 'Stopped'];

/** Volumes from `gluster volume info [NAME|all] --xml`. */
export function parseVolumeInfos(answer: GlusterAnswer): GlusterVolumeInfo[] {
  const volumes = need(need(answer.body, 'volInfo'), 'volumes');
  return childrenOf(volumes, 'volume').map((v) => {
    const name = textAt(v, ['name']) ?? '';
    const status = textAt(v, ['statusStr']) ?? '';
    if (!volumeStates.includes(status as GlusterVolumeState)) throw unreadableXml(`volume ${name} has the unknown state ${JSON.stringify(status)}`);
    const bricks = childrenOf(need(v, 'bricks'), 'brick').map((b) => {
      // The brick element mixes its name as text with a <name> child; the child is the documented one.
      const full = textAt(b, ['name']) ?? b.text.trim();
      const parts = splitBrick(full);
      if (!parts) throw unreadableXml(`volume ${name} has the brick ${JSON.stringify(full)}, not host:/path`);
      return { host: parts.host, path: parts.path, arbiter: intAt(b, ['isArbiter'], 0) === 1 };
    });
    const options: Record<string, string> = {};
    for (const o of childrenOf(child(v, 'options'), 'option')) options[textAt(o, ['name']) ?? ''] = textAt(o, ['value']) ?? '';
    return {
      name,
      id: textAt(v, ['id']) ?? '',
      status: status as GlusterVolumeState,
      type: textAt(v, ['typeStr']) ?? '',
      replicaCount: intAt(v, ['replicaCount']),
      arbiterCount: intAt(v, ['arbiterCount'], 0),
      bricks,
      options,
    };
  });
}

/** Brick and daemon processes from `gluster volume status NAME [detail] --xml` of a started volume. */
export function parseVolumeStatus(answer: GlusterAnswer, name: string): GlusterVolumeStatus {
  const volume = childrenOf(need(need(answer.body, 'volStatus'), 'volumes'), 'volume').find((v) => textAt(v, ['volName']) === name);
  if (!volume) throw unreadableXml(`no status of volume ${name}`);
  const bricks: GlusterBrickStatus[] = [];
  const daemons: GlusterDaemonStatus[] = [];
  for (const node of childrenOf(volume, 'node')) {
    const host = textAt(node, ['hostname']) ?? '';
    const path = textAt(node, ['path']) ?? '';
    const online = intAt(node, ['status'], 0) === 1;
    const pid = optionalInt(textAt(node, ['pid']));
    // Daemons are listed as nodes too, with their name as the host name and the host as the path.
    if (!path.startsWith('/')) {
      daemons.push({ name: host, host: path, online, pid: online ? pid : undefined });
      continue;
    }
    const brick: GlusterBrickStatus = { host, path, online, port: online ? optionalInt(textAt(node, ['port'])) : undefined, pid: online ? pid : undefined };
    const free = optionalInt(textAt(node, ['sizeFree']));
    const total = optionalInt(textAt(node, ['sizeTotal']));
    if (free !== undefined) brick.freeBytes = free;
    if (total !== undefined) brick.totalBytes = total;
    bricks.push(brick);
  }
  return { name, started: true, bricks, daemons };
}

/** Limits and usage from `gluster volume quota NAME list --xml`. */
export function parseQuotaLimits(answer: GlusterAnswer): GlusterQuotaLimit[] {
  return childrenOf(child(answer.body, 'volQuota'), 'limit').map((l) => ({
    path: textAt(l, ['path']) ?? '',
    hardLimitBytes: intAt(l, ['hard_limit']),
    usedBytes: optionalInt(textAt(l, ['used_space'])),
    availableBytes: optionalInt(textAt(l, ['avail_space'])),
  }));
}

function offlineStatus(info: GlusterVolumeInfo): GlusterVolumeStatus {
  return { name: info.name, started: false, bricks: info.bricks.map((b) => ({ host: b.host, path: b.path, online: false, port: undefined, pid: undefined })), daemons: [] };
}

/** Room for data: per replica set the smallest online data brick, summed over sets, capped by the root quota. */
function roomOf(info: GlusterVolumeInfo, status: GlusterVolumeStatus, limit: GlusterQuotaLimit | undefined): GlusterFreeSpace {
  const byBrick = new Map(status.bricks.map((b) => [`${b.host}:${b.path}`, b]));
  const setSize = Math.max(1, info.replicaCount);
  let freeBytes = 0;
  let totalBytes = 0;
  let offlineBricks = 0;
  for (let i = 0; i < info.bricks.length; i += setSize) {
    const data = info.bricks.slice(i, i + setSize).filter((b) => !b.arbiter);
    const live = data.map((b) => byBrick.get(`${b.host}:${b.path}`)).filter((s): s is GlusterBrickStatus => s?.online === true && s.freeBytes !== undefined);
    offlineBricks += data.length - live.length;
    if (live.length === 0) continue;
    freeBytes += Math.min(...live.map((s) => s.freeBytes!));
    totalBytes += Math.min(...live.map((s) => s.totalBytes ?? s.freeBytes!));
  }
  let quotaLimited = false;
  if (limit) {
    totalBytes = Math.min(totalBytes, limit.hardLimitBytes);
    const available = limit.availableBytes ?? limit.hardLimitBytes;
    if (available < freeBytes) {
      freeBytes = available;
      quotaLimited = true;
    }
  }
  return { freeBytes, totalBytes, quotaLimited, offlineBricks };
}

// ---- a small XML reader for gluster's answers ----

/** An XML element: its name, attributes, child elements, and its own text (entities decoded). */
export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** The text directly inside this element, child elements' text excluded. */
  text: string;
}

/**
 * Parses an XML document into its root element: elements, attributes, text, CDATA, comments and processing
 * instructions. Well-formedness is checked (matching tags, one root, known entities); a DOCTYPE is refused,
 * since gluster never sends one and entity definitions are a known way to blow a parser up.
 */
export function parseXml(source: string): XmlElement {
  let pos = source.charCodeAt(0) === 0xfeff ? 1 : 0;
  const nameChars = /[A-Za-z_:][A-Za-z0-9_:.-]*/y;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;

  const fail = (why: string): never => {
    const line = source.slice(0, pos).split('\n').length;
    throw unreadableXml(`${why} (line ${line})`);
  };
  const readName = (): string => {
    nameChars.lastIndex = pos;
    const m = nameChars.exec(source);
    if (!m) return fail('a name was expected');
    pos += m[0].length;
    return m[0];
  };
  const skipSpace = () => {
    while (pos < source.length && /\s/.test(source[pos]!)) pos++;
  };
  const skipPast = (end: string, what: string) => {
    const at = source.indexOf(end, pos);
    if (at < 0) fail(`${what} is not closed`);
    const inner = source.slice(pos, at);
    pos = at + end.length;
    return inner;
  };
  const addText = (text: string) => {
    const top = stack[stack.length - 1];
    if (top) top.text += text;
    else if (text.trim() !== '') fail('text outside the root element');
  };

  while (pos < source.length) {
    const lt = source.indexOf('<', pos);
    if (lt < 0) {
      addText(decodeEntities(source.slice(pos), fail));
      pos = source.length;
      break;
    }
    if (lt > pos) addText(decodeEntities(source.slice(pos, lt), fail));
    pos = lt;
    if (source.startsWith('<?', pos)) {
      pos += 2;
      skipPast('?>', 'a processing instruction');
    } else if (source.startsWith('<!--', pos)) {
      pos += 4;
      skipPast('-->', 'a comment');
    } else if (source.startsWith('<![CDATA[', pos)) {
      pos += 9;
      addText(skipPast(']]>', 'a CDATA section'));
    } else if (source.startsWith('<!', pos)) {
      fail('a DOCTYPE or declaration, which gluster never sends');
    } else if (source.startsWith('</', pos)) {
      pos += 2;
      const name = readName();
      skipSpace();
      if (source[pos] !== '>') fail(`</${name} is not closed`);
      pos++;
      const open = stack.pop();
      if (!open || open.name !== name) fail(open ? `</${name}> closes <${open.name}>` : `</${name}> closes nothing`);
    } else {
      pos++;
      const element: XmlElement = { name: readName(), attributes: {}, children: [], text: '' };
      for (;;) {
        skipSpace();
        if (source.startsWith('/>', pos) || source[pos] === '>') break;
        if (pos >= source.length) fail(`<${element.name} is not closed`);
        const attr = readName();
        skipSpace();
        if (source[pos] !== '=') fail(`attribute ${attr} has no value`);
        pos++;
        skipSpace();
        const quote = source[pos];
        if (quote !== '"' && quote !== "'") fail(`attribute ${attr} is not quoted`);
        pos++;
        const raw = skipPast(quote!, `attribute ${attr}`);
        if (raw.includes('<')) fail(`attribute ${attr} holds <`);
        if (attr in element.attributes) fail(`attribute ${attr} appears twice`);
        element.attributes[attr] = decodeEntities(raw, fail);
      }
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(element);
      else if (root) fail('a second root element');
      else root = element;
      if (source.startsWith('/>', pos)) {
        pos += 2;
      } else {
        pos++;
        stack.push(element);
      }
    }
  }
  if (stack.length > 0) fail(`<${stack[stack.length - 1]!.name}> is not closed`);
  if (!root) fail('no root element');
  return root!;
}

const namedEntities: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(text: string, fail: (why: string) => never): string {
  return text.replace(/&([^;&\s]*);?/g, (whole, ref: string) => {
    if (!whole.endsWith(';')) return fail(`a bare & in ${JSON.stringify(text.slice(0, 40))}`);
    if (ref in namedEntities) return namedEntities[ref]!;
    const code = /^#x([0-9A-Fa-f]{1,6})$/.exec(ref)?.[1] ?? /^#([0-9]{1,7})$/.exec(ref)?.[1];
    if (code !== undefined) {
      const point = ref.startsWith('#x') ? parseInt(code, 16) : parseInt(code, 10);
      if (point > 0 && point <= 0x10ffff) return String.fromCodePoint(point);
    }
    return fail(`the unknown entity &${ref};`);
  });
}

function unreadableXml(why: string): GkubeError {
  return new GkubeError('OPERATION_FAILED', `unreadable gluster XML: ${why}`);
}

function child(element: XmlElement | undefined, name: string): XmlElement | undefined {
  return element?.children.find((c) => c.name === name);
}

function need(element: XmlElement, name: string): XmlElement {
  return child(element, name) ?? raise(unreadableXml(`<${element.name}> has no <${name}>`));
}

function childrenOf(element: XmlElement | undefined, name: string): XmlElement[] {
  return element?.children.filter((c) => c.name === name) ?? [];
}

function textAt(element: XmlElement, path: string[]): string | undefined {
  let at: XmlElement | undefined = element;
  for (const name of path) at = child(at, name);
  return at?.text;
}

function intAt(element: XmlElement, path: string[], fallback?: number): number {
  const text = textAt(element, path);
  if (text === undefined && fallback !== undefined) return fallback;
  const value = optionalInt(text);
  if (value === undefined) throw unreadableXml(`<${path.join('/')}> in <${element.name}> is ${text === undefined ? 'missing' : JSON.stringify(text)}, not a number`);
  return value;
}

/** An integer, or undefined for gluster's `N/A` and anything else that is not one. */
function optionalInt(text: string | undefined): number | undefined {
  const trimmed = text?.trim();
  if (trimmed === undefined || !/^-?[0-9]+$/.test(trimmed)) return undefined;
  const value = Number(trimmed);
  return Number.isSafeInteger(value) ? value : undefined;
}
