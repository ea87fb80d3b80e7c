// Launcher of the deploy benchmark (bench/deploy.ts): bundles it with the test helpers it uses into
// dist/bench/deploy.mjs, as scripts/build.mjs does for the emulator, and runs it. bin/gkube must be built.
// Usage: npm run bench:deploy [-- NOOP_RUNS [PUBLISH_RUNS]]
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
await build({
  absWorkingDir: root,
  entryPoints: { 'bench/deploy': 'bench/deploy.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  logLevel: 'warning',
});
await import(new URL('../dist/bench/deploy.mjs', import.meta.url).href);
