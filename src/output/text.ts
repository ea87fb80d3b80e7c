import YAML from 'yaml';
import { shortCommit } from './format.js';
import type { Check } from '../jobs/doctor.js';
import type { DeleteResult } from '../jobs/delete.js';
import type { LockHolder } from '../jobs/lock.js';
import { describeHolder } from '../jobs/lock.js';
import type { JobDescription, JobSummary, JobView } from '../jobs/read.js';
import type { HistoryEntry } from '../jobs/record.js';
import type { Trace } from '../deploy/trace.js';
import type { DeployResult } from '../deploy/deploy.js';

/** Left-aligned columns separated by three spaces, as kubectl prints them; plain text, no colour. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('   ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

const short = (commit: string | null | undefined) => (commit ? shortCommit(commit) : '-');

/** `gkube list`. */
export function jobsText(jobs: JobSummary[], prefix: string): string {
  if (jobs.length === 0) return `no jobs under ${prefix}\n`;
  return table(
    ['JOB', 'PHASE', 'NAMESPACE', 'IMAGE TAG', 'COMMIT', 'REV', 'UPDATED'],
    jobs.map((j) => [j.job, j.phase, j.namespace, j.imageTag ?? '-', short(j.commit), String(j.revision), j.updatedAt]),
  );
}

/** `gkube get`: the record as YAML. */
export function recordText(record: JobView): string {
  return YAML.stringify(record);
}

/** `gkube history`. */
export function historyText(job: string, entries: HistoryEntry[]): string {
  if (entries.length === 0) return `job ${job} has no deploys yet\n`;
  return table(
    ['REV', 'ACTION', 'RESULT', 'COMMIT', 'GIT TAG', 'IMAGE TAG', 'BUILD', 'FINISHED', 'REASON'],
    entries.map((e) => [String(e.revision), e.action, e.result, short(e.commit), e.gitTag ?? '-', e.imageTag ?? '-', e.build?.number ? `#${e.build.number}` : (e.build?.tag ?? '-'), e.finishedAt, e.reason ?? '']),
  );
}

/** `gkube describe`. */
export function describeText(d: JobDescription): string {
  const r = d.record;
  const s = r.status;
  const lines = [
    `Job:          ${r.job}`,
    `Kind:         ${r.kind}`,
    `Phase:        ${s.phase}${s.reason ? ` (${s.reason})` : ''}`,
    `Namespace:    ${r.spec.namespace}`,
    `Resource:     ${r.resourceName}`,
    `Image:        ${s.image ?? (r.spec.imageRepository ? `${r.spec.imageRepository}:${s.imageTag ?? '?'}` : '-')}`,
    `Commit:       ${s.commit ?? '-'}${s.gitTag ? ` (tag ${s.gitTag})` : ''}`,
    `Build:        ${s.build?.number ? `#${s.build.number}` : '-'}${s.build?.url ? ` ${s.build.url}` : ''}`,
    `Revision:     ${s.revision}`,
    `Storage:      ${r.spec.storage.provider}${s.pvc ? `, claim ${s.pvc}` : ''}${s.volume ? `, volume ${s.volume}` : ''}`,
    `Created:      ${s.createdAt}`,
    `Updated:      ${s.updatedAt}`,
  ];
  if (s.expiresAt) lines.push(`Expires:      ${s.expiresAt}`);
  lines.push(`Lock:         ${d.lock ? `held by ${describeHolder(d.lock.holder)}` : 'free'}`);
  if (d.pod) {
    const p = d.pod;
    lines.push(`Pod:          ${p.name} ${p.phase}${p.ready ? ', ready' : ', NOT READY'}${p.waitingReason ? ` (${p.waitingReason})` : ''}${p.deleting ? ', terminating' : ''}`);
    lines.push(`              ip ${p.ip ?? '-'}, node ${p.node ?? '-'}, restarts ${p.restarts}, image ${p.images.join(', ')}`);
  } else lines.push(`Pod:          - (${d.clusterNote ?? 'unknown'})`);
  let out = lines.join('\n') + '\n';
  out += '\nRecent deploys:\n' + (d.history.length ? indent(historyText(r.job, d.history)) : '  none\n');
  if (d.events.length) out += '\nEvents:\n' + indent(table(['TYPE', 'REASON', 'COUNT', 'LAST SEEN', 'MESSAGE'], d.events.map((e) => [e.type, e.reason, String(e.count), e.lastSeen, e.message])));
  return out;
}

