import type { Resources } from './workflow/types.js';

export interface Gpu {
  index: number;
  name: string;
  memoryMiB: number;
}

export interface MachineResources {
  cpus: number;
  memoryMiB: number;
  gpus: Gpu[];
}

/** Parses `nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(csv: string): Gpu[] {
  const gpus: Gpu[] = [];
  for (const line of csv.split('\n')) {
    const parts = line.split(',').map((s) => s.trim());
    if (parts.length < 3 || !/^\d+$/.test(parts[0]!)) continue;
    gpus.push({ index: Number(parts[0]), name: parts[1]!, memoryMiB: Number(parts[2]) || 0 });
  }
  return gpus;
}

/** GPUs of `gpus` that fit a request's name and memory (a name matches case-insensitively inside the model name). */
export function matchingGpus(gpus: readonly Gpu[], request: Resources['gpu']): Gpu[] {
  return gpus.filter(
    (g) =>
      (!request.name || g.name.toLowerCase().includes(request.name.toLowerCase())) &&
      (!request.memoryMiB || g.memoryMiB >= request.memoryMiB),
  );
}

/** Why `machine` can never run a job needing `need`, or undefined when it can. */
export function unmetResources(need: Resources, machine: MachineResources, where = 'this machine'): string | undefined {
  const count = need.gpu.count;
  if (count > 0) {
    const fit = matchingGpus(machine.gpus, need.gpu);
    if (fit.length < count) {
      const what = `${count} ${need.gpu.name ? `${need.gpu.name} ` : ''}GPU${count === 1 ? '' : 's'}${need.gpu.memoryMiB ? ` with ${formatMiB(need.gpu.memoryMiB)}` : ''}`;
      const has = machine.gpus.length === 0 ? '0' : `${fit.length} such (${machine.gpus.map((g) => g.name).join(', ')})`;
      return `needs ${what}, ${where} has ${has}`;
    }
  }
  if (need.cpu !== undefined && need.cpu > machine.cpus) return `needs ${need.cpu} CPUs, ${where} has ${machine.cpus}`;
  if (need.memoryMiB !== undefined && need.memoryMiB > machine.memoryMiB) {
    return `needs ${formatMiB(need.memoryMiB)} of memory, ${where} has ${formatMiB(machine.memoryMiB)}`;
  }
  return undefined;
}

export function formatMiB(mib: number): string {
  return mib >= 1024 ? `${+(mib / 1024).toFixed(1)}GB` : `${Math.round(mib)}MB`;
}
