// `npm run demo`: gkube deploying examples/hello from Jenkins-style builds on one machine. The services are
// the tests' (real etcd and docker-registry, and the project's Kubernetes API emulator, whose kubelet runs each
// container's command on this host), set up as the deploy tests set them up. Four builds (provision, delta
// sync, new image, a broken change rolled back), then history, trace and a rollback. The demo checks every
// result it shows, exits 0 only when each was as documented, and removes everything it started.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import { DeployEnv, gkubeBin, root } from '../test/helpers/deploy-env.js';

const job = 'demo/hello';
/** Every gkube run is bounded, so a stuck step fails the demo instead of hanging it. */
const deployTimeout = '2m';

function heading(text: string): void {
  process.stdout.write(`\n== ${text}\n`);
}

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function main(): Promise<void> {
  const started = Date.now();
  heading('starting the services on loopback: etcd, docker-registry and the Kubernetes API emulator');
  let env: DeployEnv | undefined;
  let failure: unknown;
  try {
    env = await DeployEnv.start();
    await demo(env);
  } catch (err) {
    failure = err;
  }
  heading('removing everything the demo started');
  try {
    await env?.stop();
    say('stopped the emulator and its containers, docker-registry and etcd; removed the temporary directories');
  } catch (err) {
    failure ??= err;
  }
  if (failure !== undefined) {
    process.stderr.write(`demo failed: ${failure instanceof Error ? failure.message : String(failure)}\n`);
    process.exitCode = 1;
    return;
  }
  say(`demo finished in ${Math.round((Date.now() - started) / 1000)} s`);
}

async function demo(env: DeployEnv): Promise<void> {
  const kubectl = async (...args: string[]): Promise<string> => (await execa('kubectl', ['--kubeconfig', env.kubeconfig, ...args])).stdout;
  say(`etcd ${env.etcd.endpoints[0]}   registry ${env.registry.url}   Kubernetes API ${env.emulator.url}`);
  say('the cluster\'s default StorageClass gives each claim a directory on this host:');
  say(await kubectl('get', 'storageclass'));

  heading(`the Jenkins job "${job}": a git workspace holding examples/hello, and its images in the registry`);
  const commits = [await env.repo.git('rev-parse', 'HEAD')];
  say(`workspace ${env.repo.dir}: commit ${short(commits[0]!)} tagged v1.0.0; gkube.yaml's image.repository is ${env.image}`);
  say('there is no Docker engine here: each image is a manifest pushed to the registry, and the emulator runs the container\'s command on this host');
  for (const tag of ['v1.0.0', 'v1.1.0']) {
    const pushed = await env.registry.pushImage('examples/hello', tag);
    say(`pushed ${env.image}:${tag} (${pushed.digest.slice(0, 19)}…)`);
  }

  const jenkins = new Jenkins(env);

  heading('build #1: the job\'s first deploy. Expect gkube to provision it: a claim, a pod of image v1.0.0, init, publish, reload, health check; revision 1');
  await jenkins.build(commits[0]!, `gkube --version\ngkube deploy --timeout ${deployTimeout}\n`, 0);
  await served(env, 'Hello from gkube!\n');
  say(await kubectl('get', 'pods,pvc', '-l', 'app.kubernetes.io/managed-by=gkube'));

  heading('build #2: a commit changes message.txt. Expect the same pod, only that file sent (delta sync); revision 2');
  commits.push(await env.repo.commit('new message', { 'message.txt': 'Hello again, delta!\n' }));
  say(`commit ${short(commits[1]!)}: message.txt is now "Hello again, delta!"`);
  await jenkins.build(commits[1]!, `gkube deploy --timeout ${deployTimeout}\n`, 0);
  await served(env, 'Hello again, delta!\n');

  heading('build #3: a commit tagged v1.1.0. Expect the pod\'s image set to v1.1.0 in place (its container restarts), the code synced; revision 3');
  commits.push(await env.repo.commit('release 1.1', { 'message.txt': 'Hello 1.1\n' }));
  await env.repo.tag('v1.1.0', { annotated: true });
  say(`commit ${short(commits[2]!)} tagged v1.1.0: message.txt is now "Hello 1.1"`);
  await jenkins.build(commits[2]!, `gkube image-tag\ngkube deploy --timeout ${deployTimeout}\n`, 0);
  await served(env, 'Hello 1.1\n');

  heading('build #4: a commit breaks config.json. Expect the health check to fail, gkube to put v1.1 back and exit 1 (the build fails); revision 4');
  commits.push(await env.repo.commit('broken config', { 'message.txt': 'Broken!\n', 'config.json': '{ not json' }));
  say(`commit ${short(commits[3]!)}: config.json is now "{ not json"`);
  await jenkins.build(commits[3]!, `gkube deploy --timeout ${deployTimeout}\n`, 1);
  const last = (await history(env)).at(-1);
  if (last?.result !== 'rolled-back') throw new Error(`revision ${last?.revision} of ${job} is ${last?.result}, not rolled-back`);
  say('exit 1: the change failed, and gkube rolled it back (history: rolled-back); the pod still serves v1.1:');
  await served(env, 'Hello 1.1\n');

  heading('an operator in the workspace: what ran when (history), what runs now (trace), then back to revision 1');
  await jenkins.operator(`gkube history ${job}\ngkube trace ${job}\ngkube rollback ${job} --to-revision 1 --timeout ${deployTimeout}\n`, 0);
  const rollback = (await history(env)).at(-1);
  if (rollback?.action !== 'rollback' || rollback.result !== 'succeeded' || rollback.commit !== commits[0]) {
    throw new Error(`the last revision of ${job} is ${rollback?.action} ${rollback?.result} at ${rollback?.commit}, not a rollback to ${commits[0]}`);
  }
  await served(env, 'Hello from gkube!\n');
}

