import { describe, expect, it } from 'vitest';
import type { GithubRunOrigin } from '../../../app/github/github-store.js';
import { RunCommentUpdater, runCommentBody } from '../../../app/github/run-comment.js';
import { closeAfterTest } from '../../helpers/cli.js';
import { openService, workflow } from '../../helpers/service.js';

const origin: GithubRunOrigin = {
  runName: 'slim-octopus-1',
  installationId: 1,
  repoId: 2,
  repoOwner: 'octo',
  repoName: 'models',
  sha: '0123456789abcdef0123456789abcdef01234567',
  event: 'comment',
  branch: 'feature',
  issueNumber: 3,
  sender: 'alice',
  words: [],
  replyCommentId: 4,
  replyFinal: false,
};

describe('the run comment', () => {
  it('is a table of the jobs with status and duration, links when there is a run page', () => {
    const { service } = closeAfterTest(openService());
    service.submit({ repo: 'r', workflow: 'train', args: '--epochs 3', runName: 'slim-octopus-1', plan: [workflow('prepare'), workflow('train')], executor: null, owner: 'octo' });
    service.setJobStatus('slim-octopus-1-0', 'running');
    service.setJobStatus('slim-octopus-1-0', 'done', { exit_code: 0 });
    service.setJobStatus('slim-octopus-1-1', 'failed', { exit_code: 3, reason: 'exit code 3 | see log' });
    const view = service.view('slim-octopus-1');
    const body = runCommentBody(view, origin, { now: Date.now() });
    expect(body.split('\n')).toEqual([
      '<!-- dstack-run slim-octopus-1 -->',
      '**dstack** run `slim-octopus-1` of `train` `--epochs 3` at 0123456, asked by @alice: **failed**',
      '',
      '| job | status | duration |',
      '|---|---|---|',
      '| `prepare` | ✅ done | 0 s |',
      expect.stringMatching(/^\| `train` \| ❌ failed \(exit 3\) — exit code 3 \\\| see log \| \d+ s \|$/),
      '',
      'Run failed.',
    ]);
    expect(runCommentBody(view, origin, { runUrl: 'http://dstack/runs/slim-octopus-1' })).toContain('[`prepare`](http://dstack/runs/slim-octopus-1#slim-octopus-1-0)');
  });

  it('is edited at most once per interval while the run goes, and once at the end', async () => {
    const edits: { run: string; final: boolean; at: number }[] = [];
    let final = false;
    const updater = new RunCommentUpdater(
      async (run, isFinal) => void edits.push({ run, final: isFinal, at: Date.now() }),
      () => final,
      () => {},
      200,
    );
    closeAfterTest(updater);
    const start = Date.now();
    updater.touch('r', true);
    for (let i = 0; i < 20; i++) {
      updater.touch('r');
      await new Promise((r) => setTimeout(r, 25));
    }
    // 500 ms of changes: an edit at 200 ms and one at 400 ms at most.
    expect(edits.length).toBeGreaterThanOrEqual(1);
    expect(edits.length).toBeLessThanOrEqual(3);
    expect(edits[0]!.at - start).toBeGreaterThanOrEqual(190);
    final = true;
    updater.touch('r');
    updater.touch('r');
    await new Promise((r) => setTimeout(r, 50));
    expect(edits.at(-1)).toMatchObject({ final: true });
    expect(edits.filter((e) => e.final)).toHaveLength(1);
  });

  it('retries the final edit until it lands', async () => {
    let tries = 0;
    const updater = closeAfterTest(
      new RunCommentUpdater(
        async () => {
          if (++tries < 3) throw new Error('HTTP 502');
        },
        () => true,
        () => {},
      ),
    );
    updater.touch('r');
    await new Promise((r) => setTimeout(r, 3500));
    expect(tries).toBe(3);
  });
});
