import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { ArchiveRef, JobIO, StatusFields } from '../../agent/job-io.js';
import { JobRunner } from '../../agent/job-runner.js';
import type { LogChunk } from '../../agent/log-streamer.js';
import { packStream } from '../../agent/tar.js';
import type { JobStatus } from '../../shared/job-status.js';
import { secretPlaceholder } from '../../shared/secrets.js';
import { tempDir, waitFor, writeFiles } from '../helpers/cli.js';
import { workflow } from '../helpers/service.js';

async function bytes(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of stream) parts.push(p as Buffer);
  return Buffer.concat(parts);
}

/** Lists a tar archive's members. */
function members(archive: Buffer): string[] {
  return spawnSync('tar', ['-tf', '-'], { input: archive }).stdout.toString().trim().split('\n').sort();
}

/** A JobIO on plain files and arrays: what the runner reports, and what it saves. */
function recordingIO(files: Record<string, string>, options: { caches?: ArchiveRef[]; failLog?: (seq: number) => boolean } = {}) {
  const statuses: { status: JobStatus; fields?: StatusFields }[] = [];
  const chunks: LogChunk[] = [];
  const artifacts = new Map<string, Buffer>();
  const caches = new Map<string, Buffer>();
  const io: JobIO = {
    setStatus: async (status, fields) => void statuses.push({ status, fields }),
    log: (c) => {
      if (options.failLog?.(c.seq)) throw new Error('disk full');
      // A copy: a chunk is lent for the call only (see LogSink).
      chunks.push({ seq: c.seq, data: Buffer.from(c.data) });
    },
    portOpen: () => {},
    checkout: async (dest) => writeFiles(dest, files),
    dependencies: async () => [],
    caches: async () => options.caches ?? [],
    putArtifact: async (p, stream) => void artifacts.set(p, await bytes(stream)),
    putCache: async (p, stream) => void caches.set(p, await bytes(stream)),
  };
  const text = () => Buffer.concat(chunks.map((c) => c.data)).toString();
  return { io, statuses, chunks, artifacts, caches, text };
}

function runner(commands: string[], io: JobIO, extra: Parameters<typeof workflow>[1] = {}, secrets: Record<string, string> = {}) {
  const workRoot = tempDir();
  const wf = workflow('job', { spec: { name: 'job', provider: 'bash', commands } as never, ...extra });
  const r = new JobRunner({ jobId: 'run-1-0', runName: 'run-1', workflow: wf, gpus: [], secrets }, io, { workRoot, graceSeconds: 0.3 });
  return { r, dir: path.join(workRoot, 'run-1-0') };
}

