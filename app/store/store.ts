import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { DstackError } from '../../shared/errors.js';
import { FINAL_STATUSES, JOB_STATUSES, type JobStatus } from '../../shared/job-status.js';
import { allocate, type Gpu, type MachineResources } from '../../shared/resources.js';
import type { ResolvedWorkflow } from '../../shared/workflow/types.js';
import { MIGRATIONS } from './migrations.js';

export interface RunRow {
  name: string;
  repo: string;
  workflow: string;
  args: string;
  submitted_at: number;
  executor: string | null;
  isolation: string | null;
  /** Whose agents may run the jobs (null in local mode: this machine's). */
  owner: string | null;
  /** Remote runs: `{repoUrl, commit, patch}` as JSON (see RunSource); null in local mode. */
  source: string | null;
  /** Secret values for the run's jobs, sealed with the server's key; cleared when the run ends. */
  secrets: string | null;
}

export interface JobRow {
  id: string;
  run_name: string;
  workflow: string;
  position: number;
  status: JobStatus;
  reason: string | null;
  exit_code: number | null;
  spec: string;
  /** GPU indices on the agent that runs the job, comma-separated. */
  gpus: string | null;
  /** What the job holds while it is not final: the agent, and what it claimed there. */
  agent: string | null;
  cpu: number | null;
  memory_mib: number | null;
  /** GPU UUIDs, comma-separated. */
  gpu_ids: string | null;
  submitted_at: number;
  started_at: number | null;
  finished_at: number | null;
  /** 1 when the job ended without all of its log stored (see `setJobStatus`'s `log_incomplete`). */
  log_incomplete: number;
}

/** What a status change records besides the status. */
export interface JobStatusFields {
  reason?: string | null;
  exit_code?: number | null;
  /** The job ends without all of its log stored: `dstack logs` says so. */
  log_incomplete?: boolean;
}

export interface ArtifactRow {
  job_id: string;
  path: string;
  archive: string;
  files: number;
  bytes: number;
}

export interface CacheRow {
  repo: string;
  workflow: string;
  path: string;
  archive: string;
  bytes: number;
  updated_at: number;
}

export interface TokenRow {
  id: string;
  owner: string;
  kind: 'agent' | 'user';
  hash: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface TagRow {
  /** Whose tag it is: '' in local mode. */
  owner: string;
  name: string;
  run_name: string;
  created_at: number;
}

/** `('done', 'failed', …)`: statuses as an SQL list (fixed strings, never user input). */
const sqlList = (statuses: Iterable<string>) => `(${[...statuses].map((s) => `'${s}'`).join(', ')})`;
const FINAL_SQL = sqlList(FINAL_STATUSES);
/** The statuses of jobs that have not ended: an IN list, so the status index answers it. */
const LIVE_SQL = sqlList(JOB_STATUSES.filter((s) => !FINAL_STATUSES.has(s)));

/** Where a page of runs starts: after this run, newest first. */
export interface RunCursor {
  submitted_at: number;
  name: string;
}

export interface RunPageQuery {
  /** Only runs with a job that has not ended. */
  live?: boolean;
  limit: number;
  /** The last run of the previous page. */
  after?: RunCursor;
  /** Only this owner's runs (a user of the server sees nothing else). */
  owner?: string;
}

/** What a job needs, as `allocate` takes it. */
type Need = Parameters<typeof allocate>[2];

/** A claim made, with the GPUs it got; or what was short, and which runs hold it (for the waiting reason). */
export type Claim = { ok: true; gpus: Gpu[] } | { ok: false; short: 'gpu' | 'cpu' | 'memory'; holders: string[] };

/** A file that is not (or no longer) a SQLite database: say which, and what to do. */
function damaged(file: string, err: unknown): DstackError | undefined {
  const code = (err as { code?: unknown }).code;
  if (code !== 'SQLITE_NOTADB' && code !== 'SQLITE_CORRUPT') return undefined;
  return new DstackError(
    'DSTACK_ERR_STORE_DAMAGED',
    `${file} is damaged (${(err as Error).message}): move it away (mv ${file} ${file}.damaged) and run again; the runs recorded in it, and their logs and artifacts, are lost`,
    { cause: err },
  );
}

export function jobSpec(job: JobRow): ResolvedWorkflow {
  return JSON.parse(job.spec) as ResolvedWorkflow;
}

/**
 * Runs, jobs, their status history, tags, artifacts' and caches' index. Plain SQL behind one
 * interface; SQLite in WAL mode so a CLI in another terminal can read while a run writes.
 */
export class Store {
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(readonly file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    try {
      // First, so that every later step waits for another process rather than failing at once.
      this.db.pragma('busy_timeout = 5000');
      this.db.pragma('journal_mode = WAL');
      // In WAL mode NORMAL survives a crash of the process; only a power cut may lose the last commits.
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.migrate();
    } catch (err) {
      this.db.close();
      throw damaged(file, err) ?? err;
    }
  }

