import type { JobAssignment } from '../job-io.js';

export interface ProviderContext {
  job: JobAssignment;
  /** The folder the job runs in (the copy of the repository, at `working_dir`). */
  cwd: string;
  /** The job's private folder for scripts and virtualenvs, outside the work tree. */
  jobDir: string;
  env: Record<string, string>;
  output(data: Buffer): void;
  note(line: string): void;
}

/** A started provider: how it ends, and how to signal it. */
export interface RunningProvider {
  exited: Promise<number>;
  signal(sig: NodeJS.Signals): void;
  pause(): void;
  resume(): void;
}

/** Starts a job's work; throws a DstackError when it cannot start (e.g. a missing interpreter). */
export type Provider = (ctx: ProviderContext) => Promise<RunningProvider>;
