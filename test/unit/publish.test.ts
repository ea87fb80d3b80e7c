// The publish step's pure parts (tar scanning, manifests, git diff parsing, the delta decision) and its pod
// scripts run on this machine through a local stand-in for the exec port.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { execa } from 'execa';
import type { ExecRequest, ExecResult, PodExec } from '../../src/adapters/kube-exec.js';
import {
  TarScanner,
  archiveCommit,
  compareManifests,
  emptiedDirectories,
  excludePathspecs,
  parseNameStatus,
  parsePodManifest,
  parseReleaseLink,
  planDelta,
  podScripts,
  publishDelta,
  publishFull,
  type Manifest,
} from '../../src/deploy/publish.js';
import { GkubeError } from '../../src/errors.js';
import { GitRepo, TempDirs } from '../harness/index.js';

const temp = new TempDirs();
afterAll(() => temp.removeAll());

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

/** Runs the requested command on this machine: the pod scripts need only POSIX tools, as in a pod. */
function localExec(log: ExecRequest[] = []): PodExec {
  return async (request) => {
    log.push(request);
    const child = spawn(request.command[0]!, request.command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => undefined);
    const input = request.stdin;
    if (input === undefined) child.stdin.end();
    else if (Buffer.isBuffer(input)) child.stdin.end(input);
    else input.pipe(child.stdin);
    const code = await new Promise<number>((resolve) => child.once('close', (c) => resolve(c ?? 128)));
    if (input !== undefined && !Buffer.isBuffer(input)) input.destroy();
    const result: ExecResult = { exitCode: code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutTruncated: false, stderrTruncated: false };
    return result;
  };
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(parts);
}

async function scan(stream: Readable, select: (p: string) => boolean = () => true): Promise<{ scanner: TarScanner; tar: Buffer }> {
  const scanner = new TarScanner((e) => select(e.path));
  const done = collect(scanner);
  stream.pipe(scanner);
  stream.once('error', (e) => scanner.destroy(e));
  return { scanner, tar: await done };
}

/** The regular files and links of a directory, as a manifest read from disk. */
async function diskManifest(dir: string, prefix = ''): Promise<Manifest> {
  const m: Manifest = new Map();
  for (const name of await readdir(join(dir, prefix))) {
    const rel = prefix ? `${prefix}/${name}` : name;
    const st = await lstat(join(dir, rel));
    if (st.isSymbolicLink()) m.set(rel, { kind: 'symlink', target: await readlink(join(dir, rel)) });
    else if (st.isDirectory()) for (const [k, v] of await diskManifest(dir, rel)) m.set(k, v);
    else m.set(rel, { kind: 'file', sha256: sha(await readFile(join(dir, rel))), executable: (st.mode & 0o100) !== 0 });
  }
  return m;
}

const longPath = `deep/${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(50)}.txt`;

