import type { ProbotOctokit } from 'probot';
import { DstackError } from '../../shared/errors.js';
import { backoffMs } from './check-runs-scheduler.js';
import type { GithubApp } from './github-app.js';
import { assetNames, MAX_ASSET_BYTES, RELEASE_MARKER, releaseBody, type ReleaseArtifact } from './releases-body.js';
import { importReleaseTag, type ImportFrom } from './releases-import.js';
import { ReleasesStore } from './releases-store.js';
import { openSized } from './run-page.js';
import { runPageLinksOf } from './run-page-links.js';

/** How many times one asset's upload is tried (each from the start of the archive). */
const UPLOAD_TRIES = 5;

/** Where a release goes: the repository (with a client of its installation) and the commit. */
interface Target {
  octokit: ProbotOctokit;
  owner: string;
  repo: string;
  repoId: number;
  sha: string;
  sender?: string;
}

type Release = Awaited<ReturnType<ProbotOctokit['rest']['repos']['getReleaseByTag']>>['data'];

/**
 * Tags are releases: a run tagged TAG (`/dstack tag`, `dstack tag` against the server, the Tag as
 * latest button) makes or moves the GitHub release TAG of its repository, at its commit, with a
 * body that describes the run and its artifacts as assets, streamed from the archive store (an
 * archive of 2 GiB or more is linked to the server's download instead). A release or tag the app
 * did not make is never moved. Runs of a repository the app is not installed on (and local runs)
 * have no release.
 */
export class Releases {
  readonly store: ReleasesStore;
  /** Publications in progress, by run and tag: the run service's event and the comment's handler share one. */
  private readonly inflight = new Map<string, Promise<void>>();
  /** One publication of a tag at a time: the last tagging wins. */
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly offs: (() => void)[] = [];
  /** Runs made from a release (importTag): tagging them publishes nothing. */
  private readonly imported = new Set<string>();

  constructor(readonly app: GithubApp, private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms))) {
    this.store = new ReleasesStore(app.server.state.store);
    const onTag = (runName: string, tag: string) => {
      if (this.imported.has(runName)) return;
      this.publish(runName, tag).catch((err: unknown) => app.server.log(`release ${tag} of run ${runName}: ${err instanceof Error ? err.message : String(err)}`));
    };
    app.service.on('tag', onTag);
    this.offs.push(() => app.service.off('tag', onTag));
    // A comment's tag: the reply says what went wrong.
    this.offs.push(app.onTagged((event) => this.publish(event.runName, event.tag)));
  }

  close(): void {
    for (const off of this.offs.splice(0)) off();
  }

  /**
   * `depends-on: WORKFLOW:TAG` when the server lacks the tag: the release TAG the app made, read back
   * from GitHub into a run tagged TAG (see releases-import.ts); undefined when there is none. For
   * the run's submission to call before it resolves its tags.
   */
  importTag(from: ImportFrom, tag: string): Promise<string | undefined> {
    return importReleaseTag(this.app, from, tag, (runName) => this.imported.add(runName));
  }

  /** Makes or moves release `tag` for the run; resolves when it is on GitHub with its assets. */
  publish(runName: string, tag: string): Promise<void> {
    const key = `${runName}\0${tag}`;
    const existing = this.inflight.get(key);
    if (existing) return existing;
    const previous = this.chains.get(tag) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.publishNow(runName, tag));
    this.chains.set(tag, next);
    this.inflight.set(key, next);
    void next
      .catch(() => undefined)
      .finally(() => {
        if (this.inflight.get(key) === next) this.inflight.delete(key);
        if (this.chains.get(tag) === next) this.chains.delete(tag);
      });
    return next;
  }

  private async publishNow(runName: string, tag: string): Promise<void> {
    const target = await this.target(runName);
    if (!target) return;
    const { octokit, owner, repo, repoId, sha } = target;
    const mine = this.store.get(repoId, tag);
    let release = await orUndefined(octokit.rest.repos.getReleaseByTag({ owner, repo, tag }));
    const ref = await orUndefined(octokit.rest.git.getRef({ owner, repo, ref: `tags/${tag}` }));
    const ours = release ? mine?.release_id === release.id || ((release.body ?? '').startsWith(RELEASE_MARKER) && release.author?.type === 'Bot') : !ref || !!mine;
    if (!ours) {
      throw new DstackError(
        'DSTACK_ERR_TAG_NOT_OURS',
        `${owner}/${repo} has a ${release ? 'release' : 'tag'} '${tag}' that dstack did not make; it is never moved: tag the run with another name, or delete that ${release ? 'release and its tag' : 'tag'} on GitHub first`,
      );
    }
    const view = this.app.service.view(runName);
    const links = runPageLinksOf(this.app.server.state);
    const rows = this.app.service.artifactsOfRun(runName);
    const names = assetNames(rows);
    const artifacts: ReleaseArtifact[] = [];
    for (const [i, a] of rows.entries()) {
      const { stream, bytes } = await openSized(this.app.service, a.archive);
      stream.destroy();
      const big = bytes >= MAX_ASSET_BYTES;
      artifacts.push({ jobId: a.job_id, workflow: a.workflow, path: a.path, files: a.files, bytes: a.bytes, archiveBytes: bytes, asset: names[i]!, ...(big ? { url: links?.artifactUrl(runName, a.job_id, a.path) ?? '' } : {}) });
    }
    const body = releaseBody({ view, tag, sha, sender: target.sender, runUrl: links?.runUrl(runName), artifacts });
    const name = `${tag}: ${view.run.workflow} (${runName})`;
    // A tag of ours at another commit moves first: a release's target does not move an existing tag.
    if (ref && ref.object.sha !== sha) await octokit.rest.git.updateRef({ owner, repo, ref: `tags/${tag}`, sha, force: true });
    if (!release) {
      release = (await octokit.rest.repos.createRelease({ owner, repo, tag_name: tag, target_commitish: sha, name, body })).data;
      this.store.put({ repo_id: repoId, tag, release_id: release.id, run_name: runName, sha });
    } else {
      this.store.put({ repo_id: repoId, tag, release_id: release.id, run_name: runName, sha });
      for (const asset of await octokit.paginate(octokit.rest.repos.listReleaseAssets, { owner, repo, release_id: release.id, per_page: 100 })) {
        await octokit.rest.repos.deleteReleaseAsset({ owner, repo, asset_id: asset.id });
      }
      release = (await octokit.rest.repos.updateRelease({ owner, repo, release_id: release.id, tag_name: tag, target_commitish: sha, name, body })).data;
    }
    for (const [i, a] of artifacts.entries()) {
      if (a.url !== undefined) continue;
      await this.upload(octokit, { owner, repo }, release, rows[i]!.archive, a.asset);
    }
    this.app.server.log(`release ${tag} of ${owner}/${repo} at ${sha.slice(0, 7)}: run ${runName}, ${artifacts.filter((a) => a.url === undefined).length} assets`);
  }

  /** Streams one archive to the release's upload URL with its length; tried again from the start when it fails. */
  private async upload(octokit: ProbotOctokit, repo: { owner: string; repo: string }, release: Pick<Release, 'id' | 'upload_url'>, archive: string, name: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const { stream, bytes } = await openSized(this.app.service, archive);
      try {
        await octokit.rest.repos.uploadReleaseAsset({
          ...repo,
          release_id: release.id,
          url: release.upload_url,
          name,
          data: stream as unknown as string,
          headers: { 'content-type': 'application/x-tar', 'content-length': bytes },
          // A stream is read once: this loop, not Octokit's retry, tries again.
          request: { retries: 0 },
        });
        return;
      } catch (err) {
        stream.destroy();
        if (attempt >= UPLOAD_TRIES || (err as { status?: number }).status === 422) throw err;
        await this.sleep(Math.min(backoffMs(err, attempt, Date.now()), 60_000));
      }
    }
  }

  /** The run's repository on GitHub: where it came from, or (a CLI run) its clone URL's, when the app is installed there. */
  private async target(runName: string): Promise<Target | undefined> {
    const origin = this.app.origin(runName);
    if (origin) {
      return { octokit: await this.app.octokitFor(origin.installationId), owner: origin.repoOwner, repo: origin.repoName, repoId: origin.repoId, sha: origin.sha, sender: origin.sender };
    }
    const view = this.app.service.findRun(runName);
    const source = view && this.app.service.sourceOf(view.run);
    const at = source && githubRepoOf(source.repoUrl, this.app.settings.apiUrl);
    if (!source || !at) return undefined;
    const appOctokit = await this.app.appOctokit();
    const installation = await orUndefined(appOctokit.rest.apps.getRepoInstallation({ owner: at.owner, repo: at.repo }));
    if (!installation) return undefined;
    const octokit = await this.app.octokitFor(installation.id);
    const { data } = await octokit.rest.repos.get({ owner: at.owner, repo: at.repo });
    return { octokit, owner: data.owner.login, repo: data.name, repoId: data.id, sha: source.commit, sender: view.run.owner ?? undefined };
  }
}

