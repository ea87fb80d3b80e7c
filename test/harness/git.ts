import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { requireProgram, tempDir } from './process.js';

// Fixtures must not depend on the machine's git configuration, and their dates are fixed so hashes repeat.
const gitEnv = {
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'Gkube Test',
  GIT_AUTHOR_EMAIL: 'test@gkube.invalid',
  GIT_COMMITTER_NAME: 'Gkube Test',
  GIT_COMMITTER_EMAIL: 'test@gkube.invalid',
};

/** A real git repository on disk for tests, built commit by commit. */
export class GitRepo {
  private tick = 0;

  private constructor(readonly dir: string) {}

  /** `git init -b main` in a new temporary directory (or in `dir`). */
  static async create(dir?: string): Promise<GitRepo> {
    await requireProgram('git', 'git');
    const target = dir ?? (await tempDir('git'));
    await mkdir(target, { recursive: true });
    const repo = new GitRepo(target);
    await repo.git('init', '-q', '-b', 'main');
    return repo;
  }

  /** Runs git in the repository and returns its trimmed stdout. */
  async git(...args: string[]): Promise<string> {
    const date = `${1_700_000_000 + this.tick++ * 60} +0000`;
    const r = await execa('git', args, { cwd: this.dir, env: { ...gitEnv, GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date } });
    return r.stdout.trim();
  }

  /** Writes files (null deletes one), commits them all, and returns the new commit's full hash. */
  async commit(message: string, files: Record<string, string | null>): Promise<string> {
    for (const [path, content] of Object.entries(files)) {
      const full = join(this.dir, path);
      if (content === null) {
        await rm(full, { force: true });
      } else {
        await mkdir(dirname(full), { recursive: true });
        await writeFile(full, content);
      }
    }
    await this.git('add', '-A');
    await this.git('commit', '-q', '--allow-empty', '-m', message);
    return this.git('rev-parse', 'HEAD');
  }

  /** Tags `ref` (default HEAD): annotated with a message, or lightweight. */
  async tag(name: string, options: { annotated?: boolean; ref?: string } = {}): Promise<void> {
    const ref = options.ref ?? 'HEAD';
    if (options.annotated) await this.git('tag', '-a', name, '-m', `release ${name}`, ref);
    else await this.git('tag', name, ref);
  }

  /** Creates branch `name` at `from` (default HEAD) and checks it out. */
  async branch(name: string, from = 'HEAD'): Promise<void> {
    await this.git('checkout', '-q', '-b', name, from);
  }

  /** Checks out `ref`. */
  async checkout(ref: string): Promise<void> {
    await this.git('checkout', '-q', ref);
  }

  /** Removes the repository from disk. */
  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
