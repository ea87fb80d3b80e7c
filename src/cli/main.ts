import { Command, CommanderError, Option } from 'commander';
import { GkubeError, ExitCode, type ExitCodeValue } from '../errors.js';
import { reportError } from '../output/errors.js';
import { redactArgs } from '../output/redact.js';
import type { CliEnvironment } from './environment.js';
import { commandSpecs, type CommandSpec } from './commands.js';
import { version } from './version.js';

export type { CliEnvironment } from './environment.js';

const notBuiltMark = ' (not in this version yet)';

/** Parses argv, runs one command and returns the process exit code. Never calls process.exit. */
export async function main(argv: string[], cli: CliEnvironment): Promise<ExitCodeValue> {
  const outcome = { code: ExitCode.ok as ExitCodeValue };
  const program = buildProgram(argv, cli, outcome);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return outcome.code;
  } catch (err) {
    if (err instanceof CommanderError) return commanderExitCode(err);
    const verbose = Boolean(program.opts()['verbose']);
    return reportError(err, cli, verbose);
  }
}

/** Help and version exit 0; every other commander error is a usage error (exit 2), already printed. */
function commanderExitCode(err: CommanderError): ExitCodeValue {
  if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return ExitCode.ok;
  return ExitCode.invalid;
}

function buildProgram(argv: readonly string[], cli: CliEnvironment, outcome: { code: ExitCodeValue }): Command {
  const program = new Command('gkube');
  program
    .description('Deploy Jenkins jobs to Kubernetes pods on GlusterFS storage, with image tags tied to git tags.')
    .version(version, '--version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showSuggestionAfterError(true)
    .addHelpText('after', helpFooter);
  addGlobals(program);
  configure(program, cli, argv);

  const parents = new Map<string, Command>();
  for (const spec of commandSpecs) {
    const [parentName, childName] = spec.name.split(' ');
    const parent = childName ? parents.get(parentName!) : program;
    if (!parent) throw new Error(`command ${spec.name} is declared before its parent`);
    const cmd = declare(parent, childName ?? spec.name, spec, cli, outcome);
    configure(cmd, cli, argv);
    if (!childName) parents.set(spec.name, cmd);
  }
  return program;
}

function addGlobals(program: Command): void {
  program
    .option('--etcd-endpoints <urls>', 'comma-separated etcd URLs (env GKUBE_ETCD_ENDPOINTS, else ETCDCTL_ENDPOINTS)')
    .option('--etcd-prefix <prefix>', 'key prefix of gkube\'s records (default /gkube/v1)')
    .option('--kubeconfig <file>', 'kubeconfig file (env KUBECONFIG, else in-cluster)')
    .option('--context <name>', 'kubeconfig context')
    .option('--config <file>', 'app configuration file (default ./gkube.yaml)')
    .option('--set <key.path=value>', 'override a gkube.yaml key (repeatable)', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--summary-file <file>', 'also write the result as JSON to this file')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('-v, --verbose', 'more detail, including the causes of errors')
    .option('--no-color', 'plain output even on a terminal');
}

function declare(parent: Command, name: string, spec: CommandSpec, cli: CliEnvironment, outcome: { code: ExitCodeValue }): Command {
  const isGroup = commandSpecs.some((s) => s.name.startsWith(`${spec.name} `));
  const built = isGroup || spec.load !== undefined;
  const cmd = parent.command(spec.args ? `${name} ${spec.args}` : name);
  cmd.description(built ? spec.summary : spec.summary + notBuiltMark);
  for (const [flags, description, defaultValue] of spec.options ?? []) cmd.option(flags, description, defaultValue);
  if (spec.details) cmd.addHelpText('after', `\n${spec.details}\n`);
  if (isGroup) return cmd;
  cmd.action(async (...received: unknown[]) => {
    // commander passes the positional values, then the options object, then the Command itself.
    const self = received[received.length - 1] as Command;
    const args = self.processedArgs.flat().filter((a): a is string => typeof a === 'string');
    if (!spec.load) {
      throw new GkubeError('NOT_BUILT', `gkube ${spec.name} is not available in gkube ${version} yet; nothing was changed`);
    }
    const handler = await spec.load();
    outcome.code = (await handler({ args, options: self.optsWithGlobals(), cli })) as ExitCodeValue;
  });
  return cmd;
}

function configure(cmd: Command, cli: CliEnvironment, argv: readonly string[]): void {
  cmd.exitOverride();
  cmd.configureOutput({
    writeOut: (s) => cli.stdout.write(s),
    writeErr: (s) => cli.stderr.write(s),
    // commander quotes the arguments it refuses (`unknown option '--etcd-endpoint=http://u:pw@h:2379'`): mask them.
    outputError: (s, write) => write(redactArgs(s, argv)),
  });
}

const helpFooter = `
Exit codes:
  0 ok   1 the operation failed   2 invalid input or configuration (nothing changed)
  3 the job is locked by another run   4 a dependency is unreachable   5 inconsistent state (named)
  6 refused for safety

Run gkube <command> --help for a command's flags. Flags override environment variables,
which override gkube.yaml, which overrides built-in defaults.`;
