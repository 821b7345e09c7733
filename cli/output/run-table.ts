import type { RunView } from '../../app/run-service.js';
import { paint, statusColor } from './colors.js';
import { table, TableWriter } from './table.js';
import { ago, duration } from './time.js';

const RUN_HEADER = ['RUN', 'WORKFLOW', 'SUBMITTED', 'STATUS', 'TAG'];

function runRow(v: RunView, colors: boolean): string[] {
  const color = paint(colors);
  return [v.run.name, v.run.workflow, ago(v.run.submitted_at), color(statusColor(v.status), capitalize(v.status)), v.tags.join(', ')];
}

/** The runs table that `dstack run` starts with and `dstack ps` prints (seed 000). */
export function runTable(views: RunView[], colors: boolean): string {
  return table(RUN_HEADER, views.map((v) => runRow(v, colors)));
}

/** The runs table a page at a time, for `dstack ps -a` over a long history. */
export function runTableWriter(colors: boolean): { page(views: RunView[]): string } {
  const writer = new TableWriter(RUN_HEADER);
  return { page: (views) => writer.page(views.map((v) => runRow(v, colors))) };
}

/** What `dstack run` ends with: each job's status, exit code, time and reason. */
export function jobSummary(view: RunView, colors: boolean): string {
  const color = paint(colors);
  return table(
    ['JOB', 'STATUS', 'EXIT', 'TIME', 'REASON'],
    view.jobs.map((j) => [
      j.workflow,
      color(statusColor(j.status), j.status),
      j.exit_code === null ? '-' : String(j.exit_code),
      j.started_at && j.finished_at ? duration(j.finished_at - j.started_at) : '-',
      j.status === 'done' ? '' : (j.reason ?? ''),
    ]),
  );
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
