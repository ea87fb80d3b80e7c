// Publishing a commit's tree into the job's pod: in full (the whole tree) or as a delta (only what changed
// since the commit the pod has), never half-written.
//
// On-pod layout. code.path is where the job's volume is mounted, so it cannot itself be swapped (a mount
// point cannot be renamed over); the code the app reads is the symbolic link `current` inside it:
//
//   <code.path>/current -> .gkube/releases/<id>   the code the app reads (its working directory)
//   <code.path>/.gkube/releases/<id>/             complete, verified trees: the live one and the one before
//   <code.path>/.gkube/staging/<id>/              a tree being written; never read by the app
//   <code.path>/.gkube/commit                     the deployed commit, one line (for people and scripts)
//
// <id> is `<commit>-<exclude digest>-<nonce>`: the link alone says which commit is live and under which
// code.exclude, and is what a delta starts from. Anything else under code.path (the app's data) is left alone.
//
// Flow, one exec each:
// 1. (delta only) read `current`; when it is not the expected commit, publish in full instead and say why.
// 2. upload: remove leftovers of interrupted runs in .gkube/staging, create the staging tree (empty for a
//    full publish; for a delta, a copy of the live release whose files are hard links (`cp -al`: the
//    directories are new, the files shared), then the changed and deleted paths removed, so that the tar
//    extracts changed files as new inodes and the live release is never written through a shared link),
//    extract the tar from stdin into it, and print the tree's manifest: every regular file's sha256 and
//    executable bit, every symbolic link's target.
// 3. compare that manifest with the one computed here from `git archive` of the commit (the tar parsed as
//    it streams; the delta's tar is a filtered copy of the full archive, so the whole expected tree is
//    known). Any difference fails the publish (a delta falls back to a full publish once) and the live code
//    is untouched.
// 4. switch: move the staging tree into releases/, point a new symbolic link at it and rename(2) it over
//    `current` (`mv -T`; atomic), record the commit, prune releases but the live one and its predecessor.
// A stream cut at any point before 4 leaves `current` as it was; a cut during 4 leaves either the old or
// the new release live, never a mix, and the link says which.
//
// The pod needs only POSIX sh and BusyBox-compatible tar, find, xargs, sha256sum, cp (-a, -l), mv, ln, rm, rmdir,
// readlink and dd; no bash. `mv -T` appeared in BusyBox 1.35: with an older one `current` is replaced by
// rm + mv (briefly absent, still never half-written).
//
// Only committed content is published: `git archive` of the commit, never the workspace's untracked files or
// .git. code.exclude patterns are git pathspec globs from the repository's top: `*` stays within one
// directory, `**/` crosses directories, and a directory excludes all beneath it.
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable, Transform, finished, pipeline, type TransformCallback } from 'node:stream';
import { posix } from 'node:path';
import { gitSucceeds, runGit, startArchive, type ArchiveProcess } from '../adapters/git-cli.js';
import { GkubeError, type ErrorCode } from '../errors.js';
import { shortCommit as short } from '../output/format.js';
import type { ExecResult, PodExec } from '../adapters/kube-exec.js';

/** Where and how to publish. */
export interface PublishTarget {
  exec: PodExec;
  namespace: string;
  pod: string;
  container: string;
  /** code.path: the absolute path, in the container, where the code volume is mounted. */
  codePath: string;
  /** A directory of the job's git checkout (the workspace). */
  gitCwd: string;
  /** code.exclude: git pathspec globs that are never published. */
  excludes?: readonly string[];
  /** Deadline of the upload and of the switch-over, each; 10 minutes by default. */
  timeoutMs?: number;
}

/** A full publish of one commit. */
export interface PublishFullOptions extends PublishTarget {
  commit: string;
}

/** A delta publish from the commit the pod should have to a new one. */
export interface PublishDeltaOptions extends PublishTarget {
  fromCommit: string;
  toCommit: string;
}

/** What a publish did. */
export interface PublishResult {
  /** `none`: the pod already had the commit. */
  mode: 'full' | 'delta' | 'none';
  /** Files and symbolic links sent. */
  files: number;
  /** Paths removed from the previous tree (delta only). */
  deleted: number;
  /** Bytes streamed into the pod. */
  bytes: number;
  /** The commit now live. */
  commit: string;
  /** The commit that was live before, when one was. */
  previousCommit: string | null;
  /** The live release's directory in the pod. */
  release: string | null;
  /** Why a delta was published in full, or why nothing was published. */
  reason: string | null;
}

/** The paths gkube uses under code.path (see the file header). */
export interface CodeLayout {
  root: string;
  /** The symbolic link the app reads. */
  current: string;
  releases: string;
  staging: string;
  commitFile: string;
}

/** What one manifest says about a path: a regular file's content and executable bit, or a link's target. */
export type ManifestEntry = { kind: 'file'; sha256: string; executable: boolean } | { kind: 'symlink'; target: string };

/** A tree's regular files and symbolic links by relative path (directories are implied). */
export type Manifest = Map<string, ManifestEntry>;

