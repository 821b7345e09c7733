import type { RunService, RunView } from '../run-service.js';

/**
 * A run as the user API sends it: its jobs, tags and (when asked) each job's status changes, and
 * where its code is — never its sealed secrets, nor the archive key of its patch.
 */
export function publicRun(service: RunService, view: RunView, withEvents = false) {
  const { secrets: _secrets, source: _source, executor: _executor, isolation: _isolation, ...run } = view.run;
  const src = service.sourceOf(view.run);
  return {
    run: { ...run, repo: displayRepo(run.repo, run.owner), source: src ? { repoUrl: src.repoUrl, commit: src.commit, patch: src.patch !== null } : null },
    status: view.status,
    jobs: view.jobs,
    tags: view.tags,
    ...(withEvents ? { events: Object.fromEntries(view.jobs.map((j) => [j.id, service.jobEvents(j.id)])) } : {}),
  };
}

export type PublicRun = ReturnType<typeof publicRun>;

/**
 * The repository key of a server's run: its owner's and its URL's, so that caches (kept per
 * repository and workflow) are never shared between owners who run the same repository.
 */
export function ownerRepo(owner: string, repo: string): string {
  return `${owner}:${repo}`;
}

function displayRepo(repo: string, owner: string | null): string {
  return owner && repo.startsWith(`${owner}:`) ? repo.slice(owner.length + 1) : repo;
}
