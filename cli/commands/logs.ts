import { openClient } from '../client/open-client.js';
import { colorsEnabled } from '../output/colors.js';
import { LogPrinter } from '../output/log-printer.js';

/** Prints a run's logs from the start; with `--follow`, keeps printing until the run ends. */
export async function logsCommand(runName: string, opts: { follow?: boolean }): Promise<void> {
  const client = await openClient();
  try {
    const view = await client.getRun(runName);
    const printer = new LogPrinter(process.stdout, new Map(view.jobs.map((j) => [j.id, j.workflow])), colorsEnabled());
    await client.readLogs(runName, printer, { follow: Boolean(opts.follow) });
    await printer.finish();
  } finally {
    client.close();
  }
}
