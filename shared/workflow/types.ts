import type { ProviderName, WorkflowSpec } from './schema.js';
import type { Position } from './yaml-file.js';

export interface Dependency {
  workflow: string;
  /** `prepare:latest` takes the artifacts of the run tagged `latest` instead of running `prepare`. */
  tag?: string;
}

export interface GpuRequest {
  count: number;
  name?: string;
  memoryMiB?: number;
}

export interface Resources {
  cpu?: number;
  memoryMiB?: number;
  gpu: GpuRequest;
  shmSizeMiB?: number;
  interruptible: boolean;
  /** Labels the agent must have (ignored in local mode, where this machine is the only agent). */
  labels?: string[];
}

/** One workflow with every expression resolved and every path checked: what a job runs. */
export interface ResolvedWorkflow {
  name: string;
  provider: ProviderName;
  /** The validated, interpolated entry of the workflows file. */
  spec: WorkflowSpec;
  dependsOn: Dependency[];
  /** Folder the job runs in, relative to the repository root (`.` for the root). */
  workingDir: string;
  /** Artifact folders relative to the repository root. */
  artifacts: string[];
  /** Cache folders: relative to the repository root, or `~/…` for the job's home. */
  cache: string[];
  ports: number[];
  env: Record<string, string>;
  resources: Resources;
  position: Position;
  /**
   * The run's arguments as typed: the job's shell gets them as its positional parameters, which
   * `${{ run.args }}` in a command refers to (absent in runs stored before it was added).
   */
  runArgs?: string[];
  /** For a workflow that uses a custom provider: which one, at which commit. */
  customProvider?: { repo: string; name: string; ref?: string; commit: string };
}