describe('TarScanner over git archive', () => {
  let repo: GitRepo;
  let commit: string;

  beforeAll(async () => {
    repo = await GitRepo.create(await temp.make('scan-repo'));
    await mkdir(join(repo.dir, 'bin'), { recursive: true });
    await writeFile(join(repo.dir, 'bin', 'run.sh'), '#!/bin/sh\necho run\n');
    await chmod(join(repo.dir, 'bin', 'run.sh'), 0o755);
    await symlink('bin/run.sh', join(repo.dir, 'run'));
    commit = await repo.commit('tree', {
      'index.html': '<h1>hi</h1>\n',
      'with space/ünïcode file.txt': 'u\n',
      [longPath]: 'long\n',
      'empty.txt': '',
      'back\\slash.txt': 'b\n',
      'new\nline.txt': 'n\n',
      'big.bin': 'x'.repeat(70_000),
    });
  });

  test('the manifest holds every file with its sha256 and executable bit, and links with their target', async () => {
    const { scanner, tar } = await scan(archiveCommit(repo.dir, commit));
    const m = scanner.manifest;
    expect([...m.keys()].sort()).toEqual(['back\\slash.txt', 'big.bin', 'bin/run.sh', longPath, 'empty.txt', 'index.html', 'new\nline.txt', 'run', 'with space/ünïcode file.txt'].sort());
    expect(m.get('index.html')).toEqual({ kind: 'file', sha256: sha('<h1>hi</h1>\n'), executable: false });
    expect(m.get('bin/run.sh')).toEqual({ kind: 'file', sha256: sha('#!/bin/sh\necho run\n'), executable: true });
    expect(m.get('run')).toEqual({ kind: 'symlink', target: 'bin/run.sh' });
    expect(m.get(longPath)).toMatchObject({ sha256: sha('long\n') });
    expect(m.get('empty.txt')).toMatchObject({ sha256: sha('') });
    expect(scanner.passed).toBe(9);
    // The tar passed on is one the system tar reads back, without git's global header.
    const dir = await temp.make('scan-x');
    await execa('tar', ['-x', '-f', '-', '-C', dir], { input: tar });
    expect(compareManifests(m, await diskManifest(dir))).toEqual([]);
  });

  test('only the selected entries are passed on; the manifest still covers the whole tree', async () => {
    const { scanner, tar } = await scan(archiveCommit(repo.dir, commit), (p) => p === longPath || p === 'run');
    expect(scanner.manifest.size).toBe(9);
    expect(scanner.passed).toBe(2);
    const listed = (await execa('tar', ['-t', '-f', '-'], { input: tar })).stdout.split('\n');
    expect(listed.sort()).toEqual([longPath, 'run'].sort());
  });

  test('excludes are git pathspec globs', async () => {
    const { scanner } = await scan(archiveCommit(repo.dir, commit, ['deep', '*.bin', '**/*.sh']));
    expect([...scanner.manifest.keys()].sort()).toEqual(['back\\slash.txt', 'empty.txt', 'index.html', 'new\nline.txt', 'run', 'with space/ünïcode file.txt'].sort());
  });

  test('a truncated archive and a damaged header fail', async () => {
    const whole = await collect(archiveCommit(repo.dir, commit));
    await expect(scan(Readable.from([whole.subarray(0, 5000)]))).rejects.toThrow('the archive ended in the middle of an entry');
    const damaged = Buffer.from(whole);
    // Block 0 and 1 are git's global header; block 2 is the first entry's header.
    damaged[1024 + 10] = 0x41;
    await expect(scan(Readable.from([damaged]))).rejects.toThrow(/damaged tar header/);
  });

  test('a commit that is not a full hash, or not in the repository, is refused', async () => {
    expect(() => archiveCommit(repo.dir, 'HEAD')).toThrow(GkubeError);
    await expect(collect(archiveCommit(repo.dir, 'f'.repeat(40)))).rejects.toThrow(`commit: ${'f'.repeat(40)} is not a commit of the checkout`);
  });

  test('the pod manifest script reads back the same manifest, odd names included', async () => {
    const dir = await temp.make('scan-manifest');
    await execa('tar', ['-x', '-f', '-', '-C', dir], { input: await collect(archiveCommit(repo.dir, commit)) });
    const out = await execa('sh', ['-c', podScripts.manifest], { cwd: dir, encoding: 'utf8', stripFinalNewline: false });
    const { scanner } = await scan(archiveCommit(repo.dir, commit));
    expect(compareManifests(scanner.manifest, parsePodManifest(out.stdout))).toEqual([]);
  });
});

