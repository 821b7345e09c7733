import { formatMiB } from '../../shared/resources.js';
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
