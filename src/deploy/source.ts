import type { Context } from '../context.js';
import { imageTagFor, type ImageTag } from './tags.js';

/** The commit to deploy and the image tag it maps to. */
export interface Source extends ImageTag {
  commit: string;
  /** The ref as given (or HEAD). */
  ref: string;
  policy: 'nearest' | 'exact' | 'commit';
}

/**
 * Resolves the ref (a tag is resolved to its commit once; the commit is what gets recorded and published)
 * and the image tag under the configured policy.
 */
export async function resolveSource(ctx: Context, ref: { value: string; field: string }): Promise<Source> {
  const [git, loaded] = await Promise.all([ctx.git(), ctx.config()]);
  const commit = await git.resolveCommit(ref.value, ref.field);
  const [tagsAtCommit, nearestTag] = await Promise.all([git.tagsAt(commit), git.nearestTag(commit)]);
  const policy = loaded.config.image.tagPolicy;
  const facts = nearestTag ? { commit, tagsAtCommit, nearestTag } : { commit, tagsAtCommit };
  return { ...imageTagFor(policy, facts), commit, ref: ref.value, policy };
}
