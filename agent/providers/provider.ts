import type { ResolvedWorkflow } from '../../shared/workflow/types.js';
import type { RegistryAuth } from '../docker/pull.js';
import type { JobAssignment } from '../job-io.js';

/** Where the job's files are, as the job's own process sees them (on the host, or in a container). */
export interface JobPaths {
  /** The job's private folder: scripts, virtualenvs, `bin/`. */
  jobDir: string;
  /** The folder the job runs in: the copy of the repository, at `working_dir`. */
  cwd: string;
  home: string;
}

export interface ContainerOptions {
  image: string;
  auth?: RegistryAuth;
  entrypoint?: string[];
  cmd?: string[];
  /** The first signal of a stop (default SIGINT, as on the host). */
  stopSignal?: NodeJS.Signals;
}

export interface ProviderContext {
  job: JobAssignment;
  /** The workflow with its secrets put in. */
  workflow: ResolvedWorkflow;
  /** `host`: a process under a pty on this machine; `docker`: a container (see isolation). */
  isolation: 'host' | 'docker';
  paths: JobPaths;
  /** The job's folder on this machine, to write files the job will see under `paths.jobDir`. */
  hostJobDir: string;
  /** The job's environment, for where it runs; providers may add to it before starting. */
  env: Record<string, string>;
  output(data: Buffer): void;
  note(line: string): void;
  /** Runs lines of shell in one shell that stops at the first failure, where the isolation says. */
  shell(lines: string[]): Promise<RunningProvider>;
  /** Runs a container with the job's folder mounted, limits, GPUs and ports applied. */
  container(options: ContainerOptions): Promise<RunningProvider>;
}

/** A started provider: how it ends, and how to signal it. */
export interface RunningProvider {
  exited: Promise<number>;
  signal(sig: NodeJS.Signals): void;
  pause(): void;
  resume(): void;
  /**
   * Whether a pause holds up only the reading of the output, never the job: its output waits in a
   * file of its own meanwhile (the pty made by util-linux `script`).
   */
  pauseIsFree?: boolean;
}

/** Starts a job's work; throws a DstackError when it cannot start (e.g. a missing interpreter). */
export type Provider = (ctx: ProviderContext) => Promise<RunningProvider>;
