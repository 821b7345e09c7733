import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterEach, describe, expect, it } from 'vitest';
import { startGithubApp, type GithubApp } from '../../../app/github/github-app.js';
import { githubSettings } from '../../../app/github/github-settings.js';
import { releasesOf } from '../../../app/github/releases.js';
import { createServer, type DstackServer } from '../../../app/server/server.js';
import { ownerRepo } from '../../../app/server/user-views.js';
import { startGithubSim, type GithubSim } from '../../github-sim/start-github-sim.js';
import { bash } from '../../helpers/api.js';
import { tempDir, writeFiles } from '../../helpers/cli.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const thing of open.splice(0).reverse()) await thing.close().catch(() => {});
});

/** A server in this process with the GitHub App against the sim (no agents: runs are put in its store by hand). */
async function appOn(sim: GithubSim): Promise<{ server: DstackServer; app: GithubApp }> {
  const dataDir = tempDir('dstack-import-');
  const server = createServer({ dataDir, log: () => {} });
  const app = await startGithubApp(server, githubSettings(sim.env())!, dataDir);
  await server.listen(0, '127.0.0.1');
  open.push({ close: async () => void (await app.close(), await server.close()) }, );
  return { server, app };
}

describe('a tag read back from its release', () => {
  it('gives a server that lacks the tag the release\'s artifacts as a run tagged so, which depends-on resolves', async () => {
    const sim = await startGithubSim();
    open.push(sim);
    const dir = tempDir('dstack-import-work-');
    writeFiles(dir, { 'README.md': 'hi\n' });
    const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' } }).trim();
    git('init', '--quiet', '-b', 'main');
    git('add', '-A');
    git('commit', '--quiet', '-m', 'first');
    const sha = git('rev-parse', 'HEAD');
    const repo = await sim.createRepo({ owner: 'octo', name: 'models', path: dir });
    const installation = await sim.createInstallation({ account: 'octo' });

    // The first server: a run of prepare with an artifact, as an agent would have left it, tagged v1: a release.
    const first = await appOn(sim);
    const service = first.server.state.service;
    service.submit({ repo: ownerRepo('octo', repo.clone_url), workflow: 'prepare', args: '', runName: 'calm-otter-1', plan: [bash('prepare', ['true'], { artifacts: ['data'] })], executor: null, owner: 'octo', source: { repoUrl: repo.clone_url, commit: sha, patch: null } });
    first.app.store.putOrigin({ runName: 'calm-otter-1', installationId: installation.id, repoId: repo.id, repoOwner: 'octo', repoName: 'models', sha, event: 'comment', branch: 'main', issueNumber: null, sender: 'alice', words: [] });
    await service.putArtifact('calm-otter-1-0', 'data', Readable.from([Buffer.from('a tar of the data, as the agent sent it')]), { files: 1, bytes: 40 });
    first.server.scheduler.stop('calm-otter-1', 'stop');
    service.setJobStatus('calm-otter-1-0', 'done');
    service.tag('calm-otter-1', 'v1');
    await releasesOf(first.app)!.publish('calm-otter-1', 'v1');
    const [release] = sim.releases({ owner: 'octo', repo: 'models' }) as unknown as { tag_name: string; assets: { name: string }[] }[];
    expect(release).toMatchObject({ tag_name: 'v1', assets: [{ name: 'prepare-data.tar' }] });

    // A second server, its own store: the tag is not there, until it is read back from the release.
    const second = await appOn(sim);
    expect(() => second.server.state.service.taggedJob('prepare', 'v1', 'octo')).toThrow(/unknown tag 'v1'/);
    const runName = await releasesOf(second.app)!.importTag({ installationId: installation.id, owner: 'octo', repo: 'models', cloneUrl: repo.clone_url }, 'v1');
    const job = second.server.state.service.taggedJob('prepare', 'v1', 'octo');
    expect(job).toMatchObject({ run_name: runName, workflow: 'prepare', status: 'done' });
    const [artifact] = second.server.state.service.dependencyArtifacts({ ...job, spec: JSON.stringify(bash('train', ['true'], { dependsOn: [{ workflow: 'prepare', tag: 'v1' }] })), run_name: runName! });
    expect(artifact).toMatchObject({ path: 'data', files: 1, bytes: 40 });
    expect(await text(second.server.state.service.openArchive(artifact!.archive))).toBe('a tar of the data, as the agent sent it');
    // Tagging the imported run did not publish the release again.
    await new Promise((r) => setTimeout(r, 300));
    expect((sim.releases({ owner: 'octo', repo: 'models' }) as unknown as { body: string }[])[0]!.body).toContain('run=calm-otter-1');
    // A tag with no release of the app's: nothing.
    expect(await releasesOf(second.app)!.importTag({ installationId: installation.id, owner: 'octo', repo: 'models', cloneUrl: repo.clone_url }, 'v2')).toBeUndefined();
  });
});
