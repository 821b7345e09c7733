import path from 'node:path';
import type Docker from 'dockerode';
import { JobRunner, type Isolation } from '../../agent/job-runner.js';
import type { JobIO } from '../../agent/job-io.js';
import { copySource } from '../../agent/source-copy.js';
import type { Agent, StartedJob } from '../../app/scheduler/scheduler.js';
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

  constructor(private readonly options: LocalWorkerOptions) {
    this.resources = options.resources;
  }

  start(job: JobRow, gpus: Gpu[]): StartedJob {
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

  private io(job: JobRow): JobIO {
    const { service, sourceDir, repo } = this.options;
    const archives = service.archives;
    return {
      setStatus: (status, fields) => service.setJobStatus(job.id, status, fields),
      // Stored at once: a slow terminal catches up from the log file (see LogPrinter), so the job
      // is never held back by it.
      log: (chunk) => service.appendLog(job.id, chunk.seq, chunk.data),
      portOpen: (port) => service.portOpen(job.id, port),
      checkout: async (dest) => {
        await copySource(sourceDir, dest);
      },
      dependencies: async () =>
        service.dependencyJobs(job).flatMap((dep) => service.store.artifactsOf(dep.id).map((a) => ({ path: a.path, open: () => archives.open(a.archive) }))),
      caches: async () => service.store.cachesOf(repo, job.workflow).map((c) => ({ path: c.path, open: () => archives.open(c.archive) })),
      putArtifact: (p, stream, size) => service.putArtifact(job.id, p, stream, size),
      putCache: (p, stream, size) => service.putCache(repo, job.workflow, p, stream, size),
    };
  }
}

export function runSourceDir(runsDir: string, runName: string): string {
  return path.join(runsDir, runName, 'source');
}
