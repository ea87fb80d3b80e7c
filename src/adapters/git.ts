// The git edge: one function per question, each with an explicit working directory. Refs from users are
// validated here and passed after --end-of-options, so that a ref can never become an option.
import { simpleGit, GitError, type SimpleGit } from 'simple-git';
import { GkubeError } from '../errors.js';

/** What the deploy flow asks git. */
export interface GitPort {
  readonly cwd: string;
  /** The full hash of the commit `ref` names (a hash, tag, branch or HEAD~n). */
  resolveCommit(ref: string, field: string): Promise<string>;
  /** Tags pointing at the commit. */
  tagsAt(commit: string): Promise<string[]>;
  /** The nearest tag at or before the commit, or undefined when there is none. */
  nearestTag(commit: string): Promise<string | undefined>;
}

const refRe = /^[A-Za-z0-9_][A-Za-z0-9_.\/~^@{}+-]*$/;

/** Checks a user-supplied ref: no leading `-` (refused, exit 6), printable, at most 256 characters (exit 2). */
export function checkRef(ref: string, field: string): string {
  if (ref.startsWith('-')) {
    throw new GkubeError('REFUSED', `${field}: ${JSON.stringify(ref)} starts with "-" and would be read as a git option; refused, nothing was changed`);
  }
  if (ref.length === 0 || ref.length > 256 || !refRe.test(ref) || ref.includes('..')) {
    throw new GkubeError('INVALID_INPUT', `${field}: ${JSON.stringify(ref)} is not a git ref (a commit hash, tag or branch name; letters, digits and . _ / - ~ ^ only)`);
  }
  return ref;
}

/** Opens the git checkout at `cwd`; INVALID_INPUT (exit 2) when it is not one. */
export async function openGit(cwd: string): Promise<GitPort> {
  let git: SimpleGit;
  try {
    git = simpleGit({ baseDir: cwd, timeout: { block: 30_000 } });
  } catch (err) {
    throw new GkubeError('INVALID_INPUT', `workspace ${cwd} is not a directory gkube can read: ${(err as Error).message}`, { cause: err });
  }
  const inside = await git.raw(['rev-parse', '--is-inside-work-tree']).catch(() => '');
  if (inside.trim() !== 'true') {
    throw new GkubeError('INVALID_INPUT', `workspace ${cwd} is not a git checkout; nothing was changed`, { hint: 'run gkube in the job\'s workspace (the directory Jenkins checked the repository out to)' });
  }
  return {
    cwd,
    async resolveCommit(ref, field) {
      checkRef(ref, field);
      const missing = (cause?: unknown) =>
        new GkubeError('INVALID_INPUT', `${field}: ${JSON.stringify(ref)} names no commit in ${cwd}`, { hint: 'fetch the ref first (git fetch --tags), or check its spelling', cause });
      let out: string;
      try {
        out = (await git.raw(['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`])).trim();
      } catch (err) {
        if (err instanceof GitError) throw missing(err);
        throw err;
      }
      // With --quiet, git answers an unknown ref with nothing at all (and simple-git does not throw).
      if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(out)) throw missing();
      return out;
    },
    async tagsAt(commit) {
      const out = await git.raw(['tag', '--points-at', commit]);
      return out.split('\n').map((t) => t.trim()).filter(Boolean);
    },
    async nearestTag(commit) {
      try {
        return (await git.raw(['describe', '--tags', '--abbrev=0', '--end-of-options', commit])).trim() || undefined;
      } catch (err) {
        // git describe fails when no tag is reachable: that is an answer, not an error.
        if (err instanceof GitError) return undefined;
        throw err;
      }
    },
  };
}
