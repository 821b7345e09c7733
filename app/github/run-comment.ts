import { isFinal } from '../../shared/job-status.js';
import type { RunView } from '../run-service.js';
import type { GithubRunOrigin } from './github-store.js';

/** The least time between two edits of one run's comment (GitHub limits content-creating requests). */
export const EDIT_EVERY_MS = 5000;

/**
 * The body of a run's comment: a table of its jobs with status, duration and (when the server has
 * a run page) links. Edited in place as the run goes; the same view always gives the same text, so
 * an edit that would change nothing is not sent.
 */
export function runCommentBody(view: RunView, origin: GithubRunOrigin, options: { now?: number; runUrl?: string } = {}): string {
  const now = options.now ?? Date.now();
  const { run } = view;
  const name = options.runUrl ? `[\`${run.name}\`](${options.runUrl})` : `\`${run.name}\``;
  const args = run.args ? ` \`${run.args.replace(/`/g, "'")}\`` : '';
  const rows = view.jobs.map((job) => {
    const started = job.started_at ?? job.submitted_at;
    const seconds = isFinal(job.status) || job.status !== 'submitted' ? Math.max(0, Math.round(((job.finished_at ?? now) - started) / 1000)) : undefined;
    const why = job.reason && (job.status === 'submitted' || job.status === 'failed' || job.status === 'aborted') ? ` — ${escapeCell(job.reason)}` : '';
    const exit = job.exit_code !== null && job.exit_code !== 0 ? ` (exit ${job.exit_code})` : '';
    const workflow = options.runUrl ? `[\`${job.workflow}\`](${options.runUrl}#${encodeURIComponent(job.id)})` : `\`${job.workflow}\``;
    return `| ${workflow} | ${ICONS[job.status] ?? ''} ${job.status}${exit}${why} | ${seconds === undefined ? '–' : duration(seconds)} |`;
  });
  const footer = isFinal(view.status)
    ? `Run ${view.status}.${view.status === 'done' ? ` Tag it with \`/dstack tag ${run.name} TAG\`.` : ''}`
    : `Stop it with \`/dstack stop ${run.name}\`.`;
  return [
    `<!-- dstack-run ${run.name} -->`,
    `**dstack** run ${name} of \`${run.workflow}\`${args} at ${origin.sha.slice(0, 7)}, asked by @${origin.sender}: **${view.status}**`,
    '',
    '| job | status | duration |',
    '|---|---|---|',
    ...rows,
    '',
    footer,
  ].join('\n');
}

const ICONS: Record<string, string> = {
  submitted: '⏳',
  downloading: '⬇️',
  running: '▶️',
  uploading: '⬆️',
  stopping: '⏹️',
  done: '✅',
  failed: '❌',
  stopped: '⏹️',
  aborted: '⚠️',
};

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${seconds % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ').slice(0, 300);
}

interface Pending {
  lastEdit: number;
  lastBody?: string;
  timer?: NodeJS.Timeout;
  /** The edit in flight, so that two never overlap and the last view always lands last. */
  busy: Promise<void>;
  final: boolean;
}

/**
 * Keeps each run's comment up to date: at most one edit per EDIT_EVERY_MS while the run goes, and
 * the final one as soon as it ends, retried until it lands (and again after a restart, from the
 * store's `reply_final`).
 */
export class RunCommentUpdater {
  private readonly runs = new Map<string, Pending>();
  private closed = false;

  constructor(
    private readonly edit: (runName: string, final: boolean) => Promise<void>,
    private readonly isFinalRun: (runName: string) => boolean,
    private readonly log: (line: string) => void,
    private readonly everyMs = EDIT_EVERY_MS,
  ) {}

  /** Something of the run changed: its comment follows, debounced. */
  touch(runName: string, justCreated = false): void {
    if (this.closed) return;
    let p = this.runs.get(runName);
    if (!p) {
      p = { lastEdit: justCreated ? Date.now() : 0, busy: Promise.resolve(), final: false };
      this.runs.set(runName, p);
    }
    if (p.final) return;
    if (this.isFinalRun(runName)) {
      clearTimeout(p.timer);
      p.timer = undefined;
      p.final = true;
      this.flush(runName, p, true, 0);
      return;
    }
    if (p.timer) return;
    const pending = p;
    pending.timer = setTimeout(() => {
      pending.timer = undefined;
      this.flush(runName, pending, false, 0);
    }, Math.max(0, pending.lastEdit + this.everyMs - Date.now()));
  }

  /** Whether any edit is still waiting or in flight. */
  get idle(): boolean {
    return [...this.runs.values()].every((p) => !p.timer) && this.inFlight === 0;
  }

  private inFlight = 0;

  private flush(runName: string, p: Pending, final: boolean, attempt: number): void {
    this.inFlight++;
    p.busy = p.busy
      .then(async () => {
        if (this.closed) return;
        await this.edit(runName, final);
        p.lastEdit = Date.now();
        if (final) this.runs.delete(runName);
      })
      .catch((err: unknown) => {
        this.log(`could not update the comment of run ${runName}: ${err instanceof Error ? err.message : String(err)}`);
        // The final edit is retried until it lands; a lost intermediate one is made good by the next.
        if (final && !this.closed && attempt < 20) setTimeout(() => this.flush(runName, p, true, attempt + 1), Math.min(60_000, 1000 * 2 ** attempt)).unref();
      })
      .finally(() => this.inFlight--);
  }

  close(): void {
    this.closed = true;
    for (const p of this.runs.values()) clearTimeout(p.timer);
  }
}
