import { isFinal, type JobStatus } from '../shared/job-status.js';
import { matchingGpus, unmetResources, type MachineResources } from '../shared/resources.js';
import type { RunService, RunView } from './run-service.js';
import { jobSpec, type JobRow } from './store/store.js';

export type StopMode = 'stop' | 'abort';

export interface StartedJob {
  done: Promise<JobStatus>;
  stop(mode: StopMode): void;
}

/** Something that runs jobs on one machine: the in-process agent in local mode. */
export interface Worker {
  resources: MachineResources;
  start(job: JobRow, gpus: number[]): StartedJob;
}

/**
 * Drives one run to its end on a worker: a job starts once its dependencies are done and the
 * machine has room (GPUs are handed out exclusively, CPUs and memory by what jobs declare), so
 * independent jobs run side by side. A job whose dependency did not finish is not run.
 */
export class RunExecutor {
  private readonly running = new Map<string, { started: StartedJob; gpus: number[]; cpu: number; memoryMiB: number }>();
  private stopMode: StopMode | undefined;
  private wake: () => void = () => {};

  constructor(
    private readonly service: RunService,
    private readonly worker: Worker,
    private readonly runName: string,
    /** `refresh`: called while waiting, to notice jobs of other runs that ended (e.g. reconcile). */
    private readonly options: { refresh?: () => void } = {},
  ) {}

  async execute(): Promise<RunView> {
    for (;;) {
      const woken = new Promise<void>((resolve) => (this.wake = resolve));
      const jobs = this.service.store.jobsOf(this.runName);
      if (jobs.every((j) => isFinal(j.status))) break;
      // Jobs are in dependency order, so one pass starts every job that can start now.
      for (const job of jobs) if (job.status === 'submitted' && !this.running.has(job.id)) this.consider(job, this.service.store.jobsOf(this.runName));
      const waiting = this.service.store.jobsOf(this.runName).some((j) => j.status === 'submitted' && j.reason?.startsWith('waiting for'));
      if (this.running.size === 0 && !waiting) {
        const left = this.service.store.jobsOf(this.runName).filter((j) => !isFinal(j.status));
        if (left.length === 0) break;
        // Nothing runs and nothing can start: say so rather than wait forever.
        for (const j of left) this.service.setJobStatus(j.id, 'failed', { reason: 'could not be scheduled' });
        break;
      }
      // Jobs of other runs free GPUs without waking this one: look again every second.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([woken, new Promise<void>((r) => (timer = setTimeout(r, 1000)))]);
      clearTimeout(timer);
      this.options.refresh?.();
    }
    return this.service.view(this.runName);
  }

  /** Ctrl+C once: stop (grace period, artifacts kept); again, or `abort`: kill now. */
  stop(mode: StopMode): void {
    if (this.stopMode === 'abort') return;
    this.stopMode = mode;
    for (const job of this.service.store.jobsOf(this.runName)) {
      if (job.status === 'submitted' && !this.running.has(job.id)) {
        this.service.setJobStatus(job.id, mode === 'abort' ? 'aborted' : 'stopped', { reason: 'stopped before it started' });
      }
    }
    for (const r of this.running.values()) r.started.stop(mode);
    this.wake();
  }

  private consider(job: JobRow, jobs: JobRow[]): void {
    const spec = jobSpec(job);
    for (const dep of spec.dependsOn) {
      if (dep.tag) continue;
      const d = jobs.find((j) => j.workflow === dep.workflow)!;
      if (d.status === 'done') continue;
      if (isFinal(d.status)) {
        this.service.setJobStatus(job.id, 'failed', { reason: `not run: dependency '${d.workflow}' ${d.status}` });
        this.wake();
      }
      return;
    }
    const machine = this.worker.resources;
    const never = unmetResources(spec.resources, machine);
    if (never) {
      this.service.setJobStatus(job.id, 'failed', { reason: never });
      this.wake();
      return;
    }
    const cpu = spec.resources.cpu ?? 0;
    const memoryMiB = spec.resources.memoryMiB ?? 0;
    const usedCpu = [...this.running.values()].reduce((n, r) => n + r.cpu, 0);
    const usedMem = [...this.running.values()].reduce((n, r) => n + r.memoryMiB, 0);
    const mine = new Set([...this.running.values()].flatMap((r) => r.gpus));
    const candidates = matchingGpus(machine.gpus, spec.resources.gpu).filter((g) => !mine.has(g.index)).map((g) => g.index);
    let gpus: number[] | undefined = [];
    if (usedCpu + cpu <= machine.cpus && usedMem + memoryMiB <= machine.memoryMiB && spec.resources.gpu.count > 0) {
      // Claimed in one transaction, so two `dstack run`s on this machine never share a GPU.
      gpus = this.service.store.claimGpus(job.id, candidates, spec.resources.gpu.count);
    }
    if (gpus === undefined || usedCpu + cpu > machine.cpus || usedMem + memoryMiB > machine.memoryMiB) {
      const holders = [...new Set(this.service.store.gpusInUse(this.runName).map((o) => o.run_name))];
      const reason =
        gpus === undefined && holders.length > 0
          ? `waiting for ${spec.resources.gpu.count} GPU(s): in use by ${holders.join(', ')}`
          : `waiting for resources: ${this.running.size} job(s) of this run are using them`;
      if (job.reason !== reason) this.service.setJobStatus(job.id, 'submitted', { reason });
      return;
    }
    if (gpus.length > 0) this.service.setJobStatus(job.id, 'submitted', { reason: `assigned GPU ${gpus.join(', ')}`, gpus: gpus.join(',') });
    const started = this.worker.start(job, gpus);
    this.running.set(job.id, { started, gpus, cpu, memoryMiB });
    if (this.stopMode) started.stop(this.stopMode);
    started.done.finally(() => {
      this.running.delete(job.id);
      this.wake();
    });
  }
}
