import type { Store } from '../store/store.js';

/** Where a run the GitHub App started came from (a row of `github_runs`). */
export interface GithubRunOrigin {
  runName: string;
  installationId: number;
  repoId: number;
  /** The repository's owner and name (`octo-org`, `models`). */
  repoOwner: string;
  repoName: string;
  /** The commit the run is pinned to. */
  sha: string;
  /** What started it: a comment, a push, or a re-run asked for on GitHub. */
  event: 'comment' | 'push' | 'rerun';
  /** The pushed branch (push), or the pull request's head branch. */
  branch: string | null;
  /** The pull request or issue whose comment started it. */
  issueNumber: number | null;
  /** The GitHub login that asked for it. */
  sender: string;
  /** The words after the workflow's name as typed (`--epochs 3 extra`), so a re-run is the same run; null for runs recorded before. */
  words: string[] | null;
  /** The comment the app keeps up to date with the run's jobs, once made. */
  replyCommentId: number | null;
  replyFinal: boolean;
}

interface Row {
  run_name: string;
  installation_id: number;
  repo_id: number;
  repo_owner: string;
  repo_name: string;
  sha: string;
  event: GithubRunOrigin['event'];
  branch: string | null;
  issue_number: number | null;
  sender: string;
  words: string | null;
  reply_comment_id: number | null;
  reply_final: number;
}

const fromRow = (r: Row): GithubRunOrigin => ({
  runName: r.run_name,
  installationId: Number(r.installation_id),
  repoId: Number(r.repo_id),
  repoOwner: r.repo_owner,
  repoName: r.repo_name,
  sha: r.sha,
  event: r.event,
  branch: r.branch,
  issueNumber: r.issue_number,
  sender: r.sender,
  words: r.words === null ? null : (JSON.parse(r.words) as string[]),
  replyCommentId: r.reply_comment_id === null ? null : Number(r.reply_comment_id),
  replyFinal: r.reply_final === 1,
});

/** A delivery kept until it is handled: what the app acts on again after a restart. */
export interface StoredDelivery {
  id: string;
  /** The event (`X-GitHub-Event`). */
  name: string;
  payload: unknown;
  /** What was read when it arrived, once that was done. */
  arrival: unknown;
}

/** The GitHub App's rows in the server's store: deliveries seen, and runs' origins. */
export class GithubStore {
  constructor(private readonly store: Store) {}

  /**
   * Records a webhook delivery with what replays it (its event name and payload, kept until it is
   * handled): `new` to act on it; `seen` when this id was handled before (GitHub redelivered it);
   * `same-body` when a delivery with the same body (`digest`, its SHA-256) came since `bodySince`
   * under another id: a replayed body, recorded as handled. A delivery recorded but never handled
   * is `new` again: the caller keeps deliveries in progress from being taken twice.
   */
  recordDelivery(d: { id: string; event: string; name: string; payload: string; digest: string }, bodySince: number, at = Date.now()): 'new' | 'seen' | 'same-body' {
    return this.store.transaction(() => {
      const [row] = this.store.query<{ handled_at: number | null }>('SELECT handled_at FROM github_deliveries WHERE id = ?', [d.id]);
      if (row) return row.handled_at === null ? 'new' : 'seen';
      const [same] = this.store.query<{ id: string }>('SELECT id FROM github_deliveries WHERE body_sha256 = ? AND received_at >= ? LIMIT 1', [d.digest, bodySince]);
      this.store.execute('INSERT INTO github_deliveries (id, event, name, payload, body_sha256, received_at, handled_at) VALUES (?, ?, ?, ?, ?, ?, ?)', [
        d.id,
        d.event,
        d.name,
        same ? null : d.payload,
        d.digest,
        at,
        same ? at : null,
      ]);
      return same ? 'same-body' : 'new';
    });
  }

  /** What was read when a delivery arrived (before it waited its turn), for a replay to use the same. */
  setArrival(id: string, arrival: unknown): void {
    this.store.execute('UPDATE github_deliveries SET arrival = ? WHERE id = ? AND handled_at IS NULL', [JSON.stringify(arrival), id]);
  }

