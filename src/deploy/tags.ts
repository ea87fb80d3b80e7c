import { createHash } from 'node:crypto';
import { GkubeError } from '../errors.js';
import type { TagPolicy } from '../config/index.js';

/** What git says about the commit being deployed. */
export interface GitFacts {
  /** The full commit hash. */
  commit: string;
  /** Tags that point at the commit itself. */
  tagsAtCommit: string[];
  /** The nearest tag at or before the commit (git describe --tags --abbrev=0), if any. */
  nearestTag?: string;
}

/** The image tag for a commit, and the git tag it came from (none under the commit policy). */
export interface ImageTag {
  imageTag: string;
  gitTag?: string;
}

const imageTagRe = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * The image tag for a commit under the policy (pure; see README "Image tags and git tags"):
 * `nearest` — the nearest git tag at or before the commit; `exact` — a tag on the commit itself
 * (an untagged commit is refused, exit 2); `commit` — `sha-<12 hex>`. When several tags qualify, the
 * highest version wins (`v1.10.0` over `v1.9.0`).
 */
export function imageTagFor(policy: TagPolicy, facts: GitFacts): ImageTag {
  const short = facts.commit.slice(0, 12);
  switch (policy) {
    case 'commit':
      return { imageTag: `sha-${short}` };
    case 'exact': {
      const tag = highest(facts.tagsAtCommit);
      if (!tag) {
        throw new GkubeError('INVALID_INPUT', `tag policy exact: commit ${short} has no git tag; nothing was changed`, {
          hint: `tag it (git tag v1.2.3 ${short} && git push --tags), or use --tag-policy nearest or commit`,
        });
      }
      return { imageTag: imageTagOf(tag), gitTag: tag };
    }
    case 'nearest': {
      const tag = highest(facts.tagsAtCommit) ?? facts.nearestTag;
      if (!tag) {
        throw new GkubeError('INVALID_INPUT', `tag policy nearest: no git tag at or before commit ${short}; nothing was changed`, {
          hint: 'tag a release (git tag v0.1.0 && git push --tags), or use --tag-policy commit',
        });
      }
      return { imageTag: imageTagOf(tag), gitTag: tag };
    }
  }
}

/**
 * The image tag for a git tag. A git tag that is already a valid image tag is used as it is. Any other
 * (`v1/hotfix`, `1.0+build.5`, `.hidden`, over 128 characters) is mapped: each character outside
 * `[A-Za-z0-9_.-]` becomes `-`, a leading `.` or `-` becomes `_`, and `-<7 hex of sha256(git tag)>` is
 * appended (after cutting to fit 128) so that two git tags never share an image tag.
 */
export function imageTagOf(gitTag: string): string {
  if (imageTagRe.test(gitTag)) return gitTag;
  const suffix = `-${createHash('sha256').update(gitTag, 'utf8').digest('hex').slice(0, 7)}`;
  const body = gitTag.replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[.-]/, '_').slice(0, 128 - suffix.length);
  return body + suffix;
}

/** The highest tag by version order (numbers compared as numbers), or undefined. */
export function highest(tags: string[]): string | undefined {
  return [...tags].sort(compareVersions).at(-1);
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(/(\d+)/);
  const pb = b.split(/(\d+)/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    if (x === y) continue;
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    if (!Number.isNaN(nx) && !Number.isNaN(ny)) return nx - ny;
    return x < y ? -1 : 1;
  }
  return 0;
}