/** `OWNER/REPO` of a clone URL on the GitHub the app talks to (github.com for api.github.com, else the API's host). */
export function githubRepoOf(repoUrl: string, apiUrl: string): { owner: string; repo: string } | undefined {
  const api = new URL(apiUrl);
  const host = api.host === 'api.github.com' ? 'github.com' : api.host;
  const ssh = /^(?:ssh:\/\/)?git@([^:/]+)[:/]([^/]+)\/([^/]+?)(?:\.git)?\/?$/.exec(repoUrl);
  if (ssh) return ssh[1] === host.replace(/:\d+$/, '') ? { owner: ssh[2]!, repo: ssh[3]! } : undefined;
  try {
    const u = new URL(repoUrl);
    const m = /^\/([^/]+)\/([^/]+?)(?:\.git)?\/?$/.exec(u.pathname);
    return u.host === host && m ? { owner: m[1]!, repo: m[2]! } : undefined;
  } catch {
    return undefined;
  }
}

/** A GitHub object, or undefined for a 404. */
async function orUndefined<T>(request: Promise<{ data: T }>): Promise<T | undefined> {
  try {
    return (await request).data;
  } catch (err) {
    if ((err as { status?: number }).status === 404) return undefined;
    throw err;
  }
}

const RELEASES = new WeakMap<GithubApp, Releases>();

/** Releases for tagged runs (the one line in the app's factory). */
export function attachReleases(app: GithubApp): Releases {
  const releases = new Releases(app);
  RELEASES.set(app, releases);
  app.onClose(() => releases.close());
  // A run that depends on a tag this server lacks reads it from the repository's release.
  app.runs.onMissingTag((request, tag) =>
    releases.importTag({ installationId: request.installationId, owner: request.repository.owner, repo: request.repository.name, cloneUrl: request.repository.cloneUrl }, tag),
  );
  return releases;
}

/** The app's releases, once attached (for a run's submission to import a tag it lacks). */
export function releasesOf(app: GithubApp): Releases | undefined {
  return RELEASES.get(app);
}
