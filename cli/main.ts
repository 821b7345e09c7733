#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { reportError } from '../shared/report-error.js';
import { VERSION } from './version.js';

/**
 * The `dstack` command. Each command's module is imported only when it runs, so `dstack --help`
 * answers without loading the store, node-pty or the workflow loader.
 */
export function buildProgram(): Command {
  const program = new Command('dstack')
    .description('Run ML workflows defined in .dstack/ on this machine (or, later, on your own GPU runners)')
    .version(VERSION, '-v, --version')
    .showSuggestionAfterError(true)
    .enablePositionalOptions(true)
    .configureOutput({ outputError: (str, write) => write(`dstack: ${str}`) });

  const run = program
    .command('run')
    .description('Run a workflow and its dependencies; stream the logs until it ends')
    .argument('[workflow]', 'the workflow to run')
    .argument('[args...]', '--NAME VALUE overrides variable NAME; everything else goes to ${{ run.args }}')
    .option('-d, --detach', 'submit the run and return at once; follow it with `dstack logs RUN -f`')
    .option('--isolation <mode>', 'host (default): run bash and python jobs on this machine; docker: run every job in a container')
    .option('--image <image>', 'the image for bash and python jobs under --isolation docker (default python:3.11-slim)')
    .option('--label <label>', "remote mode: run only on agents with this label (repeatable), added to every workflow's resources.labels", collect, [])
    .option('-h, --help', 'show help for run, with the workflows of this repository')
    .helpOption(false)
    .allowUnknownOption(true)
    .passThroughOptions(true)
    .action(async (workflow: string | undefined, args: string[], opts: { detach?: boolean; help?: boolean; isolation?: string; image?: string; label: string[] }) => {
      if (opts.help || !workflow) {
        const { workflowsHelp } = await import('./commands/run-help.js');
        if (opts.help) {
          process.stdout.write(run.helpInformation() + workflowsHelp());
        } else {
          process.stderr.write(`dstack: error: name the workflow to run: dstack run WORKFLOW [ARGS...]\n${workflowsHelp()}`);
          process.exitCode = 1;
        }
        return;
      }
      const { runCommand } = await import('./commands/run.js');
      process.exitCode = await runCommand(workflow, args, opts);
    });

  program
    .command('ps')
    .description('List runs: unfinished ones (or the last one), the newest N with -n, or all with -a')
    .option('-a, --all', 'list all runs, newest first')
    .option('-n, --last <N>', 'list the newest N runs, whatever their status', positiveInteger)
    .option('--json', 'print JSON (see README: JSON output)')
    .action(async (opts: { all?: boolean; json?: boolean; last?: number }) => {
      const { psCommand } = await import('./commands/ps.js');
      await psCommand(opts);
    });

  program
    .command('logs')
    .description("Print a run's logs")
    .argument('<run>', 'the run name')
    .option('-f, --follow', 'keep printing until the run ends')
    .action(async (run: string, opts: { follow?: boolean }) => {
      const { logsCommand } = await import('./commands/logs.js');
      await logsCommand(run, opts);
    });

  program
    .command('stop')
    .description('Stop a run: SIGINT, a grace period, then SIGTERM and SIGKILL; artifacts are saved')
    .argument('<run>', 'the run name')
    .option('-x, --abort', 'kill at once, without saving artifacts')
    .action(async (run: string, opts: { abort?: boolean }) => {
      const { stopCommand } = await import('./commands/stop.js');
      process.exitCode = await stopCommand(run, opts);
    });

  program
    .command('tag')
    .description('Tag a finished run, so `depends-on: WORKFLOW:TAG` can use its artifacts (moves an existing tag)')
    .argument('<run>', 'the run name')
    .argument('<tag>', 'the tag, e.g. latest')
    .action(async (run: string, tag: string) => {
      const { tagCommand } = await import('./commands/tags.js');
      await tagCommand(run, tag);
    });

  program
    .command('untag')
    .description('Delete a tag (the run and its artifacts stay)')
    .argument('<tag>', 'the tag')
    .action(async (tag: string) => {
      const { untagCommand } = await import('./commands/tags.js');
      await untagCommand(tag);
    });

  program
    .command('tags')
    .description('List tags')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const { tagsCommand } = await import('./commands/tags.js');
      await tagsCommand(opts);
    });

  const artifacts = program.command('artifacts').description("List or download a run's artifacts");
  artifacts
    .command('list')
    .description('List the artifacts of a run, or of the run with a tag (:TAG)')
    .argument('<run>', 'RUN or :TAG')
    .option('--json', 'print JSON')
    .action(async (run: string, opts: { json?: boolean }) => {
      const { artifactsListCommand } = await import('./commands/artifacts.js');
      await artifactsListCommand(run, opts);
    });
  artifacts
    .command('download')
    .description('Download the artifacts of a run, or of the run with a tag (:TAG), at their paths')
    .argument('<run>', 'RUN or :TAG')
    .option('-o, --output <dir>', 'the folder to put them in', '.')
    .option('--force', 'overwrite files that exist already')
    .action(async (run: string, opts: { output: string; force?: boolean }) => {
      const { artifactsDownloadCommand } = await import('./commands/artifacts.js');
      await artifactsDownloadCommand(run, opts);
    });

  program
    .command('config')
    .description('Keep settings for later runs, or point every command at a server (--url, --token); with no options, print them')
    .option('--isolation <mode>', 'host or docker: where bash and python jobs run (see README: Isolation)')
    .option('--image <image>', 'the image for bash and python jobs under docker isolation')
    .option('--url <url>', "remote mode: the dstack-app server's URL (with --token; checked before it is saved)")
    .option('--token <token>', 'remote mode: a user token (dstack-app token create --owner NAME --user)')
    .option('--local', 'back to local mode: forget the server')
    .option('--json', 'print JSON')
    .action(async (opts: { isolation?: string; image?: string; url?: string; token?: string; local?: boolean; json?: boolean }) => {
      const { configCommand } = await import('./commands/config.js');
      await configCommand(opts);
    });

  const secrets = program.command('secrets').description('Manage secrets for ${{ secrets.NAME }} (values never appear in logs)');
  secrets
    .command('add')
    .description('Add or update a secret; the value is read from stdin, or a prompt that does not echo')
    .argument('<name>', 'the secret name')
    .action(async (name: string) => {
      const { secretsAddCommand } = await import('./commands/secrets.js');
      await secretsAddCommand(name);
    });
  secrets
    .command('list')
    .description('List secret names (never values)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const { secretsListCommand } = await import('./commands/secrets.js');
      secretsListCommand(opts);
    });
  secrets
    .command('delete')
    .description('Delete a secret')
    .argument('<name>', 'the secret name')
    .action(async (name: string) => {
      const { secretsDeleteCommand } = await import('./commands/secrets.js');
      secretsDeleteCommand(name);
    });

  const prune = program.command('prune').description('Delete saved data');
  prune
    .command('cache')
    .description("Empty a workflow's cache in this repository")
    .argument('<workflow>', 'the workflow')
    .action(async (workflow: string) => {
      const { pruneCacheCommand } = await import('./commands/prune.js');
      await pruneCacheCommand(workflow);
    });

  program
    .command('schema')
    .description('Print the JSON Schema of .dstack/workflows.yaml, for editors')
    .action(async () => {
      const { workflowsJsonSchema } = await import('../shared/workflow/schema.js');
      process.stdout.write(JSON.stringify(workflowsJsonSchema(), null, 2) + '\n');
    });

  // Runs a submitted run in the background for `dstack run -d`; not for people.
  program
    .command('__execute', { hidden: true })
    .argument('<run>')
    .action(async (run: string) => {
      const { executeDetached } = await import('./commands/run.js');
      process.exitCode = await executeDetached(run);
    });

  for (const cmd of program.commands) cmd.exitOverride();
  program.exitOverride();
  return program;
}

/** A repeatable option's values, in order. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Parses an option value that must be a whole number of 1 or more. */
function positiveInteger(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError(`expected a whole number of 1 or more, got '${value}'`);
  return Number(value);
}

export async function main(argv: string[] = process.argv): Promise<void> {
  // A reader that goes away (`dstack ps | head`) is not an error worth a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') process.stderr.write(`dstack: error: cannot write output: ${err.message}\n`);
  });
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    process.exitCode = reportError('dstack', err);
  }
}

