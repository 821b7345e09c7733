import { isFinal, type JobStatus } from '../../shared/job-status.js';
import { unmetResources, type Gpu, type MachineResources } from '../../shared/resources.js';
import type { RunService, RunView } from '../run-service.js';
import type { Resources } from '../../shared/workflow/types.js';
import { jobSpec, type JobRow } from '../store/store.js';
import { waitingForAgents, waitingReason, type Shortfall } from './wait-reason.js';

export type StopMode = 'stop' | 'abort';

export interface StartedJob {
  done: Promise<JobStatus>;
  stop(mode: StopMode): void;
}

/** A machine that runs jobs: the in-process agent of local mode, or a connected runner agent. */
export interface Agent {
  /** Claims in the store are per agent id, so schedulers that share a machine share its capacity. */
  id: string;
  /** How it is named in waiting reasons (default: its id). */
  name?: string;
  /** Whose jobs it runs; undefined: any run's (local mode's own machine). */
  owner?: string;
  /** What it offers for `resources.labels`; undefined: it does not select by label (local mode). */
  labels?: readonly string[];
  resources: MachineResources;
  start(job: JobRow, gpus: Gpu[]): StartedJob;
  /** Why it declined this job before, if it did (it is then offered elsewhere, and the waiting reason says why). */
  declined?(jobId: string): string | undefined;
}

/** Whether an agent may take a run's job at all: the run's owner's, with every label asked for. */
function serves(agent: Agent, owner: string | null, need: Resources): boolean {
  if (agent.owner !== undefined && agent.owner !== owner) return false;
  if (agent.labels === undefined) return true;
  return (need.labels ?? []).every((l) => agent.labels!.includes(l));
}

export interface SchedulerOptions {
  /** The runs this scheduler drives (a `dstack run` process drives its own); every run when omitted. */
  runs?: Iterable<string>;
}

/**
 * Starts submitted jobs on agents: a job starts once its dependencies are done and an agent has
 * room for it (GPUs handed out exclusively, CPUs and memory by what jobs declare, claimed in the
 * store so that other schedulers sharing the machine see them), so independent jobs run side by
 * side. A job whose dependency did not finish is not run. It looks again whenever something may
 * have changed — a run was submitted, a job ended, an agent came, `wake()` — never on a timer.
 */
export class Scheduler {
  private readonly agents = new Map<string, Agent>();
  private readonly running = new Map<string, { run: string; started: StartedJob }>();
  private readonly stopping = new Map<string, StopMode>();
  private readonly runs: Set<string> | undefined;
  private passQueued = false;
  private closed = false;
  private readonly onJob = (job: JobRow) => {
    if (!isFinal(job.status)) return;
    this.wake();
    // A stopped run's mode is needed while a job of it may still start; not once it has ended.
    if (this.stopping.has(job.run_name) && this.service.view(job.run_name).jobs.every((j) => isFinal(j.status))) this.stopping.delete(job.run_name);
  };

  private readonly onRun = () => this.wake();

  constructor(private readonly service: RunService, options: SchedulerOptions = {}) {
    this.runs = options.runs ? new Set(options.runs) : undefined;
    service.on('job', this.onJob);
    service.on('run', this.onRun);
  }

  addAgent(agent: Agent): void {
    this.agents.set(agent.id, agent);
    this.wake();
  }

  removeAgent(id: string): void {
    this.agents.delete(id);
  }

  /**
   * Takes in a job that an agent was running before this scheduler started (a restarted server's
   * agent reconnected): stops and the run's end reach it as if it had started it.
   */
  adopt(job: JobRow, started: StartedJob): void {
    if (this.running.has(job.id)) return;
    this.running.set(job.id, { run: job.run_name, started });
    void started.done.finally(() => {
      this.running.delete(job.id);
      this.wake();
    });
  }

  /** Drives `run` too (for a scheduler limited to some runs). */
  addRun(run: string): void {
    this.runs?.add(run);
    this.wake();
  }

  /** Looks at the queue again, once, soon (many calls in a row make one pass). */
  wake(): void {
    if (this.passQueued || this.closed) return;
    this.passQueued = true;
    setImmediate(() => {
      this.passQueued = false;
      if (!this.closed) this.pass();
    });
  }