describe('JobRunner', () => {
  it('kills at its end what the job started in a session of its own, which its process group does not hold', async () => {
    const marks = tempDir();
    const rec = recordingIO({});
    const { r } = runner([`setsid sh -c 'echo $$ > ${marks}/pid; exec sleep 300' > /dev/null 2>&1 < /dev/null &`, `while [ ! -s ${marks}/pid ]; do sleep 0.05; done`, 'echo left'], rec.io);
    expect(await r.run()).toBe('done');
    const pid = Number(fs.readFileSync(path.join(marks, 'pid'), 'utf8'));
    expect(pid).toBeGreaterThan(0);
    await waitFor(() => !fs.existsSync(`/proc/${pid}`) || /^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8')), 5000, 'the setsid process to be killed');
  });

  it('under a pty whose pause is free, lets its log pause the reading, and every byte still comes in order', async () => {
    const rec = recordingIO({});
    let mayPause = 0;
    const slow: JobIO = {
      ...rec.io,
      logMayPause: () => mayPause++,
      // A sink that is always behind: each chunk asks the producer to wait a moment (its ~7 MB
      // then take 27 reads of 100 ms, far longer than the job itself).
      log: (c) => {
        rec.chunks.push({ seq: c.seq, data: Buffer.from(c.data) });
        return new Promise<void>((resolve) => setTimeout(resolve, 100));
      },
    };
    const marks = tempDir();
    // The job's own end is stamped: it comes long before its log is all taken, as nothing held it up.
    const { r } = runner(['seq 1 1000000', `date +%s%N > ${marks}/ended`, 'echo the-end'], slow);
    expect(await r.run()).toBe('done');
    const logTaken = Date.now();
    const ended = Number(BigInt(fs.readFileSync(path.join(marks, 'ended'), 'utf8').trim()) / 1_000_000n);
    expect(mayPause).toBe(1);
    expect(logTaken - ended).toBeGreaterThan(300);
    expect(rec.text()).toBe(Array.from({ length: 1000000 }, (_, i) => `${i + 1}\r\n`).join('') + 'the-end\r\n');
  });

  it('reports its statuses in order, streams its output in sequenced chunks, and removes its folder', async () => {
    const rec = recordingIO({ 'data.txt': 'from the repository' });
    const { r, dir } = runner(['cat data.txt', 'echo " and $HOME"'], rec.io);
    expect(await r.run()).toBe('done');
    expect(rec.statuses.map((s) => s.status)).toEqual(['downloading', 'running', 'uploading', 'done']);
    expect(rec.statuses.at(-1)!.fields).toEqual({ reason: null, exit_code: 0 });
    expect(rec.chunks.map((c) => c.seq)).toEqual(rec.chunks.map((_, i) => i + 1));
    expect(rec.text()).toContain(`from the repository and ${dir}/home`);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('saves artifacts when the job fails, and caches only when it succeeds', async () => {
    const failing = recordingIO({}, {});
    const wfKeys = { artifacts: ['out'], cache: ['~/.cache/pip'] };
    const { r } = runner(['mkdir -p out ~/.cache/pip', 'echo result > out/r.txt', 'echo wheel > ~/.cache/pip/w', 'exit 3'], failing.io, wfKeys);
    expect(await r.run()).toBe('failed');
    expect(failing.statuses.at(-1)!.fields).toEqual({ reason: 'exit code 3', exit_code: 3 });
    expect(members(failing.artifacts.get('out')!)).toEqual(['out/', 'out/r.txt']);
    expect(failing.caches.size).toBe(0);
    const passing = recordingIO({});
    const ok = runner(['mkdir -p out ~/.cache/pip', 'echo result > out/r.txt', 'echo wheel > ~/.cache/pip/w'], passing.io, wfKeys);
    expect(await ok.r.run()).toBe('done');
    expect(members(passing.caches.get('~/.cache/pip')!)).toEqual(['.cache/pip/', '.cache/pip/w']);
  });

  it('restores caches before the job runs', async () => {
    const src = tempDir();
    writeFiles(src, { 'pip/w': 'cached wheel' });
    const cache: ArchiveRef = { path: '~/.cache', open: () => packStream(src, '.').stream };
    const rec = recordingIO({}, { caches: [cache] });
    const { r } = runner(['cat ~/pip/w'], rec.io);
    expect(await r.run()).toBe('done');
    expect(rec.text()).toContain('cached wheel');
  });

  it('stops with SIGINT first, and the job that ignores it with SIGTERM after the grace period; artifacts are still saved', async () => {
    const rec = recordingIO({});
    const { r } = runner(["trap 'echo got-int' INT", 'mkdir out && echo partial > out/p', 'echo ready', 'while true; do sleep 0.05; done'], rec.io, { artifacts: ['out'] });
    const done = r.run();
    await waitFor(() => rec.text().includes('ready'), 10_000, 'the job to start');
    r.stop('stop');
    expect(await done).toBe('stopped');
    expect(rec.text()).toContain('got-int');
    expect(rec.statuses.map((s) => s.status)).toEqual(['downloading', 'running', 'stopping', 'uploading', 'stopped']);
    expect(rec.statuses.at(-1)!.fields?.reason).toBe('stopped by the user');
    expect(members(rec.artifacts.get('out')!)).toEqual(['out/', 'out/p']);
  });

  it('aborts at once with SIGKILL, saving nothing', async () => {
    const rec = recordingIO({});
    const { r } = runner(["trap '' INT TERM", 'mkdir out', 'echo ready', 'while true; do sleep 0.05; done'], rec.io, { artifacts: ['out'] });
    const done = r.run();
    await waitFor(() => rec.text().includes('ready'), 10_000, 'the job to start');
    r.stop('abort');
    expect(await done).toBe('aborted');
    expect(rec.artifacts.size).toBe(0);
  });

  it('masks secrets in its output, and puts their values in only when it starts', async () => {
    const rec = recordingIO({});
    const { r } = runner(['echo "key=$KEY"'], rec.io, { env: { KEY: secretPlaceholder('KEY') } }, { KEY: 's3cr3t-value' });
    expect(await r.run()).toBe('done');
    expect(rec.text()).toContain('key=***');
    expect(rec.text()).not.toContain('s3cr3t');
  });

  it('still reports its end when its log cannot be stored, saying the log is incomplete', async () => {
    const rec = recordingIO({}, { failLog: (seq) => seq === 1 });
    const { r } = runner(['echo lost', 'sleep 0.3', 'echo kept'], rec.io);
    expect(await r.run()).toBe('done');
    expect(rec.statuses.at(-1)!.fields?.reason).toMatch(/^log incomplete: 1 of \d+ chunk\(s\) could not be stored \(disk full\)$/);
    expect(rec.text()).toContain('kept');
  });
});
