import { Project } from '../../shared/workflow/project.js';
import { openClient } from '../client/open-client.js';
import { findRepoRoot } from '../local/repo-root.js';

/** `dstack prune cache WORKFLOW`: empties the workflow's cache for this repository (seed 000). */
export async function pruneCacheCommand(workflow: string): Promise<void> {
  const root = findRepoRoot();
  Project.load(root).closure(workflow); // an unknown workflow is an error, with the defined ones listed
  const client = await openClient();
  try {
    const n = await client.pruneCache(root, workflow);
    process.stdout.write(n === 0 ? `No cache for ${workflow}\n` : `Deleted ${n} cached folder${n === 1 ? '' : 's'} of ${workflow}\n`);
  } finally {
    client.close();
  }
}
