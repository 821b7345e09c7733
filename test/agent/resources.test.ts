import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { detectResources } from '../../agent/resources.js';
import { FIXTURE_BIN } from '../helpers/cli.js';

const PATH = `${FIXTURE_BIN}:${process.env.PATH}`;

describe('detectResources', () => {
  it('reports CPUs, memory, GPUs by UUID, and the driver and CUDA versions from nvidia-smi', async () => {
    const r = await detectResources({ ...process.env, PATH, FAKE_GPUS: 'NVIDIA A100-SXM4-80GB:81920:GPU-8f3c1a2b-0000-4000-8000-000000000001,Tesla V100-SXM2-16GB:16384' });
    expect(r.cpus).toBe(os.availableParallelism());
    expect(r.memoryMiB).toBe(Math.floor(os.totalmem() / 1048576));
    expect(r.gpus).toEqual([
      { index: 0, name: 'NVIDIA A100-SXM4-80GB', memoryMiB: 81920, uuid: 'GPU-8f3c1a2b-0000-4000-8000-000000000001' },
      { index: 1, name: 'Tesla V100-SXM2-16GB', memoryMiB: 16384, uuid: 'GPU-00000000-0000-0000-0000-000000000001' },
    ]);
    expect(r.driverVersion).toBe('550.54.15');
    expect(r.cudaVersion).toBe('12.4');
  });

  it('means no GPUs, not an error, when nvidia-smi fails or is missing', async () => {
    const failing = await detectResources({ ...process.env, PATH, FAKE_GPUS: '' });
    expect(failing.gpus).toEqual([]);
    expect(failing.driverVersion).toBeUndefined();
    const missing = await detectResources({ ...process.env, PATH: '/nonexistent' });
    expect(missing.gpus).toEqual([]);
  });
});
