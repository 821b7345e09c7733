import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { ResolvedWorkflow } from '../../shared/workflow/types.js';
import { ownerRepo } from '../server/user-views.js';
import type { GithubApp } from './github-app.js';
import { RELEASE_MARKER, releaseManifest } from './releases-body.js';

/** A repository as the importer needs it: where its releases are and whose runs it has. */
export interface ImportFrom {
  installationId: number;
  owner: string;
  repo: string;
  /** `clone_url`: the run's repository key, as runs of the app have it. */
  cloneUrl: string;
}

/**
 * For `depends-on: WORKFLOW:TAG` on a server that does not have the tag (a new server, another data
 * folder) while GitHub has the release TAG the app made: downloads its assets (streamed, never held
 * whole) into the archive store as the artifacts of a new run, already done, of the repository's
 * owner, and tags it TAG, so the dependency resolves as for any tagged run. Only releases the app
 * made (the marker and the manifest in the body) are read. Returns the run's name, or undefined
 * when there is no such release. `skip` is told the run's name first, so that tagging it does not
 * publish the release again.
 */
export async function importReleaseTag(app: GithubApp, from: ImportFrom, tag: string, skip: (runName: string) => void): Promise<string | undefined> {
  const octokit = await app.octokitFor(from.installationId);
  let release;
  try {
    release = (await octokit.rest.repos.getReleaseByTag({ owner: from.owner, repo: from.repo, tag })).data;
  } catch (err) {
    if ((err as { status?: number }).status === 404) return undefined;
    throw err;
  }
  const manifest = releaseManifest(release.body);
  if (!(release.body ?? '').startsWith(RELEASE_MARKER) || !manifest) return undefined;
  const assets = await octokit.paginate(octokit.rest.repos.listReleaseAssets, { owner: from.owner, repo: from.repo, release_id: release.id, per_page: 100 });
  const { service } = app;
  const store = app.server.state.store;
  const runName = service.newRunName();
  skip(runName);
  const workflows = [...new Set(manifest.map((m) => m.workflow))];
  const now = Date.now();
  const run = /run=([a-z]+-[a-z]+-\d+)/.exec(release.body ?? '')?.[1];
  store.transaction(() => {
    store.insertRun({
      name: runName,
      repo: ownerRepo(from.owner, from.cloneUrl),
      workflow: workflows.at(-1) ?? tag,
      args: '',
      submitted_at: now,
      executor: null,
      isolation: null,
      owner: from.owner,
      source: JSON.stringify({ repoUrl: from.cloneUrl, commit: release.target_commitish, patch: null }),
    });
    workflows.forEach((workflow, position) => {
      // Never run: the job stands for what the release holds of that workflow.
      const spec: Partial<ResolvedWorkflow> & { importedFrom: string } = {
        name: workflow,
        dependsOn: [],
        artifacts: manifest.filter((m) => m.workflow === workflow).map((m) => m.path),
        cache: [],
        ports: [],
        env: {},
        resources: { gpu: { count: 0 }, interruptible: false },
        importedFrom: `release ${tag} of ${from.owner}/${from.repo}${run ? ` (run ${run})` : ''}`,
      };
      store.insertJob({ id: `${runName}-${position}`, run_name: runName, workflow, position, status: 'done', spec: JSON.stringify(spec), submitted_at: now });
    });
  });
  for (const entry of manifest) {
    const asset = entry.asset && assets.find((a) => a.name === entry.asset);
    if (!asset) continue;
    // The bytes come through a redirect to storage; the body is streamed, not parsed.
    const res = await octokit.request('GET /repos/{owner}/{repo}/releases/assets/{asset_id}', {
      owner: from.owner,
      repo: from.repo,
      asset_id: asset.id,
      headers: { accept: 'application/octet-stream' },
      request: { parseSuccessResponseBody: false },
    });
    const body = Readable.fromWeb(res.data as unknown as WebReadableStream<Uint8Array>);
    await service.putArtifact(`${runName}-${workflows.indexOf(entry.workflow)}`, entry.path, body, { files: entry.files, bytes: entry.bytes });
  }
  service.tag(runName, tag);
  app.server.log(`tag ${tag} of ${from.owner}/${from.repo}: ${manifest.filter((m) => m.asset).length} artifacts of its release imported as run ${runName}`);
  return runName;
}
