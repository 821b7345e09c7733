import { CommanderError } from 'commander';
import { isDstackError } from './errors.js';

/**
 * What the `dstack`, `dstack-app` and `dstack-agent` commands do with an error that ends them: one
 * line on stderr (a DstackError's message says what to do; anything else asks to be reported),
 * a stack trace only with DSTACK_DEBUG=1, and the exit code to use (0 for help and the version).
 */
export function reportError(command: string, err: unknown): number {
  if (err instanceof CommanderError) {
    // Commander printed its message (or the help) already.
    return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0 ? 0 : 1;
  }
  if (isDstackError(err)) {
    process.stderr.write(`${command}: error: ${err.message}\n`);
  } else {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${command}: unexpected error: ${message}\n  (run again with DSTACK_DEBUG=1 for details, and please report it)\n`);
  }
  if (process.env.DSTACK_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? err}\n`);
  return 1;
}
