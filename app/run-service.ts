import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { DstackError } from '../shared/errors.js';
import { isFinal, runStatus, type JobStatus } from '../shared/job-status.js';
import { newRunName } from '../shared/run-names.js';
import type { MachineResources } from '../shared/resources.js';
import type { Resources, ResolvedWorkflow } from '../shared/workflow/types.js';
import { ArchiveStore, digest } from './archive-store.js';
import { LogStore } from './log-store.js';
import { jobSpec, type ArtifactRow, type CacheRow, type Claim, type JobRow, type JobStatusFields, type RunCursor, type RunPageQuery, type RunRow, type Store, type TagRow } from './store/store.js';

export interface RunView {
  run: RunRow;
  status: JobStatus;
  jobs: JobRow[];
  tags: string[];
}

export interface SubmitInput {
  repo: string;
  workflow: string;
  args: string;
  runName: string;
  /** The workflows to run, dependencies first. */
  plan: ResolvedWorkflow[];
  executor: string | null;
  isolation?: string | null;
  /** Whose agents may run the jobs; none in local mode. */
  owner?: string | null;
  /** Where a remote run's code is. */
  source?: RunSource;
  /** Sealed secret values (see app/auth/sealed.ts), for the run's jobs. */
  secrets?: string | null;
}

/** A remote run's code: the commit an agent fetches, and the stored patch it applies (archive key). */
export interface RunSource {
  repoUrl: string;
  commit: string;
  patch: string | null;
  /** The agent asks the server for a token to fetch the code with (a private repository of the GitHub App's). */
  credentials?: boolean;
  /** A fork's pull request: code anyone may have written, which host-isolation agents decline (see the offer's `source.untrusted`). */
  untrusted?: boolean;
}

export interface RunServiceEvents {
  /** A run was submitted. */
  run: [RunView];
  job: [JobRow];
  /** A job's chunk as stored, and the offset in its log where it starts. */
  log: [string, Buffer, number];
  port: [string, number];
  /** A run was tagged (run name, tag): front doors publish it (the GitHub App makes a release). */
  tag: [string, string];
}

/**
 * Runs and jobs: submitting, status changes, logs, tags, artifacts and caches. It knows nothing of
 * GitHub or of how jobs are executed; front doors listen to its events.
 */
export class RunService extends EventEmitter<RunServiceEvents> {
  constructor(private readonly store: Store, private readonly logs: LogStore, private readonly archives: ArchiveStore) {
    super();
  }

  /** Records which process executes a run (local mode's detached runs). */
  setExecutor(runName: string, executor: string | null): void {
    this.store.setExecutor(runName, executor);
  }

  /** Up to `max` bytes of a job's stored log from `offset`. */
  readLog(jobId: string, offset: number, max?: number): Buffer {
    return this.logs.read(jobId, offset, max);
  }

  /** The highest log `seq` stored for a job: what an agent is acknowledged up to. */
  lastLogSeq(jobId: string): number {
    return this.logs.lastSeq(jobId);
  }

  logSize(jobId: string): number {
    return this.logs.size(jobId);
  }

  /** A stored archive (an artifact or a cache), streamed. */
  openArchive(archive: string): Readable {
    return this.archives.open(archive);
  }

  /** Every tag of an owner (null: local mode's) with its run's workflow, newest first. */
  listTags(owner: string | null = null): (TagRow & { workflow: string })[] {
    return this.store.listTags(owner ?? '').map((t) => ({ ...t, workflow: this.view(t.run_name).run.workflow }));
  }

  /** The artifacts a job gets from its dependencies: in-run ones and tagged runs'. */
  dependencyArtifacts(job: JobRow): ArtifactRow[] {
    return this.dependencyJobs(job).flatMap((dep) => this.store.artifactsOf(dep.id));
  }

  /** The cached folders of a workflow in a repository. */
  cachesOf(repo: string, workflow: string): CacheRow[] {
    return this.store.cachesOf(repo, workflow);
  }

  newRunName(): string {
    return newRunName((prefix) => this.store.countRunsWithPrefix(prefix));
  }

