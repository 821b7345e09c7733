import type { Readable } from 'node:stream';
import type { RunView } from '../../app/run-service.js';
import type { StopMode } from '../../app/scheduler/scheduler.js';
import type { RunCursor } from '../../app/store/store.js';
import type { JobStatus } from '../../shared/job-status.js';
import type { ResolvedWorkflow } from '../../shared/workflow/types.js';
import type { LogPrinter } from '../output/log-printer.js';

/** A status change of a job, as `--json` shows them. */
export interface JobEvent {
  status: JobStatus;
  reason: string | null;
  at: number;
}

/** A run as a command sees it; with `events` (each job's status changes) when they were asked for. */
export type ClientRun = RunView & { events?: Record<string, JobEvent[]> };

export interface RunListQuery {
  /** Only runs with a job that has not ended. */
  live?: boolean;
  limit: number;
  after?: RunCursor;
  /** Each job's status changes too (for `--json`). */
  events?: boolean;
}

export interface TagInfo {
  name: string;
  run_name: string;
  workflow: string;
  created_at: number;
}

export interface ArtifactInfo {
  workflow: string;
  jobId: string;
  path: string;
  files: number;
  bytes: number;
}

/** What `dstack logs` writes to: a job's output, and a promise while the reader is behind. */
export interface LogSink {
  write(jobId: string, data: Buffer): void;
  backpressure(): Promise<void> | undefined;
  readonly closed: boolean;
}

export interface SubmitRequest {
  /** The repository folder (the one with `.dstack/`). */
  root: string;
  workflow: string;
  /** `${{ run.args }}` shell-joined. */
  args: string;
  runName: string;
  /** The workflows to run, dependencies first, resolved here. */
  plan: ResolvedWorkflow[];
  /** `-d`: leave the run to run elsewhere (local mode: a background process). */
  detach: boolean;
  /** Local mode's `--isolation` and `--image` (a server's agents decide for themselves). */
  isolation?: string;
  image?: string;
}

/**
 * Everything the `dstack` commands ask of runs, whichever mode they are in: `LocalClient` opens
 * this machine's state and runs jobs in-process; `RemoteClient` talks to a `dstack-app` server
 * with a user token. A command is written once, against this.
 */
export interface DstackClient {
  readonly mode: 'local' | 'remote';
  /** One page of runs, newest first. */
  listRuns(query: RunListQuery): Promise<ClientRun[]>;
  /** A run with its jobs (and their status changes); DSTACK_ERR_RUN_UNKNOWN when there is none. */
  getRun(name: string): Promise<ClientRun>;
  /** Writes a run's logs from the start of each job's log; with `follow`, until the run ends. Resolves with the run as it is then. */
  readLogs(name: string, sink: LogSink, opts: { follow: boolean }): Promise<RunView>;
  /** Asks the run to stop (as Ctrl+C) or abort; does not wait. */
  stop(name: string, mode: StopMode): Promise<void>;
  /** Resolves with the run once it has ended, or undefined if it has not within `ms`. */
  waitForEnd(name: string, ms: number): Promise<RunView | undefined>;
  tag(name: string, tag: string): Promise<{ moved?: string }>;
  untag(tag: string): Promise<void>;
  listTags(): Promise<TagInfo[]>;
  /** The artifacts of `RUN` or `:TAG`, with the run's name. */
  listArtifacts(ref: string): Promise<{ run: string; artifacts: ArtifactInfo[] }>;
  /** One artifact's tar archive, streamed. */
  openArtifact(run: string, artifact: ArtifactInfo): Promise<Readable>;
  /** Empties a workflow's cache for the repository at `root`; resolves with how many folders were dropped. */
  pruneCache(root: string, workflow: string): Promise<number>;
  /** A name for a new run (`${{ run.name }}` is resolved with it). */
  newRunName(): Promise<string>;
  /** Starts reading what a submit of the folder at `root` needs (remote mode: the code to send), while the run is planned. */
  prepare?(root: string): void;
  /** Submits a run; with `detach` it goes on elsewhere. */
  submit(request: SubmitRequest): Promise<RunView>;
  /**
   * Follows a run this process submitted until it ends, its output going to `printer`: local mode
   * runs its jobs here, remote mode streams them from the server. `stop` reaches it meanwhile.
   * Remote mode stops following when `signal` aborts (the promise then rejects).
   */
  attach(name: string, printer?: LogPrinter, colors?: boolean, signal?: AbortSignal): Promise<RunView>;
  /** What local mode reads a stored log with, so a slow terminal catches up from disk. */
  readonly logSource?: (jobId: string, offset: number, max: number) => Buffer;
  /** Tidies up after runs of a `dstack` that died (local mode); nothing for a server. */
  sweep(): Promise<void>;
  close(): void;
}

/** Every run (or every live one; or the newest `max`), newest first, a page at a time, so a long history is never held whole. */
export async function* runPages(client: DstackClient, query: Omit<RunListQuery, 'limit' | 'after'>, pageSize: number, max = Infinity): AsyncGenerator<ClientRun[]> {
  let after: RunCursor | undefined;
  for (let left = max; left > 0; ) {
    const limit = Math.min(pageSize, left);
    const page = await client.listRuns({ ...query, limit, after });
    if (page.length > 0) yield page;
    left -= page.length;
    if (page.length < limit) return;
    const last = page.at(-1)!.run;
    after = { submitted_at: last.submitted_at, name: last.name };
  }
}
