// Bundles the CLI into dist/ with esbuild: gkube's own code and commander in one file for a fast start;
// the SDKs stay in node_modules and load only when a command needs them (etcd3 reads its proto/ at import).
import { build } from 'esbuild';
import { readFile, rm } from 'node:fs/promises';

const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
const heavy = ['@kubernetes/client-node', 'etcd3', 'simple-git', 'execa', '@grpc/grpc-js', 'undici'];

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
  external: heavy,
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
