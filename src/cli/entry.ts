// The process boundary: the only place that reads process.argv/env and sets the exit code.
import { version } from './version.js';

const argv = process.argv.slice(2);

if (argv.length === 1 && argv[0] === '--version') {
  // Answer the most common probe without loading the argument parser.
  process.stdout.write(`${version}\n`);
} else {
  // `gkube list | head` closes the pipe early; that is not an error worth a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  // An aborted Jenkins build sends SIGTERM (then SIGKILL): commands stop at their next safe point. A
  // second signal ends the process at once.
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) process.exit(signal === 'SIGINT' ? 130 : 143);
    process.stderr.write(`gkube: ${signal} received: stopping at the next safe point (send it again to stop at once)\n`);
    stop.abort(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const { main } = await import('./main.js');
  process.exitCode = await main(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd(), signal: stop.signal });
}
