// Thin adapters for the job commands: options → context → one action → render.
import { access, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { redact } from '../output/redact.js';
import { reportError } from '../output/errors.js';
import { GkubeError, ExitCode } from '../errors.js';
import { parseDuration } from '../config/duration.js';
import { deleteJob } from '../jobs/delete.js';
import { doctor as runDoctor } from '../jobs/doctor.js';
import { jobNames } from '../jobs/naming.js';
import { describeJob, getJob, jobHistory, listJobs } from '../jobs/read.js';
import { unlockJob } from '../jobs/unlock.js';
import { resolveSource } from '../deploy/source.js';
import { trace as runTrace } from '../deploy/trace.js';
import * as text from '../output/text.js';
import type { CommandHandler, CommandInvocation } from './commands.js';
import { buildContext, type GlobalOptions } from './setup.js';

/** What a handler hands back: the data (JSON), its text, and, for a run that failed after doing work, the error to report after them. */
export type Rendered = { data: unknown; text: string; exitCode?: number; error?: GkubeError };

/** Runs an action with a context, writes text or JSON (and --summary-file), and closes connections. */
export function command(action: (ctx: Awaited<ReturnType<typeof buildContext>>, invocation: CommandInvocation) => Promise<Rendered>): CommandHandler {
  return async (invocation) => {
    const options = invocation.options as unknown as GlobalOptions;
    // Checked before anything is done, so that an unwritable path never follows a change.
    if (options.summaryFile) await checkWritable(options.summaryFile, invocation.cli.cwd);
    const ctx = await buildContext(invocation);
    try {
      const result = await action(ctx, invocation);
      // Records hold what Jenkins gave (build URLs may carry credentials): mask on every way out.
      const json = redact(JSON.stringify(result.data, null, 2)) + '\n';
      invocation.cli.stdout.write(options.output === 'json' ? json : redact(result.text));
      if (options.summaryFile) await writeSummary(options.summaryFile, json);
      if (result.error) return reportError(result.error, invocation.cli, Boolean(options.verbose));
      return result.exitCode ?? ExitCode.ok;
    } finally {
      ctx.close();
    }
  };
}

async function checkWritable(file: string, cwd: string): Promise<void> {
  const dir = dirname(resolve(cwd, file));
  try {
    await access(dir, constants.W_OK);
  } catch (err) {
    throw new GkubeError('INVALID_INPUT', `--summary-file: cannot write ${file}: directory ${dir} is not writable (${(err as NodeJS.ErrnoException).code ?? 'error'}); nothing was changed`);
  }
}

async function writeSummary(file: string, json: string): Promise<void> {
  try {
    await writeFile(file, json);
  } catch (err) {
    // The command itself has finished by now: say so, and do not call it invalid input.
    throw new GkubeError('OPERATION_FAILED', `the command finished (its result is above), but --summary-file ${file} could not be written (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** The JOB argument, else Jenkins' JOB_NAME (delete passes explicitOnly: removing a job is never implied). */
export function job(invocation: CommandInvocation, explicitOnly = false) {
  const given = invocation.args[0];
  if (given !== undefined) return jobNames(given, 'JOB');
  const fromJenkins = explicitOnly ? undefined : invocation.cli.env['JOB_NAME'];
  if (fromJenkins === undefined) throw new GkubeError('INVALID_INPUT', 'JOB: no job named; give it as an argument or run inside Jenkins (JOB_NAME)');
  return jobNames(fromJenkins, 'JOB_NAME');
}

/** gkube list */
export const list = command(async (ctx) => {
  const result = await listJobs(ctx);
  return { data: result, text: text.jobsText(result.jobs, ctx.prefix) };
});

/** gkube get JOB */
export const get = command(async (ctx, inv) => {
  const record = await getJob(ctx, job(inv));
  return { data: record, text: text.recordText(record) };
});

/** gkube describe JOB */
export const describe = command(async (ctx, inv) => {
  const description = await describeJob(ctx, job(inv));
  return { data: description, text: text.describeText(description) };
});

/** gkube history JOB */
export const history = command(async (ctx, inv) => {
  const result = await jobHistory(ctx, job(inv));
  return { data: result, text: text.historyText(result.job, result.entries) };
});

/** gkube delete JOB [--keep-storage] [--wait-lock D] */
export const remove = command(async (ctx, inv) => {
  const names = job(inv, true);
  const waitLockMs = parseDuration(String(inv.options['waitLock'] ?? '10m'), '--wait-lock', { allowZero: true });
  const result = await deleteJob(ctx, names, { keepStorage: Boolean(inv.options['keepStorage']), waitLockMs });
  return { data: result, text: text.deleteText(result) };
});

/** gkube unlock JOB [--force HOLDER] */
export const unlock = command(async (ctx, inv) => {
  const force = inv.options['force'];
  const result = await unlockJob(ctx, job(inv), typeof force === 'string' ? { force } : {});
  return { data: result, text: text.unlockText(result.job, result.freed) };
});

/** gkube doctor: exit 0 when every check passed, else the most serious failure's code. */
export const doctor = command(async (ctx, inv) => {
  const result = await runDoctor(ctx, { ref: refOf(inv) });
  const failed = result.checks.filter((c) => !c.ok);
  const exitCode = failed.length === 0 ? ExitCode.ok : Math.max(...failed.map((c) => c.exitCode ?? ExitCode.failed));
  return { data: result, text: text.doctorText(result.checks), exitCode };
});

/** The ref to deploy: --ref, else Jenkins' GIT_COMMIT, else HEAD (flags override the environment). */
export function refOf(invocation: CommandInvocation): { value: string; field: string } {
  const flag = invocation.options['ref'];
  if (typeof flag === 'string') return { value: flag, field: '--ref' };
  const fromJenkins = invocation.cli.env['GIT_COMMIT'];
  if (fromJenkins) return { value: fromJenkins, field: 'GIT_COMMIT' };
  return { value: 'HEAD', field: 'HEAD' };
}

/** gkube image-tag: prints the image tag for the checkout (plain, for `docker build -t "$REPO:$(gkube image-tag)"`). */
export const imageTag = command(async (ctx, inv) => {
  const source = await resolveSource(ctx, refOf(inv));
  const data = { imageTag: source.imageTag, gitTag: source.gitTag ?? null, commit: source.commit, ref: source.ref, policy: source.policy };
  return { data, text: `${source.imageTag}\n` };
});

/** gkube trace JOB|pod/NAME: pod → image → commit → tag → build, and the revision that deployed it. */
export const trace = command(async (ctx, inv) => {
  const target = inv.args[0] ?? inv.cli.env['JOB_NAME'];
  if (!target) throw new GkubeError('INVALID_INPUT', 'TARGET: name a job or pod/NAME, or run inside Jenkins (JOB_NAME)');
  // --namespace reaches the configuration as a flag, so it is validated like every other source.
  const namespace = (await ctx.config()).config.namespace;
  const result = await runTrace(ctx, target, namespace);
  return { data: result, text: text.traceText(result) };
});
