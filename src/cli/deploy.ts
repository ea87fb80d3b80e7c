// Thin adapters for deploy and rollback: flags and Jenkins' environment → request → action → summary.
import { GkubeError } from '../errors.js';
import { jobNames } from '../jobs/naming.js';
import { deploy as runDeploy, rollback as runRollback, type DeployResult } from '../deploy/deploy.js';
import { parseDuration } from '../config/duration.js';
import { deployText } from '../output/text.js';
import type { CommandInvocation } from './commands.js';
import { command, job, refOf, type Rendered } from './jobs.js';

/** The job to deploy: --job, else Jenkins' JOB_NAME. */
function deployJob(invocation: CommandInvocation) {
  const flag = invocation.options['job'];
  if (typeof flag === 'string') return jobNames(flag, '--job');
  const fromJenkins = invocation.cli.env['JOB_NAME'];
  if (fromJenkins === undefined) throw new GkubeError('INVALID_INPUT', '--job: no job named; pass --job NAME or run inside Jenkins (JOB_NAME)');
  return jobNames(fromJenkins, 'JOB_NAME');
}

/** --wait-lock, --timeout and --dry-run. */
function timing(invocation: CommandInvocation) {
  return {
    waitLockMs: parseDuration(String(invocation.options['waitLock'] ?? '10m'), '--wait-lock', { allowZero: true }),
    timeoutMs: parseDuration(String(invocation.options['timeout'] ?? '10m'), '--timeout', { allowZero: false }),
    dryRun: Boolean(invocation.options['dryRun']),
  };
}

function rendered(result: DeployResult): Rendered {
  const out: Rendered = { data: result, text: deployText(result) };
  if (result.error) out.error = new GkubeError(result.error.code as GkubeError['code'], result.error.message, result.error.hint ? { hint: result.error.hint } : {});
  return out;
}

/** gkube deploy [--job NAME] [--ref REF] [--dry-run] [--wait-lock D] [--timeout D] */
export const deploy = command(async (ctx, inv) => {
  const names = deployJob(inv);
  return rendered(await runDeploy(ctx, { names, ref: refOf(inv), ...timing(inv) }));
});

/** gkube rollback JOB [--to-revision N | --to-tag TAG] */
export const rollback = command(async (ctx, inv) => {
  const names = job(inv, true);
  const raw = inv.options['toRevision'];
  let toRevision: number | undefined;
  if (raw !== undefined) {
    if (typeof raw !== 'string' || !/^[1-9][0-9]{0,9}$/.test(raw)) throw new GkubeError('INVALID_INPUT', `--to-revision: ${JSON.stringify(raw)} is not a revision number (a whole number from 1, as gkube history shows)`);
    toRevision = Number(raw);
  }
  const toTag = typeof inv.options['toTag'] === 'string' ? (inv.options['toTag'] as string) : undefined;
  return rendered(await runRollback(ctx, { names, ...(toRevision !== undefined ? { toRevision } : {}), ...(toTag !== undefined ? { toTag } : {}), ...timing(inv) }));
});