/** One way a tree differs from the expected one. */
export interface ManifestDifference {
  path: string;
  problem: 'missing' | 'unexpected' | 'content differs' | 'type differs' | 'executable bit differs' | 'link target differs';
}

/** One change between two commits, from `git diff --name-status --no-renames`. */
export interface PathChange {
  status: 'A' | 'M' | 'D' | 'T' | 'other';
  path: string;
}

/** One entry of a tar stream as the scanner reads it. */
export interface TarEntry {
  path: string;
  kind: 'file' | 'symlink' | 'directory' | 'other';
  size: number;
  mode: number;
  linkTarget: string | undefined;
}

const defaultTimeoutMs = 10 * 60_000;
const inspectTimeoutMs = 60_000;
const cleanupTimeoutMs = 30_000;
/** The manifest of a large tree is long (about 100 bytes a file). */
const manifestLimitBytes = 256 * 1024 * 1024;
const commitRe = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
const releaseLinkRe = /^\.gkube\/releases\/([0-9a-f]{40}(?:[0-9a-f]{24})?)-([0-9a-f]{8})-([0-9a-f]{8})$/;
/** Exit status the scripts use when `current` is something gkube did not make. */
const foreignCurrentExit = 67;

/** The layout under code.path. */
export function codeLayout(codePath: string): CodeLayout {
  const root = posix.normalize(codePath).replace(/(.)\/+$/, '$1');
  return {
    root,
    current: posix.join(root, 'current'),
    releases: posix.join(root, '.gkube/releases'),
    staging: posix.join(root, '.gkube/staging'),
    commitFile: posix.join(root, '.gkube/commit'),
  };
}

// ---- the scripts run in the pod (POSIX sh; arguments as positional parameters, never spliced in) ----

/** Prints the tree under the current directory as the manifest parsePodManifest reads. */
const manifestScript = [
  `printf 'gkube-manifest-v1\\0files\\0'`,
  `find . -type f -print0 | xargs -0 -r sha256sum`,
  `printf '\\0exec\\0'`,
  `find . -type f -perm -100 -print0`,
  `printf '\\0links\\0'`,
  `find . -type l -print0 | xargs -0 -r sh -c 'for l in "$@"; do printf "%s\\0%s\\0" "$l" "$(readlink "$l")"; done' sh`,
  `printf '\\0end\\0'`,
].join('\n');

/** $1 code.path. Prints what `current` is: `none`, `foreign`, `release <target>` or `dangling <target>`, NUL-separated. */
const inspectScript = `set -eu
cd -- "$1"
if [ -L current ]; then
  t=$(readlink current)
  if [ -d current ]; then printf 'release\\0%s\\0' "$t"; else printf 'dangling\\0%s\\0' "$t"; fi
elif [ -e current ]; then printf 'foreign\\0\\0'
else printf 'none\\0\\0'
fi`;

/**
 * $1 code.path, $2 release id, $3 the live release to start from (`-` for an empty tree). For a delta, stdin
 * starts with two NUL-separated path lists, each after its length in bytes on a line of its own (paths to
 * remove; then emptied directories to remove, deepest first); the tar follows. Prints the staged tree's manifest.
 */
const uploadScript = `set -eu
cd -- "$1"
if [ -e current ] && [ ! -L current ]; then
  echo "gkube: $1/current exists and is not a symbolic link gkube made; it was left as it is" >&2
  exit ${foreignCurrentExit}
fi
rm -rf .gkube/staging
mkdir -p .gkube/releases .gkube/staging
st=".gkube/staging/$2"
if [ "$3" = - ]; then
  mkdir -- "$st"
  cd -- "$st"
else
  now=$(readlink current || true)
  if [ "$now" != "$3" ]; then
    echo "gkube: $1/current changed during the publish (it is now \${now:-missing})" >&2
    exit 65
  fi
  cp -al -- "$3" "$st"
  cd -- "$st"
  IFS= read -r n
  if [ "$n" -gt 0 ]; then dd bs=1 count="$n" 2>/dev/null | xargs -0 -r rm -rf --; fi
  IFS= read -r n
  if [ "$n" -gt 0 ]; then dd bs=1 count="$n" 2>/dev/null | xargs -0 -r rmdir -- 2>/dev/null || true; fi
fi
tar -x -o -f -
${manifestScript}`;

/** $1 code.path, $2 release id, $3 commit, $4 nonce. Switches `current` to the staged release; prints the previous link target. */
const swapScript = `set -eu
cd -- "$1"
st=".gkube/staging/$2"
rel=".gkube/releases/$2"
if [ ! -d "$st" ]; then
  echo "gkube: the staged release $1/$st is gone" >&2
  exit 66
fi
if [ -e current ] && [ ! -L current ]; then
  echo "gkube: $1/current exists and is not a symbolic link gkube made; it was left as it is" >&2
  exit ${foreignCurrentExit}
fi
prev=$(readlink current 2>/dev/null || true)
mv -- "$st" "$rel"
ln -s -- "$rel" ".gkube-current.$4"
if ! mv -fT -- ".gkube-current.$4" current 2>/dev/null; then
  # BusyBox before 1.35 has no mv -T (plain mv would move the link into the directory current points to).
  rm -f current
  mv -f -- ".gkube-current.$4" current
fi
printf '%s\\n' "$3" > ".gkube/commit.$4"
mv -f -- ".gkube/commit.$4" .gkube/commit
for d in .gkube/releases/*; do
  case "$d" in
    "$rel"|"$prev") ;;
    *) rm -rf -- "$d" ;;
  esac
done
printf '%s' "$prev"`;