describe('parsePodManifest', () => {
  const h = (c: string) => sha(c);
  test('GNU-escaped and BusyBox raw names, executables and links', () => {
    const text = `${h('a')}  ./a b\n\\${h('b')}  ./x\\\\y\\nz\n${h('c')}  ./raw\nname\n`;
    const out = `gkube-manifest-v1\0files\0${text}\0exec\0./a b\0\0links\0./l\0../t\0\0end\0`;
    const m = parsePodManifest(out);
    expect(m.get('a b')).toEqual({ kind: 'file', sha256: h('a'), executable: true });
    expect(m.get('x\\y\nz')).toEqual({ kind: 'file', sha256: h('b'), executable: false });
    expect(m.get('raw\nname')).toEqual({ kind: 'file', sha256: h('c'), executable: false });
    expect(m.get('l')).toEqual({ kind: 'symlink', target: '../t' });
  });

  test.each([
    ['', /"" where "gkube-manifest-v1"/],
    ['gkube-manifest-v1\0files\0\0exec\0\0links\0', /where "end" belongs/],
    ['gkube-manifest-v1\0files\0garbage\n\0exec\0\0links\0\0end\0', /not a checksum/],
  ])('an incomplete or malformed manifest is an error (%#)', (out, message) => {
    expect(() => parsePodManifest(out)).toThrow(message);
  });
});

describe('compareManifests', () => {
  test('names each difference', () => {
    const expected: Manifest = new Map([
      ['same', { kind: 'file', sha256: 'a', executable: false }],
      ['changed', { kind: 'file', sha256: 'a', executable: false }],
      ['mode', { kind: 'file', sha256: 'a', executable: true }],
      ['gone', { kind: 'file', sha256: 'a', executable: false }],
      ['link', { kind: 'symlink', target: 'x' }],
      ['kind', { kind: 'symlink', target: 'x' }],
    ]);
    const actual: Manifest = new Map([
      ['same', { kind: 'file', sha256: 'a', executable: false }],
      ['changed', { kind: 'file', sha256: 'b', executable: false }],
      ['mode', { kind: 'file', sha256: 'a', executable: false }],
      ['link', { kind: 'symlink', target: 'y' }],
      ['kind', { kind: 'file', sha256: 'a', executable: false }],
      ['extra', { kind: 'file', sha256: 'a', executable: false }],
    ]);
    expect(compareManifests(expected, actual)).toEqual([
      { path: 'changed', problem: 'content differs' },
      { path: 'extra', problem: 'unexpected' },
      { path: 'gone', problem: 'missing' },
      { path: 'kind', problem: 'type differs' },
      { path: 'link', problem: 'link target differs' },
      { path: 'mode', problem: 'executable bit differs' },
    ]);
  });
});

