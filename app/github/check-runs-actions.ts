import type { Context, ProbotOctokit } from 'probot';
import { isFinal } from '../../shared/job-status.js';
import { splitWords } from './comment-commands.js';
import { errorText } from './github-app.js';
import type { CheckRuns } from './check-runs.js';
import { ACTION_STOP, ACTION_TAG_LATEST } from './check-runs.js';
import { permissionOf, WRITERS } from './repo-permission.js';

/** Roles that may re-run, stop and tag, as for comments. */

/**
 * `check_run` webhooks about the app's check runs: `rerequested` (GitHub's Re-run) runs the job's
 * workflow again at the same commit; `requested_action` is a click on Stop (the run is stopped
 * through the server's scheduler) or Tag as latest (the run is tagged `latest`, which makes the
 * release). Only users with write, maintain or admin permission may; the check run's
 * `external_id` is the job, so any other check run (another app's, a job unknown here) is ignored.
 */
export async function handleCheckRunEvent(checks: CheckRuns, context: Context<'check_run'>): Promise<void> {
  const { payload } = context;
  if (payload.action !== 'rerequested' && payload.action !== 'requested_action') return;
  const { app } = checks;
  const jobId = payload.check_run.external_id ?? '';
  const job = app.service.job(jobId);
  const origin = job && app.origin(job.run_name);
  if (!job || !origin || origin.repoId !== payload.repository.id || checks.store.get(jobId)?.check_run_id !== payload.check_run.id) return;
  const user = payload.sender.login;
  const octokit = context.octokit;
  const repo = { owner: payload.repository.owner.login, repo: payload.repository.name };
  const what = payload.action === 'rerequested' ? 're-run' : (payload as { requested_action?: { identifier?: string } }).requested_action?.identifier;
  const role = await permissionOf(octokit, repo, user);
  if (!WRITERS.has(role)) {
    app.server.log(`check run ${payload.check_run.id}: ${user} (${role}) may not ${what}: write permission is needed`);
    return;
  }
  const runName = job.run_name;
  try {
    if (payload.action === 'rerequested') {
      // One re-run per delivery: a replay after a restart finds the one it started.
      const key = `${context.id}#0`;
      if (await app.startedBefore(octokit, key)) return;
      const view = app.service.view(runName);
      const started = await app.startRun(octokit, {
        installationId: origin.installationId,
        repository: { id: payload.repository.id, owner: repo.owner, name: repo.repo, cloneUrl: payload.repository.clone_url },
        sha: origin.sha,
        workflow: job.workflow,
        // The words the run was asked for with (variables, labels, args); for a dependency's check
        // run, its workflow alone.
        words: job.workflow === view.run.workflow ? (origin.words ?? splitWords(view.run.args)) : [],
        event: 'rerun',
        branch: origin.branch,
        issueNumber: origin.issueNumber,
        sender: user,
        // The same code as the run it repeats: a fork's pull request stays one.
        untrusted: app.service.sourceOf(view.run)?.untrusted === true,
        key,
      });
      app.server.log(`check run ${payload.check_run.id}: ${user} re-ran ${job.workflow} of ${runName} as ${started.run.name}`);
    } else if (what === ACTION_STOP) {
      if (app.stopRun(runName)) app.server.log(`check run ${payload.check_run.id}: ${user} stopped ${runName}`);
    } else if (what === ACTION_TAG_LATEST) {
      if (!isFinal(app.service.view(runName).status)) return;
      // The run service's `tag` event makes the release (releases.ts).
      app.service.tag(runName, 'latest');
      app.server.log(`check run ${payload.check_run.id}: ${user} tagged ${runName} latest`);
    }
  } catch (err) {
    app.server.log(`check run ${payload.check_run.id}: ${what} of ${runName} failed: ${errorText(err)}`);
    // Where the run has a conversation, the person who clicked learns why.
    if (origin.issueNumber !== null) {
      await octokit.rest.issues
        .createComment({ ...repo, issue_number: origin.issueNumber, body: `@${user} ${what} of \`${runName}\` failed:\n\n\`\`\`\n${errorText(err)}\n\`\`\`` })
        .catch((e: unknown) => app.server.log(`could not reply on #${origin.issueNumber}: ${errorText(e)}`));
    }
  }
}

