import { execFile } from 'node:child_process';
import os from 'node:os';
import si from 'systeminformation';
import { NVIDIA_SMI_QUERY, parseNvidiaSmi, type Gpu, type MachineResources } from '../shared/resources.js';

export interface DetectedResources extends MachineResources {
  /** From nvidia-smi, when the machine has GPUs. */
  driverVersion?: string;
  cudaVersion?: string;
}

/**
 * What this machine has: CPUs, memory, and the GPUs nvidia-smi reports with the driver and CUDA
 * versions. No nvidia-smi (or one that fails, as on a machine without a driver) means no GPUs.
 */
export async function detectResources(env: NodeJS.ProcessEnv = process.env): Promise<DetectedResources> {
  const [cpu, mem, gpus] = await Promise.all([si.cpu(), si.mem(), detectGpus(env)]);
  // A process limited to some CPUs (taskset, a cgroup cpuset) can use only those.
  const cpus = Math.min(cpu.cores || os.availableParallelism(), os.availableParallelism());
  const versions = gpus.length > 0 ? parseNvidiaSmiHeader(await nvidiaSmi([], env)) : {};
  return { cpus, memoryMiB: Math.floor(mem.total / 1048576), gpus, ...versions };
}

export async function detectGpus(env: NodeJS.ProcessEnv = process.env): Promise<Gpu[]> {
  return parseNvidiaSmi(await nvidiaSmi([`--query-gpu=${NVIDIA_SMI_QUERY}`, '--format=csv,noheader,nounits'], env));
}

/** The driver and CUDA versions from the banner plain `nvidia-smi` prints. */
export function parseNvidiaSmiHeader(text: string): { driverVersion?: string; cudaVersion?: string } {
  const driver = /Driver Version:\s*([\d.]+)/.exec(text)?.[1];
  const cuda = /CUDA Version:\s*([\d.]+)/.exec(text)?.[1];
  return { ...(driver ? { driverVersion: driver } : {}), ...(cuda ? { cudaVersion: cuda } : {}) };
}

/** nvidia-smi's output, or '' when it is missing or fails. */
function nvidiaSmi(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', args, { env, timeout: 10_000 }, (err, stdout) => resolve(err ? '' : stdout));
  });
}