describe('git diff and the delta decision', () => {
  test.each([
    ['M\0a.txt\0A\0dir/b c.txt\0D\0old\0T\0link\0', [{ status: 'M', path: 'a.txt' }, { status: 'A', path: 'dir/b c.txt' }, { status: 'D', path: 'old' }, { status: 'T', path: 'link' }]],
    ['R100\0from\0to\0', [{ status: 'D', path: 'from' }, { status: 'A', path: 'to' }]],
    ['C075\0src\0copy\0', [{ status: 'A', path: 'copy' }]],
    ['X\0odd\0', [{ status: 'other', path: 'odd' }]],
    ['', []],
  ])('parseNameStatus %j', (out, changes) => {
    expect(parseNameStatus(out)).toEqual(changes);
  });

  test('emptied directories come deepest first', () => {
    expect(emptiedDirectories(['a/b/c.txt', 'a/d.txt', 'top.txt', 'x/y/z/w'])).toEqual(['x/y/z', 'a/b', 'x/y', 'a', 'x']);
  });

  const A = 'a'.repeat(40);
  const B = 'b'.repeat(40);
  const C = 'c'.repeat(40);
  const link = (commit: string, digest = '12345678') => `.gkube/releases/${commit}-${digest}-0badcafe`;
  test.each([
    [{ state: 'none' }, { kind: 'full', reason: 'no code was published to the pod yet' }],
    [{ state: 'foreign' }, { kind: 'full', reason: '/srv/app/current is not a link gkube made' }],
    [{ state: 'dangling', link: link(A) }, { kind: 'full', reason: '/srv/app/current does not point at a release gkube made' }],
    [{ state: 'release', link: '../elsewhere' }, { kind: 'full', reason: '/srv/app/current does not point at a release gkube made' }],
    [{ state: 'release', link: link(A, '87654321') }, { kind: 'full', reason: 'code.exclude changed since the last publish' }],
    [{ state: 'release', link: link(C) }, { kind: 'full', reason: 'the pod has cccccccccccc, not aaaaaaaaaaaa' }],
    [{ state: 'release', link: link(B) }, { kind: 'none', link: link(B), reason: 'the pod already has bbbbbbbbbbbb' }],
    [{ state: 'release', link: link(A) }, { kind: 'delta', link: link(A) }],
  ] as const)('planDelta %j', (live, plan) => {
    expect(planDelta(live, A, B, '12345678', '/srv/app/current')).toEqual(plan);
  });

  test('parseReleaseLink reads 40- and 64-hex commits', () => {
    expect(parseReleaseLink(link(A))).toEqual({ commit: A, excludeDigest: '12345678', id: `${A}-12345678-0badcafe` });
    expect(parseReleaseLink(`.gkube/releases/${'e'.repeat(64)}-12345678-00000000`)?.commit).toBe('e'.repeat(64));
    expect(parseReleaseLink('.gkube/releases/abc-12345678-00000000')).toBeUndefined();
  });

  test.each(['../up', 'a/../../b', '', '/'])('an exclude %j that leaves the repository is a configuration error', (pattern) => {
    expect(() => excludePathspecs([pattern])).toThrow(/code\.exclude: .* must be a glob pattern inside the repository/);
  });

  test('excludes become exclude+glob pathspecs from the top', () => {
    expect(excludePathspecs(['/node_modules', '**/*.log'])).toEqual([':(exclude,glob)node_modules', ':(exclude,glob)**/*.log']);
  });
});

