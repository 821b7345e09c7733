import { formatMiB, matchingGpus, type MachineResources } from '../../shared/resources.js';
import type { Resources } from '../../shared/workflow/types.js';
import type { Claim } from '../store/store.js';

/** Why a job that could run on an agent waits there: what is short, and which runs hold it. */
export interface Shortfall {
  agent: string;
  claim: Extract<Claim, { ok: false }>;
}

/**
 * The waiting reason shown in `dstack ps`, made from the scheduler's data (never parsed back):
 * `waiting for 1 GPU(s): in use by slim-octopus-3`.
 */
export function waitingReason(need: Resources, shortfalls: readonly Shortfall[], ownRun: string): string {
  const first = shortfalls[0];
  if (!first) return 'waiting for an agent: none is connected';
  const { short, holders } = first.claim;
  const what =
    short === 'gpu'
      ? `${need.gpu.count} GPU(s)`
      : short === 'cpu'
        ? `${need.cpu} CPU(s)`
        : `${formatMiB(need.memoryMiB ?? 0)} of memory`;
  const by = holders.map((run) => (run === ownRun ? 'jobs of this run' : run));
  return `waiting for ${what}: in use by ${by.length > 0 ? by.join(', ') : 'other jobs'}`;
}

interface AgentView {
  id: string;
  name?: string;
  owner?: string;
  labels?: readonly string[];
  resources: MachineResources;
}

/** What a job needs, as people say it: `2× A100 (80 GB), 8 CPUs, 64GB memory, labels nvme`. */
export function describeNeed(need: Resources): string {
  const parts: string[] = [];
  const g = need.gpu;
  if (g.count > 0) parts.push(`${g.count}× ${g.name ?? 'GPU'}${g.memoryMiB ? ` (${formatMiB(g.memoryMiB)})` : ''}`);
  if (need.cpu) parts.push(`${need.cpu} CPUs`);
  if (need.memoryMiB) parts.push(`${formatMiB(need.memoryMiB)} memory`);
  if (need.labels?.length) parts.push(`labels ${need.labels.join(', ')}`);
  return parts.join(', ') || 'an agent';
}

/**
 * Why a job waits when several agents (or none) could take it, naming each agent:
 * `waiting: needs 2× A100 (80 GB); agents: gpu-box-1 1× A100 busy, cpu-1 0 GPUs`. An agent that
 * declined the job is named with its reason (`declined it (…)`), by agent id in `declined`.
 */
export function waitingForAgents(need: Resources, owner: string | null, agents: readonly AgentView[], shortfalls: readonly Shortfall[], declined: ReadonlyMap<string, string> = new Map()): string {
  const head = `waiting: needs ${describeNeed(need)}${owner ? ` (an agent of ${owner})` : ''}`;
  // Other owners' agents are theirs to know of: they are neither counted nor named.
  const own = agents.filter((a) => a.owner === undefined || a.owner === owner);
  if (own.length === 0) return `${head}; no agent of ${owner ?? 'this machine'} is connected`;
  const busy = new Map(shortfalls.map((s) => [s.agent, s.claim]));
  const described = own.map((a) => {
    const name = a.name ?? a.id;
    const refusal = declined.get(a.id);
    if (refusal) return `${name} declined it (${refusal})`;
    const missing = (need.labels ?? []).filter((l) => a.labels !== undefined && !a.labels.includes(l));
    if (missing.length > 0) return `${name} no label ${missing.join(', ')}`;
    const claim = busy.get(name);
    if (claim) return `${name} ${claim.short === 'gpu' ? describeGpus(a.resources, need) : claim.short === 'cpu' ? `${a.resources.cpus} CPUs` : `${formatMiB(a.resources.memoryMiB)} memory`} busy`;
    return `${name} ${need.gpu.count > 0 ? describeGpus(a.resources, need) : `${a.resources.cpus} CPUs, ${formatMiB(a.resources.memoryMiB)} memory`}`;
  });
  return `${head}; agents: ${described.join(', ')}`;
}

/**
 * An agent's GPUs as they bear on a request: `1× A100 (40GB)` for a request of A100s with memory,
 * `0 GPUs` for a machine without any.
 */
function describeGpus(machine: MachineResources, need: Resources): string {
  const { name, memoryMiB } = need.gpu;
  const named = name ? matchingGpus(machine.gpus, { count: 0, name }) : machine.gpus;
  if (named.length === 0) return name && machine.gpus.length > 0 ? `0× ${name}` : '0 GPUs';
  const memory = memoryMiB ? ` (${[...new Set(named.map((g) => formatMiB(g.memoryMiB)))].join(', ')})` : '';
  return `${named.length}× ${name ?? shortGpuName(named[0]!.name)}${memory}`;
}

/** `NVIDIA A100-SXM4-80GB` → `A100-SXM4-80GB`: the vendor says nothing in a list of one owner's machines. */
function shortGpuName(model: string): string {
  return model.replace(/^NVIDIA\s+/i, '');
}