  /** Deliveries recorded and not handled (the server stopped first), in the order they came. */
  pendingDeliveries(): StoredDelivery[] {
    return this.store
      .query<{ id: string; name: string; payload: string; arrival: string | null }>('SELECT id, name, payload, arrival FROM github_deliveries WHERE handled_at IS NULL AND payload IS NOT NULL ORDER BY rowid')
      .map((r) => ({ id: r.id, name: r.name, payload: JSON.parse(r.payload) as unknown, arrival: r.arrival === null ? undefined : (JSON.parse(r.arrival) as unknown) }));
  }

  /** A delivery's work is done: a redelivery of it is ignored from now on, and its payload is dropped. */
  deliveryHandled(id: string, at = Date.now()): void {
    this.store.execute('UPDATE github_deliveries SET handled_at = ?, payload = NULL, arrival = NULL WHERE id = ?', [at, id]);
  }

  /** Forgets deliveries older than `before`: GitHub redelivers only recent ones. */
  pruneDeliveries(before: number): number {
    return this.store.execute('DELETE FROM github_deliveries WHERE received_at < ?', [before]);
  }

  /** Whether the one reply to this delivery's comment was posted (a replay after a restart posts none). */
  replied(deliveryId: string): boolean {
    const [row] = this.store.query<{ replied_at: number | null }>('SELECT replied_at FROM github_deliveries WHERE id = ?', [deliveryId]);
    return row?.replied_at != null;
  }

  setReplied(deliveryId: string, at = Date.now()): void {
    this.store.execute('UPDATE github_deliveries SET replied_at = ? WHERE id = ?', [at, deliveryId]);
  }

  /** Runs `fn` in one SQLite transaction of the server's store (a run and its origin are written together). */
  transaction<T>(fn: () => T): T {
    return this.store.transaction(fn);
  }

  /**
   * Records where a run came from; `deliveryKey` (`<delivery id>#<n>`, unique) is what of a
   * delivery started it, so that a replay of the delivery finds the run rather than starting another.
   */
  putOrigin(o: Omit<GithubRunOrigin, 'replyCommentId' | 'replyFinal'>, deliveryKey: string | null = null): void {
    this.store.execute(
      `INSERT INTO github_runs (run_name, installation_id, repo_id, repo_owner, repo_name, sha, event, branch, issue_number, sender, words, delivery_key, created_at)
       VALUES (@runName, @installationId, @repoId, @repoOwner, @repoName, @sha, @event, @branch, @issueNumber, @sender, @words, @deliveryKey, @createdAt)`,
      { ...o, words: o.words === null ? null : JSON.stringify(o.words), deliveryKey, createdAt: Date.now() },
    );
  }

  /** The run a delivery's command or workflow (`deliveryKey`) started, if it did. */
  runOfDeliveryKey(deliveryKey: string): string | undefined {
    const [row] = this.store.query<{ run_name: string }>('SELECT run_name FROM github_runs WHERE delivery_key = ?', [deliveryKey]);
    return row?.run_name;
  }

  origin(runName: string): GithubRunOrigin | undefined {
    const [row] = this.store.query<Row>('SELECT * FROM github_runs WHERE run_name = ?', [runName]);
    return row && fromRow(row);
  }

  /** Runs started from one pull request or issue, oldest first. */
  originsOfIssue(repoId: number, issueNumber: number): GithubRunOrigin[] {
    return this.store.query<Row>('SELECT * FROM github_runs WHERE repo_id = ? AND issue_number = ? ORDER BY created_at, run_name', [repoId, issueNumber]).map(fromRow);
  }

  /** Runs started by pushes to one branch, oldest first. */
  pushOriginsOfBranch(repoId: number, branch: string): GithubRunOrigin[] {
    return this.store.query<Row>("SELECT * FROM github_runs WHERE repo_id = ? AND branch = ? AND event = 'push' ORDER BY created_at, run_name", [repoId, branch]).map(fromRow);
  }

  /** Runs whose comment has not had its final edit (the server stopped before it landed). */
  unfinishedReplies(): GithubRunOrigin[] {
    return this.store.query<Row>('SELECT * FROM github_runs WHERE reply_comment_id IS NOT NULL AND reply_final = 0').map(fromRow);
  }

  setReply(runName: string, commentId: number): void {
    this.store.execute('UPDATE github_runs SET reply_comment_id = ? WHERE run_name = ?', [commentId, runName]);
  }

  setReplyFinal(runName: string): void {
    this.store.execute('UPDATE github_runs SET reply_final = 1 WHERE run_name = ?', [runName]);
  }
}