describe('publishing with the pod scripts run locally', () => {
  let repo: GitRepo;
  let code: string;
  const commits: string[] = [];
  const log: ExecRequest[] = [];
  const exec = localExec(log);
  const target = () => ({ exec, namespace: 'ns', pod: 'pod', container: 'app', codePath: code, gitCwd: join(repo.dir, 'sub') });

  beforeAll(async () => {
    repo = await GitRepo.create(await temp.make('pub-repo'));
    code = await temp.make('pub-code');
    commits.push(await repo.commit('one', { 'index.html': 'v1\n', 'sub/a.txt': 'a\n', 'sub/deep/b.txt': 'b\n', 'old name.txt': 'renamed later\n', 'gone/x.txt': 'x\n' }));
    commits.push(await repo.commit('two', { 'index.html': 'v2\n', 'old name.txt': null, 'new name.txt': 'renamed later\n', 'gone/x.txt': null, 'sub/deep/c.txt': 'c\n' }));
    // The fixture deletes files, not the directories they leave empty.
    await rm(join(repo.dir, 'gone'), { recursive: true, force: true });
    commits.push(await repo.commit('three', { 'gone': 'now a file\n', 'sub/deep/b.txt': null, 'sub/deep/c.txt': null }));
    await writeFile(join(repo.dir, 'untracked.txt'), 'never published\n');
  });

  async function live(): Promise<Manifest> {
    return diskManifest(join(code, 'current'));
  }

  async function treeOf(commit: string): Promise<Manifest> {
    return (await scan(archiveCommit(repo.dir, commit))).scanner.manifest;
  }

  test('full, then deltas, then nothing: the live tree is always the commit\'s tree', async () => {
    const full = await publishFull({ ...target(), commit: commits[0]! });
    expect(full).toMatchObject({ mode: 'full', files: 5, deleted: 0, commit: commits[0], previousCommit: null, reason: null });
    expect(compareManifests(await treeOf(commits[0]!), await live())).toEqual([]);
    expect((await readFile(join(code, '.gkube/commit'), 'utf8')).trim()).toBe(commits[0]);

    const d1 = await publishDelta({ ...target(), fromCommit: commits[0]!, toCommit: commits[1]! });
    expect(d1).toMatchObject({ mode: 'delta', files: 3, deleted: 2, commit: commits[1], previousCommit: commits[0], reason: null });
    expect(d1.bytes).toBeLessThan(full.bytes);
    expect(compareManifests(await treeOf(commits[1]!), await live())).toEqual([]);
    await expect(lstat(join(code, 'current', 'gone'))).rejects.toThrow('ENOENT');

    // A directory becomes a file; a directory is emptied and goes away.
    const d2 = await publishDelta({ ...target(), fromCommit: commits[1]!, toCommit: commits[2]! });
    expect(d2).toMatchObject({ mode: 'delta', deleted: 2 });
    expect(compareManifests(await treeOf(commits[2]!), await live())).toEqual([]);
    await expect(lstat(join(code, 'current', 'sub', 'deep'))).rejects.toThrow('ENOENT');

    const none = await publishDelta({ ...target(), fromCommit: commits[1]!, toCommit: commits[2]! });
    expect(none).toMatchObject({ mode: 'none', files: 0, bytes: 0, reason: `the pod already has ${commits[2]!.slice(0, 12)}` });
    // Only the live release and the one before it are kept; nothing is left in staging.
    expect(await readdir(join(code, '.gkube/releases'))).toHaveLength(2);
    expect(await readdir(join(code, '.gkube/staging'))).toEqual([]);
    expect(await readdir(code)).toEqual(['.gkube', 'current']);
  });

  test('a delta from a commit the pod does not have is published in full, and says so', async () => {
    const r = await publishDelta({ ...target(), fromCommit: commits[0]!, toCommit: commits[1]! });
    expect(r).toMatchObject({ mode: 'full', reason: `the pod has ${commits[2]!.slice(0, 12)}, not ${commits[0]!.slice(0, 12)}: published in full` });
    expect(compareManifests(await treeOf(commits[1]!), await live())).toEqual([]);
  });

  test('a live tree changed by hand fails the delta\'s check, which then publishes in full', async () => {
    await writeFile(join(code, 'current', 'index.html'), 'edited in the pod\n');
    const r = await publishDelta({ ...target(), fromCommit: commits[1]!, toCommit: commits[2]! });
    expect(r.mode).toBe('full');
    expect(r.reason).toBe(`the code in the pod did not match ${commits[1]!.slice(0, 12)} (1 path differs: "index.html" content differs): published in full`);
    expect(compareManifests(await treeOf(commits[2]!), await live())).toEqual([]);
  });

  test('a `current` that gkube did not make is refused (exit 6) and left alone', async () => {
    const other = await temp.make('pub-foreign');
    await mkdir(join(other, 'current'));
    await writeFile(join(other, 'current', 'keep.txt'), 'mine\n');
    const err = await publishFull({ ...target(), codePath: other, commit: commits[0]! }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GkubeError);
    expect((err as GkubeError).exitCode).toBe(6);
    expect((err as GkubeError).message).toMatch(/uploading the code failed: the command in the pod exited with code 67: gkube: .*\/current exists and is not a symbolic link gkube made; it was left as it is; the live code was not changed$/);
    expect(await readFile(join(other, 'current', 'keep.txt'), 'utf8')).toBe('mine\n');
  });

  test('the delta input is framed as the upload script expects, and paths never reach the command line', async () => {
    const before = log.length;
    await publishDelta({ ...target(), fromCommit: commits[2]!, toCommit: commits[1]! });
    const upload = log.slice(before).find((r) => r.stdin !== undefined)!;
    expect(upload.command.slice(0, 2)).toEqual(['sh', '-c']);
    expect(upload.command.join(' ')).not.toContain('new name.txt');
  });
});
