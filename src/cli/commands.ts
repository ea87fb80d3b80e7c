import type { CliEnvironment } from './environment.js';

/** A command's handler, loaded on demand so that `--help` and `--version` never import the SDKs. Returns the exit code. */
export type CommandHandler = (invocation: CommandInvocation) => Promise<number>;

/** Loads a command's handler. */
export type CommandLoader = () => Promise<CommandHandler>;

/** What a command handler receives: its positional arguments, merged (global + local) options, and the process's streams and environment. */
export interface CommandInvocation {
  args: string[];
  options: Record<string, unknown>;
  cli: CliEnvironment;
}

/** One entry of the command surface: how commander declares it and, once built, where its handler lives. */
export interface CommandSpec {
  /** Name, with its parent for subcommands: `env up`. */
  name: string;
  /** commander argument syntax, e.g. `<job>` or `[job]`. */
  args?: string;
  summary: string;
  /** Extra lines for `gkube <cmd> --help`: defaults and the environment variables each flag reads. */
  details?: string;
  options?: Array<[flags: string, description: string, defaultValue?: string]>;
  /** Absent while the command is not part of this version of gkube; it then exits 2 saying so. */
  load?: CommandLoader;
}

/** The design's command surface; the order here is the order in `gkube --help`. */
export const commandSpecs: CommandSpec[] = [
  {
    name: 'deploy',
    summary: 'create the job\'s environment when it has none, else update its code in place',
    details: `The job is --job, else $JOB_NAME (Jenkins); the ref --ref, else $GIT_COMMIT, else HEAD of the working directory (a git checkout).
No environment yet: claim, pod, init commands, publish the commit, reload, health check, record revision 1.
Otherwise: heal what is missing, roll the image when its tag changed, sync only the files that changed,
reload, health check, record a revision. A failed change is rolled back to the previous revision (exit 1).
Nothing changed (same commit, image and spec, pod ready): exit 0 with no write.
SIGTERM stops at the next safe point (record aborted, exit 143); the next deploy continues from there.`,
    options: [
      ['--job <name>', 'Jenkins job name (env JOB_NAME)'],
      ['--ref <ref>', 'git commit, tag or branch to deploy (env GIT_COMMIT, else HEAD)'],
      ['--image <repo>', 'image repository (gkube.yaml image.repository)'],
      ['--tag-policy <policy>', 'image tag for a commit: nearest | exact | commit'],
      ['--namespace <ns>', 'Kubernetes namespace (gkube.yaml namespace)'],
      ['--dry-run', 'print the plan and the manifests as YAML; change nothing'],
      ['--wait-lock <duration>', 'how long to wait for another run of the job to finish', '10m'],
      ['--timeout <duration>', 'deadline for the pod to become ready and healthy', '10m'],
    ],
    load: async () => (await import('./deploy.js')).deploy,
  },
  {
    name: 'image-tag',
    summary: 'print the image tag for the checkout under the tag policy',
    details: 'For the build step: docker build -t "$REPO:$(gkube image-tag)" .\nThe ref is --ref, else $GIT_COMMIT, else HEAD. The policy is --tag-policy, else $GKUBE_TAG_POLICY, else image.tagPolicy in gkube.yaml, else nearest:\n  nearest  the nearest git tag at or before the commit\n  exact    a git tag on the commit itself (an untagged commit is refused)\n  commit   sha-<12 hex of the commit>',
    options: [
      ['--ref <ref>', 'git ref to resolve (default: $GIT_COMMIT, else HEAD)'],
      ['--tag-policy <policy>', 'nearest | exact | commit'],
    ],
    load: async () => (await import('./jobs.js')).imageTag,
  },
  {
    name: 'rollback',
    args: '<job>',
    summary: 'return a job to an earlier revision',
    options: [
      ['--to-revision <n>', 'history revision to return to (default: the previous one)'],
      ['--to-tag <tag>', 'the latest revision that deployed this git tag'],
      ['--dry-run', 'print the plan; change nothing'],
      ['--wait-lock <duration>', 'how long to wait for another run of the job to finish', '10m'],
      ['--timeout <duration>', 'deadline for the pod to become ready and healthy', '10m'],
    ],
    details: 'Deploys the revision\'s commit (published from the git checkout in the working directory, which must have it) with the revision\'s image.\nA rollback is recorded as a new revision.',
    load: async () => (await import('./deploy.js')).rollback,
  },
  { name: 'history', args: '[job]', details: 'JOB defaults to $JOB_NAME (set by Jenkins).', summary: 'list a job\'s deploys: revision, commit, tag, image, build, result', load: async () => (await import('./jobs.js')).history },
  {
    name: 'trace',
    args: '[target]',
    summary: 'walk pod → image → commit → tag → build (JOB or pod/NAME)',
    details: 'TARGET defaults to $JOB_NAME. A pod is looked up in --namespace (default: namespace in gkube.yaml, else default).',
    options: [['--namespace <ns>', 'namespace of pod/NAME']],
    load: async () => (await import('./jobs.js')).trace,
  },
  { name: 'list', summary: 'list the jobs gkube knows, with phase, image tag and age', load: async () => (await import('./jobs.js')).list },
  { name: 'get', args: '[job]', details: 'JOB defaults to $JOB_NAME (set by Jenkins).', summary: 'show one job\'s record', load: async () => (await import('./jobs.js')).get },
  { name: 'describe', args: '[job]', details: 'JOB defaults to $JOB_NAME (set by Jenkins).', summary: 'show a job\'s record, lock, recent deploys, pod and events', load: async () => (await import('./jobs.js')).describe },
  {
    name: 'delete',
    args: '<job>',
    summary: 'remove a job\'s environment and record',
    details: 'Deletes the pod, then the claim (unless storage is kept), then the record and its history, under the job lock.\nA run killed half way leaves the record in phase "deleting"; run gkube delete again to finish.',
    options: [
      ['--keep-storage', 'keep the job\'s claim, volume and data'],
      ['--wait-lock <duration>', 'how long to wait for another run of the job to finish', '10m'],
    ],
    load: async () => (await import('./jobs.js')).remove,
  },
  { name: 'env', summary: 'short-lived ad-hoc environments for developers (up, ls, down, extend)' },
  {
    name: 'env up',
    args: '<name>',
    summary: 'create or update an ad-hoc environment from the working directory',
    options: [
      ['--ref <ref>', 'git ref to deploy (default HEAD)'],
      ['--ttl <duration>', 'time to live before cleanup removes it', '8h'],
    ],
  },
  { name: 'env ls', summary: 'list ad-hoc environments with their owners and expiry' },
  { name: 'env down', args: '<name>', summary: 'remove an ad-hoc environment' },
  {
    name: 'env extend',
    args: '<name>',
    summary: 'give an ad-hoc environment more time',
    options: [['--ttl <duration>', 'new time to live from now']],
  },
  { name: 'exec', args: '<job> <command...>', summary: 'run a command in the job\'s pod (gkube exec JOB -- CMD...)' },
  {
    name: 'logs',
    args: '<job>',
    summary: 'print the job\'s pod logs',
    options: [['-f, --follow', 'keep printing new lines']],
  },
  { name: 'cp', args: '<source> <destination>', summary: 'copy a file out of the job\'s pod (JOB:PATH LOCAL)' },
  {
    name: 'cleanup',
    summary: 'remove expired, stale and orphaned environments (for a scheduled job)',
    options: [
      ['--dry-run', 'list what would be removed; remove nothing'],
      ['--expired', 'ad-hoc environments past their time to live'],
      ['--stale <duration>', 'jobs not deployed for this long'],
      ['--orphans', 'pods, claims and volumes that no record names'],
      ['--max-delete <n>', 'refuse to remove more than this many in one run', '10'],
    ],
  },
  {
    name: 'doctor',
    summary: 'check gkube.yaml, etcd, the Kubernetes API, the image in the registry and the Gluster pool',
    details:
      'Checks, in order: gkube.yaml (and flags, env, --set); etcd (leader, latency, the prefix\'s record count); the Kubernetes API;\n' +
      'in a git checkout, whether the image a deploy of the ref would use is in the registry; with GlusterFS storage\n' +
      '(in-tree), the pool\'s peers and the volumes gkube made. Changes nothing. Exits 0 when every check passed,\n' +
      'else with the most serious failure\'s code (4 unreachable, 2 misconfigured, 5 unreadable record, 1 image absent).',
    options: [['--ref <ref>', 'git ref whose image to look up (default: $GIT_COMMIT, else HEAD)']],
    load: async () => (await import('./jobs.js')).doctor,
  },
  {
    name: 'unlock',
    args: '[job]',
    summary: 'free a job lock whose holder is gone',
    details: 'JOB defaults to $JOB_NAME. Without --force, frees the lock only when its holder ran on this host and its process is gone.\nA holder that died anywhere frees the lock by itself within 10 seconds (its etcd lease expires).',
    options: [['--force <holder>', 'free it even though its holder looks alive; name the holder as gkube printed it']],
    load: async () => (await import('./jobs.js')).unlock,
  },
  { name: 'recover', args: '<job>', summary: 'finish or undo an operation a killed run left half done' },
];
