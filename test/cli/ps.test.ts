import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Store } from '../../app/store/store.js';
import { cli, makeRepo, tempDir } from '../helpers/cli.js';
import { workflow } from '../helpers/service.js';

/** A home with `n` finished runs (as many as a long history), written through the store. */
function homeWithRuns(n: number): { home: string; names: string[] } {
  const home = tempDir();
  const store = new Store(path.join(home, 'dstack.db'));
  const names: string[] = [];
  store.transaction(() => {
    for (let i = 0; i < n; i++) {
      const name = `old-run-${i}`;
      store.insertRun({ name, repo: '/r', workflow: 'train', args: '', submitted_at: 1_700_000_000_000 + i * 1000, executor: null, isolation: null });
      store.insertJob({ id: `${name}-0`, run_name: name, workflow: 'train', position: 0, status: 'submitted', spec: JSON.stringify(workflow('train')), submitted_at: 0 });
      store.setJobStatus(`${name}-0`, 'done', { exit_code: 0 });
      names.unshift(name);
    }
  });
  store.close();
  return { home, names };
}

const cwd = () => makeRepo({ '.dstack/workflows.yaml': 'workflows:\n  - name: a\n    provider: bash\n    commands: [echo hi]\n' });

describe('dstack ps', () => {
  it('lists every run with -a, newest first, across many pages, as a table and as JSON', async () => {
    const { home, names } = homeWithRuns(450);
    const table = await cli(['ps', '-a'], { cwd: cwd(), home });
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^RUN +WORKFLOW +SUBMITTED +STATUS +TAG$/);
    expect(lines.slice(1).map((l) => l.split(/ +/)[0])).toEqual(names);
    // Columns line up across pages.
    expect(new Set(lines.slice(1).map((l) => l.indexOf('train'))).size).toBe(1);
    const json = JSON.parse((await cli(['ps', '-a', '--json'], { cwd: cwd(), home })).stdout);
    expect(json.map((r: { name: string }) => r.name)).toEqual(names);
    expect(json[0]).toEqual({
      name: names[0],
      workflow: 'train',
      status: 'done',
      args: '',
      tags: [],
      submitted_at: new Date(1_700_000_000_000 + 449_000).toISOString(),
      finished_at: expect.any(String),
      jobs: [
        {
          id: `${names[0]}-0`,
          workflow: 'train',
          status: 'done',
          reason: null,
          exit_code: 0,
          gpus: [],
          provider: null,
          submitted_at: new Date(0).toISOString(),
          started_at: null,
          finished_at: expect.any(String),
          events: [
            { status: 'submitted', reason: null, at: new Date(0).toISOString() },
            { status: 'done', reason: null, at: expect.any(String) },
          ],
        },
      ],
    });
  });

  it('shows the newest N runs with -n, and only the last run when none is unfinished', async () => {
    const { home, names } = homeWithRuns(30);
    const last = await cli(['ps', '-n', '3', '--json'], { cwd: cwd(), home });
    expect(JSON.parse(last.stdout).map((r: { name: string }) => r.name)).toEqual(names.slice(0, 3));
    const plain = await cli(['ps'], { cwd: cwd(), home });
    expect(plain.stdout.trimEnd().split('\n').slice(1).map((l) => l.split(/ +/)[0])).toEqual([names[0]]);
    expect((await cli(['ps', '--json'], { cwd: cwd(), home: tempDir() })).stdout).toBe('[]\n');
  });

  it('refuses an -n that is not a whole number of 1 or more', async () => {
    for (const bad of ['0', 'x', '-2', '1.5']) {
      const r = await cli(['ps', '-n', bad], { cwd: cwd(), home: tempDir() });
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`dstack: error: option '-n, --last <N>' argument '${bad}' is invalid. expected a whole number of 1 or more, got '${bad}'\n`);
    }
  });
});
