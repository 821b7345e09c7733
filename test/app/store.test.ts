import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../app/store/migrations.js';
import { Store } from '../../app/store/store.js';
import type { Gpu } from '../../shared/resources.js';
import type { Resources } from '../../shared/workflow/types.js';
import { closeAfterTest, tempDir } from '../helpers/cli.js';
import { workflow } from '../helpers/service.js';

function open(file = path.join(tempDir(), 'dstack.db')): Store {
  return closeAfterTest(new Store(file));
}
function addRun(store: Store, name: string, jobs = 1, at = 1000): void {
  store.insertRun({ name, repo: '/r', workflow: 'w', args: '', submitted_at: at, executor: null, isolation: null });
  for (let i = 0; i < jobs; i++) store.insertJob({ id: `${name}-${i}`, run_name: name, workflow: `w${i}`, position: i, status: 'submitted', spec: JSON.stringify(workflow(`w${i}`)), submitted_at: at });
}
const gpu = (index: number): Gpu => ({ index, name: 'NVIDIA A100', memoryMiB: 81920, uuid: `GPU-${index}` });
const machine = { cpus: 4, memoryMiB: 8192, gpus: [gpu(0), gpu(1)] };
const needs = (over: Partial<Resources>): Resources => ({ gpu: { count: 0 }, interruptible: false, ...over });

describe('Store', () => {
  it('records every status change with its time and reason, and the times a job started and ended', () => {
    const store = open();
    addRun(store, 'r');
    store.setJobStatus('r-0', 'downloading');
    store.setJobStatus('r-0', 'running');
    store.setJobStatus('r-0', 'failed', { reason: 'exit code 2', exit_code: 2 });
    expect(store.jobEvents('r-0').map((e) => [e.status, e.reason])).toEqual([
      ['submitted', null],
      ['downloading', null],
      ['running', null],
      ['failed', 'exit code 2'],
    ]);
    const job = store.getJob('r-0')!;
    expect(job).toMatchObject({ status: 'failed', exit_code: 2, reason: 'exit code 2' });
    expect(job.started_at).not.toBeNull();
    expect(job.finished_at).toBeGreaterThanOrEqual(job.started_at!);
    expect(store.runsWithLiveJobs()).toEqual([]);
  });

  it('claims CPUs, memory and GPUs per agent in one transaction, and frees them when the job ends', () => {
    const store = open();
    addRun(store, 'a', 2);
    addRun(store, 'b', 1);
    expect(store.claimResources('a-0', 'box', machine, needs({ cpu: 3, gpu: { count: 1 } }))).toEqual({ ok: true, gpus: [gpu(0)] });
    // Another agent's claims do not count here.
    expect(store.claimResources('b-0', 'other', machine, needs({ cpu: 4, memoryMiB: 8192, gpu: { count: 2 } })).ok).toBe(true);
    expect(store.claimResources('a-1', 'box', machine, needs({ cpu: 2 }))).toEqual({ ok: false, short: 'cpu', holders: ['a'] });
    expect(store.claimResources('a-1', 'box', machine, needs({ gpu: { count: 2 } }))).toEqual({ ok: false, short: 'gpu', holders: ['a'] });
    expect(store.claimResources('a-1', 'box', machine, needs({ gpu: { count: 1 }, memoryMiB: 9000 }))).toEqual({ ok: false, short: 'memory', holders: [] });
    expect(store.claimResources('a-1', 'box', machine, needs({ cpu: 1, gpu: { count: 1 } }))).toEqual({ ok: true, gpus: [gpu(1)] });
    expect(store.getJob('a-1')).toMatchObject({ agent: 'box', cpu: 1, gpu_ids: 'GPU-1', gpus: '1' });
    // A job claims once.
    expect(() => store.claimResources('a-1', 'box', machine, needs({}))).toThrow('job a-1 is not waiting for an agent');
    store.setJobStatus('a-0', 'done');
    addRun(store, 'c', 1);
    expect(store.claimResources('c-0', 'box', machine, needs({ cpu: 3, gpu: { count: 1 } }))).toEqual({ ok: true, gpus: [gpu(0)] });
    store.releaseResources('c-0');
    expect(store.getJob('c-0')).toMatchObject({ agent: null, cpu: null, gpu_ids: null, gpus: null });
  });

  it('keeps tags unique, artifacts and caches by path', () => {
    const store = open();
    addRun(store, 'r');
    store.setTag('', 'latest', 'r');
    expect(() => store.setTag('', 'latest', 'r')).toThrow(/UNIQUE/);
    // Each owner has tags of their own.
    store.setTag('acme', 'latest', 'r');
    expect(store.listTags('acme').map((t) => t.name)).toEqual(['latest']);
    expect(store.tagsOf('r')).toEqual(['latest', 'latest']);
    expect(store.deleteTag('', 'latest')).toBe(true);
    expect(store.deleteTag('', 'latest')).toBe(false);
    expect(store.getTag('acme', 'latest')?.run_name).toBe('r');
    store.putArtifact({ job_id: 'r-0', path: 'out', archive: 'a1', files: 1, bytes: 2 });
    store.putArtifact({ job_id: 'r-0', path: 'out', archive: 'a2', files: 3, bytes: 4 });
    expect(store.artifactsOf('r-0')).toEqual([{ job_id: 'r-0', path: 'out', archive: 'a2', files: 3, bytes: 4 }]);
    store.putCache({ repo: '/r', workflow: 'w', path: '~/.cache', archive: 'c1', bytes: 1, updated_at: 1 });
    expect(store.deleteCaches('/r', 'w').map((c) => c.archive)).toEqual(['c1']);
    expect(store.cachesOf('/r', 'w')).toEqual([]);
  });

  it('brings a database made by an earlier version up to date, keeping its runs', () => {
    const file = path.join(tempDir(), 'dstack.db');
    // The first schema, as the first release wrote it.
    const old = new Database(file);
    old.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);');
    old.exec(MIGRATIONS[0]!);
    old.prepare("INSERT INTO runs (name, repo, workflow, args, submitted_at, executor) VALUES ('old-run', '/r', 'w', '', 5, NULL)").run();
    old.close();
    const store = open(file);
    expect(store.getRun('old-run')).toMatchObject({ name: 'old-run', isolation: null });
    addRun(store, 'new-run');
    expect(store.listRuns({ limit: 10 }).map((r) => r.name)).toEqual(['new-run', 'old-run']);
    const version = new Database(file, { readonly: true });
    expect(version.prepare('SELECT version FROM schema_version').get()).toEqual({ version: MIGRATIONS.length });
    version.close();
    expect(fs.existsSync(file)).toBe(true);
  });
});
