// Bundles the CLI into dist/ with esbuild, split into chunks that load only when a command needs them: the entry
// (gkube's CLI and commander) starts fast, and the SDKs come bundled in the chunks of their adapters. Bundled, the
// Kubernetes client (with undici), execa and simple-git load in ~0.15 s instead of ~0.75 s from node_modules
// (bench/results/deploy.md). etcd3 stays in node_modules: it reads its proto/ files from beside its code at import.
import { build } from 'esbuild';
import { readFile, rm } from 'node:fs/promises';

const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
const external = ['etcd3', '@grpc/grpc-js'];

await rm(new URL('../dist', import.meta.url), { recursive: true, force: true });
await build({
  entryPoints: { gkube: 'src/cli/entry.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external,
  define: { __GKUBE_VERSION__: JSON.stringify(pkg.version) },
  // Bundled CommonJS dependencies (commander) still call require(); give ESM one.
  banner: { js: "import { createRequire as __gkubeRequire } from 'node:module'; const require = __gkubeRequire(import.meta.url);" },
  minify: true,
  sourcemap: 'linked',
  logLevel: 'warning',
});

// The demo, the Kubernetes API emulator and the deploy benchmark live beside the tests; they are bundled so that
// plain `node` runs them.
await build({
  entryPoints: { 'demo/demo': 'scripts/demo.ts', 'emulator/kube-emulator': 'test/kube-emulator/main.ts', 'bench/deploy': 'bench/deploy.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  logLevel: 'warning',
});
