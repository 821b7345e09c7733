import { isFinal } from '../../shared/job-status.js';
import { colorsEnabled, paint, statusColor } from '../output/colors.js';
import { executorPid, isExecutorAlive } from '../local/executor-identity.js';
import { openLocal } from '../local/local-context.js';
import { localSettings } from '../local/settings.js';

/**
 * Asks the process running a run to stop it (as Ctrl+C would) or abort it, then waits for the end.
 * Exits 0 once the run has ended.
 */
export async function stopCommand(runName: string, opts: { abort?: boolean }): Promise<number> {
  const grace = localSettings().stopGraceSeconds;
  const ctx = openLocal();
  try {
    const { service } = ctx;
    let view = service.view(runName);
    const color = paint(colorsEnabled());
    if (isFinal(view.status)) {
      process.stdout.write(`${runName} has already ended: ${view.status}\n`);
      return 0;
    }
    const executor = view.run.executor;
    const pid = executor && isExecutorAlive(executor) ? executorPid(executor) : undefined;
    if (pid) process.kill(pid, opts.abort ? 'SIGTERM' : 'SIGINT');
    process.stdout.write(`${opts.abort ? 'Aborting' : 'Stopping'} ${runName}…\n`);
    const deadline = Date.now() + (grace * 2 + 60) * 1000;
    while (Date.now() < deadline) {
      service.reconcile(isExecutorAlive);
      view = service.view(runName);
      if (isFinal(view.status)) {
        await ctx.sweep();
        process.stdout.write(`${runName}: ${color(statusColor(view.status), view.status)}\n`);
        return 0;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    process.stderr.write(`dstack: error: ${runName} is still ${view.status}; try 'dstack stop ${runName} --abort'\n`);
    return 1;
  } finally {
    ctx.close();
  }
}
