import type { Context } from 'probot';
import { isFinal } from '../../shared/job-status.js';
import { branchMatches, pushTrigger } from '../../shared/workflow/triggers.js';
import { errorText, type GithubApp } from './github-app.js';
import type { GithubRepository } from './github-runs.js';
import { withWorkflowsAt } from './workflow-files.js';

/**
 * A push to a branch: every workflow with `on: push` whose branch filters match runs at the pushed
 * commit, and the older push runs of that workflow on that branch that still go are stopped first
 * (a newer push supersedes them). Tags and deleted branches run nothing. Deliveries of one
 * repository are handled in order (GithubApp.receive), so "older" is the order of the pushes.
 */
export async function handlePush(app: GithubApp, context: Context<'push'>): Promise<void> {
  const { payload, octokit } = context;
  const branch = /^refs\/heads\/(.+)$/.exec(payload.ref)?.[1];
  if (!branch || payload.deleted || /^0+$/.test(payload.after)) return;
  const owner = payload.repository.owner?.login ?? payload.repository.full_name.split('/')[0]!;
  const repository: GithubRepository = { id: payload.repository.id, owner, name: payload.repository.name, cloneUrl: payload.repository.clone_url };
  const sha = payload.after;
  const sender = payload.sender?.login ?? payload.pusher.name;
  try {
    await withWorkflowsAt(octokit, { owner, repo: repository.name, sha }, async (project) => {
      const triggered = project.workflowNames.filter((wf) => {
        const trigger = pushTrigger(project.triggersOf(wf));
        return trigger !== undefined && branchMatches(branch, trigger.branches);
      });
      for (const [n, workflow] of triggered.entries()) {
        // A replay after a restart: this workflow's run was started (and is not stopped as an older one).
        const key = `${context.id}#${n}`;
        if (await app.startedBefore(octokit, key)) continue;
        for (const older of app.store.pushOriginsOfBranch(repository.id, branch)) {
          const view = app.service.view(older.runName);
          if (view.run.workflow === workflow && !isFinal(view.status) && app.stopRun(older.runName)) {
            app.server.log(`run ${older.runName} (${workflow}) stopped: ${branch} was pushed again (${sha.slice(0, 7)})`);
          }
        }
        let view;
        try {
          view = await app.runs.submit(project, {
          installationId: payload.installation!.id,
          repository,
          sha,
          workflow,
          words: [],
          event: 'push',
          branch,
          issueNumber: null,
          sender,
          // Only people who may write to the repository push to it.
          untrusted: false,
          key,
          });
        } catch (err) {
          app.server.log(`push to ${owner}/${repository.name} ${branch} (${sha.slice(0, 7)}) could not run ${workflow}: ${errorText(err)}`);
          continue;
        }
        await app.announce(octokit, view);
      }
    });
  } catch (err) {
    // No comment to reply to: the server's log says why (check runs, when they exist, show it too).
    app.server.log(`push to ${owner}/${repository.name} ${branch} (${sha.slice(0, 7)}) started nothing: ${errorText(err)}`);
  }
}
