// Small formats every message and renderer shares.

/** The first 12 hex digits of a commit, as messages and tables show it. */
export function shortCommit(commit: string): string {
  return commit.slice(0, 12);
}

/** Bytes as `512 B`, `1.5 KiB` or `200.1 MiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
