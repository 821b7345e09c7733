import type { Readable } from 'node:stream';
import type { JobStatus } from '../shared/job-status.js';
import type { RunService } from './run-service.js';
import type { JobRow } from './store/store.js';

/** An archive a job gets (a dependency's artifact, a cached folder), by the path it unpacks at. */
export interface JobArchive {
  /** Folder relative to the repository root, or `~/…` for the job's home. */
  path: string;
  /** The stored archive, for `open`. */
  archive: string;
}

/**
 * The app's half of the job contract: what the agent running one job reports and asks for. The
 * in-process agent of local mode calls it directly; the agent hub calls it for a remote agent's
 * messages and HTTP requests. Everything goes through the run service, so both front doors see
 * the same events.
 */
export class JobEndpoint {
  constructor(
    private readonly service: RunService,
    readonly job: JobRow,
    /** The repository the job's caches belong to. */
    private readonly repo: string,
  ) {}

  async setStatus(status: JobStatus, fields?: { reason?: string | null; exit_code?: number | null }): Promise<void> {
    this.service.setJobStatus(this.job.id, status, fields);
  }

  /** Stores a log chunk (a resent one is dropped); returns the highest `seq` stored, to acknowledge. */
  appendLog(seq: number, data: Buffer): number {
    this.service.appendLog(this.job.id, seq, data);
    return this.service.lastLogSeq(this.job.id);
  }

  portOpen(port: number): void {
    this.service.portOpen(this.job.id, port);
  }

  dependencies(): JobArchive[] {
    return this.service.dependencyArtifacts(this.job).map((a) => ({ path: a.path, archive: a.archive }));
  }

  caches(): JobArchive[] {
    return this.service.cachesOf(this.repo, this.job.workflow).map((c) => ({ path: c.path, archive: c.archive }));
  }

  open(archive: string): Readable {
    return this.service.openArchive(archive);
  }

  putArtifact(path: string, stream: Readable, size: { files: number; bytes: number }): Promise<void> {
    return this.service.putArtifact(this.job.id, path, stream, size);
  }

  putCache(path: string, stream: Readable, size: { bytes: number }): Promise<void> {
    return this.service.putCache(this.repo, this.job.workflow, path, stream, size);
  }
}