/** $1 code.path, $2 release id: removes a staged tree that failed. */
const cleanupScript = `cd -- "$1" && rm -rf -- ".gkube/staging/$2"`;

/** The scripts run in the pod, for tests that run them on this machine. */
export const podScripts = { manifest: manifestScript, inspect: inspectScript, upload: uploadScript, swap: swapScript, cleanup: cleanupScript } as const;

// ---- git ----

/** Checks a full commit hash (40 or 64 lowercase hex digits); INVALID_INPUT otherwise. */
export function checkCommit(commit: string, field: string): string {
  if (!commitRe.test(commit)) throw new GkubeError('INVALID_INPUT', `${field}: ${JSON.stringify(commit)} is not a full commit hash (40 or 64 lowercase hex digits)`);
  return commit;
}

/** code.exclude as git pathspecs (`:(exclude,glob)PATTERN`); INVALID_CONFIG for a pattern that leaves the repository. */
export function excludePathspecs(excludes: readonly string[]): string[] {
  return excludes.map((raw) => {
    const pattern = raw.replace(/^\/+/, '');
    if (pattern.length === 0 || /[\0\n]/.test(pattern) || pattern.split('/').includes('..')) {
      throw new GkubeError('INVALID_CONFIG', `code.exclude: ${JSON.stringify(raw)} must be a glob pattern inside the repository (no "..", not empty)`);
    }
    return `:(exclude,glob)${pattern}`;
  });
}

/**
 * `git archive --format=tar` of the commit (at the top of the checkout that holds gitCwd), without the paths
 * `excludes` names. The stream ends only after git succeeded, and fails with git's error otherwise.
 */
export function archiveCommit(gitCwd: string, commit: string, excludes: readonly string[] = []): Readable {
  checkCommit(commit, 'commit');
  const specs = excludePathspecs(excludes);
  return archiveStream(
    gitToplevel(gitCwd).then(async (top) => {
      await requireCommit(top, commit, 'commit');
      return top;
    }),
    commit,
    specs,
  );
}

function archiveStream(topPromise: Promise<string>, commit: string, specs: string[]): Readable {
  const out = new PassThrough();
  let child: ArchiveProcess | undefined;
  // The reader went away early (a failed upload): git has nothing more to do.
  out.once('close', () => child?.kill());
  void (async () => {
    try {
      const top = await topPromise;
      if (out.destroyed) return;
      child = startArchive(top, commit, specs);
      child.stdout.pipe(out, { end: false });
      await Promise.all([child.done, new Promise<void>((resolve, reject) => finished(child!.stdout, (err) => (err ? reject(err) : resolve())))]);
      out.end();
    } catch (err) {
      out.destroy(err instanceof GkubeError ? err : new GkubeError('OPERATION_FAILED', `git archive ${short(commit)} failed: ${gitMessage(err)}`, { cause: err }));
    }
  })();
  return out;
}

const git = runGit;

async function gitToplevel(gitCwd: string): Promise<string> {
  try {
    return (await git(gitCwd, ['rev-parse', '--show-toplevel'])).trim();
  } catch (err) {
    throw new GkubeError('INVALID_INPUT', `workspace ${gitCwd} is not a git checkout: ${gitMessage(err)}`, { cause: err });
  }
}

async function hasCommit(top: string, commit: string): Promise<boolean> {
  return gitSucceeds(top, ['cat-file', '-e', '--end-of-options', `${commit}^{commit}`]);
}

async function requireCommit(top: string, commit: string, field: string): Promise<void> {
  if (!(await hasCommit(top, commit))) {
    throw new GkubeError('INVALID_INPUT', `${field}: ${commit} is not a commit of the checkout at ${top}`, { hint: 'fetch it first (git fetch), or check the hash' });
  }
}

/** Parses `git diff --name-status -z` output; renames and copies (when not disabled) become a delete and an add. */
export function parseNameStatus(output: string): PathChange[] {
  const fields = output.split('\0');
  if (fields.at(-1) === '') fields.pop();
  const changes: PathChange[] = [];
  for (let i = 0; i < fields.length; ) {
    const status = fields[i++]!;
    const letter = status[0];
    if (letter === 'R' || letter === 'C') {
      const from = fields[i++];
      const to = fields[i++];
      if (from === undefined || to === undefined) throw new Error(`git diff: ${status} without its two paths`);
      if (letter === 'R') changes.push({ status: 'D', path: from });
      changes.push({ status: 'A', path: to });
      continue;
    }
    const path = fields[i++];
    if (path === undefined) throw new Error(`git diff: ${status} without a path`);
    changes.push({ status: letter === 'A' || letter === 'M' || letter === 'D' || letter === 'T' ? letter : 'other', path });
  }
  return changes;
}

