import { DstackError } from '../../shared/errors.js';
import { openClient } from '../client/open-client.js';
import { colorsEnabled } from '../output/colors.js';
import { LogPrinter } from '../output/log-printer.js';

/**
 * Prints a run's logs from the start; with `--follow`, keeps printing until the run ends. A job whose
 * end was recorded without all of its log (its agent lost, the server's disk full) is an error
 * once the rest is printed: a cut log must not pass for a whole one.
 */
export async function logsCommand(runName: string, opts: { follow?: boolean }): Promise<void> {
  const client = await openClient();
  try {
    const view = await client.getRun(runName);
    const printer = new LogPrinter(process.stdout, new Map(view.jobs.map((j) => [j.id, j.workflow])), colorsEnabled());
    const final = await client.readLogs(runName, printer, { follow: Boolean(opts.follow) });
    await printer.finish();
    const cut = final.jobs.filter((j) => j.log_incomplete);
    if (cut.length > 0) {
      const which = cut.map((j) => `${j.workflow} (${j.id})`).join(', ');
      throw new DstackError('DSTACK_ERR_LOG_INCOMPLETE', `the log of ${which} is incomplete: ${cut[0]!.reason ?? 'its end was recorded without all of it'}`);
    }
  } finally {
    client.close();
  }
}