  submit(input: SubmitInput): RunView {
    const now = Date.now();
    this.store.transaction(() => {
      this.store.insertRun({
        name: input.runName,
        repo: input.repo,
        workflow: input.workflow,
        args: input.args,
        submitted_at: now,
        executor: input.executor,
        isolation: input.isolation ?? null,
        owner: input.owner ?? null,
        source: input.source ? JSON.stringify(input.source) : null,
        secrets: input.secrets ?? null,
      });
      input.plan.forEach((wf, position) => {
        this.store.insertJob({
          id: `${input.runName}-${position}`,
          run_name: input.runName,
          workflow: wf.name,
          position,
          status: 'submitted',
          spec: JSON.stringify(wf),
          submitted_at: now,
        });
      });
    });
    const view = this.view(input.runName);
    this.emit('run', view);
    return view;
  }

  setJobStatus(jobId: string, status: JobStatus, fields: JobStatusFields = {}): void {
    this.store.setJobStatus(jobId, status, fields);
    const job = this.store.getJob(jobId)!;
    if (isFinal(status)) {
      // Its end comes after its last log chunk: a server with thousands of jobs keeps no file open for those that ended.
      this.logs.close(jobId);
      // Secrets, and the code patch of a remote run, are kept only while a job may still need them.
      if (this.store.liveJobCount(job.run_name) === 0) {
        this.store.clearSecrets(job.run_name);
        const patch = this.sourceOf(this.store.getRun(job.run_name)!)?.patch;
        if (patch) this.archives.remove(patch);
      }
    }
    this.emit('job', job);
  }

  /** Gives back what a job claimed on an agent (an offer that was not taken): it waits again. */
  releaseResources(jobId: string): void {
    this.store.releaseResources(jobId);
  }

  /** Jobs holding a claim on an agent that have not ended (a restarted server waits for their agents). */
  jobsOnAgents(): JobRow[] {
    return this.store.jobsOnAgents();
  }

  /** A remote run's code, or undefined for a local run. */
  sourceOf(run: RunRow): RunSource | undefined {
    return run.source ? (JSON.parse(run.source) as RunSource) : undefined;
  }

  /** Jobs waiting for an agent, oldest first (only those of `runs` when given). */
  submittedJobs(runs?: readonly string[]): JobRow[] {
    return this.store.submittedJobs(runs);
  }

  /** Claims what a job needs on an agent, if it has room (see Store.claimResources). */
  claimResources(jobId: string, agent: string, capacity: MachineResources, need: Resources): Claim {
    return this.store.claimResources(jobId, agent, capacity, need);
  }

  appendLog(jobId: string, seq: number, data: Buffer): void {
    const offset = this.logs.end(jobId);
    if (this.logs.append(jobId, seq, data)) this.emit('log', jobId, data, offset);
  }

  portOpen(jobId: string, port: number): void {
    this.emit('port', jobId, port);
  }

  /** A run with its jobs and tags; with `owner`, another owner's run is as unknown as a missing one. */
  view(name: string, owner?: string | null): RunView {
    const view = this.findRun(name);
    if (!view || (owner != null && view.run.owner !== owner)) throw this.unknownRun(name);
    return view;
  }

  /** A run's own row (no jobs, no tags), or undefined when there is none of that name. */
  runRow(name: string): RunRow | undefined {
    return this.store.getRun(name);
  }

  /** A run with its jobs and tags, or undefined when there is none of that name. */
  findRun(name: string): RunView | undefined {
    const run = this.store.getRun(name);
    if (!run) return undefined;
    const jobs = this.store.jobsOf(name);
    return { run, status: runStatus(jobs), jobs, tags: this.store.tagsOf(name) };
  }

  job(id: string): JobRow | undefined {
    return this.store.getJob(id);
  }

  /** One page of runs, newest first, with their jobs and tags (three queries, whatever the page). */
  listRuns(query: RunPageQuery): RunView[] {
    const runs = this.store.listRuns(query);
    const names = runs.map((r) => r.name);
    const jobs = groupByRun(this.store.jobsOfRuns(names));
    const tags = groupByRun(this.store.tagsOfRuns(names));
    return runs.map((run) => {
      const own = jobs.get(run.name) ?? [];
      return { run, status: runStatus(own), jobs: own, tags: (tags.get(run.name) ?? []).map((t) => t.name) };
    });
  }