async function changedPaths(top: string, from: string, to: string, specs: string[]): Promise<PathChange[]> {
  let out: string;
  try {
    out = await git(top, ['diff', '--name-status', '-z', '--no-renames', '--no-relative', '--no-ext-diff', '--end-of-options', from, to, '--', ...specs]);
  } catch (err) {
    throw new GkubeError('OPERATION_FAILED', `git diff ${short(from)} ${short(to)} failed: ${gitMessage(err)}`, { cause: err });
  }
  const changes = parseNameStatus(out);
  for (const c of changes) checkRelativePath(c.path);
  return changes;
}

function gitMessage(err: unknown): string {
  const e = err as { stderr?: unknown; shortMessage?: string; message?: string };
  const stderr = typeof e.stderr === 'string' ? e.stderr.trim() : Buffer.isBuffer(e.stderr) || e.stderr instanceof Uint8Array ? Buffer.from(e.stderr).toString('utf8').trim() : '';
  return stderr ? tail(stderr) : (e.shortMessage ?? e.message ?? String(err));
}

// ---- the tar stream ----

/**
 * Reads a tar stream (ustar, pax and GNU long names, as `git archive` writes it), computes the manifest of
 * every entry, and passes on the entries `select` accepts as a tar of their own (pax global headers are
 * dropped). Fails on a damaged header or a stream that ends before the archive's end marker.
 */
export class TarScanner extends Transform {
  /** Every file and symbolic link seen, selected or not. */
  readonly manifest: Manifest = new Map();
  /** Files and symbolic links passed on. */
  passed = 0;
  private state: 'header' | 'meta' | 'data' | 'padding' | 'end' = 'header';
  private pending: Buffer = Buffer.alloc(0);
  private offset = 0;
  private remaining = 0;
  private padding = 0;
  private emitting = false;
  private hash: ReturnType<typeof createHash> | undefined;
  private entry: TarEntry | undefined;
  private metaType = '';
  private metaParts: Buffer[] = [];
  private metaRaw: Buffer[] = [];
  private overrides: { path?: string; linkTarget?: string; size?: number } = {};

  constructor(private readonly select: (entry: TarEntry) => boolean) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.feed(chunk);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.state !== 'end') {
      callback(new Error(this.state === 'header' && this.pending.length === 0 ? 'the archive ended without its end marker' : 'the archive ended in the middle of an entry'));
      return;
    }
    // The end marker: two zero blocks (readers do not need the rest of a 10 KiB record).
    this.out(Buffer.alloc(1024));
    callback();
  }

  private out(data: Buffer): void {
    this.push(data);
  }

  private feed(chunk: Buffer): void {
    const data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    let off = 0;
    while (off < data.length) {
      if (this.state === 'end') return;
      if (this.state === 'header') {
        if (data.length - off < 512) {
          this.pending = Buffer.from(data.subarray(off));
          return;
        }
        this.header(data.subarray(off, off + 512));
        off += 512;
        this.offset += 512;
      } else if (this.state === 'meta') {
        const n = Math.min(this.remaining, data.length - off);
        const piece = Buffer.from(data.subarray(off, off + n));
        if (this.metaType !== 'g') this.metaRaw.push(piece);
        this.metaParts.push(piece);
        this.remaining -= n;
        off += n;
        this.offset += n;
        if (this.remaining === 0) this.endMeta();
      } else if (this.state === 'data') {
        const n = Math.min(this.remaining, data.length - off);
        const piece = data.subarray(off, off + n);
        this.hash?.update(piece);
        if (this.emitting) this.out(piece);
        this.remaining -= n;
        off += n;
        this.offset += n;
        if (this.remaining === 0) this.endData();
      } else {
        const n = Math.min(this.padding, data.length - off);
        if (this.emitting) this.out(data.subarray(off, off + n));
        this.padding -= n;
        off += n;
        this.offset += n;
        if (this.padding === 0) this.state = 'header';
      }
    }
  }

  private header(block: Buffer): void {
    if (block.every((b) => b === 0)) {
      this.state = 'end';
      return;
    }
    const stored = parseNumber(block.subarray(148, 156));
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
    if (stored !== sum) throw new Error(`damaged tar header at byte ${this.offset} (checksum ${stored}, computed ${sum})`);
    const type = String.fromCharCode(block[156]!);
    const headerSize = parseNumber(block.subarray(124, 136));
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      const size = headerSize;
      if (size > 1024 * 1024) throw new Error(`tar ${type} header of ${size} bytes at byte ${this.offset}`);
      this.metaType = type;
      this.metaParts = [];
      // Global headers (git's commit comment) are not passed on; per-file ones go with their entry.
      if (type !== 'g') this.metaRaw.push(Buffer.from(block));
      this.remaining = roundUp(size);
      this.state = 'meta';
      if (this.remaining === 0) this.endMeta();
      return;
    }
    const size = this.overrides.size ?? headerSize;
    const name = cString(block.subarray(0, 100));
    const prefix = block.subarray(257, 262).toString('latin1') === 'ustar' ? cString(block.subarray(345, 500)) : '';
    const rawPath = this.overrides.path ?? (prefix ? `${prefix}/${name}` : name);
    const linkTarget = this.overrides.linkTarget ?? cString(block.subarray(157, 257));
    const kind: TarEntry['kind'] = type === '0' || type === '\0' || type === '7' ? 'file' : type === '2' ? 'symlink' : type === '5' ? 'directory' : 'other';
    const entry: TarEntry = {
      path: checkRelativePath(normalizeEntryPath(rawPath)),
      kind,
      size: kind === 'symlink' || kind === 'directory' ? 0 : size,
      mode: parseNumber(block.subarray(100, 108)),
      linkTarget: kind === 'symlink' ? linkTarget : undefined,
    };
    this.overrides = {};
    this.entry = entry;
    this.emitting = entry.path !== '' && this.select(entry);
    if (this.emitting) {
      for (const raw of this.metaRaw) this.out(raw);
      this.out(Buffer.from(block));
      if (entry.kind === 'file' || entry.kind === 'symlink') this.passed += 1;
    }
    this.metaRaw = [];
    this.hash = entry.kind === 'file' ? createHash('sha256') : undefined;
    this.remaining = entry.size;
    if (this.remaining === 0) this.endData();
    else this.state = 'data';
  }

  private endMeta(): void {
    const data = Buffer.concat(this.metaParts);
    this.metaParts = [];
    if (this.metaType === 'x' || this.metaType === 'g') {
      const records = parsePax(data);
      if (this.metaType === 'x') {
        if (records.has('path')) this.overrides.path = records.get('path')!;
        if (records.has('linkpath')) this.overrides.linkTarget = records.get('linkpath')!;
        if (records.has('size')) this.overrides.size = Number(records.get('size'));
      }
    } else if (this.metaType === 'L') {
      this.overrides.path = cString(data);
    } else {
      this.overrides.linkTarget = cString(data);
    }
    this.state = 'header';
  }

  private endData(): void {
    const entry = this.entry!;
    if (entry.kind === 'file') {
      this.manifest.set(entry.path, { kind: 'file', sha256: this.hash!.digest('hex'), executable: (entry.mode & 0o100) !== 0 });
    } else if (entry.kind === 'symlink') {
      this.manifest.set(entry.path, { kind: 'symlink', target: entry.linkTarget ?? '' });
    }
    this.hash = undefined;
    this.padding = roundUp(entry.size) - entry.size;
    this.state = this.padding > 0 ? 'padding' : 'header';
  }
}

