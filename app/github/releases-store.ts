import type { Store } from '../store/store.js';

/** A release the app made (a row of `github_releases`). */
export interface ReleaseRow {
  repo_id: number;
  tag: string;
  release_id: number;
  run_name: string;
  sha: string;
  updated_at: number;
}

/** The releases the app made, by repository and tag: what marks a tag as its own to move. */
export class ReleasesStore {
  constructor(private readonly store: Store) {}

  get(repoId: number, tag: string): ReleaseRow | undefined {
    const [row] = this.store.query<ReleaseRow>('SELECT * FROM github_releases WHERE repo_id = ? AND tag = ?', [repoId, tag]);
    return row && { ...row, repo_id: Number(row.repo_id), release_id: Number(row.release_id), updated_at: Number(row.updated_at) };
  }

  put(row: Omit<ReleaseRow, 'updated_at'>): void {
    this.store.execute(
      `INSERT INTO github_releases (repo_id, tag, release_id, run_name, sha, updated_at) VALUES (@repo_id, @tag, @release_id, @run_name, @sha, @updated_at)
       ON CONFLICT (repo_id, tag) DO UPDATE SET release_id = excluded.release_id, run_name = excluded.run_name, sha = excluded.sha, updated_at = excluded.updated_at`,
      { ...row, updated_at: Date.now() },
    );
  }
}
