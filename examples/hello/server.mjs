// hello: the smallest app gkube deploys. It serves message.txt at / and its health at /healthz, and
// reloads both files on SIGHUP (gkube.yaml's reload command sends it to PID 1 after every code sync).
//
// The code lives on the job's volume at /srv/app/current (a link gkube switches atomically), so files are
// read through that path, never through the resolved release directory.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const home = process.env.APP_HOME ?? dirname(process.argv[1]);
const port = Number(process.env.PORT ?? 8080);
// The handler comes before the first read: gkube's reload signals only a server that handles SIGHUP, so a
// server that has not read its files yet must be one that will read the newest ones.
process.on('SIGHUP', () => {
  state = load();
  console.log(`reloaded: ${state.problem ?? 'ok'}`);
});
let state = load();

function load() {
  const read = (name) => readFileSync(join(home, name), 'utf8');
  const loaded = { message: read('message.txt'), problem: null };
  try {
    // The app's self-check: its configuration must parse. A broken config.json makes /healthz fail.
    loaded.config = JSON.parse(read('config.json'));
  } catch (err) {
    loaded.problem = `config.json: ${err.message}`;
  }
  return loaded;
}

process.on('SIGTERM', () => process.exit(0));

createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(state.problem ? 500 : 200, { 'content-type': 'text/plain' });
    res.end(state.problem ? `unhealthy: ${state.problem}\n` : 'ok\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(state.message);
  // POD_IP comes from the downward API (gkube sets it); binding to it keeps pods that share a network apart.
}).listen(port, process.env.POD_IP || '::', () => {
  console.log(`hello listening on ${process.env.POD_IP || '*'}:${port}: ${state.problem ?? 'ok'}`);
});