  /** Every run (or every live one), newest first, a page at a time, so a long history is never held whole. */
  *allRuns(query: Omit<RunPageQuery, 'after' | 'limit'> & { pageSize?: number } = {}): Generator<RunView> {
    let after: RunCursor | undefined;
    for (;;) {
      const page = this.listRuns({ live: query.live, limit: query.pageSize ?? 200, after });
      yield* page;
      if (page.length < (query.pageSize ?? 200)) return;
      const last = page.at(-1)!.run;
      after = { submitted_at: last.submitted_at, name: last.name };
    }
  }

  /** How many jobs there are of each status. */
  jobCounts(): Partial<Record<JobStatus, number>> {
    return this.store.jobCounts();
  }

  /** Every status change of a job, oldest first. */
  jobEvents(jobId: string) {
    return this.store.jobEvents(jobId);
  }

  /** `RUN` or `:TAG` (as `dstack artifacts` takes them) to a run of `owner` (null: local mode). */
  resolveRunRef(ref: string, owner: string | null = null): RunView {
    if (ref.startsWith(':')) {
      const tag = this.store.getTag(owner ?? '', ref.slice(1));
      if (!tag) throw this.unknownTag(ref.slice(1));
      return this.view(tag.run_name);
    }
    return this.view(ref, owner);
  }

  /** Marks every unfinished job of runs whose executing process is gone as aborted; returns those runs. */
  reconcile(isAlive: (executor: string) => boolean): string[] {
    const aborted: string[] = [];
    // Every command starts here: look only at runs that still have live jobs.
    for (const name of this.store.runsWithLiveJobs()) {
      const run = this.store.getRun(name)!;
      if (run.executor && isAlive(run.executor)) continue;
      for (const job of this.store.jobsOf(name).filter((j) => !isFinal(j.status))) {
        this.setJobStatus(job.id, 'aborted', { reason: `the dstack process running this job exited (${run.executor ?? 'unknown'})` });
      }
      aborted.push(name);
    }
    return aborted;
  }

  tag(runName: string, tag: string): { moved?: string } {
    const view = this.view(runName);
    if (!isFinal(view.status)) {
      throw new DstackError('DSTACK_ERR_RUN_ACTIVE', `run '${runName}' is still ${view.status}; tag it once it has finished`);
    }
    const scope = view.run.owner ?? '';
    const previous = this.store.getTag(scope, tag);
    this.store.transaction(() => {
      if (previous) this.store.deleteTag(scope, tag);
      this.store.setTag(scope, tag, runName);
    });
    this.emit('tag', runName, tag);
    return previous && previous.run_name !== runName ? { moved: previous.run_name } : {};
  }

  untag(tag: string, owner: string | null = null): void {
    if (!this.store.deleteTag(owner ?? '', tag)) throw this.unknownTag(tag);
  }

  /** The job of `workflow` in the run of `owner` tagged `tag`, for `depends-on: workflow:tag`. */
  taggedJob(workflow: string, tag: string, owner: string | null = null): JobRow {
    const row = this.store.getTag(owner ?? '', tag);
    if (!row) throw this.unknownTag(tag, `depends-on '${workflow}:${tag}'`);
    const job = this.store.jobsOf(row.run_name).find((j) => j.workflow === workflow);
    if (!job) {
      throw new DstackError(
        'DSTACK_ERR_TAG_UNKNOWN',
        `depends-on '${workflow}:${tag}': the run tagged '${tag}' (${row.run_name}) has no '${workflow}' job; tag a run of '${workflow}' with 'dstack tag RUN ${tag}'`,
      );
    }
    return job;
  }

  artifactsOfRun(name: string): (ArtifactRow & { workflow: string })[] {
    return this.store.jobsOf(name).flatMap((j) => this.store.artifactsOf(j.id).map((a) => ({ ...a, workflow: j.workflow })));
  }

