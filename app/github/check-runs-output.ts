import { isFinal, type JobStatus } from '../../shared/job-status.js';
import type { RunView } from '../run-service.js';
import type { JobRow } from '../store/store.js';
import type { GithubRunOrigin } from './github-store.js';

/** GitHub's limit on a check run's `output.summary` and `output.text`: counted in bytes (UTF-8), the strict reading. */
export const MAX_OUTPUT_BYTES = 65_535;
/** How much of a log's end is read from the store for a tail: a little more than fits, never the whole log. */
export const TAIL_READ_BYTES = 96 * 1024;

/** A check run's state on GitHub (`status`, `conclusion`) for a job's status. */
export interface CheckRunState {
  status: 'queued' | 'in_progress' | 'completed';
  conclusion?: 'success' | 'failure' | 'cancelled' | 'timed_out' | 'action_required';
}

/**
 * The check run's state for a job. An aborted job is `timed_out` when its agent was lost (or never
 * came back): the job ran out of time to hear from its machine, and a re-run is the remedy, which is
 * what GitHub's "Timed out" tells people; an infrastructure error (disk full, an archive that would
 * not store) is `action_required`: someone has to fix the agent first; an abort asked for by a user
 * before the job started is `cancelled`, as a stop is.
 */
export function checkRunState(job: Pick<JobRow, 'status' | 'reason'>): CheckRunState {
  switch (job.status) {
    case 'submitted':
      return { status: 'queued' };
    case 'done':
      return { status: 'completed', conclusion: 'success' };
    case 'failed':
      return { status: 'completed', conclusion: 'failure' };
    case 'stopped':
      return { status: 'completed', conclusion: 'cancelled' };
    case 'aborted':
      if (/^stopped before/.test(job.reason ?? '')) return { status: 'completed', conclusion: 'cancelled' };
      return { status: 'completed', conclusion: /^infrastructure error/.test(job.reason ?? '') ? 'action_required' : 'timed_out' };
    default:
      return { status: 'in_progress' };
  }
}

