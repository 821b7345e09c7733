import type { Readable } from 'node:stream';
import type { JobStatus } from '../shared/job-status.js';
import type { ResolvedWorkflow } from '../shared/workflow/types.js';
import type { LogSink } from './log-streamer.js';

/** A job as the runner gets it: what to run, and the GPUs it may use. */
export interface JobAssignment {
  jobId: string;
  runName: string;
  workflow: ResolvedWorkflow;
  /** GPU indices for CUDA_VISIBLE_DEVICES. */
  gpus: number[];
  /** Values of the secrets the workflow refers to: put in when the job starts, masked in its log. */
  secrets: Record<string, string>;
  /** The first log chunk's `seq` (default 1). */
  firstLogSeq?: number;
}

/** An archive the runner unpacks into the job: a dependency's artifact or a cached folder. */
export interface ArchiveRef {
  /** Folder relative to the repository root, or `~/…` for the job's home. */
  path: string;
  open(): Readable;
}

export interface StatusFields {
  reason?: string | null;
  exit_code?: number | null;
}

/**
 * Everything a job runner needs from outside: its status and logs go out, code and archives come
 * in, artifacts and caches go out as streams. Local mode writes straight to the stores; a remote
 * agent does the same over the WebSocket and HTTP.
 */
export interface JobIO {
  /** Resolves once the status has gone out (stored in local mode, sent to the server remotely). */
  setStatus(status: JobStatus, fields?: StatusFields): Promise<void>;
  log: LogSink;
  /**
   * The job's output can wait for free (RunningProvider.pauseIsFree): the log may ask for a pause
   * as soon as its memory is used, rather than spooling to disk first (what a job that would be
   * held up by a pause needs).
   */
  logMayPause?(): void;
  portOpen(port: number): void;
  checkout(dest: string): Promise<void>;
  /** The job is done with its code at `dest` (an agent keeps the tree to check out again); without it, the folder is just removed. */
  releaseCheckout?(dest: string): Promise<void>;
  dependencies(): Promise<ArchiveRef[]>;
  caches(): Promise<ArchiveRef[]>;
  putArtifact(path: string, archive: Readable, size: { files: number; bytes: number }): Promise<void>;
  putCache(path: string, archive: Readable, size: { files: number; bytes: number }): Promise<void>;
}
