import path from 'node:path';
import type Docker from 'dockerode';
import { connectDocker } from '../../agent/docker/engine.js';
import { removeTree } from '../../agent/remove-tree.js';
import type { RunView } from '../../app/run-service.js';
import { Scheduler, type StopMode } from '../../app/scheduler/scheduler.js';
import { isFinal, type JobStatus } from '../../shared/job-status.js';
import type { MachineResources } from '../../shared/resources.js';
import { paint } from '../output/colors.js';
import type { LogPrinter } from '../output/log-printer.js';
import { containerOwner, runIsolation } from './containers.js';
import { isExecutorAlive } from './executor-identity.js';
import type { LocalContext } from './local-context.js';
import { LocalWake } from './local-wake.js';
import { LocalWorker, runSourceDir } from './local-worker.js';
import { SecretStore } from './secret-store.js';
import { localSettings } from './settings.js';

/** How often a waiting run looks for `dstack` processes that died holding resources. */
const CRASH_CHECK_MS = 5000;

/**
 * Runs one run's jobs in this process, on this machine (local mode's in-process agent), until the
 * run ends. With a printer, the jobs' output goes to it as it is stored (`dstack run` attached);
 * without, it only goes to the logs (`dstack run -d`'s background process).
 */
export class LocalExecution {
  readonly finished: Promise<RunView>;
  private readonly scheduler: Scheduler;

  constructor(private readonly ctx: LocalContext, private readonly runName: string, machine: MachineResources, printer?: LogPrinter, colors = false) {
    const { service } = ctx;
    const view = service.view(runName);
    const color = paint(colors);
    const labels = new Map(view.jobs.map((j) => [j.id, j.workflow]));
    let docker: Promise<Docker> | undefined;
    const worker = new LocalWorker({
      service,
      resources: machine,
      isolation: runIsolation(view.run),
      owner: containerOwner(ctx.home),
      docker: () => (docker ??= connectDocker()),
      secrets: () => new SecretStore(ctx.home).values(),
      workRoot: ctx.paths.work,
      sourceDir: runSourceDir(ctx.paths.runs, runName),
      repo: view.run.repo,
      graceSeconds: localSettings().stopGraceSeconds,
    });
    const scheduler = (this.scheduler = new Scheduler(service, { runs: [runName] }));
    // Other `dstack` processes on this machine free resources too: they say so through a file, and a
    // process that crashed is noticed by the reconcile that marks its jobs aborted.
    const wake = new LocalWake(ctx.home, () => scheduler.wake());
    const onJobEnd = (job: { status: JobStatus }) => {
      if (isFinal(job.status)) wake.notify();
    };
    service.on('job', onJobEnd);
    const crashCheck = setInterval(() => service.reconcile(isExecutorAlive), CRASH_CHECK_MS);
    const listeners: (() => void)[] = [];
    if (printer) {
      const onLog = (jobId: string, data: Buffer, offset: number) => printer.write(jobId, data, offset);
      const onPort = (jobId: string, port: number) => printer.line(color('cyan', `${labels.get(jobId)}: port ${port} is open at http://127.0.0.1:${port}`));
      const onJob = (job: { id: string; status: JobStatus; reason: string | null; exit_code: number | null; workflow: string }) => {
        // A job that ended before writing anything (e.g. a dependency failed) says why here.
        if (job.status === 'failed' && job.reason && job.exit_code === null && service.logSize(job.id) === 0) {
          printer.line(color('red', `${job.workflow}: ${job.reason}`));
        }
      };
      service.on('log', onLog);
      service.on('port', onPort);
      service.on('job', onJob);
      listeners.push(() => service.off('log', onLog), () => service.off('port', onPort), () => service.off('job', onJob));
    }
    scheduler.addAgent(worker);
    this.finished = scheduler.finished(runName).finally(async () => {
      clearInterval(crashCheck);
      scheduler.close();
      wake.close();
      service.off('job', onJobEnd);
      for (const off of listeners) off();
      await removeTree(path.dirname(runSourceDir(ctx.paths.runs, runName)));
    });
  }

  /** Ctrl+C once: stop (grace period, artifacts kept); again, or `abort`: kill now. */
  stop(mode: StopMode): void {
    this.scheduler.stop(this.runName, mode);
  }
}
