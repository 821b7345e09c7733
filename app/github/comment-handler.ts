import type { Context, ProbotOctokit } from 'probot';
import { DstackError } from '../../shared/errors.js';
import { isFinal } from '../../shared/job-status.js';
import { ownerRepo } from '../server/user-views.js';
import { COMMENT_HELP, commentCommands, type CommentCommand } from './comment-commands.js';
import { errorText, type GithubApp } from './github-app.js';
import type { GithubRepository } from './github-runs.js';
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
  if (payload.action !== 'created' || payload.comment.user?.type === 'Bot' || payload.sender.type === 'Bot') return;
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
      if (command.name === 'run') await run(app, context, command, repository, user);
      else if (command.name === 'stop') await reply(stop(app, command, repository, issueNumber));
      else await reply(await tag(app, context, command, repository));
    } catch (err) {
      await reply(`@${user} \`${quoteLine(command.line)}\` failed:\n\n\`\`\`\n${errorText(err)}\n\`\`\``).catch((e: unknown) => app.server.log(`could not reply on #${issueNumber}: ${errorText(e)}`));
    }
  }
}

/** `/dstack run`: at the pull request's head commit now (pinned), or the default branch's head for an issue. */
async function run(app: GithubApp, context: Context<'issue_comment'>, command: Extract<CommentCommand, { name: 'run' }>, repository: GithubRepository, user: string): Promise<void> {
  const { payload, octokit } = context;
  const repo = { owner: repository.owner, repo: repository.name };
  let sha: string;
  let branch: string;
  let untrusted = false;
  if (payload.issue.pull_request) {
    const { data: pull } = await octokit.rest.pulls.get({ ...repo, pull_number: payload.issue.number });
    sha = pull.head.sha;
    branch = pull.head.ref;
    untrusted = fromFork(pull);
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
    untrusted,
  });
}

/**
 * Whether a pull request's head is another repository's (a fork's, or one deleted since: GitHub
 * then gives no head repository): its code is anyone's, whoever with write access asked to run it.
 */
function fromFork(pull: { head: { repo: { id: number } | null }; base: { repo: { id: number } } }): boolean {
  return pull.head.repo?.id !== pull.base.repo.id;
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
