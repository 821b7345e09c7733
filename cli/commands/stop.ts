import { isFinal } from '../../shared/job-status.js';
import { openClient } from '../client/open-client.js';
import { colorsEnabled, paint, statusColor } from '../output/colors.js';
import { localSettings } from '../local/settings.js';

/**
 * Asks a run to stop (as Ctrl+C would) or abort, then waits for the end: the process running it
 * in local mode, the server's agents in remote mode. Exits 0 once the run has ended.
 */
export async function stopCommand(runName: string, opts: { abort?: boolean }): Promise<number> {
  const grace = localSettings().stopGraceSeconds;
  const client = await openClient();
  try {
    const view = await client.getRun(runName);
    const color = paint(colorsEnabled());
    if (isFinal(view.status)) {
      process.stdout.write(`${runName} has already ended: ${view.status}\n`);
      return 0;
    }
    await client.stop(runName, opts.abort ? 'abort' : 'stop');
    process.stdout.write(`${opts.abort ? 'Aborting' : 'Stopping'} ${runName}…\n`);
    const ended = await client.waitForEnd(runName, (grace * 2 + 60) * 1000);
    if (ended) {
      await client.sweep();
      process.stdout.write(`${runName}: ${color(statusColor(ended.status), ended.status)}\n`);
      return 0;
    }
    const now = await client.getRun(runName);
    process.stderr.write(`dstack: error: ${runName} is still ${now.status}; try 'dstack stop ${runName} --abort'\n`);
    return 1;
  } finally {
    client.close();
  }
}
