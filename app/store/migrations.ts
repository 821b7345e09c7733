/**
 * Schema migrations, in order. Plain SQL that PostgreSQL also accepts, so the run service never
 * depends on SQLite-only behaviour.
 */
export const MIGRATIONS: string[] = [
  `CREATE TABLE runs (
     name TEXT PRIMARY KEY,
     repo TEXT NOT NULL,
     workflow TEXT NOT NULL,
     args TEXT NOT NULL,
     submitted_at BIGINT NOT NULL,
     executor TEXT
   );
   CREATE TABLE jobs (
     id TEXT PRIMARY KEY,
     run_name TEXT NOT NULL REFERENCES runs(name),
     workflow TEXT NOT NULL,
     position INTEGER NOT NULL,
     status TEXT NOT NULL,
     reason TEXT,
     exit_code INTEGER,
     spec TEXT NOT NULL,
     gpus TEXT,
     submitted_at BIGINT NOT NULL,
     started_at BIGINT,
     finished_at BIGINT
   );
   CREATE INDEX jobs_by_run ON jobs(run_name);
   CREATE TABLE job_events (
     job_id TEXT NOT NULL REFERENCES jobs(id),
     status TEXT NOT NULL,
     reason TEXT,
     at BIGINT NOT NULL
   );
   CREATE TABLE tags (
     name TEXT PRIMARY KEY,
     run_name TEXT NOT NULL REFERENCES runs(name),
     created_at BIGINT NOT NULL
   );
   CREATE TABLE artifacts (
     job_id TEXT NOT NULL REFERENCES jobs(id),
     path TEXT NOT NULL,
     archive TEXT NOT NULL,
     files INTEGER NOT NULL,
     bytes BIGINT NOT NULL,
     PRIMARY KEY (job_id, path)
   );
   CREATE TABLE caches (
     repo TEXT NOT NULL,
     workflow TEXT NOT NULL,
     path TEXT NOT NULL,
     archive TEXT NOT NULL,
     bytes BIGINT NOT NULL,
     updated_at BIGINT NOT NULL,
     PRIMARY KEY (repo, workflow, path)
   );`,
  // How the run's jobs are isolated ({"mode": "host"|"docker", "image": …}), for the process
  // that executes a detached run.
  `ALTER TABLE runs ADD COLUMN isolation TEXT`,
  // What a job holds while it is not final, per agent (the machine that runs it): CPUs, memory and
  // GPUs (by UUID; `gpus` keeps their indices on that machine, for CUDA_VISIBLE_DEVICES and ps).
  `ALTER TABLE jobs ADD COLUMN agent TEXT;
   ALTER TABLE jobs ADD COLUMN cpu REAL;
   ALTER TABLE jobs ADD COLUMN memory_mib REAL;
   ALTER TABLE jobs ADD COLUMN gpu_ids TEXT;
   CREATE INDEX jobs_by_status ON jobs(status);
   CREATE INDEX runs_by_time ON runs(submitted_at, name);
   CREATE INDEX tags_by_run ON tags(run_name);
   CREATE INDEX job_events_by_job ON job_events(job_id);`,
  // Tokens of the server: agents' and users' (CLI), each of one owner. Only a hash of the secret is
  // kept; `id` is the public handle for listing and revoking.
  `CREATE TABLE tokens (
     id TEXT PRIMARY KEY,
     owner TEXT NOT NULL,
     kind TEXT NOT NULL,
     hash TEXT NOT NULL UNIQUE,
     created_at BIGINT NOT NULL,
     last_used_at BIGINT,
     revoked_at BIGINT
   );`,
  // The owner (a GitHub user or organisation) whose agents may run a run's jobs; null in local mode.
  `ALTER TABLE runs ADD COLUMN owner TEXT`,
  // Remote runs: where the agent gets the code ({"repoUrl", "commit", "patch": archive key or null}),
  // and the secret values the CLI sent, sealed with the server's key (see app/auth/sealed.ts) and
  // cleared once the run ends. Tags belong to an owner ('' in local mode), so owners never see or
  // move each other's tags.
  `ALTER TABLE runs ADD COLUMN source TEXT;
   ALTER TABLE runs ADD COLUMN secrets TEXT;
   CREATE TABLE owned_tags (
     owner TEXT NOT NULL,
     name TEXT NOT NULL,
     run_name TEXT NOT NULL REFERENCES runs(name),
     created_at BIGINT NOT NULL,
     PRIMARY KEY (owner, name)
   );
   INSERT INTO owned_tags (owner, name, run_name, created_at) SELECT '', name, run_name, created_at FROM tags;
   DROP TABLE tags;
   ALTER TABLE owned_tags RENAME TO tags;
   CREATE INDEX tags_by_run ON tags(run_name);`,
  // The GitHub App (app/github/): webhook deliveries seen, by GitHub's delivery id, so that one
  // delivered twice acts once; and where each run it started came from (installation, repository,
  // commit, the comment or push), with the comment it keeps up to date.
  `CREATE TABLE github_deliveries (
     id TEXT PRIMARY KEY,
     event TEXT NOT NULL,
     received_at BIGINT NOT NULL
   );
   CREATE TABLE github_runs (
     run_name TEXT PRIMARY KEY,
     installation_id BIGINT NOT NULL,
     repo_id BIGINT NOT NULL,
     repo_owner TEXT NOT NULL,
     repo_name TEXT NOT NULL,
     sha TEXT NOT NULL,
     event TEXT NOT NULL,
     branch TEXT,
     issue_number INTEGER,
     sender TEXT NOT NULL,
     reply_comment_id BIGINT,
     reply_final INTEGER NOT NULL DEFAULT 0,
     created_at BIGINT NOT NULL
   );
   CREATE INDEX github_runs_by_issue ON github_runs(repo_id, issue_number);
   CREATE INDEX github_runs_by_branch ON github_runs(repo_id, branch);`,
  // What a claim reads: the unfinished jobs of one agent (without it, every claim scans every job).
  `CREATE INDEX jobs_by_agent ON jobs(agent, status);`,
  // The GitHub App's check runs, one per job (app/github/check-runs*.ts): GitHub's id, and whether
  // a final update is still owed, so it lands also after a restart; and the releases it made
  // (app/github/releases*.ts), by repository and tag: a tag it did not make is never moved.
  `CREATE TABLE github_check_runs (
     job_id TEXT PRIMARY KEY,
     run_name TEXT NOT NULL,
     check_run_id BIGINT,
     final_pending INTEGER NOT NULL DEFAULT 0,
     final_sent INTEGER NOT NULL DEFAULT 0
   );
   CREATE INDEX github_check_runs_by_run ON github_check_runs(run_name);
   CREATE INDEX github_check_runs_unfinished ON github_check_runs(final_sent, final_pending);
   CREATE TABLE github_releases (
     repo_id BIGINT NOT NULL,
     tag TEXT NOT NULL,
     release_id BIGINT NOT NULL,
     run_name TEXT NOT NULL,
     sha TEXT NOT NULL,
     updated_at BIGINT NOT NULL,
     PRIMARY KEY (repo_id, tag)
   );`,
  // A GitHub run's words as typed, so that Re-run on its check run repeats its variables and labels.
  `ALTER TABLE github_runs ADD COLUMN words TEXT;`,
  // When a webhook delivery's work was done: one recorded but never done (the server stopped in
  // between) is taken again when GitHub redelivers it.
  `ALTER TABLE github_deliveries ADD COLUMN handled_at BIGINT;
   UPDATE github_deliveries SET handled_at = received_at;`,
  // A job whose end the server recorded without all of its log (its agent was lost, say): 1.
  `ALTER TABLE jobs ADD COLUMN log_incomplete INTEGER NOT NULL DEFAULT 0;`,
  // A webhook delivery kept until it is handled (its event name and payload), so that one answered
  // and then lost to a restart is acted on when the server starts again; what was read on its
  // arrival (a pull request's head); and its body's SHA-256, so that a body sent again under a new
  // delivery id acts once.
  `ALTER TABLE github_deliveries ADD COLUMN name TEXT;
   ALTER TABLE github_deliveries ADD COLUMN payload TEXT;
   ALTER TABLE github_deliveries ADD COLUMN arrival TEXT;
   ALTER TABLE github_deliveries ADD COLUMN body_sha256 TEXT;
   CREATE INDEX github_deliveries_by_body ON github_deliveries(body_sha256);`,
  // What a delivery has done, so that one replayed after a restart does it once: the run each of
  // its commands or workflows started (`<delivery id>#<n>`, written with the run), and whether
  // its comment's one reply was posted.
  `ALTER TABLE github_runs ADD COLUMN delivery_key TEXT;
   CREATE UNIQUE INDEX github_runs_by_delivery_key ON github_runs(delivery_key);
   ALTER TABLE github_deliveries ADD COLUMN replied_at BIGINT;`,
];
