import type { Store } from '../store/store.js';

/** A job's check run as the app keeps it (a row of `github_check_runs`). */
export interface CheckRunRow {
  job_id: string;
  run_name: string;
  /** GitHub's id, once the create landed. */
  check_run_id: number | null;
  /** Above 0 while a final update is owed: counts the requests for one, so one that lands clears only those it carried. */
  final_pending: number;
  final_sent: number;
}

const fromRow = (r: CheckRunRow): CheckRunRow => ({ ...r, check_run_id: r.check_run_id === null ? null : Number(r.check_run_id), final_pending: Number(r.final_pending), final_sent: Number(r.final_sent) });

/**
 * The check runs of jobs in the server's store, so that a final update that has not landed is
 * still owed after a restart, and a job's check run is updated, not made twice.
 */
export class CheckRunsStore {
  constructor(private readonly store: Store) {}

  add(jobId: string, runName: string): void {
    this.store.execute('INSERT INTO github_check_runs (job_id, run_name) VALUES (?, ?) ON CONFLICT (job_id) DO NOTHING', [jobId, runName]);
  }

  get(jobId: string): CheckRunRow | undefined {
    const [row] = this.store.query<CheckRunRow>('SELECT * FROM github_check_runs WHERE job_id = ?', [jobId]);
    return row && fromRow(row);
  }

  ofRun(runName: string): CheckRunRow[] {
    return this.store.query<CheckRunRow>('SELECT * FROM github_check_runs WHERE run_name = ? ORDER BY job_id', [runName]).map(fromRow);
  }

  /** Check runs whose final state has not landed on GitHub: owed, or of jobs that had not ended. */
  unfinished(): CheckRunRow[] {
    return this.store.query<CheckRunRow>('SELECT * FROM github_check_runs WHERE final_pending > 0 OR final_sent = 0').map(fromRow);
  }

  setCheckRunId(jobId: string, id: number): void {
    this.store.execute('UPDATE github_check_runs SET check_run_id = ? WHERE job_id = ?', [id, jobId]);
  }

  /** A final update is owed (the job ended, or its run did). */
  owe(jobId: string): void {
    this.store.execute('UPDATE github_check_runs SET final_pending = final_pending + 1 WHERE job_id = ?', [jobId]);
  }

  /** A final update that carried the state as of `pending` requests landed; later ones are still owed. */
  paid(jobId: string, pending: number): void {
    this.store.execute('UPDATE github_check_runs SET final_pending = 0, final_sent = 1 WHERE job_id = ? AND final_pending = ?', [jobId, pending]);
  }
}
