import { describe, expect, it } from 'vitest';
import { assetNames, releaseBody, releaseManifest, RELEASE_MARKER } from '../../../app/github/releases-body.js';
import { githubRepoOf } from '../../../app/github/releases.js';
import type { RunView } from '../../../app/run-service.js';

const view = {
  run: { name: 'slim-octopus-1', repo: 'r', workflow: 'train', args: '--epochs 3', submitted_at: Date.UTC(2026, 0, 2), executor: null, isolation: null, owner: 'acme', source: null, secrets: null },
  status: 'done',
  jobs: [
    { id: 'slim-octopus-1-0', workflow: 'prepare', status: 'done', exit_code: 0, started_at: 0, finished_at: 5000 },
    { id: 'slim-octopus-1-1', workflow: 'train', status: 'done', exit_code: 0, started_at: 5000, finished_at: 125_000 },
  ],
  tags: ['latest'],
} as unknown as RunView;

describe('release bodies', () => {
  it('name assets WORKFLOW-PATH.tar with what GitHub would rename replaced, unique within the release', () => {
    expect(assetNames([
      { workflow: 'train', path: 'checkpoint' },
      { workflow: 'train', path: 'out/model files' },
      { workflow: 'train', path: 'out_model/files' },
      { workflow: 'prepare', path: '.hidden' },
    ])).toEqual(['train-checkpoint.tar', 'train-out_model_files.tar', 'train-out_model_files-2.tar', 'prepare-.hidden.tar']);
  });

  it('describe the run, mark the release as the app\'s, link a large artifact to the server and carry a manifest', () => {
    const body = releaseBody({
      view, tag: 'latest', sha: 'abcdef1234', sender: 'alice', runUrl: 'http://srv/runs/slim-octopus-1?key=k', now: Date.UTC(2026, 0, 3),
      artifacts: [
        { jobId: 'slim-octopus-1-1', workflow: 'train', path: 'checkpoint', files: 3, bytes: 4096, archiveBytes: 10_240, asset: 'train-checkpoint.tar' },
        { jobId: 'slim-octopus-1-0', workflow: 'prepare', path: 'data', files: 1, bytes: 3 * 1024 ** 3, archiveBytes: 3 * 1024 ** 3 + 1024, asset: 'prepare-data.tar', url: 'http://srv/runs/slim-octopus-1/jobs/slim-octopus-1-0/artifact?path=data&key=k' },
      ],
    });
    expect(body.startsWith(`${RELEASE_MARKER} run=slim-octopus-1 -->\n`)).toBe(true);
    expect(body).toContain('**dstack** run [`slim-octopus-1`](http://srv/runs/slim-octopus-1?key=k) of `train` `--epochs 3` at abcdef1, started by @alice on 2026-01-02T00:00:00.000Z; tagged `latest` on 2026-01-03T00:00:00.000Z.');
    expect(body).toContain('| `prepare` | done | 5 s |');
    expect(body).toContain('| `train` | done | 2 min 0 s |');
    expect(body).toContain('- `train`: `checkpoint` — 3 files, 4.0 KiB: asset `train-checkpoint.tar`');
    expect(body).toContain('- `prepare`: `data` — 1 file, 3.0 GiB: [download from the server](http://srv/runs/slim-octopus-1/jobs/slim-octopus-1-0/artifact?path=data&key=k) (too large for a release asset)');
    expect(releaseManifest(body)).toEqual([
      { asset: 'train-checkpoint.tar', workflow: 'train', path: 'checkpoint', files: 3, bytes: 4096, archiveBytes: 10_240 },
      { asset: null, workflow: 'prepare', path: 'data', files: 1, bytes: 3 * 1024 ** 3, archiveBytes: 3 * 1024 ** 3 + 1024 },
    ]);
  });

  it('find a run\'s repository on the GitHub the app talks to from its clone URL', () => {
    expect(githubRepoOf('https://github.com/acme/models.git', 'https://api.github.com')).toEqual({ owner: 'acme', repo: 'models' });
    expect(githubRepoOf('git@github.com:acme/models.git', 'https://api.github.com')).toEqual({ owner: 'acme', repo: 'models' });
    expect(githubRepoOf('http://127.0.0.1:4000/acme/models.git', 'http://127.0.0.1:4000/api/v3')).toEqual({ owner: 'acme', repo: 'models' });
    expect(githubRepoOf('https://gitlab.com/acme/models.git', 'https://api.github.com')).toBeUndefined();
    expect(githubRepoOf('/home/me/models', 'https://api.github.com')).toBeUndefined();
  });
});
