import { execFile } from 'node:child_process';
import os from 'node:os';
import { NVIDIA_SMI_QUERY, parseNvidiaSmi, type Gpu, type MachineResources } from '../shared/resources.js';

/**
 * What this machine has: CPUs, memory, and the GPUs nvidia-smi reports. No nvidia-smi (or one that
 * fails, as on a machine without a driver) means no GPUs.
 */
export async function detectResources(env: NodeJS.ProcessEnv = process.env): Promise<MachineResources> {
  return {
    cpus: os.availableParallelism(),
    memoryMiB: Math.floor(os.totalmem() / 1048576),
    gpus: await detectGpus(env),
  };
}

export function detectGpus(env: NodeJS.ProcessEnv = process.env): Promise<Gpu[]> {
  return new Promise((resolve) => {
    execFile(
      'nvidia-smi',
      [`--query-gpu=${NVIDIA_SMI_QUERY}`, '--format=csv,noheader,nounits'],
      { env, timeout: 10_000 },
      (err, stdout) => resolve(err ? [] : parseNvidiaSmi(stdout)),
    );
  });
}

