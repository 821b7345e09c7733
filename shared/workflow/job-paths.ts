import { confinedPath } from './paths.js';
import type { WorkflowSpec } from './schema.js';

/** Where a job runs and what of it is kept, relative to the repository root. */
export interface JobPaths {
  workingDir: string;
  artifacts: string[];
  cache: string[];
}

/**
 * The folders of a validated workflow, each confined to where it may be (see confinedPath):
 * `working_dir` to the repository, artifacts to the working directory, caches to it or the
 * job's home, a curl download's output to the working directory. `at(...keys)` says where a key
 * stands, for the error. The loader makes a resolved workflow's paths with it, and the server
 * checks a submitted plan's with it.
 */
export function jobPaths(spec: WorkflowSpec, at: (...keys: (string | number)[]) => string): JobPaths {
  const workingDir = 'working_dir' in spec && spec.working_dir ? confinedPath(spec.working_dir, '.', 'working_dir', at('working_dir')) : '.';
  const paths = (key: 'artifacts' | 'cache', allowHome: boolean) =>
    ((spec as { [k: string]: unknown })[key] as (string | { path: string })[] | undefined ?? []).map((p, i) =>
      confinedPath(
        typeof p === 'string' ? p : p.path,
        workingDir,
        key === 'artifacts' ? 'artifact path' : 'cache path',
        typeof p === 'string' ? at(key, i) : at(key, i, 'path'),
        allowHome,
      ),
    );
  const artifacts = paths('artifacts', false);
  if (spec.provider === 'curl') confinedPath(spec.output, workingDir, 'output', at('output'));
  return { workingDir, artifacts, cache: spec.provider === 'curl' ? [] : paths('cache', true) };
}
