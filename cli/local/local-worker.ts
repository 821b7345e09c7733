import fsp from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import { JobRunner, type Isolation } from '../../agent/job-runner.js';
import type { JobIO } from '../../agent/job-io.js';
import { copyTree } from '../../agent/source-copy.js';
import type { Agent, StartedJob } from '../../app/scheduler/scheduler.js';
import { JobEndpoint, type JobArchive } from '../../app/job-endpoint.js';
import type { RunService } from '../../app/run-service.js';
import { jobSpec, type JobRow } from '../../app/store/store.js';
import type { Gpu, MachineResources } from '../../shared/resources.js';
import { referencedSecrets } from '../../shared/secrets.js';

export interface LocalWorkerOptions {
  service: RunService;
  resources: MachineResources;
  workRoot: string;
  /** The run's snapshot of the user's folder, taken when it was submitted. */
  sourceDir: string;
  repo: string;
  graceSeconds?: number;
  isolation: Isolation;
  /** Labels this machine's containers (see agent/docker/run-container.ts). */
  owner: string;
  docker: () => Promise<Docker>;
  /** Secret values, read when a job starts. */
  secrets: () => Record<string, string>;
}

/** Every `dstack` process on this machine shares its CPUs, memory and GPUs: one agent id for all. */
export const LOCAL_AGENT_ID = 'local';

/** The in-process agent of local mode: runs jobs with the agent's JobRunner, straight on the stores. */
export class LocalWorker implements Agent {
  readonly id = LOCAL_AGENT_ID;
  readonly resources: MachineResources;
  /** Copies of the run's snapshot under way. */
  private readonly copies = new Set<Promise<void>>();
  /** Jobs this worker has started (their status may not say so yet). */
  private readonly started = new Set<string>();

  constructor(private readonly options: LocalWorkerOptions) {
    this.resources = options.resources;
  }

  start(job: JobRow, gpus: Gpu[]): StartedJob {
    this.started.add(job.id);
    const workflow = jobSpec(job);
    const values = this.options.secrets();
    const secrets = Object.fromEntries(referencedSecrets(workflow).map((name) => [name, values[name] ?? '']));
    const runner = new JobRunner({ jobId: job.id, runName: job.run_name, workflow, gpus: gpus.map((g) => g.index), secrets }, this.io(job), {
      workRoot: this.options.workRoot,
      graceSeconds: this.options.graceSeconds,
      isolation: this.options.isolation,
      owner: this.options.owner,
      docker: this.options.docker,
    });
    return { done: runner.run(), stop: (mode) => runner.stop(mode) };
  }

  /**
   * A job gets the run's snapshot: the last job of the run to start takes it whole (a rename), so a
   * one-job run copies the folder once, at submit; a job that others will still start after gets a
   * copy (reflinked where the file system can).
   */
  private async checkout(job: JobRow, dest: string): Promise<void> {
    const { service, sourceDir } = this.options;
    const othersToStart = service.view(job.run_name).jobs.some((j) => j.id !== job.id && j.status === 'submitted' && !this.started.has(j.id));
    if (othersToStart) {
      const copy = copyTree(sourceDir, dest);
      this.copies.add(copy);
      try {
        await copy;
      } finally {
        this.copies.delete(copy);
      }
      return;
    }
    // Copies still reading the snapshot finish first.
    await Promise.allSettled(this.copies);
    await fsp.rm(dest, { recursive: true, force: true });
    await fsp.rename(sourceDir, dest);
  }

  /** The job's I/O: straight to the app's endpoint for it; the code comes from the run's snapshot. */
  private io(job: JobRow): JobIO {
    const endpoint = new JobEndpoint(this.options.service, job, this.options.repo);
    const refs = (list: JobArchive[]) => list.map((a) => ({ path: a.path, open: () => endpoint.open(a.archive) }));
    return {
      setStatus: (status, fields) => endpoint.setStatus(status, fields),
      // Stored at once: a slow terminal catches up from the log file (see LogPrinter), so the job
      // is never held back by it. A copy: the chunk is lent, and log followers keep what they are sent.
      log: (chunk) => void endpoint.appendLog(chunk.seq, Buffer.from(chunk.data)),
      portOpen: (port) => endpoint.portOpen(port),
      checkout: (dest) => this.checkout(job, dest),
      dependencies: async () => refs(endpoint.dependencies()),
      caches: async () => refs(endpoint.caches()),
      putArtifact: (p, stream, size) => endpoint.putArtifact(p, stream, size),
      putCache: (p, stream, size) => endpoint.putCache(p, stream, size),
    };
  }

}

export function runSourceDir(runsDir: string, runName: string): string {
  return path.join(runsDir, runName, 'source');
}
