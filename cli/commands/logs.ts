import { isFinal } from '../../shared/job-status.js';
import { colorsEnabled } from '../output/colors.js';
import { LogPrinter } from '../output/log-printer.js';
import { isExecutorAlive } from '../local/executor-identity.js';
import { openLocal } from '../local/local-context.js';

/** Prints a run's logs from the log files; with `--follow`, keeps reading until the run ends. */
export async function logsCommand(runName: string, opts: { follow?: boolean }): Promise<void> {
  const ctx = openLocal();
  try {
    const { service } = ctx;
    let view = service.view(runName);
    const printer = new LogPrinter(process.stdout, new Map(view.jobs.map((j) => [j.id, j.workflow])), colorsEnabled());
    const offsets = new Map(view.jobs.map((j) => [j.id, 0]));
    const pump = async () => {
      for (const job of view.jobs) {
        for (;;) {
          const chunk = service.readLog(job.id, offsets.get(job.id)!);
          if (chunk.length === 0) break;
          offsets.set(job.id, offsets.get(job.id)! + chunk.length);
          printer.write(job.id, chunk);
          const wait = printer.backpressure();
          if (wait) await wait;
        }
      }
    };
    for (;;) {
      const finished = isFinal(view.status);
      await pump();
      if (!opts.follow || finished || printer.closed) break;
      await new Promise((r) => setTimeout(r, 100));
      service.reconcile(isExecutorAlive);
      view = service.view(runName);
    }
  } finally {
    ctx.close();
  }
}
