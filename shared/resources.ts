import type { Resources } from './workflow/types.js';

export interface Gpu {
  index: number;
  name: string;
  memoryMiB: number;
  /** Stable across renumbering (a reboot, a GPU taken out): GPUs are claimed by it, never by index. */
  uuid: string;
}

export interface MachineResources {
  cpus: number;
  memoryMiB: number;
  gpus: Gpu[];
}

/** The `--query-gpu` fields that parseNvidiaSmi reads, in order. */
export const NVIDIA_SMI_QUERY = 'index,name,memory.total,uuid';

/** Parses `nvidia-smi --query-gpu=index,name,memory.total,uuid --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(csv: string): Gpu[] {
  const gpus: Gpu[] = [];
  for (const line of csv.split('\n')) {
    const parts = line.split(',').map((s) => s.trim());
    if (parts.length < 4 || !/^\d+$/.test(parts[0]!)) continue;
    gpus.push({ index: Number(parts[0]), name: parts[1]!, memoryMiB: Number(parts[2]) || 0, uuid: parts[3]! });
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

/** What an agent's unfinished jobs hold. */
export interface HeldResources {
  cpu: number;
  memoryMiB: number;
  /** UUIDs of the GPUs held. */
  gpus: ReadonlySet<string>;
}

export type Allocation = { ok: true; gpus: Gpu[] } | { ok: false; short: 'gpu' | 'cpu' | 'memory' };

/**
 * Whether a job needing `need` fits beside what is `held` on a machine with `capacity` now, and
 * which GPUs it gets (the lowest-numbered free ones that match). CPUs and memory count what jobs
 * declare: a job that declares nothing takes none.
 */
export function allocate(capacity: MachineResources, held: HeldResources, need: Resources): Allocation {
  const free = matchingGpus(capacity.gpus, need.gpu).filter((g) => !held.gpus.has(g.uuid));
  if (free.length < need.gpu.count) return { ok: false, short: 'gpu' };
  if (held.cpu + (need.cpu ?? 0) > capacity.cpus) return { ok: false, short: 'cpu' };
  if (held.memoryMiB + (need.memoryMiB ?? 0) > capacity.memoryMiB) return { ok: false, short: 'memory' };
  return { ok: true, gpus: free.slice(0, need.gpu.count) };
}