  /**
   * Brings the schema up to date in one write transaction, reading the version inside it: several
   * `dstack` processes opening a new home at once take turns, and only the first migrates.
   */
  private migrate(): void {
    this.db
      .transaction(() => {
        this.db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
        const row = this.db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
        if (!row) this.db.prepare('INSERT INTO schema_version (version) VALUES (0)').run();
        for (let version = row?.version ?? 0; version < MIGRATIONS.length; version++) {
          this.db.exec(MIGRATIONS[version]!);
          this.db.prepare('UPDATE schema_version SET version = ?').run(version + 1);
        }
      })
      .immediate();
  }

  close(): void {
    this.statements.clear();
    this.db.close();
  }

  /**
   * A prepared statement, made once per SQL text: preparing is most of a small query's cost, and a
   * listing of thousands of runs would otherwise leave thousands of statements for the GC.
   */
  private stmt(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /**
   * Plain SQL on the tables of a front door (the GitHub App's, in MIGRATIONS like every table), with
   * the same statement cache, so the store need not know their rows. Named parameters: `@name`.
   */
  query<T>(sql: string, params: Record<string, unknown> | unknown[] = []): T[] {
    return (Array.isArray(params) ? this.stmt(sql).all(...params) : this.stmt(sql).all(params)) as T[];
  }

  /** As `query`, for a statement that writes; returns how many rows it changed. */
  execute(sql: string, params: Record<string, unknown> | unknown[] = []): number {
    return (Array.isArray(params) ? this.stmt(sql).run(...params) : this.stmt(sql).run(params)).changes;
  }

  countRunsWithPrefix(prefix: string): number {
    const row = this.stmt('SELECT COUNT(*) AS n FROM runs WHERE name LIKE ?').get(`${prefix}-%`) as { n: number };
    return row.n;
  }

  insertRun(run: Omit<RunRow, 'owner' | 'source' | 'secrets'> & Partial<Pick<RunRow, 'owner' | 'source' | 'secrets'>>): void {
    this
      .stmt(
        'INSERT INTO runs (name, repo, workflow, args, submitted_at, executor, isolation, owner, source, secrets) VALUES (@name, @repo, @workflow, @args, @submitted_at, @executor, @isolation, @owner, @source, @secrets)',
      )
      .run({ owner: null, source: null, secrets: null, ...run });
  }

  clearSecrets(runName: string): void {
    this.stmt('UPDATE runs SET secrets = NULL WHERE name = ? AND secrets IS NOT NULL').run(runName);
  }

  /** Jobs that hold a claim on an agent and have not ended: what a restarted server waits to hear about. */
  jobsOnAgents(): JobRow[] {
    return this.stmt(`SELECT * FROM jobs WHERE agent IS NOT NULL AND status IN ${LIVE_SQL}`).all() as JobRow[];
  }

  setExecutor(runName: string, executor: string | null): void {
    this.stmt('UPDATE runs SET executor = ? WHERE name = ?').run(executor, runName);
  }

  insertJob(job: Omit<JobRow, 'reason' | 'exit_code' | 'gpus' | 'agent' | 'cpu' | 'memory_mib' | 'gpu_ids' | 'started_at' | 'finished_at' | 'log_incomplete'>): void {
    this
      .stmt('INSERT INTO jobs (id, run_name, workflow, position, status, spec, submitted_at) VALUES (@id, @run_name, @workflow, @position, @status, @spec, @submitted_at)')
      .run(job);
    this.stmt('INSERT INTO job_events (job_id, status, reason, at) VALUES (?, ?, ?, ?)').run(job.id, job.status, null, job.submitted_at);
  }

  getRun(name: string): RunRow | undefined {
    return this.stmt('SELECT * FROM runs WHERE name = ?').get(name) as RunRow | undefined;
  }

  /** How many jobs of a run have not ended. */
  liveJobCount(runName: string): number {
    return (this.stmt(`SELECT COUNT(*) AS n FROM jobs WHERE run_name = ? AND status IN ${LIVE_SQL}`).get(runName) as { n: number }).n;
  }

  /**
   * One page of runs, newest first (by submission time, then name): what a listing shows costs
   * what it shows, however long the history.
   */
  listRuns(query: RunPageQuery): RunRow[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (query.live) where.push(`name IN (SELECT run_name FROM jobs WHERE status IN ${LIVE_SQL})`);
    if (query.owner !== undefined) {
      where.push('owner = ?');
      params.push(query.owner);
    }
    if (query.after) {
      where.push('(submitted_at < ? OR (submitted_at = ? AND name < ?))');
      params.push(query.after.submitted_at, query.after.submitted_at, query.after.name);
    }
    const sql = `SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY submitted_at DESC, name DESC LIMIT ?`;
    return this.stmt(sql).all(...params, query.limit) as RunRow[];
  }

  jobsOf(runName: string): JobRow[] {
    return this.stmt('SELECT * FROM jobs WHERE run_name = ? ORDER BY position').all(runName) as JobRow[];
  }

  /** The jobs of several runs at once (a page of a listing), in run and position order. */
  jobsOfRuns(runNames: readonly string[]): JobRow[] {
    if (runNames.length === 0) return [];
    return this
      .stmt(`SELECT * FROM jobs WHERE run_name IN (${runNames.map(() => '?').join(', ')}) ORDER BY run_name, position`)
      .all(...runNames) as JobRow[];
  }

  /** The tags of several runs at once. */
  tagsOfRuns(runNames: readonly string[]): TagRow[] {
    if (runNames.length === 0) return [];
    return this.stmt(`SELECT * FROM tags WHERE run_name IN (${runNames.map(() => '?').join(', ')}) ORDER BY name`).all(...runNames) as TagRow[];
  }

  /** Runs with at least one job that has not ended. */
  runsWithLiveJobs(): string[] {
    const rows = this
      .stmt(`SELECT DISTINCT run_name FROM jobs WHERE status IN ${LIVE_SQL}`)
      .all() as { run_name: string }[];
    return rows.map((r) => r.run_name);
  }

  getJob(id: string): JobRow | undefined {
    return this.stmt('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
  }

  /** Records a status change with its time and reason; the history stays in job_events. */
  setJobStatus(id: string, status: JobStatus, fields: JobStatusFields = {}): void {
    const now = Date.now();
    this.transaction(() => {
      const sets = ['status = @status', 'reason = @reason'];
      if (fields.log_incomplete) sets.push('log_incomplete = 1');
      if (status === 'downloading') sets.push('started_at = COALESCE(started_at, @now)');
      if (FINAL_STATUSES.has(status)) sets.push('finished_at = @now');
      if (fields.exit_code !== undefined) sets.push('exit_code = @exit_code');
      this.stmt(`UPDATE jobs SET ${sets.join(', ')} WHERE id = @id`)
        .run({ id, status, reason: fields.reason ?? null, exit_code: fields.exit_code ?? null, now });
      this.stmt('INSERT INTO job_events (job_id, status, reason, at) VALUES (?, ?, ?, ?)').run(id, status, fields.reason ?? null, now);
    });
  }

  /** Jobs waiting for an agent, oldest first; only those of `runs` when given. */
  submittedJobs(runs?: readonly string[]): JobRow[] {
    if (runs && runs.length === 0) return [];
    const filter = runs ? ` AND run_name IN (${runs.map(() => '?').join(', ')})` : '';
    return this
      .stmt(`SELECT * FROM jobs WHERE status = 'submitted'${filter} ORDER BY submitted_at, run_name, position`)
      .all(...(runs ?? [])) as JobRow[];
  }

  /**
   * Claims what a job needs on an agent, if it fits beside what the agent's other unfinished jobs
   * hold. Check and claim are one write transaction, so two schedulers sharing a machine (two
   * `dstack run`s) never hand out the same CPUs, memory or GPUs. A claim ends with its job.
   */
  claimResources(jobId: string, agent: string, capacity: MachineResources, need: Need): Claim {
    return this.db
      .transaction((): Claim => {
        const rows = this
          .stmt(`SELECT run_name, cpu, memory_mib, gpu_ids FROM jobs WHERE agent = ? AND id != ? AND status NOT IN ${FINAL_SQL}`)
          .all(agent, jobId) as { run_name: string; cpu: number | null; memory_mib: number | null; gpu_ids: string | null }[];
        const held = {
          cpu: rows.reduce((n, r) => n + (r.cpu ?? 0), 0),
          memoryMiB: rows.reduce((n, r) => n + (r.memory_mib ?? 0), 0),
          gpus: new Set(rows.flatMap((r) => (r.gpu_ids ? r.gpu_ids.split(',') : []))),
        };
        const result = allocate(capacity, held, need);
        if (!result.ok) {
          const holding = result.short === 'gpu' ? rows.filter((r) => r.gpu_ids) : rows.filter((r) => (result.short === 'cpu' ? r.cpu : r.memory_mib));
          return { ...result, holders: [...new Set(holding.map((r) => r.run_name))] };
        }
        const claimed = this
          .stmt(
            `UPDATE jobs SET agent = ?, cpu = ?, memory_mib = ?, gpu_ids = ?, gpus = ? WHERE id = ? AND status = 'submitted' AND agent IS NULL`,
          )
          .run(
            agent,
            need.cpu ?? 0,
            need.memoryMiB ?? 0,
            result.gpus.map((g) => g.uuid).join(',') || null,
            result.gpus.map((g) => g.index).join(',') || null,
            jobId,
          );
        if (claimed.changes === 0) throw new Error(`job ${jobId} is not waiting for an agent`);
        return result;
      })
      .immediate();
  }

  /** Gives back what a job claimed (it goes back to waiting for an agent). */
  releaseResources(jobId: string): void {
    this.stmt('UPDATE jobs SET agent = NULL, cpu = NULL, memory_mib = NULL, gpu_ids = NULL, gpus = NULL WHERE id = ?').run(jobId);
  }

  jobEvents(id: string): { status: JobStatus; reason: string | null; at: number }[] {
    return this.stmt('SELECT status, reason, at FROM job_events WHERE job_id = ? ORDER BY rowid').all(id) as {
      status: JobStatus;
      reason: string | null;
      at: number;
    }[];
  }

  putArtifact(row: ArtifactRow): void {
    this
      .stmt('INSERT OR REPLACE INTO artifacts (job_id, path, archive, files, bytes) VALUES (@job_id, @path, @archive, @files, @bytes)')
      .run(row);
  }

  artifactsOf(jobId: string): ArtifactRow[] {
    return this.stmt('SELECT * FROM artifacts WHERE job_id = ? ORDER BY path').all(jobId) as ArtifactRow[];
  }

  putCache(row: CacheRow): void {
    this
      .stmt('INSERT OR REPLACE INTO caches (repo, workflow, path, archive, bytes, updated_at) VALUES (@repo, @workflow, @path, @archive, @bytes, @updated_at)')
      .run(row);
  }

  cachesOf(repo: string, workflow: string): CacheRow[] {
    return this.stmt('SELECT * FROM caches WHERE repo = ? AND workflow = ? ORDER BY path').all(repo, workflow) as CacheRow[];
  }

  deleteCaches(repo: string, workflow: string): CacheRow[] {
    const rows = this.cachesOf(repo, workflow);
    this.stmt('DELETE FROM caches WHERE repo = ? AND workflow = ?').run(repo, workflow);
    return rows;
  }

  setTag(owner: string, name: string, runName: string): void {
    this.stmt('INSERT INTO tags (owner, name, run_name, created_at) VALUES (?, ?, ?, ?)').run(owner, name, runName, Date.now());
  }

  getTag(owner: string, name: string): TagRow | undefined {
    return this.stmt('SELECT * FROM tags WHERE owner = ? AND name = ?').get(owner, name) as TagRow | undefined;
  }

  listTags(owner: string): TagRow[] {
    return this.stmt('SELECT * FROM tags WHERE owner = ? ORDER BY created_at DESC, name').all(owner) as TagRow[];
  }

  tagsOf(runName: string): string[] {
    return (this.stmt('SELECT name FROM tags WHERE run_name = ? ORDER BY name').all(runName) as { name: string }[]).map((r) => r.name);
  }

  deleteTag(owner: string, name: string): boolean {
    return this.stmt('DELETE FROM tags WHERE owner = ? AND name = ?').run(owner, name).changes > 0;
  }

  jobCounts(): Partial<Record<JobStatus, number>> {
    const rows = this.stmt('SELECT status, COUNT(*) AS n FROM jobs GROUP BY status').all() as { status: JobStatus; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  insertToken(row: Omit<TokenRow, 'last_used_at' | 'revoked_at'>): void {
    this.stmt('INSERT INTO tokens (id, owner, kind, hash, created_at) VALUES (@id, @owner, @kind, @hash, @created_at)').run(row);
  }

  tokenById(id: string): TokenRow | undefined {
    return this.stmt('SELECT * FROM tokens WHERE id = ?').get(id) as TokenRow | undefined;
  }

  tokenByHash(hash: string): TokenRow | undefined {
    return this.stmt('SELECT * FROM tokens WHERE hash = ?').get(hash) as TokenRow | undefined;
  }

  listTokens(): TokenRow[] {
    return this.stmt('SELECT * FROM tokens ORDER BY created_at, id').all() as TokenRow[];
  }

  touchToken(id: string, at: number): void {
    this.stmt('UPDATE tokens SET last_used_at = ? WHERE id = ?').run(at, id);
  }

  /** Revokes a token; false when there is none of that id (or it was revoked already). */
  revokeToken(id: string, at: number): boolean {
    return this.stmt('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(at, id).changes > 0;
  }
}