  /** Resolves with the run once every job of it has ended. */
  finished(run: string): Promise<RunView> {
    return new Promise((resolve) => {
      const check = () => {
        const view = this.service.view(run);
        if (!view.jobs.every((j) => isFinal(j.status))) return;
        this.service.off('job', onJob);
        resolve(view);
      };
      const onJob = (job: JobRow) => {
        if (job.run_name === run && isFinal(job.status)) check();
      };
      this.service.on('job', onJob);
      check();
    });
  }

  /** Ctrl+C once: stop (grace period, artifacts kept); again, or `abort`: kill now. */
  stop(run: string, mode: StopMode): void {
    if (this.stopping.get(run) === 'abort') return;
    this.stopping.set(run, mode);
    for (const job of this.service.view(run).jobs) {
      if (job.status === 'submitted' && !this.running.has(job.id)) {
        this.service.setJobStatus(job.id, mode === 'abort' ? 'aborted' : 'stopped', { reason: 'stopped before it started' });
      }
    }
    for (const r of this.running.values()) if (r.run === run) r.started.stop(mode);
  }

  close(): void {
    this.closed = true;
    this.service.off('job', this.onJob);
    this.service.off('run', this.onRun);
  }

  private pass(): void {
    const runs = this.runs && [...this.runs];
    const jobsOfRun = new Map<string, JobRow[]>();
    const owners = new Map<string, string | null>();
    for (const job of this.service.submittedJobs(runs)) {
      if (this.running.has(job.id)) continue;
      let siblings = jobsOfRun.get(job.run_name);
      if (!siblings) {
        const view = this.service.view(job.run_name);
        jobsOfRun.set(job.run_name, (siblings = view.jobs));
        owners.set(job.run_name, view.run.owner);
      }
      if (this.dependenciesDone(job, siblings)) this.place(job, owners.get(job.run_name) ?? null);
    }
  }

  /** Whether a job's in-run dependencies are done; fails it when one ended otherwise. */
  private dependenciesDone(job: JobRow, siblings: JobRow[]): boolean {
    for (const dep of jobSpec(job).dependsOn) {
      if (dep.tag) continue;
      const d = siblings.find((j) => j.workflow === dep.workflow)!;
      if (d.status === 'done') continue;
      if (isFinal(d.status)) this.service.setJobStatus(job.id, 'failed', { reason: `not run: dependency '${d.workflow}' ${d.status}` });
      return false;
    }
    return true;
  }

  /** Starts a job on the first agent with room, or records why it waits. */
  private place(job: JobRow, owner: string | null): void {
    const need = jobSpec(job).resources;
    const serving = [...this.agents.values()].filter((a) => serves(a, owner, need) && !a.declined?.(job.id));
    const able = serving.filter((a) => !unmetResources(need, a.resources));
    const shortfalls: Shortfall[] = [];
    for (const agent of able) {
      const claim = this.service.claimResources(job.id, agent.id, agent.resources, need);
      if (claim.ok) return this.start(job, agent, claim.gpus);
      shortfalls.push({ agent: agent.name ?? agent.id, claim });
    }
    // An agent that can run it may connect, or free up, later: the job waits, saying why.
    if (this.agents.size === 1 && serving.length === 1) {
      const unmet = unmetResources(need, serving[0]!.resources);
      return this.waiting(job, unmet ? `waiting: ${unmet}` : waitingReason(need, shortfalls, job.run_name));
    }
    const agents = [...this.agents.values()];
    const declined = new Map(agents.flatMap((a) => (a.declined?.(job.id) ? [[a.id, a.declined(job.id)!] as const] : [])));
    this.waiting(job, waitingForAgents(need, owner, agents, shortfalls, declined));
  }

  private waiting(job: JobRow, reason: string): void {
    if (job.reason !== reason) this.service.setJobStatus(job.id, 'submitted', { reason });
  }

  private start(job: JobRow, agent: Agent, gpus: Gpu[]): void {
    if (gpus.length > 0) this.service.setJobStatus(job.id, 'submitted', { reason: `assigned GPU ${gpus.map((g) => g.index).join(', ')}` });
    let started: StartedJob;
    try {
      started = agent.start(job, gpus);
    } catch (err) {
      this.service.setJobStatus(job.id, 'aborted', { reason: `infrastructure error: ${err instanceof Error ? err.message : String(err)}` });
      return;
    }
    this.running.set(job.id, { run: job.run_name, started });
    const mode = this.stopping.get(job.run_name);
    if (mode) started.stop(mode);
    void started.done.finally(() => {
      this.running.delete(job.id);
      this.wake();
    });
  }
}