  async putArtifact(jobId: string, artifactPath: string, stream: Readable, size: { files: number; bytes: number }): Promise<void> {
    const job = this.store.getJob(jobId)!;
    const archive = await this.archives.put(`artifacts/${job.run_name}/${jobId}/${digest(artifactPath)}.tar`, stream);
    this.store.putArtifact({ job_id: jobId, path: artifactPath, archive, ...size });
  }

  async putCache(repo: string, workflow: string, cachePath: string, stream: Readable, size: { bytes: number }): Promise<void> {
    const archive = await this.archives.put(`cache/${digest(repo)}/${digest(workflow)}/${digest(cachePath)}.tar`, stream);
    this.store.putCache({ repo, workflow, path: cachePath, archive, bytes: size.bytes, updated_at: Date.now() });
  }

  /** Stores a remote run's patch (`git diff --binary`, streamed) as an owner's; returns its id for `patchKey`. */
  async putPatch(owner: string, stream: Readable): Promise<string> {
    const id = randomBytes(12).toString('hex');
    await this.archives.put(patchArchive(owner, id), stream);
    return id;
  }

  /**
   * Removes patches uploaded more than `olderThanMs` ago that no unfinished run refers to: those
   * of runs never submitted (a client that gave up between upload and submit).
   */
  prunePatches(olderThanMs: number, now = Date.now()): number {
    const live = new Set<string>();
    for (const name of this.store.runsWithLiveJobs()) {
      const patch = this.sourceOf(this.store.getRun(name)!)?.patch;
      if (patch) live.add(patch);
    }
    let removed = 0;
    for (const key of this.archives.list('patches')) {
      if (live.has(key) || now - this.archives.modifiedAt(key) < olderThanMs) continue;
      this.archives.remove(key);
      removed++;
    }
    return removed;
  }

  /** The archive key of an owner's stored patch, or undefined when that owner has no such patch. */
  patchKey(owner: string, id: string): string | undefined {
    if (!/^[0-9a-f]{24}$/.test(id)) return undefined;
    const key = patchArchive(owner, id);
    return this.archives.exists(key) ? key : undefined;
  }

  /**
   * Gives an owner's uploaded patch to one run: it moves to a key of the run's, so the same id
   * used again (a retried submit) is unknown rather than shared, and the run's end removes only
   * its own. Returns the new key, or undefined when the owner has no such patch.
   */
  takePatch(owner: string, id: string, runName: string): string | undefined {
    const key = this.patchKey(owner, id);
    if (!key) return undefined;
    return this.archives.rename(key, `patches/${digest(owner)}/runs/${digest(runName)}.patch`);
  }

  pruneCache(repo: string, workflow: string): number {
    const rows = this.store.deleteCaches(repo, workflow);
    for (const r of rows) this.archives.remove(r.archive);
    return rows.length;
  }

  /** The jobs whose artifacts a job gets: its in-run dependencies and tagged runs' jobs. */
  dependencyJobs(job: JobRow): JobRow[] {
    const siblings = this.store.jobsOf(job.run_name);
    const owner = this.store.getRun(job.run_name)!.owner;
    return jobSpec(job).dependsOn.map((dep) =>
      dep.tag ? this.taggedJob(dep.workflow, dep.tag, owner) : siblings.find((s) => s.workflow === dep.workflow)!,
    );
  }

  private unknownRun(name: string): DstackError {
    return new DstackError('DSTACK_ERR_RUN_UNKNOWN', `unknown run '${name}'; 'dstack ps -a' lists runs`);
  }

  private unknownTag(tag: string, context?: string): DstackError {
    return new DstackError('DSTACK_ERR_TAG_UNKNOWN', `${context ? `${context}: ` : ''}unknown tag '${tag}'; 'dstack tags' lists tags, 'dstack tag RUN ${tag}' makes one`);
  }
}

/** Patches are kept per owner, so one owner's patch id means nothing to another. */
function patchArchive(owner: string, id: string): string {
  return `patches/${digest(owner)}/${id}.patch`;
}

/** Rows by their run (Map.groupBy needs Node 21). */
function groupByRun<T extends { run_name: string }>(rows: T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const row of rows) {
    const list = out.get(row.run_name);
    if (list) list.push(row);
    else out.set(row.run_name, [row]);
  }
  return out;
}
