#!/usr/bin/env node
import { Command, Option } from 'commander';
import { reportError } from '../shared/report-error.js';

/**
 * `dstack-app`: the server, and its token administration. The server's modules are imported only
 * by the command that runs it, so `dstack-app --help` and the token commands start fast.
 */
export function buildProgram(): Command {
  const program = new Command('dstack-app')
    .description('The dstack server: serves on PORT (default 3000) and HOST (default 127.0.0.1), with its state in DSTACK_DATA_DIR (default ~/.dstack-app)')
    .showSuggestionAfterError(true)
    .configureOutput({ outputError: (str, write) => write(`dstack-app: ${str}`) })
    .action(async () => {
      const { serve } = await import('./server/serve.js');
      await serve();
    });

  const token = program.command('token').description('Create, list and revoke tokens');
  token
    .command('create')
    .description('Create a token; it is printed once, alone on the last line, and only its hash is kept')
    .requiredOption('--owner <name>', 'the GitHub user or organisation whose runs the token may touch')
    .addOption(new Option('--agent', 'a token for a runner agent (gets the owner\'s jobs)').conflicts('user'))
    .addOption(new Option('--user', 'a token for the dstack CLI (runs, lists, stops the owner\'s runs)').conflicts('agent'))
    .action(async (opts: { owner: string; agent?: boolean; user?: boolean }) => {
      const { tokenCreate } = await import('./server/token-commands.js');
      tokenCreate(opts);
    });
  token
    .command('list')
    .description('List tokens (never their secrets)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const { tokenList } = await import('./server/token-commands.js');
      tokenList(opts);
    });
  token
    .command('revoke')
    .description('Revoke a token: it gets 401 from then on')
    .argument('<id>', 'the token id, as `token list` shows it')
    .action(async (id: string) => {
      const { tokenRevoke } = await import('./server/token-commands.js');
      tokenRevoke(id);
    });

  for (const cmd of [program, token, ...token.commands]) cmd.exitOverride();
  return program;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    process.exitCode = reportError('dstack-app', err);
  }
}
