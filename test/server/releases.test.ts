import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/cli.js';
import { checksWorld, type ChecksWorld, type SimRelease } from './check-runs-world.js';

const WORKFLOWS = [
  'workflows:',
  '  - name: hello',
  '    provider: bash',
  '    commands:',
  '      - mkdir -p out && cat marker.txt > out/model.txt',
  '    artifacts:',
  '      - out',
  '  - name: use',
  '    provider: bash',
  '    depends-on:',
  '      - hello:latest',
  '    commands:',
  '      - echo "got $(cat out/model.txt)"',
  '',
].join('\n');

/** Runs WORKFLOW from a comment; gives the run's name once its check run has completed. */
async function runToEnd(w: ChecksWorld, workflow: string): Promise<string> {
  const before = w.checkRuns().length;
  await w.comment(`/dstack run ${workflow}`);
  const jobId = await waitFor(() => w.checkRuns()[before]?.external_id, 30_000, `the check run of ${workflow}`);
  const done = await w.completed(jobId!);
  expect(done.conclusion).toBe('success');
  return jobId!.replace(/-\d+$/, '');
}

const release = (w: ChecksWorld, tag: string) => w.releases().find((r) => r.tag_name === tag);

/** Release `tag` once `check` holds for it. */
async function releaseWhen(w: ChecksWorld, tag: string, check: (r: SimRelease) => boolean, what: string): Promise<SimRelease> {
  return (await waitFor(() => {
    const r = release(w, tag);
    return r && check(r) ? r : undefined;
  }, 30_000, what)) as SimRelease;
}

/** The asset's bytes, as a later download from GitHub gets them. */
async function assetBytes(w: ChecksWorld, asset: SimRelease['assets'][number]): Promise<Buffer> {
  const { token } = w.sim.createToken(w.installationId);
  const res = await fetch(`${w.sim.apiUrl}/repos/octo/models/releases/assets/${asset.id}`, { headers: { authorization: `token ${token}`, accept: 'application/octet-stream' } });
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe('tags as releases', () => {
  it('makes a release of a tagged run with its artifacts as assets, moves it with Tag as latest, and a later run depends on the tag', async () => {
    const w = await checksWorld({ '.dstack/workflows.yaml': WORKFLOWS, 'marker.txt': 'first-weights\n' });
    const first = await runToEnd(w, 'hello');
    const firstSha = w.sha();
    await w.comment(`/dstack tag ${first} latest`);
    const made = await releaseWhen(w, 'latest', (r) => r.assets.length === 1, 'the release');
    expect(made.target_commitish).toBe(firstSha);
    expect(made.body).toContain(`<!-- dstack-release run=${first} -->`);
    expect(made.body).toContain(`run [\`${first}\`](http://127.0.0.1:`);
    expect(made.body).toContain('| `hello` | done |');
    expect(made.body).toContain('`depends-on: hello:latest`');
    expect(made.assets.map((a) => a.name)).toEqual(['hello-out.tar']);
    expect((await assetBytes(w, made.assets[0]!)).toString('latin1')).toContain('first-weights');
    expect((await w.rest<{ object: { sha: string } }>('/repos/octo/models/git/ref/tags/latest')).body.object.sha).toBe(firstSha);
    await waitFor(() => w.botComments().some((c) => c.body.includes(`Tagged \`${first}\` as \`latest\``)), 30_000, 'the reply');

    // A later run that depends on hello:latest gets the tagged run's artifact.
    const use = await runToEnd(w, 'use');
    const useCheck = w.checkRuns().find((c) => c.external_id?.startsWith(`${use}-`) && c.name === 'dstack/use')!;
    expect(useCheck.output.text).toContain('got first-weights');

    // A new commit, a new run, and its Tag as latest button: the same release, moved, with the new assets only.
    const secondSha = await w.pushCommit({ 'marker.txt': 'second-weights\n' });
    const second = await runToEnd(w, 'hello');
    const button = w.checkRuns().find((c) => c.external_id === `${second}-0`)!;
    expect(button.actions.map((a) => a.identifier)).toEqual(['dstack-tag-latest']);
    await w.sim.requestAction(button.id, 'dstack-tag-latest', 'alice');
    const moved = await releaseWhen(w, 'latest', (r) => r.target_commitish === secondSha && r.assets.length === 1 && r.assets[0]!.id !== made.assets[0]!.id, 'the moved release');
    expect(moved.id).toBe(made.id);
    expect(moved.body).toContain(`<!-- dstack-release run=${second} -->`);
    expect((await assetBytes(w, moved.assets[0]!)).toString('latin1')).toContain('second-weights');
    expect((await w.rest<{ object: { sha: string } }>('/repos/octo/models/git/ref/tags/latest')).body.object.sha).toBe(secondSha);
    expect(w.releases()).toHaveLength(1);

    // A server without the tag (untagged here; a new server would have none) reads it back from
    // the release: the run that depends on it gets the release's assets.
    await w.api().call('DELETE', '/api/tags/latest');
    const fromRelease = await runToEnd(w, 'use');
    const fromReleaseCheck = w.checkRuns().find((c) => c.external_id?.startsWith(`${fromRelease}-`) && c.name === 'dstack/use')!;
    expect(fromReleaseCheck.output.text).toContain('got second-weights');

    // dstack tag against the server (the user API) makes a release too.
    await w.api().call('POST', `/api/runs/${first}/tag`, { tag: 'v0.1' });
    const api = await releaseWhen(w, 'v0.1', (r) => r.assets.length === 1, 'the release of the API tag');
    expect(api.target_commitish).toBe(firstSha);
  });

  it('never moves a tag the app did not make, and says so in the reply', async () => {
    const w = await checksWorld({ '.dstack/workflows.yaml': WORKFLOWS, 'marker.txt': 'weights\n' });
    const tagged = w.sha();
    w.git('tag', 'v1');
    await w.sim.push({ owner: 'octo', repo: 'models', path: w.dir, refspecs: ['refs/tags/v1:refs/tags/v1'] });
    await w.pushCommit({ 'marker.txt': 'newer\n' });
    const run = await runToEnd(w, 'hello');
    await w.comment(`/dstack tag ${run} v1`);
    const reply = await waitFor(() => w.botComments().find((c) => c.body.includes(`/dstack tag ${run} v1`)), 30_000, 'the reply');
    expect(reply!.body).toContain("octo/models has a tag 'v1' that dstack did not make; it is never moved");
    expect((await w.rest<{ object: { sha: string } }>('/repos/octo/models/git/ref/tags/v1')).body.object.sha).toBe(tagged);
    expect(release(w, 'v1')).toBeUndefined();
  });
});
