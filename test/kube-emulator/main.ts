// `npm run emulator -- --kubeconfig FILE [--port N] [--registry URL] [--state-dir DIR] [--kube-version 1.31] [--http]`
// Starts the emulator, writes the kubeconfig once it serves, and runs until SIGTERM/SIGINT.
import { Command, InvalidArgumentError } from 'commander';
import { KubeEmulator } from './emulator.js';

const program = new Command('kube-emulator')
  .description('A Kubernetes API emulator with a kubelet inside, for gkube\'s tests and demo')
  .requiredOption('--kubeconfig <file>', 'write a kubeconfig for the emulator here once it is ready')
  .option('--port <n>', 'port on 127.0.0.1 (default: a free one)', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number 0-65535');
    return n;
  })
  .option('--registry <url>', 'image registry the kubelet pulls from, e.g. http://127.0.0.1:5000')
  .option('--state-dir <dir>', 'where pods, logs and volumes live (default: a new temp dir, removed on exit)')
  .option('--kube-version <major.minor>', 'version /version reports', '1.31')
  .option('--http', 'serve plain HTTP instead of HTTPS')
  .option('-v, --verbose', 'print diagnostic lines on stderr')
  // Usage errors exit 2, as gkube's do; help and version exit 0.
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
program.parse();
const opts = program.opts<{ kubeconfig: string; port?: number; registry?: string; stateDir?: string; kubeVersion: string; http?: boolean; verbose?: boolean }>();
if (!/^\d+\.\d+$/.test(opts.kubeVersion)) {
  process.stderr.write(`error: --kube-version must look like 1.31, not ${JSON.stringify(opts.kubeVersion)}\n`);
  process.exit(2);
}

const emulator = await KubeEmulator.start({
  kubeVersion: opts.kubeVersion,
  tls: !opts.http,
  ...(opts.port !== undefined ? { port: opts.port } : {}),
  ...(opts.registry ? { registryUrl: opts.registry } : {}),
  ...(opts.stateDir ? { stateDir: opts.stateDir } : {}),
  ...(opts.verbose ? { log: (line: string) => process.stderr.write(`${line}\n`) } : {}),
});
await emulator.writeKubeconfig(opts.kubeconfig);
process.stdout.write(`kube-emulator serving at ${emulator.url}; kubeconfig written to ${opts.kubeconfig}\n`);

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await emulator.stop();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
