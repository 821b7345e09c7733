import { describe, expect, it } from 'vitest';
import { checkRunOutput, checkRunState, codeBlock, logTailText, MAX_OUTPUT_BYTES, readLogTail, stripAnsi, tailWithinBytes } from '../../../app/github/check-runs-output.js';
import type { RunView } from '../../../app/run-service.js';
import type { JobRow } from '../../../app/store/store.js';

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

function job(fields: Partial<JobRow> = {}): JobRow {
  return {
    id: 'slim-octopus-1-0', run_name: 'slim-octopus-1', workflow: 'train', position: 0, status: 'running', reason: null, exit_code: null,
    spec: JSON.stringify({ resources: { gpu: { count: 2, name: 'A100' } } }), gpus: '0,1', agent: 'acme/box-1', cpu: null, memory_mib: null, gpu_ids: null,
    submitted_at: 1_000_000, started_at: 1_030_000, finished_at: null, log_incomplete: 0, ...fields,
  };
}

function view(j: JobRow): RunView {
  return {
    run: { name: 'slim-octopus-1', repo: 'r', workflow: 'train', args: '--epochs 3', submitted_at: 1_000_000, executor: null, isolation: null, owner: 'acme', source: null, secrets: null },
    status: j.status, jobs: [j], tags: [],
  };
}

const tail = (text: string | Buffer, skipped = 0) => ({ data: Buffer.isBuffer(text) ? text : Buffer.from(text), skipped });

describe('check run output', () => {
  it('strips colours, cursor moves, titles and progress-bar redraws from a log', () => {
    const log = '\x1b[1;32mok\x1b[0m line\r\n\x1b]0;title\x07 10%\r 50%\r100%\r\nend\x1b[K\n';
    expect(stripAnsi(log)).toBe('ok line\n100%\nend\n');
  });

  it('cuts a text to its last bytes without splitting a multi-byte character', () => {
    const text = 'aé€😀'; // 1 + 2 + 3 + 4 bytes
    expect(tailWithinBytes(text, 10)).toBe(text);
    expect(tailWithinBytes(text, 9)).toBe('é€😀');
    expect(tailWithinBytes(text, 8)).toBe('€😀');
    expect(tailWithinBytes(text, 6)).toBe('😀');
    expect(tailWithinBytes(text, 3)).toBe('');
  });

  it('keeps a log of emoji within 65,535 bytes (not characters), from a whole line, saying how much came before', () => {
    const line = '😀'.repeat(20) + '\n'; // 81 bytes, 41 UTF-16 code units
    const log = line.repeat(2000); // 162,000 bytes
    const text = logTailText(tail(log), MAX_OUTPUT_BYTES);
    expect(bytes(text)).toBeLessThanOrEqual(MAX_OUTPUT_BYTES);
    const [note, ...rest] = text.split('\n');
    expect(note).toMatch(/^… \d+ earlier bytes of the log are on the run page$/);
    expect(rest.slice(0, -1).every((l) => l === '😀'.repeat(20))).toBe(true);
    expect(Number(/\d+/.exec(note!)![0]) + bytes(rest.join('\n'))).toBe(bytes(log));
  });

  it('starts a tail read from inside the log at the next line, whatever byte it starts on', () => {
    const data = Buffer.from('€ partial\x1b[31mline\nwhole line\n').subarray(1);
    expect(logTailText(tail(data, 1000), MAX_OUTPUT_BYTES)).toBe(`… ${1000 + Buffer.from('€ partial\x1b[31mline\n').length - 1} earlier bytes of the log are on the run page\nwhole line\n`);
  });

  it('reads only the end of a long log from the store', () => {
    const reads: [number, number | undefined][] = [];
    const service = { logSize: () => 10_000_000, readLog: (_id: string, offset: number, max?: number) => (reads.push([offset, max]), Buffer.alloc(max ?? 0, 'a')) };
    const t = readLogTail(service, 'j', 1000);
    expect(reads).toEqual([[9_999_000, 1000]]);
    expect(t.skipped).toBe(9_999_000);
  });

  it('fences the log with more backticks than any run inside it', () => {
    expect(codeBlock('a ``` b\n')).toBe('````text\na ``` b\n````');
  });

  it('puts the status in the title, the run in the summary and the log tail in the text, all within the limit', () => {
    const j = job({ status: 'failed', exit_code: 3, finished_at: 1_090_000 });
    const log = `${'x'.repeat(199)}\n`.repeat(1000) + '€'.repeat(30_000);
    const out = checkRunOutput({
      view: view(j), job: j, origin: { sender: 'octocat', sha: 'abcdef1234567890', event: 'comment' }, tail: tail(log), ports: [8888],
      artifacts: [{ path: 'model', files: 2, bytes: 2048 }],
      links: { runUrl: 'http://srv/runs/slim-octopus-1?key=k', artifactUrl: (id, p) => `http://srv/runs/slim-octopus-1/jobs/${id}/artifact?path=${p}&key=k` },
    });
    expect(out.title).toBe('Failed (exit 3)');
    expect(out.summary).toContain('[slim-octopus-1](http://srv/runs/slim-octopus-1?key=k)');
    expect(out.summary).toContain('| started by | @octocat (comment) at abcdef1 |');
    expect(out.summary).toContain('| arguments | `--epochs 3` |');
    expect(out.summary).toContain('| agent | acme/box-1 |');
    expect(out.summary).toContain('| GPUs | 2× A100: #0, #1 |');
    expect(out.summary).toContain('| waited | 30 s |');
    expect(out.summary).toContain('| ran | 1 min 0 s |');
    expect(out.summary).toContain('| exit code | 3 |');
    expect(out.summary).toContain('| ports | 8888 on acme/box-1 |');
    expect(out.summary).toContain('- [`model`](http://srv/runs/slim-octopus-1/jobs/slim-octopus-1-0/artifact?path=model&key=k): 2 files, 2.0 KiB');
    expect(bytes(out.text)).toBeLessThanOrEqual(MAX_OUTPUT_BYTES);
    expect(bytes(out.text)).toBeGreaterThan(MAX_OUTPUT_BYTES - 300);
    expect(out.text.startsWith('```text\n… ')).toBe(true);
    expect(out.text.endsWith('€€€\n```')).toBe(true);
  });

  it('maps job statuses to check run states and conclusions', () => {
    expect(checkRunState(job({ status: 'submitted' }))).toEqual({ status: 'queued' });
    expect(checkRunState(job({ status: 'downloading' }))).toEqual({ status: 'in_progress' });
    expect(checkRunState(job({ status: 'uploading' }))).toEqual({ status: 'in_progress' });
    expect(checkRunState(job({ status: 'done' }))).toEqual({ status: 'completed', conclusion: 'success' });
    expect(checkRunState(job({ status: 'failed' }))).toEqual({ status: 'completed', conclusion: 'failure' });
    expect(checkRunState(job({ status: 'stopped' }))).toEqual({ status: 'completed', conclusion: 'cancelled' });
    expect(checkRunState(job({ status: 'aborted', reason: 'agent box-1 was lost (silent for 30 s)' }))).toEqual({ status: 'completed', conclusion: 'timed_out' });
    expect(checkRunState(job({ status: 'aborted', reason: 'infrastructure error: ENOSPC' }))).toEqual({ status: 'completed', conclusion: 'action_required' });
    expect(checkRunState(job({ status: 'aborted', reason: 'stopped before it started' }))).toEqual({ status: 'completed', conclusion: 'cancelled' });
  });
});
