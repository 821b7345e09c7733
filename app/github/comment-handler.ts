import type { Context, ProbotOctokit } from 'probot';
import { DstackError } from '../../shared/errors.js';
import { isFinal } from '../../shared/job-status.js';
import { ownerRepo } from '../server/user-views.js';
import { COMMENT_HELP, commentCommands, type CommentCommand } from './comment-commands.js';
import { errorText, type GithubApp } from './github-app.js';
import type { GithubRepository } from './github-runs.js';
import { headUnchanged, pullHeadAtComment, type PullHeadAtComment } from './pull-head.js';
import { permissionOf, WRITERS } from './repo-permission.js';

/** Roles that may run, stop and tag (the collaborator permission API's `role_name`, or its `permission`). */

/**
 * A new comment on a pull request or an issue: its `/dstack` commands, in order. The app reacts
 * with 👀 at once; run, stop and tag are for users with write, maintain or admin permission on
 * the repository (asked of GitHub, not read from `author_association`), help is for anyone. An
 * edited or deleted comment runs nothing, nor does a bot's (the app's own replies show commands).
 */
export async function handleComment(app: GithubApp, context: Context<'issue_comment'>): Promise<void> {
  const { payload } = context;
  if (!actsOn(payload)) return;
  const commands = commentCommands(payload.comment.body ?? '');
  if (commands.length === 0) return;
  const octokit = context.octokit;
  const repo = { owner: payload.repository.owner.login, repo: payload.repository.name };
  const issueNumber = payload.issue.number;
  const user = payload.comment.user?.login ?? payload.sender.login;
  await octokit.rest.reactions.createForIssueComment({ ...repo, comment_id: payload.comment.id, content: 'eyes' }).catch((err: unknown) => {
    app.server.log(`could not react to comment ${payload.comment.id}: ${errorText(err)}`);
  });
  const reply = (body: string) => octokit.rest.issues.createComment({ ...repo, issue_number: issueNumber, body }).then(() => undefined);
  const repository: GithubRepository = { id: payload.repository.id, owner: repo.owner, name: repo.repo, cloneUrl: payload.repository.clone_url };
  let role: string | undefined;
  for (const command of commands) {
    try {
      if (command.name === 'help') {
        await reply(COMMENT_HELP);
        continue;
      }
      if (command.name === 'invalid') {
        await reply(`@${user} \`${quoteLine(command.line)}\`: ${command.error}`);
        continue;
      }
      role ??= await permissionOf(octokit, repo, user);
      if (!WRITERS.has(role)) {
        await reply(
          `@${user} only people with write, maintain or admin permission on ${repo.owner}/${repo.repo} may run, stop or tag; you have ${role === 'none' ? 'no' : role} permission, so \`${quoteLine(command.line)}\` did nothing.`,
        );
        continue;
      }
      if (command.name === 'run') {
        const refusal = await run(app, context, command, repository, user);
        if (refusal) await reply(refusal);
      } else if (command.name === 'stop') await reply(stop(app, command, repository, issueNumber));
      else await reply(await tag(app, context, command, repository));
    } catch (err) {
      await reply(`@${user} \`${quoteLine(command.line)}\` failed:\n\n\`\`\`\n${errorText(err)}\n\`\`\``).catch((e: unknown) => app.server.log(`could not reply on #${issueNumber}: ${errorText(e)}`));
    }
  }
}

/** Only a new comment acts, and not a bot's (the app's own replies show commands). */
function actsOn(payload: Context<'issue_comment'>['payload']): boolean {
  return payload.action === 'created' && payload.comment.user?.type !== 'Bot' && payload.sender.type !== 'Bot';
}

/**
 * Read the moment a comment's delivery arrives (before it waits behind the repository's other
 * deliveries): the pull request's head, and what it was when the comment was written. Only for a
 * new comment with `/dstack run` on a pull request.
 */
export async function readPullHeadOnArrival(context: Context<'issue_comment'>): Promise<PullHeadAtComment | undefined> {
  const { payload } = context;
  if (!actsOn(payload) || !payload.issue.pull_request || !commentCommands(payload.comment.body ?? '').some((c) => c.name === 'run')) return undefined;
  return pullHeadAtComment(context.octokit, { owner: payload.repository.owner.login, repo: payload.repository.name }, payload.issue.number, payload.comment.created_at);
}