/** `gkube delete`. */
export function deleteText(r: DeleteResult): string {
  return [...r.removed.map((x) => `removed ${x}`), ...r.kept.map((x) => `kept ${x}`), ...r.alreadyGone.map((x) => `${x} was already gone`)].join('\n') + '\n';
}

/** `gkube unlock`. */
export function unlockText(job: string, freed: LockHolder | null): string {
  return freed ? `freed the lock of job ${job}, held by ${describeHolder(freed)}\n` : `job ${job} is not locked\n`;
}

/** `gkube doctor`. */
export function doctorText(checks: Check[]): string {
  return table(['CHECK', 'RESULT', 'DETAIL'], checks.map((c) => [c.name, c.skipped ? 'skipped' : c.ok ? 'ok' : 'FAILED', c.detail]));
}

function indent(text: string): string {
  return text.replace(/^(?=.)/gm, '  ');
}

/** `gkube trace`. */
export function traceText(t: Trace): string {
  const lines = [
    `job:       ${t.job ?? '-'}`,
    `pod:       ${t.pod ? `${t.pod.namespace}/${t.pod.name} (${t.pod.phase}${t.pod.ready ? ', ready' : ', not ready'})` : '-'}`,
    `image:     ${t.image ?? '-'}`,
    `commit:    ${t.commit ?? '-'}`,
    `git tag:   ${t.gitTag ?? '-'}`,
    `build:     ${t.build.number ? `#${t.build.number}` : '-'}${t.build.url ? ` ${t.build.url}` : ''}`,
    `revision:  ${t.revision ? `${t.revision.revision} (${t.revision.action}, ${t.revision.result}, ${t.revision.finishedAt})` : '-'}`,
  ];
  for (const d of t.drift) lines.push(`warning:   ${d}`);
  return lines.join('\n') + '\n';
}

/** `gkube deploy` and `gkube rollback`: the summary a Jenkins console ends with (dry run: the plan and the manifests). */
export function deployText(r: DeployResult): string {
  const headline: Record<DeployResult['result'], string> = {
    succeeded: `${r.action === 'provision' ? 'provisioned' : r.action === 'rollback' ? 'rolled back' : 'updated'} job ${r.job}`,
    unchanged: `job ${r.job} is up to date: nothing was changed`,
    planned: `dry run: would ${r.action === 'noop' ? 'change nothing for' : r.action} job ${r.job}; nothing was changed`,
    failed: `${r.action} of job ${r.job} FAILED`,
    'rolled-back': `${r.action} of job ${r.job} FAILED and was rolled back`,
    aborted: `${r.action} of job ${r.job} was aborted`,
  };
  const rows: Array<[string, string]> = [
    ['action', `${r.action}${r.reasons.length ? ` (${r.reasons.join('; ')})` : ''}`],
    ['image', r.image],
    ['commit', r.commit],
    ['git tag', r.gitTag ?? '-'],
    ['pod', r.pod ? `${r.namespace}/${r.pod}` : '-'],
    ['revision', String(r.revision)],
  ];
  if (r.publish) rows.push(['code', `${r.publish.mode}: ${r.publish.files} file(s) sent, ${r.publish.deleted} deleted, ${r.publish.bytes} bytes${r.publish.reason ? ` (${r.publish.reason})` : ''}`]);
  if (r.rolledBackTo) rows.push(['rolled back to', `commit ${short(r.rolledBackTo.commit)}, image ${r.rolledBackTo.image}`]);
  rows.push(['duration', `${(r.durationMs / 1000).toFixed(1)}s`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  let out = `${headline[r.result]}\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')}\n`;
  if (r.manifests) out += `\n${r.manifests.map((m) => YAML.stringify(m)).join('---\n')}`;
  return out;
}
