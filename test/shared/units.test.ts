import { describe, expect, it } from 'vitest';
import { runStatus } from '../../shared/job-status.js';
import { matchingGpus, parseNvidiaSmi, unmetResources } from '../../shared/resources.js';
import { newRunName, RUN_NAME_PATTERN } from '../../shared/run-names.js';
import { shellJoin, shellQuote } from '../../shared/shell-quote.js';
import { closest } from '../../shared/suggest.js';
import { sizeInMiB } from '../../shared/workflow/project.js';

describe('shell quoting', () => {
  it('leaves plain words alone and quotes the rest so each stays one word', () => {
    expect(shellJoin(['--lr', '0.1', 'a b', "it's", '', '$HOME', 'x;rm'])).toBe(`--lr 0.1 'a b' 'it'\\''s' '' '$HOME' 'x;rm'`);
    expect(shellQuote('--name=value')).toBe('--name=value');
  });
});

describe('run names', () => {
  it('are adjective-animal-N, N counting the runs that used the pair', () => {
    const name = newRunName((prefix) => (prefix ? 2 : 0), () => 0);
    expect(name).toBe('brave-badger-3');
    expect(RUN_NAME_PATTERN.test(name)).toBe(true);
  });
});

describe('nvidia-smi', () => {
  it('parses the CSV of --query-gpu=index,name,memory.total,uuid --format=csv,noheader,nounits', () => {
    expect(parseNvidiaSmi('0, NVIDIA A100-SXM4-80GB, 81920, GPU-a\n1, Tesla V100-SXM2-16GB, 16384, GPU-b\n')).toEqual([
      { index: 0, name: 'NVIDIA A100-SXM4-80GB', memoryMiB: 81920, uuid: 'GPU-a' },
      { index: 1, name: 'Tesla V100-SXM2-16GB', memoryMiB: 16384, uuid: 'GPU-b' },
    ]);
    expect(parseNvidiaSmi('No devices were found\n')).toEqual([]);
  });

  it('matches GPUs by name and memory and says what is missing', () => {
    const gpus = parseNvidiaSmi('0, NVIDIA A100-SXM4-80GB, 81920, GPU-a\n1, Tesla V100-SXM2-16GB, 16384, GPU-b\n');
    expect(matchingGpus(gpus, { count: 1, name: 'v100' }).map((g) => g.index)).toEqual([1]);
    expect(matchingGpus(gpus, { count: 1, memoryMiB: 40000 }).map((g) => g.index)).toEqual([0]);
    const machine = { cpus: 8, memoryMiB: 32768, gpus };
    expect(unmetResources({ gpu: { count: 1 }, interruptible: false }, machine)).toBeUndefined();
    expect(unmetResources({ gpu: { count: 3 }, interruptible: false }, machine)).toBe(
      'needs 3 GPUs, this machine has 2 such (NVIDIA A100-SXM4-80GB, Tesla V100-SXM2-16GB)',
    );
    expect(unmetResources({ gpu: { count: 0 }, memoryMiB: 65536, interruptible: false }, machine)).toBe('needs 64GB of memory, this machine has 32GB');
  });
});

describe('run status', () => {
  it('is the live status while a job goes on, else the worst ending', () => {
    expect(runStatus([{ status: 'done' }, { status: 'running' }])).toBe('running');
    expect(runStatus([{ status: 'done' }, { status: 'submitted' }])).toBe('submitted');
    expect(runStatus([{ status: 'stopped' }, { status: 'failed' }])).toBe('failed');
    expect(runStatus([{ status: 'done' }, { status: 'done' }])).toBe('done');
  });
});

describe('small helpers', () => {
  it('suggests the closest word only when it is close', () => {
    expect(closest('comands', ['commands', 'cache'])).toBe('commands');
    expect(closest('zzzzzz', ['commands', 'cache'])).toBeUndefined();
  });

  it('reads sizes as MiB', () => {
    expect(sizeInMiB('32GB')).toBe(32768);
    expect(sizeInMiB('512MB')).toBe(512);
    expect(sizeInMiB(100)).toBe(100);
    expect(sizeInMiB('1.5GiB')).toBe(1536);
  });
});