/**
 * `/dstack run`: on a pull request, at its head when the comment was written (read on arrival), or
 * nothing and a reply with both SHAs when the head moved since; on an issue, the default branch's head.
 */
async function run(app: GithubApp, context: Context<'issue_comment'>, command: Extract<CommentCommand, { name: 'run' }>, repository: GithubRepository, user: string): Promise<string | undefined> {
  const { payload, octokit } = context;
  const repo = { owner: repository.owner, repo: repository.name };
  let sha: string;
  let branch: string;
  if (payload.issue.pull_request) {
    // Read on arrival; read now only if the arrival's read was not made (it is made for every such comment).
    const head = (await app.arrival<PullHeadAtComment>(context)) ?? (await pullHeadAtComment(octokit, repo, payload.issue.number, payload.comment.created_at));
    if (!headUnchanged(head)) {
      return `@${user} the head of #${payload.issue.number} changed after your comment: it was ${head.atComment ? `\`${head.atComment}\`` : 'not known'} when you wrote it and is \`${head.sha}\` now, so \`${quoteLine(command.line)}\` did nothing; comment again to run the new head.`;
    }
    sha = head.sha;
    branch = head.branch;
  } else {
    const { data } = await octokit.rest.repos.get(repo);
    branch = data.default_branch;
    sha = (await octokit.rest.git.getRef({ ...repo, ref: `heads/${branch}` })).data.object.sha;
  }
  await app.startRun(octokit, {
    installationId: payload.installation!.id,
    repository,
    sha,
    workflow: command.workflow,
    words: command.words,
    event: 'comment',
    branch,
    issueNumber: payload.issue.number,
    sender: user,
  });
  return undefined;
}

/** `/dstack stop [RUN]`: RUN (a run of this repository), or every run this pull request or issue started that still goes. */
function stop(app: GithubApp, command: Extract<CommentCommand, { name: 'stop' }>, repository: GithubRepository, issueNumber: number): string {
  if (command.run) {
    const name = ownRun(app, command.run, repository);
    return app.stopRun(name) ? `Stopping \`${name}\`.` : `\`${name}\` has already ended (${app.service.view(name).status}).`;
  }
  const live = app.store.originsOfIssue(repository.id, issueNumber).filter((o) => !isFinal(app.service.view(o.runName).status));
  for (const o of live) app.stopRun(o.runName);
  return live.length > 0 ? `Stopping ${live.map((o) => `\`${o.runName}\``).join(', ')}.` : 'No run started here is still going.';
}

/** `/dstack tag RUN TAG`: tags a finished run of this repository; the `onTagged` handlers (releases) follow. */
async function tag(app: GithubApp, context: Context<'issue_comment'>, command: Extract<CommentCommand, { name: 'tag' }>, repository: GithubRepository): Promise<string> {
  const name = ownRun(app, command.run, repository);
  const { moved } = app.service.tag(name, command.tag);
  await app.tell({
    runName: name,
    tag: command.tag,
    ...(moved ? { moved } : {}),
    origin: app.origin(name),
    installationId: context.payload.installation!.id,
    repository: { owner: repository.owner, name: repository.name, id: repository.id },
    octokit: context.octokit,
  });
  return `Tagged \`${name}\` as \`${command.tag}\`${moved ? ` (moved from \`${moved}\`)` : ''}; \`depends-on: ${app.service.view(name).run.workflow}:${command.tag}\` uses its artifacts.`;
}

/** A run of this repository and its owner (from GitHub or the CLI); any other is unknown. */
function ownRun(app: GithubApp, name: string, repository: GithubRepository): string {
  const view = app.service.findRun(name);
  if (!view || view.run.owner !== repository.owner || view.run.repo !== ownerRepo(repository.owner, repository.cloneUrl)) {
    throw new DstackError('DSTACK_ERR_RUN_UNKNOWN', `unknown run '${name}' in ${repository.owner}/${repository.name}`);
  }
  return view.run.name;
}

function quoteLine(line: string): string {
  return line.replace(/`/g, "'").slice(0, 200);
}