function roundUp(n: number): number {
  return Math.ceil(n / 512) * 512;
}

function cString(field: Buffer): string {
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? field.length : end).toString('utf8');
}

/** A tar number: octal text, or base-256 when the first byte's high bit is set. */
function parseNumber(field: Buffer): number {
  if (field.length > 0 && (field[0]! & 0x80) !== 0) {
    let n = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const text = field.toString('latin1').replace(/[\0 ]+$/g, '').trim();
  if (!/^[0-7]*$/.test(text)) throw new Error(`bad number ${JSON.stringify(text)} in a tar header`);
  return text === '' ? 0 : parseInt(text, 8);
}

/** pax records: `<length> <key>=<value>\n`, the length counting the whole record. */
function parsePax(data: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let off = 0;
  while (off < data.length && data[off] !== 0) {
    const space = data.indexOf(0x20, off);
    const length = space === -1 ? NaN : Number(data.subarray(off, space).toString('latin1'));
    if (!Number.isInteger(length) || length <= 0 || off + length > data.length) throw new Error('damaged pax header');
    const record = data.subarray(space + 1, off + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) records.set(record.slice(0, eq), record.slice(eq + 1));
    off += length;
  }
  return records;
}

function normalizeEntryPath(path: string): string {
  let p = path;
  while (p.startsWith('./')) p = p.slice(2);
  return p.replace(/\/+$/, '');
}

/** Refuses an absolute path or one that climbs out with `..` (git never makes one; exit 6 if it appears). */
function checkRelativePath(path: string): string {
  if (path.startsWith('/') || path.split('/').includes('..')) {
    throw new GkubeError('REFUSED', `the path ${JSON.stringify(path)} would leave the code directory; refused, nothing was changed`);
  }
  return path;
}

// ---- manifests ----

/** Reads the manifest the pod printed (see manifestScript); throws when it is incomplete or malformed. */
export function parsePodManifest(output: string): Manifest {
  const tokens = output.split('\0');
  let i = 0;
  const expect = (value: string): void => {
    if (tokens[i] !== value) throw new Error(`the manifest has ${JSON.stringify(tokens[i]?.slice(0, 40) ?? '(end)')} where ${JSON.stringify(value)} belongs`);
    i += 1;
  };
  expect('gkube-manifest-v1');
  expect('files');
  const manifest: Manifest = new Map();
  for (const [path, sha256] of parseShaSums(tokens[i++] ?? '')) manifest.set(path, { kind: 'file', sha256, executable: false });
  expect('exec');
  while (tokens[i]?.startsWith('./')) {
    const entry = manifest.get(normalizeEntryPath(tokens[i]!));
    if (entry?.kind === 'file') entry.executable = true;
    i += 1;
  }
  expect('');
  expect('links');
  while (tokens[i]?.startsWith('./')) {
    const target = tokens[i + 1];
    if (target === undefined) throw new Error('the manifest ends inside its list of links');
    manifest.set(normalizeEntryPath(tokens[i]!), { kind: 'symlink', target });
    i += 2;
  }
  expect('');
  expect('end');
  expect('');
  if (i !== tokens.length) throw new Error('the manifest has data after its end');
  return manifest;
}

/**
 * `sha256sum` lines: `<hash>  <path>` (or ` *<path>`). GNU coreutils escapes a name holding `\` or a newline
 * and marks the line with a leading `\`; BusyBox prints the name as it is, so a line that does not start
 * with a hash continues the previous name.
 */
function parseShaSums(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (const line of lines) {
    const m = /^(\\?)([0-9a-f]{64}) [ *](.*)$/s.exec(line);
    if (m) {
      const name = m[1] ? m[3]!.replace(/\\(\\|n|r)/g, (_, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : '\\')) : m[3]!;
      out.push([normalizeEntryPath(name), m[2]!]);
    } else if (out.length > 0) {
      const last = out[out.length - 1]!;
      last[0] = `${last[0]}\n${line}`;
    } else {
      throw new Error(`the manifest has a line that is not a checksum: ${JSON.stringify(line.slice(0, 80))}`);
    }
  }
  return out;
}

/** The differences between the expected and the actual tree, by path. */
export function compareManifests(expected: Manifest, actual: Manifest): ManifestDifference[] {
  const diffs: ManifestDifference[] = [];
  for (const [path, want] of expected) {
    const got = actual.get(path);
    if (!got) diffs.push({ path, problem: 'missing' });
    else if (got.kind !== want.kind) diffs.push({ path, problem: 'type differs' });
    else if (want.kind === 'file' && got.kind === 'file') {
      if (got.sha256 !== want.sha256) diffs.push({ path, problem: 'content differs' });
      else if (got.executable !== want.executable) diffs.push({ path, problem: 'executable bit differs' });
    } else if (want.kind === 'symlink' && got.kind === 'symlink' && got.target !== want.target) {
      diffs.push({ path, problem: 'link target differs' });
    }
  }
  for (const path of actual.keys()) if (!expected.has(path)) diffs.push({ path, problem: 'unexpected' });
  return diffs.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function describeDifferences(diffs: ManifestDifference[]): string {
  const shown = diffs.slice(0, 5).map((d) => `${JSON.stringify(d.path)} ${d.problem}`);
  const more = diffs.length > 5 ? `, and ${diffs.length - 5} more` : '';
  return `${diffs.length} ${diffs.length === 1 ? 'path differs' : 'paths differ'}: ${shown.join(', ')}${more}`;
}

// ---- the release link ----

/** What `current`'s target says: the commit, the exclude digest and the release id; undefined for anything gkube did not write. */
export function parseReleaseLink(target: string): { commit: string; excludeDigest: string; id: string } | undefined {
  const m = releaseLinkRe.exec(target);
  return m ? { commit: m[1]!, excludeDigest: m[2]!, id: `${m[1]}-${m[2]}-${m[3]}` } : undefined;
}

function excludeDigest(specs: string[]): string {
  return createHash('sha256').update(JSON.stringify(specs)).digest('hex').slice(0, 8);
}

// ---- publishing ----

interface Run {
  target: PublishTarget;
  layout: CodeLayout;
  specs: string[];
  excludeDigest: string;
  timeoutMs: number;
}

/** What `current` is in the pod: absent, not a link, or a link (to a directory or dangling). */
export type LiveCode = { state: 'none' } | { state: 'foreign' } | { state: 'dangling' | 'release'; link: string };

/** What a delta publish should do. */
export type DeltaPlan = { kind: 'none'; link: string; reason: string } | { kind: 'full'; reason: string } | { kind: 'delta'; link: string };

/** Decides between nothing, a delta from the live release, and a full publish (with the reason). */
export function planDelta(live: LiveCode, from: string, to: string, digest: string, current: string): DeltaPlan {
  if (live.state === 'none') return { kind: 'full', reason: 'no code was published to the pod yet' };
  if (live.state === 'foreign') return { kind: 'full', reason: `${current} is not a link gkube made` };
  const release = parseReleaseLink(live.link);
  if (live.state === 'dangling' || !release) return { kind: 'full', reason: `${current} does not point at a release gkube made` };
  if (release.excludeDigest !== digest) return { kind: 'full', reason: 'code.exclude changed since the last publish' };
  if (release.commit === to) return { kind: 'none', link: live.link, reason: `the pod already has ${short(to)}` };
  if (release.commit !== from) return { kind: 'full', reason: `the pod has ${short(release.commit)}, not ${short(from)}` };
  return { kind: 'delta', link: live.link };
}

/** Publishes the whole tree of `commit` and switches the pod to it. */
export async function publishFull(options: PublishFullOptions): Promise<PublishResult> {
  const commit = checkCommit(options.commit, 'commit');
  const run = prepare(options);
  const top = await gitToplevel(options.gitCwd);
  await requireCommit(top, commit, 'commit');
  return fullPublish(run, top, commit, null);
}

/**
 * Publishes what changed from `fromCommit` to `toCommit`, on a copy of the live release. When the pod does
 * not have `fromCommit` live (or code.exclude changed, or the copy turns out not to match), publishes in full
 * and says why in `reason`; when it already has `toCommit`, does nothing (`mode: 'none'`).
 */
export async function publishDelta(options: PublishDeltaOptions): Promise<PublishResult> {
  const from = checkCommit(options.fromCommit, 'fromCommit');
  const to = checkCommit(options.toCommit, 'toCommit');
  const run = prepare(options);
  const top = await gitToplevel(options.gitCwd);
  await requireCommit(top, to, 'toCommit');

  const live = await inspect(run, to);
  const plan = planDelta(live, from, to, run.excludeDigest, run.layout.current);
  if (plan.kind === 'none') {
    return { mode: 'none', files: 0, deleted: 0, bytes: 0, commit: to, previousCommit: to, release: posix.join(run.layout.root, plan.link), reason: plan.reason };
  }
  if (plan.kind === 'full') return fullPublish(run, top, to, `${plan.reason}: published in full`);
  if (!(await hasCommit(top, from))) return fullPublish(run, top, to, `${short(from)} is not in the workspace's history: published in full`);

  const changes = await changedPaths(top, from, to, run.specs);
  const removed = changes.map((c) => c.path);
  const sent = new Set(changes.filter((c) => c.status !== 'D').map((c) => c.path));
  const deleted = changes.filter((c) => c.status === 'D').length;
  const emptied = emptiedDirectories(changes.filter((c) => c.status === 'D').map((c) => c.path));
  const id = releaseId(to, run.excludeDigest);
  const scanner = new TarScanner((entry) => sent.has(entry.path));
  const header = Buffer.concat([pathList(removed), pathList(emptied)]);
  const counter = { bytes: 0 };
  const stdin = Readable.from(counted(prepend(header, scanArchive(top, to, run.specs, scanner)), counter));

  const what = `publishing ${short(to)} to pod ${run.target.namespace}/${run.target.pod}`;
  const upload = await step(run, what, 'uploading the changes', uploadScript, [run.layout.root, id, plan.link], { stdin, maxOutputBytes: manifestLimitBytes, timeoutMs: run.timeoutMs }, unchanged);
  const diffs = compareManifests(scanner.manifest, readManifest(upload, what));
  if (diffs.length > 0) {
    await cleanup(run, id);
    return fullPublish(run, top, to, `the code in the pod did not match ${short(from)} (${describeDifferences(diffs)}): published in full`);
  }
  const previous = await swap(run, what, id, to);
  return { mode: 'delta', files: scanner.passed, deleted, bytes: counter.bytes, commit: to, previousCommit: previous, release: posix.join(run.layout.releases, id), reason: null };
}

function prepare(target: PublishTarget): Run {
  if (!target.codePath.startsWith('/') || target.codePath.includes('\0')) {
    throw new GkubeError('INVALID_CONFIG', `code.path: ${JSON.stringify(target.codePath)} must be an absolute path`);
  }
  const specs = excludePathspecs(target.excludes ?? []);
  return { target, layout: codeLayout(target.codePath), specs, excludeDigest: excludeDigest(specs), timeoutMs: target.timeoutMs ?? defaultTimeoutMs };
}

async function fullPublish(run: Run, top: string, commit: string, reason: string | null): Promise<PublishResult> {
  const id = releaseId(commit, run.excludeDigest);
  const scanner = new TarScanner(() => true);
  const counter = { bytes: 0 };
  const stdin = Readable.from(counted(scanArchive(top, commit, run.specs, scanner), counter));
  const what = `publishing ${short(commit)} to pod ${run.target.namespace}/${run.target.pod}`;
  const upload = await step(run, what, 'uploading the code', uploadScript, [run.layout.root, id, '-'], { stdin, maxOutputBytes: manifestLimitBytes, timeoutMs: run.timeoutMs }, unchanged);
  const diffs = compareManifests(scanner.manifest, readManifest(upload, what));
  if (diffs.length > 0) {
    await cleanup(run, id);
    throw new GkubeError('OPERATION_FAILED', `${what}: the code written to the pod does not match the commit (${describeDifferences(diffs)})${unchanged}`, {
      hint: 'the volume may be full or failing; check the pod\'s storage and run again',
    });
  }
  const previous = await swap(run, what, id, commit);
  return { mode: 'full', files: scanner.passed, deleted: 0, bytes: counter.bytes, commit, previousCommit: previous, release: posix.join(run.layout.releases, id), reason };
}

const unchanged = '; the live code was not changed';

async function inspect(run: Run, commit: string): Promise<LiveCode> {
  const what = `publishing ${short(commit)} to pod ${run.target.namespace}/${run.target.pod}`;
  const r = await step(run, what, 'reading the published commit', inspectScript, [run.layout.root], { timeoutMs: Math.min(run.timeoutMs, inspectTimeoutMs) }, unchanged);
  const [state, link] = r.stdout.split('\0');
  if (state === 'none' || state === 'foreign') return { state };
  if ((state === 'release' || state === 'dangling') && link !== undefined) return { state, link };
  throw new GkubeError('OPERATION_FAILED', `${what}: reading the published commit gave an unexpected answer: ${JSON.stringify(r.stdout.slice(0, 200))}${unchanged}`);
}

async function swap(run: Run, what: string, id: string, commit: string): Promise<string | null> {
  const r = await step(run, what, 'switching to the new release', swapScript, [run.layout.root, id, commit, randomBytes(4).toString('hex')], { timeoutMs: run.timeoutMs },
    `; ${run.layout.current} points at either the previous or the new release, never a mix`);
  return parseReleaseLink(r.stdout.trim())?.commit ?? null;
}

/** Best effort: a staged tree left behind is removed by the next upload anyway. */
async function cleanup(run: Run, id: string): Promise<void> {
  try {
    await run.target.exec({ ...podOf(run), command: ['sh', '-c', cleanupScript, 'gkube', run.layout.root, id], timeoutMs: cleanupTimeoutMs });
  } catch {
    // Nothing to add: the publish already failed, or falls back, for its own reason.
  }
}

function podOf(run: Run): { namespace: string; pod: string; container: string } {
  return { namespace: run.target.namespace, pod: run.target.pod, container: run.target.container };
}

/** Runs one script in the pod; a failure to run it or a non-zero exit becomes a GkubeError naming the step. */
async function step(
  run: Run,
  what: string,
  label: string,
  script: string,
  args: string[],
  io: { stdin?: Readable; maxOutputBytes?: number; timeoutMs: number },
  afterwards: string,
): Promise<ExecResult> {
  let result: ExecResult;
  try {
    result = await run.target.exec({ ...podOf(run), command: ['sh', '-c', script, 'gkube', ...args], ...io });
  } catch (err) {
    // Any exec port: input it did not take is abandoned, so git archive behind it stops.
    io.stdin?.destroy();
    const code: ErrorCode = err instanceof GkubeError ? err.code : 'OPERATION_FAILED';
    throw new GkubeError(code, `${what}: ${label} failed: ${(err as Error).message}${afterwards}`, {
      hint: err instanceof GkubeError ? err.hint : undefined,
      cause: err,
    });
  }
  if (result.exitCode !== 0) {
    const detail = tail(result.stderr) || '(no output on stderr)';
    throw new GkubeError(result.exitCode === foreignCurrentExit ? 'REFUSED' : 'OPERATION_FAILED', `${what}: ${label} failed: the command in the pod exited with code ${result.exitCode}: ${detail}${afterwards}`, {
      hint: result.exitCode === foreignCurrentExit ? `move ${run.layout.current} out of the way; gkube manages it as a symbolic link` : `check ${run.layout.root} in the pod (mounted, writable, space left)`,
    });
  }
  return result;
}

function readManifest(upload: ExecResult, what: string): Manifest {
  if (upload.stdoutTruncated) {
    throw new GkubeError('OPERATION_FAILED', `${what}: the tree's manifest is longer than ${manifestLimitBytes} bytes and could not be checked${unchanged}`);
  }
  try {
    return parsePodManifest(upload.stdout);
  } catch (err) {
    throw new GkubeError('OPERATION_FAILED', `${what}: the pod's manifest could not be read: ${(err as Error).message}${unchanged}`, { cause: err });
  }
}

function scanArchive(top: string, commit: string, specs: string[], scanner: TarScanner): Readable {
  // Errors on either side destroy both: git's error reaches the upload, an aborted upload stops git.
  pipeline(archiveStream(Promise.resolve(top), commit, specs), scanner, () => undefined);
  return scanner;
}

async function* prepend(first: Buffer, rest: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield first;
  yield* rest;
}

async function* counted(source: AsyncIterable<Buffer>, counter: { bytes: number }): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    counter.bytes += chunk.length;
    yield chunk;
  }
}

/** A NUL-separated list after its byte length on a line of its own (the upload script's stdin framing). */
function pathList(paths: string[]): Buffer {
  const body = Buffer.from(paths.map((p) => `${p}\0`).join(''), 'utf8');
  return Buffer.concat([Buffer.from(`${body.length}\n`), body]);
}

/** The directories that deleting `paths` may leave empty, deepest first (git keeps no empty directory). */
export function emptiedDirectories(paths: string[]): string[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    for (let d = posix.dirname(p); d !== '.' && d !== '/' && d !== ''; d = posix.dirname(d)) dirs.add(d);
  }
  return [...dirs].sort((a, b) => b.split('/').length - a.split('/').length || (a < b ? -1 : a > b ? 1 : 0));
}

function releaseId(commit: string, digest: string): string {
  return `${commit}-${digest}-${randomBytes(4).toString('hex')}`;
}

/** The last lines of a command's stderr, on one line, at most 400 characters. */
function tail(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean).slice(-3).join(' | ');
  return lines.length > 400 ? `…${lines.slice(-400)}` : lines;
}
