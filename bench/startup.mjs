// Start-up benchmark: `gkube --version` (and `gkube --help`, the full argument parser) against `node -e 0`,
// run alternately in the same process so that machine drift hits both alike. Goal: --version ≤ 1.3× node -e 0.
// Usage: npm run bench:startup [-- RUNS]   Appends one row per command to bench/results/startup.md.
import { spawnSync } from 'node:child_process';
import { appendFile, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const runs = Number(process.argv[2] ?? 40);
const root = fileURLToPath(new URL('..', import.meta.url));
const gkube = `${root}bin/gkube`;
const baseline = [process.execPath, ['-e', '0']];
const subjects = {
  'gkube --version': [gkube, ['--version']],
  'gkube --help': [gkube, ['--help']],
};

function timeOnce([cmd, args]) {
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const rows = [];
for (const [name, subject] of Object.entries(subjects)) {
  for (let i = 0; i < 3; i++) timeOnce(subject), timeOnce(baseline); // warm the page cache
  const a = [];
  const b = [];
  const ratios = [];
  for (let i = 0; i < runs; i++) {
    const ta = timeOnce(subject);
    const tb = timeOnce(baseline);
    a.push(ta);
    b.push(tb);
    ratios.push(ta / tb);
  }
  rows.push({ name, subject: median(a), baseline: median(b), ratio: median(ratios) });
}

const pkg = JSON.parse(await readFile(`${root}package.json`, 'utf8'));
const date = new Date().toISOString().slice(0, 10);
const lines = rows.map(
  (r) => `| ${date} | ${pkg.version} | ${process.version} | ${r.name} | ${runs} | ${r.subject.toFixed(1)} | ${r.baseline.toFixed(1)} | ${r.ratio.toFixed(2)}× |`,
);
for (const r of rows) console.log(`${r.name}: median ${r.subject.toFixed(1)} ms vs node -e 0 ${r.baseline.toFixed(1)} ms → ${r.ratio.toFixed(2)}× (median of ${runs} paired ratios)`);
await appendFile(`${root}bench/results/startup.md`, lines.join('\n') + '\n');
