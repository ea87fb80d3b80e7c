// The git command line for what simple-git does not stream: `git archive` as a byte stream, and plain
// calls with an exit status. Callers validate refs first and pass them after --end-of-options.
import { execa } from 'execa';
import type { Readable } from 'node:stream';

/** A running `git archive`: its tar on stdout, its end as a promise, and a way to stop it. */
export interface ArchiveProcess {
  stdout: Readable;
  done: Promise<unknown>;
  kill(): void;
}

/** Starts `git archive --format=tar <commit> [pathspecs…]` in `cwd`. */
export function startArchive(cwd: string, commit: string, pathspecs: string[]): ArchiveProcess {
  const child = execa('git', ['archive', '--format=tar', '--end-of-options', commit, ...pathspecs], { cwd, buffer: { stdout: false }, encoding: 'buffer', stdin: 'ignore' });
  return { stdout: child.stdout, done: child, kill: () => child.kill() };
}

/** Runs git and returns its stdout; throws (execa's error, with stderr) on a non-zero exit. */
export async function runGit(cwd: string, args: string[]): Promise<string> {
  const r = await execa('git', args, { cwd, stdin: 'ignore', timeout: 60_000 });
  return r.stdout;
}

/** Runs git and tells whether it exited 0. */
export async function gitSucceeds(cwd: string, args: string[]): Promise<boolean> {
  const r = await execa('git', args, { cwd, stdin: 'ignore', reject: false, timeout: 60_000 });
  return r.exitCode === 0;
}
