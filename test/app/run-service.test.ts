import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { isDstackError } from '../../shared/errors.js';
import { closeAfterTest } from '../helpers/cli.js';
import { openService, workflow } from '../helpers/service.js';


function setup() {
  const s = openService();
  closeAfterTest(s);
  const submit = (names: string[], extra: Parameters<typeof workflow>[1][] = [], executor: string | null = null) => {
    const runName = s.service.newRunName();
    s.service.submit({ repo: '/repo', workflow: names.at(-1)!, args: '--x 1', runName, plan: names.map((n, i) => workflow(n, extra[i])), executor });
    return runName;
  };
  const finish = (run: string, status: 'done' | 'failed' = 'done') => {
    for (const j of s.service.view(run).jobs) s.service.setJobStatus(j.id, status);
  };
  return { ...s, submit, finish };
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isDstackError(err) ? err.code : `not a DstackError: ${err}`;
  }
  return undefined;
}

describe('RunService', () => {
  it('submits a run with one job per workflow, dependencies first, all submitted', () => {
    const { service, submit } = setup();
    const run = submit(['prepare', 'train']);
    const view = service.view(run);
    expect(view.run).toMatchObject({ name: run, workflow: 'train', args: '--x 1' });
    expect(view.status).toBe('submitted');
    expect(view.jobs.map((j) => [j.id, j.workflow, j.status])).toEqual([
      [`${run}-0`, 'prepare', 'submitted'],
      [`${run}-1`, 'train', 'submitted'],
    ]);
  });

  it('emits every status change with the stored row', () => {
    const { service, submit } = setup();
    const run = submit(['a']);
    const seen: string[] = [];
    service.on('job', (j) => seen.push(`${j.status}:${j.reason ?? ''}:${j.exit_code ?? ''}`));
    service.setJobStatus(`${run}-0`, 'running');
    service.setJobStatus(`${run}-0`, 'failed', { reason: 'exit code 3', exit_code: 3 });
    expect(seen).toEqual(['running::', 'failed:exit code 3:3']);
    expect(service.view(run).jobs[0]).toMatchObject({ status: 'failed', exit_code: 3 });
  });

  it('stores each log chunk once, emitting where it starts in the log', () => {
    const { service, submit } = setup();
    const job = `${submit(['a'])}-0`;
    const seen: [string, number][] = [];
    service.on('log', (_id, data, offset) => seen.push([data.toString(), offset]));
    service.appendLog(job, 1, Buffer.from('one\n'));
    service.appendLog(job, 2, Buffer.from('two\n'));
    service.appendLog(job, 2, Buffer.from('two\n')); // resent after a reconnect
    service.appendLog(job, 1, Buffer.from('one\n'));
    expect(seen).toEqual([
      ['one\n', 0],
      ['two\n', 4],
    ]);
  });

  it('tags only finished runs, moves a tag from run to run, and resolves :TAG', () => {
    const { service, submit, finish } = setup();
    const first = submit(['prepare']);
    expect(code(() => service.tag(first, 'latest'))).toBe('DSTACK_ERR_RUN_ACTIVE');
    finish(first);
    expect(service.tag(first, 'latest')).toEqual({});
    const second = submit(['prepare']);
    finish(second);
    expect(service.tag(second, 'latest')).toEqual({ moved: first });
    expect(service.resolveRunRef(':latest').run.name).toBe(second);
    expect(service.view(second).tags).toEqual(['latest']);
    expect(service.view(first).tags).toEqual([]);
    service.untag('latest');
    expect(code(() => service.untag('latest'))).toBe('DSTACK_ERR_TAG_UNKNOWN');
    expect(code(() => service.resolveRunRef(':latest'))).toBe('DSTACK_ERR_TAG_UNKNOWN');
    expect(code(() => service.view('no-such-run'))).toBe('DSTACK_ERR_RUN_UNKNOWN');
  });

  it('finds the jobs whose artifacts a job gets: in-run dependencies and tagged runs', () => {
    const { service, submit, finish } = setup();
    const tagged = submit(['prepare']);
    finish(tagged);
    service.tag(tagged, 'v1');
    const run = submit(['prepare', 'train'], [{}, { dependsOn: [{ workflow: 'prepare' }, { workflow: 'prepare', tag: 'v1' }] }]);
    const train = service.view(run).jobs[1]!;
    expect(service.dependencyJobs(train).map((j) => j.id)).toEqual([`${run}-0`, `${tagged}-0`]);
    expect(code(() => service.taggedJob('train', 'v1'))).toBe('DSTACK_ERR_TAG_UNKNOWN');
  });

  it('marks the unfinished jobs of runs whose process died as aborted, and leaves live ones alone', () => {
    const { service, submit } = setup();
    const dead = submit(['a', 'b'], [], 'host:1:dead');
    const alive = submit(['a'], [], 'host:2:alive');
    service.setJobStatus(`${dead}-0`, 'done');
    expect(service.reconcile((executor) => executor.endsWith('alive'))).toEqual([dead]);
    expect(service.view(dead).jobs.map((j) => j.status)).toEqual(['done', 'aborted']);
    expect(service.view(dead).jobs[1]!.reason).toBe('the dstack process running this job exited (host:1:dead)');
    expect(service.view(alive).status).toBe('submitted');
    expect(service.reconcile(() => true)).toEqual([]);
  });

  it('stores artifacts and caches as archives, and prunes a cache with its archives', async () => {
    const { service, submit, dir } = setup();
    const run = submit(['train']);
    await service.putArtifact(`${run}-0`, 'checkpoint', Readable.from([Buffer.from('tar bytes')]), { files: 2, bytes: 9 });
    expect(service.artifactsOfRun(run)).toMatchObject([{ workflow: 'train', path: 'checkpoint', files: 2, bytes: 9 }]);
    await service.putCache('/repo', 'train', '~/.cache/pip', Readable.from([Buffer.from('cache')]), { bytes: 5 });
    const archives = path.join(dir, 'archives', 'cache');
    expect(fs.readdirSync(archives, { recursive: true }).some((f) => String(f).endsWith('.tar'))).toBe(true);
    expect(service.pruneCache('/repo', 'train')).toBe(1);
    expect(service.pruneCache('/repo', 'train')).toBe(0);
    expect(fs.readdirSync(archives, { recursive: true }).some((f) => String(f).endsWith('.tar'))).toBe(false);
  });

  it("removes a remote run's patch once its last job ends, and patches no run took once they are old", async () => {
    const { service, dir } = setup();
    const taken = await service.putPatch('acme', Readable.from([Buffer.from('diff --git a/x b/x\n')]));
    const left = await service.putPatch('acme', Readable.from([Buffer.from('never submitted\n')]));
    const key = service.takePatch('acme', taken, 'remote-run-1')!;
    // Taken by one run, the id means nothing more: a second run cannot share (and lose) it.
    expect(service.patchKey('acme', taken)).toBeUndefined();
    expect(service.takePatch('acme', taken, 'remote-run-2')).toBeUndefined();
    service.submit({
      repo: 'acme:https://example.invalid/r.git', workflow: 'a', args: '', runName: 'remote-run-1', plan: [workflow('a'), workflow('b')], executor: null,
      owner: 'acme', source: { repoUrl: 'https://example.invalid/r.git', commit: 'c'.repeat(40), patch: key },
    });
    const later = Date.now() + 2 * 24 * 60 * 60 * 1000;
    // The submitted run's patch stays while it runs, however old; the one no run took goes.
    expect(service.prunePatches(24 * 60 * 60 * 1000, later)).toBe(1);
    expect(service.patchKey('acme', left)).toBeUndefined();
    const stored = path.join(dir, 'archives', key);
    service.setJobStatus('remote-run-1-0', 'done');
    expect(fs.existsSync(stored)).toBe(true);
    service.setJobStatus('remote-run-1-1', 'failed');
    expect(fs.existsSync(stored)).toBe(false);
    expect(fs.readdirSync(path.join(dir, 'archives/patches'), { recursive: true }).filter((f) => String(f).endsWith('.patch'))).toEqual([]);
  });
});
