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
  const { main } = await import('./main.js');
  process.exitCode = await main(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });
}
