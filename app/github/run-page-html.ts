import { isFinal } from '../../shared/job-status.js';
import type { RunSource, RunView } from '../run-service.js';
import type { JobRow } from '../store/store.js';
import { duration, logTailText, size, type LogTail } from './check-runs-output.js';

/** How much of each job's log the page shows, at its end. */
export const PAGE_LOG_BYTES = 64 * 1024;

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export interface RunPageInput {
  view: RunView;
  source?: RunSource;
  events: (jobId: string) => { status: string; reason: string | null; at: number }[];
  tail: (jobId: string) => LogTail;
  artifacts: { job_id: string; workflow: string; path: string; files: number; bytes: number }[];
  artifactUrl: (jobId: string, artifactPath: string) => string;
  now?: number;
}

/**
 * The run page: plain HTML made on the server, every value escaped: the run, each job with its
 * status, reason, times and the end of its log (ANSI-stripped), and the artifacts' downloads. It
 * reloads itself while the run goes.
 */
export function runPageHtml(input: RunPageInput): string {
  const { view } = input;
  const now = input.now ?? Date.now();
  const e = escapeHtml;
  const live = !isFinal(view.status);
  const jobs = view.jobs.map((job) => jobSection(job, input, now)).join('\n');
  const artifacts = input.artifacts.length
    ? `<h2>Artifacts</h2>\n<ul>\n${input.artifacts
        .map((a) => `<li><a href="${e(input.artifactUrl(a.job_id, a.path))}">${e(a.workflow)}: ${e(a.path)}</a> (${a.files} file${a.files === 1 ? '' : 's'}, ${e(size(a.bytes))})</li>`)
        .join('\n')}\n</ul>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${live ? '<meta http-equiv="refresh" content="10">\n' : ''}<meta name="referrer" content="no-referrer">
<title>${e(view.run.name)}: ${e(view.status)} — dstack</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:75em}pre{background:#111;color:#ddd;padding:1em;overflow-x:auto;white-space:pre-wrap}td,th{padding:.2em .8em;text-align:left}.done{color:#1a7f37}.failed,.aborted{color:#cf222e}</style>
</head>
<body>
<h1>Run ${e(view.run.name)} <span class="${e(view.status)}">${e(view.status)}</span></h1>
<table>
<tr><th>workflow</th><td>${e(view.run.workflow)}</td></tr>
<tr><th>arguments</th><td>${view.run.args ? `<code>${e(view.run.args)}</code>` : '–'}</td></tr>
${input.source ? `<tr><th>commit</th><td><code>${e(input.source.commit)}</code>${input.source.patch ? ' with local changes' : ''}</td></tr>\n` : ''}<tr><th>submitted</th><td>${e(new Date(view.run.submitted_at).toISOString())}</td></tr>
${view.tags.length ? `<tr><th>tags</th><td>${view.tags.map(e).join(', ')}</td></tr>\n` : ''}</table>
${artifacts}
${jobs}
</body>
</html>
`;
}

function jobSection(job: JobRow, input: RunPageInput, now: number): string {
  const e = escapeHtml;
  const ran = job.started_at !== null ? duration(((job.finished_at ?? now) - job.started_at) / 1000) : '–';
  const events = input
    .events(job.id)
    .map((ev) => `<li>${e(new Date(ev.at).toISOString())} ${e(ev.status)}${ev.reason ? `: ${e(ev.reason)}` : ''}</li>`)
    .join('\n');
  const log = logTailText(input.tail(job.id), PAGE_LOG_BYTES);
  return `<h2 id="${e(job.id)}">${e(job.workflow)} <span class="${e(job.status)}">${e(job.status)}</span></h2>
<table>
<tr><th>job</th><td>${e(job.id)}</td></tr>
${job.reason ? `<tr><th>reason</th><td>${e(job.reason)}</td></tr>\n` : ''}<tr><th>agent</th><td>${job.agent ? e(job.agent) : '–'}</td></tr>
${job.gpus ? `<tr><th>GPUs</th><td>${e(job.gpus)}</td></tr>\n` : ''}<tr><th>ran</th><td>${e(ran)}</td></tr>
${job.exit_code !== null ? `<tr><th>exit code</th><td>${job.exit_code}</td></tr>\n` : ''}</table>
<details><summary>status changes</summary><ul>
${events}
</ul></details>
<pre>${e(log)}</pre>`;
}
