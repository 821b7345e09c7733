import { describe, expect, it } from 'vitest';
import { closeAfterTest } from '../helpers/cli.js';
import { openService, workflow } from '../helpers/service.js';


/** A service with `n` runs submitted a second apart (some at the same instant), the newest last. */
function withRuns(n: number) {
  const s = openService();
  closeAfterTest(s);
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const runName = `run-${String(i).padStart(4, '0')}`;
    // Pairs share a submission time: the order must still be total (by name within a time).
    s.store.insertRun({ name: runName, repo: '/r', workflow: 'w', args: '', submitted_at: 1_000_000 + Math.floor(i / 2) * 1000, executor: null, isolation: null });
    s.store.insertJob({ id: `${runName}-0`, run_name: runName, workflow: 'w', position: 0, status: 'submitted', spec: JSON.stringify(workflow('w')), submitted_at: 0 });
    names.push(runName);
  }
  return { ...s, names: names.reverse() };
}

describe('listing runs', () => {
  it('pages through every run newest first, each exactly once, across equal submission times', () => {
    const { service, names } = withRuns(23);
    const seen = [...service.allRuns({ pageSize: 5 })].map((v) => v.run.name);
    expect(seen).toEqual(names);
  });

  it('lists only runs with unfinished jobs when asked, and the newest N', () => {
    const { service, names, store } = withRuns(10);
    for (const name of names.slice(0, 7)) store.setJobStatus(`${name}-0`, 'done');
    store.setJobStatus(`${names[8]}-0`, 'running');
    expect([...service.allRuns({ live: true, pageSize: 2 })].map((v) => v.run.name)).toEqual(names.slice(7));
    expect(service.listRuns({ limit: 3 }).map((v) => [v.run.name, v.status])).toEqual([
      [names[0], 'done'],
      [names[1], 'done'],
      [names[2], 'done'],
    ]);
  });

  it('brings each run of a page with its jobs and tags', () => {
    const { service, names, store } = withRuns(3);
    store.setJobStatus(`${names[1]}-0`, 'done');
    store.setTag('', 'latest', names[1]!);
    store.setTag('', 'v1', names[1]!);
    const [, second] = service.listRuns({ limit: 3 });
    expect(second!.tags).toEqual(['latest', 'v1']);
    expect(second!.jobs.map((j) => j.id)).toEqual([`${names[1]}-0`]);
    expect(second!.status).toBe('done');
  });
});