const ANSI = [
  // CSI: colours, cursor moves, erases.
  /\x1b\[[0-?]*[ -/]*[@-~]/g,
  // OSC (titles, hyperlinks), ended by BEL or ST.
  /\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?/g,
  // Other two-byte escapes.
  /\x1b[@-Z\\^_`a-z{|}~]/g,
];

/**
 * A terminal's output as plain text: escape sequences removed, `\r\n` as `\n`, and a line redrawn
 * with `\r` (progress bars) kept as its last drawing only; other control characters dropped.
 */
export function stripAnsi(text: string): string {
  let out = text;
  for (const re of ANSI) out = out.replace(re, '');
  out = out.replace(/\r+\n/g, '\n');
  out = out
    .split('\n')
    .map((line) => {
      const i = line.lastIndexOf('\r');
      return i >= 0 ? line.slice(i + 1) : line;
    })
    .join('\n');
  // eslint-disable-next-line no-control-regex
  return out.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
}

/** The longest end of `text` whose UTF-8 encoding fits in `maxBytes`, never splitting a character. */
export function tailWithinBytes(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  if (maxBytes <= 0) return '';
  let start = bytes.length - maxBytes;
  // Skip continuation bytes (10xxxxxx): the character they belong to starts before the cut.
  while (start < bytes.length && (bytes[start]! & 0xc0) === 0x80) start++;
  return bytes.subarray(start).toString('utf8');
}

/** The longest start of `text` whose UTF-8 encoding fits in `maxBytes`, never splitting a character. */
export function headWithinBytes(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = Math.max(0, maxBytes);
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}

/** A log's end as read from the store: its bytes, and how many bytes of the log came before them. */
export interface LogTail {
  data: Buffer;
  skipped: number;
}

/** Reads only the end of a log (at most `TAIL_READ_BYTES`), through the run service's `logSize` and `readLog`. */
export function readLogTail(service: { logSize(jobId: string): number; readLog(jobId: string, offset: number, max?: number): Buffer }, jobId: string, maxBytes = TAIL_READ_BYTES): LogTail {
  const size = service.logSize(jobId);
  const offset = Math.max(0, size - maxBytes);
  return { data: service.readLog(jobId, offset, size - offset), skipped: offset };
}

/**
 * A log tail as plain text within `maxBytes` (UTF-8): ANSI-stripped, starting at a whole line when
 * it had to be cut, with a first line saying how much came before.
 */
export function logTailText(tail: LogTail, maxBytes: number): string {
  let start = 0;
  // A read that starts inside the log may start inside a character or an escape sequence: start at the next line.
  if (tail.skipped > 0) {
    const nl = tail.data.indexOf(0x0a);
    start = nl >= 0 ? nl + 1 : 0;
  }
  let text = stripAnsi(tail.data.subarray(start).toString('utf8'));
  let earlier = tail.skipped + start;
  const fits = Buffer.byteLength(text) <= maxBytes && earlier === 0;
  if (fits) return text;
  // Room for the note; the note's number only shrinks the text by a few bytes more.
  const note = (n: number) => `… ${n} earlier bytes of the log are on the run page\n`;
  const budget = maxBytes - Buffer.byteLength(note(Number.MAX_SAFE_INTEGER));
  if (Buffer.byteLength(text) > budget) {
    const cut = tailWithinBytes(text, budget);
    const nl = cut.indexOf('\n');
    const kept = nl >= 0 && nl < cut.length - 1 ? cut.slice(nl + 1) : cut;
    earlier += Buffer.byteLength(text) - Buffer.byteLength(kept);
    text = kept;
  }
  return earlier > 0 ? note(earlier) + text : text;
}

/** A fenced code block that no run of backticks inside the text can close. */
export function codeBlock(text: string): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}text\n${text}${text.endsWith('\n') || text === '' ? '' : '\n'}${fence}`;
}

/** What the summary links to: the run page and its artifacts' downloads (absent when the server has no page). */
export interface OutputLinks {
  runUrl?: string;
  artifactUrl?: (jobId: string, artifactPath: string) => string | undefined;
}

export interface CheckRunOutputInput {
  view: RunView;
  job: JobRow;
  origin: Pick<GithubRunOrigin, 'sender' | 'sha' | 'event'>;
  tail: LogTail;
  artifacts: { path: string; files: number; bytes: number }[];
  ports: number[];
  links?: OutputLinks;
  now?: number;
}

export interface CheckRunOutput {
  title: string;
  summary: string;
  text: string;
}

const TITLES: Record<JobStatus, string> = {
  submitted: 'Waiting for an agent',
  downloading: 'Downloading',
  running: 'Running',
  uploading: 'Uploading artifacts',
  stopping: 'Stopping',
  done: 'Done',
  failed: 'Failed',
  stopped: 'Stopped',
  aborted: 'Aborted',
};

/** The check run's `output`: title = the status, summary = the run and the job, text = the log's tail; each within GitHub's limit in bytes. */
export function checkRunOutput(input: CheckRunOutputInput): CheckRunOutput {
  const { view, job, origin, links = {} } = input;
  const now = input.now ?? Date.now();
  const exit = job.exit_code !== null && job.exit_code !== undefined ? ` (exit ${job.exit_code})` : '';
  const title = `${TITLES[job.status]}${isFinal(job.status) ? exit : ''}`;
  const run = links.runUrl ? `[${view.run.name}](${links.runUrl})` : `\`${view.run.name}\``;
  const lines: string[] = [
    `**dstack** run ${run} of \`${view.run.workflow}\`, job \`${job.workflow}\`: **${job.status}**${exit}`,
    '',
    '| | |',
    '|---|---|',
    `| started by | @${cell(origin.sender)} (${origin.event}) at ${origin.sha.slice(0, 7)} |`,
    `| arguments | ${view.run.args ? `\`${cell(view.run.args).replace(/`/g, "'")}\`` : '–'} |`,
  ];
  if (job.reason) lines.push(`| ${job.status === 'submitted' ? 'waiting' : 'reason'} | ${cell(job.reason)} |`);
  lines.push(`| agent | ${job.agent ? cell(job.agent) : '–'} |`);
  lines.push(`| GPUs | ${gpus(job)} |`);
  lines.push(`| waited | ${duration(((job.started_at ?? (isFinal(job.status) ? job.finished_at : null) ?? now) - job.submitted_at) / 1000)} |`);
  if (job.started_at !== null) lines.push(`| ran | ${duration(((job.finished_at ?? now) - job.started_at) / 1000)} |`);
  if (job.exit_code !== null) lines.push(`| exit code | ${job.exit_code} |`);
  if (input.ports.length > 0) lines.push(`| ports | ${input.ports.map((p) => `${p}${job.agent ? ` on ${cell(job.agent)}` : ''}`).join(', ')} |`);
  if (input.artifacts.length > 0) {
    lines.push('', '**Artifacts**', '');
    for (const a of input.artifacts) {
      const url = links.artifactUrl?.(job.id, a.path);
      const name = url ? `[\`${a.path}\`](${url})` : `\`${a.path}\``;
      lines.push(`- ${name}: ${a.files} file${a.files === 1 ? '' : 's'}, ${size(a.bytes)}`);
    }
  }
  if (links.runUrl) lines.push('', `The whole log is on the [run page](${links.runUrl}).`);
  const summary = headWithinBytes(lines.join('\n'), MAX_OUTPUT_BYTES);
  // The fence grows when the log has long runs of backticks: take off what it went over, until it fits.
  let budget = MAX_OUTPUT_BYTES - Buffer.byteLength(codeBlock('x')) + 1;
  let text = codeBlock(logTailText(input.tail, budget));
  while (Buffer.byteLength(text) > MAX_OUTPUT_BYTES && budget > 0) {
    budget -= Buffer.byteLength(text) - MAX_OUTPUT_BYTES;
    text = codeBlock(logTailText(input.tail, budget));
  }
  return { title, summary, text };
}

function gpus(job: JobRow): string {
  let need = '';
  try {
    const spec = JSON.parse(job.spec) as { resources?: { gpu?: { count?: number; name?: string } | null } };
    const g = spec.resources?.gpu;
    if (g?.count) need = `${g.count}×${g.name ? ` ${g.name}` : ''}`;
  } catch {
    // A spec that does not parse has no GPUs to show.
  }
  if (job.gpus) return `${need ? `${need}: ` : ''}${job.gpus.split(',').map((i) => `#${i}`).join(', ')}`;
  return need ? `${need} asked` : 'none';
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ').slice(0, 500);
}

export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
