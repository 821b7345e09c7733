import { Project } from '../../shared/workflow/project.js';
import { findRepoRoot, openLocal } from '../local/local-context.js';

/** `dstack prune cache WORKFLOW`: empties the workflow's cache for this repository (seed 000). */
export function pruneCacheCommand(workflow: string): void {
  const root = findRepoRoot();
  Project.load(root).closure(workflow); // an unknown workflow is an error, with the defined ones listed
  const ctx = openLocal();
  try {
    const n = ctx.service.pruneCache(root, workflow);
    process.stdout.write(n === 0 ? `No cache for ${workflow}\n` : `Deleted ${n} cached folder${n === 1 ? '' : 's'} of ${workflow}\n`);
  } finally {
    ctx.close();
  }
}