/** Runs steps as Jenkins' "Execute shell" does: the script as a file run by /bin/sh -xe, cwd $WORKSPACE, no TTY. */
class Jenkins {
  private number = 0;
  private steps = 0;
  private scripts: string | undefined;

  constructor(private readonly env: DeployEnv) {}

  /** One build of `commit`: prints its console log; fails the demo when its exit code is not `expected`. */
  async build(commit: string, script: string, expected: number): Promise<void> {
    this.number += 1;
    say(`Jenkins build #${this.number} of ${job} at ${short(commit)}, console output:`);
    const vars = this.env.jenkinsEnv(job, this.number, commit, {
      // `gkube` on the agent's PATH, as an installed one would be.
      PATH: `${join(root, 'bin')}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
      BUILD_URL: `http://jenkins.example.com/job/${job.split('/').join('/job/')}/${this.number}/`,
    });
    const exitCode = await this.run(script, vars);
    say(`  Finished: ${exitCode === 0 ? 'SUCCESS' : 'FAILURE'} (exit ${exitCode})`);
    if (exitCode !== expected) throw new Error(`build #${this.number} exited ${exitCode}, expected ${expected}`);
  }

  /** A shell in the workspace outside any build (an operator's), with the agent's settings and none of a build's. */
  async operator(script: string, expected: number): Promise<void> {
    const buildOnly = new Set(['JOB_NAME', 'BUILD_NUMBER', 'BUILD_TAG', 'BUILD_URL', 'GIT_COMMIT', 'GIT_BRANCH']);
    const all = this.env.jenkinsEnv(job, 0, '', { PATH: `${join(root, 'bin')}:${process.env['PATH'] ?? '/usr/bin:/bin'}` });
    const exitCode = await this.run(script, Object.fromEntries(Object.entries(all).filter(([name]) => !buildOnly.has(name))));
    if (exitCode !== expected) throw new Error(`the operator's shell exited ${exitCode}, expected ${expected}`);
  }

  /** Runs the script, printing its log indented as it comes; returns the exit code. */
  private async run(script: string, vars: Record<string, string>): Promise<number> {
    this.scripts ??= await this.env.temp.make('jenkins-steps');
    const file = join(this.scripts, `step-${++this.steps}.sh`);
    await writeFile(file, script);
    // One pipe for both streams keeps sh -x's trace (stderr) in order with gkube's output, as Jenkins' console does.
    const child = spawn('/bin/sh', ['-c', 'exec /bin/sh -xe "$0" 2>&1', file], { cwd: vars['WORKSPACE'], env: vars, stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: child.stdout }).on('line', (line) => say(`  | ${line}`));
    return new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve(code ?? 128));
    });
  }
}

/** GETs / from the job's pod at its IP (as a Service would) and fails the demo unless it serves `expected`. */
async function served(env: DeployEnv, expected: string): Promise<void> {
  const ip = (await env.pod(job))?.status?.podIP;
  if (!ip) throw new Error(`job ${job} has no running pod`);
  const url = `http://${ip}:8080/`;
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  const body = await res.text();
  say(`GET ${url} → ${res.status} ${JSON.stringify(body)}`);
  if (res.status !== 200 || body !== expected) throw new Error(`the pod served ${res.status} ${JSON.stringify(body)}, not 200 ${JSON.stringify(expected)}`);
}

/** The job's history, as `gkube history -o json` gives it to scripts. */
async function history(env: DeployEnv): Promise<Array<{ revision: number; action: string; result: string; commit: string }>> {
  const r = await execa(gkubeBin, ['history', job, '-o', 'json'], { cwd: env.repo.dir, env: env.jenkinsEnv(job, 0, ''), extendEnv: false });
  return JSON.parse(r.stdout).entries;
}

function short(commit: string): string {
  return commit.slice(0, 12);
}

await main();
