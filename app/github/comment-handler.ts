import type { Context } from 'probot';
import { DstackError } from '../../shared/errors.js';
import { isFinal } from '../../shared/job-status.js';
import type { RunView } from '../run-service.js';
import { ownerRepo } from '../server/user-views.js';
import { COMMENT_HELP, commentCommands, MAX_COMMANDS, type CommentCommand } from './comment-commands.js';
import { commentReply, quoteLine, tooManyReply, type CommandOutcome } from './comment-replies.js';
import { errorText, type GithubApp } from './github-app.js';
import type { GithubRepository } from './github-runs.js';
import { RefusalLimiter } from './refusal-limiter.js';
import { headUnchanged, pullHeadAtComment, type PullHeadAtComment } from './pull-head.js';
import { WRITERS } from './repo-permission.js';

/**
 * What acts on new comments on pull requests and issues: their `/dstack` commands, in order. Run,
 * stop and tag are for users with write, maintain or admin permission on the repository (asked of
 * GitHub, not read from `author_association`), help is for anyone. Each comment gets at most one
 * reply, which answers all of its commands (a run's own comment aside), and one with more than
 * MAX_COMMANDS is refused whole. An edited or deleted comment runs nothing, nor does a bot's (the
 * app's own replies show commands).
 *
 * The handler runs in its repository's queue (GithubApp.receive), which keeps a writer's run and a
 * later stop, by them or another writer, in order. A comment from a user without write permission
 * holds that queue only while their permission is asked (one GET): it can change nothing, so its
 * reply is written outside the queue, and a writer's command never waits behind other users'
 * refusals. Such a user gets at most one reply per pull request or issue in 10 minutes.
 */
export function commentHandler(app: GithubApp): (context: Context<'issue_comment'>) => Promise<void> {
  const limiter = new RefusalLimiter();
  return async (context) => {
    const { payload } = context;
    if (!actsOn(payload)) return;
    const commands = commentCommands(payload.comment.body ?? '');
    if (commands.length === 0) return;
    const octokit = context.octokit;
    const repo = { owner: payload.repository.owner.login, repo: payload.repository.name };
    const issueNumber = payload.issue.number;
    const user = payload.comment.user?.login ?? payload.sender.login;
    const fullName = `${repo.owner}/${repo.repo}`;
    const react = (content: 'eyes' | 'confused') =>
      octokit.rest.reactions.createForIssueComment({ ...repo, comment_id: payload.comment.id, content }).then(
        () => undefined,
        (err: unknown) => app.server.log(`could not react to comment ${payload.comment.id}: ${errorText(err)}`),
      );
    // The comment's one reply, recorded once posted: a replay of the delivery after a restart
    // (which runs nothing twice, see run()) does not post it again.
    const reply = async (body: string | undefined) => {
      if (body === undefined || app.store.replied(context.id)) return;
      try {
        await octokit.rest.issues.createComment({ ...repo, issue_number: issueNumber, body });
      } catch (err) {
        app.server.log(`could not reply on ${fullName}#${issueNumber}: ${errorText(err)}`);
        return;
      }
      try {
        app.store.setReplied(context.id);
      } catch (err) {
        // Posted, but not recorded (a full disk): a replay would post it again, which is all.
        if (!app.server.storage.failed(err)) throw err;
        app.server.log(`replied on ${fullName}#${issueNumber} but could not record it: ${errorText(err)}`);
      }
    };
    let role: string;
    try {
      role = await app.permissions.of(octokit, repo, user);
    } catch (err) {
      // Rate-limited as refusals are: GitHub failing to answer (its rate limit, say) must not make
      // every comment of a flood cost a reply.
      const answered = limiter.allow(payload.repository.id, issueNumber, user);
      const said = answered ? reply(`@${user} could not ask GitHub for your permission on ${fullName}, so nothing ran; comment again in a while:\n\n\`\`\`\n${errorText(err)}\n\`\`\``) : Promise.resolve();
      app.background(Promise.all([react('confused'), said]).then(() => undefined));
      return;
    }
    if (!WRITERS.has(role)) {
      // Later comments within the window get 'confused', not 👀 (which says the app is on it):
      // this thread already says why nothing happens, and a comment with no sign at all looks
      // lost, so its author would post it again.
      const answered = limiter.allow(payload.repository.id, issueNumber, user);
      const body = commands.length > MAX_COMMANDS ? tooManyReply(user, commands.length) : commentReply(user, fullName, commands.map((c) => readerOutcome(c, role)));
      app.background(answered ? react('eyes').then(() => reply(body)) : react('confused'));
      return;
    }
    app.background(react('eyes'));
    if (commands.length > MAX_COMMANDS) return reply(tooManyReply(user, commands.length));
    const repository: GithubRepository = { id: payload.repository.id, owner: repo.owner, name: repo.repo, cloneUrl: payload.repository.clone_url };
    const outcomes: CommandOutcome[] = [];
    for (const [n, command] of commands.entries()) {
      const { line } = command;
      try {
        if (command.name === 'help') outcomes.push({ line, said: COMMENT_HELP });
        else if (command.name === 'invalid') outcomes.push({ line, invalid: command.error });
        else if (command.name === 'run') {
          const started = await run(app, context, command, `${context.id}#${n}`, repository, user);
          outcomes.push(typeof started === 'string' ? { line, said: started } : { line, started: started.run.name });
        }
        else if (command.name === 'stop') outcomes.push({ line, said: stop(app, command, repository, issueNumber) });
        else outcomes.push({ line, said: await tag(app, context, command, repository) });
      } catch (err) {
        outcomes.push({ line, failed: errorText(err) });
      }
    }
    await reply(commentReply(user, fullName, outcomes));
  };
}

/** A command of a user without write permission: help and errors as for anyone, the rest refused. */
function readerOutcome(command: CommentCommand, role: string): CommandOutcome {
  if (command.name === 'help') return { line: command.line, said: COMMENT_HELP };
  if (command.name === 'invalid') return { line: command.line, invalid: command.error };
  return { line: command.line, refused: role };
}

/** Only a new comment acts, and not a bot's (the app's own replies show commands). */
function actsOn(payload: Context<'issue_comment'>['payload']): boolean {
  return payload.action === 'created' && payload.comment.user?.type !== 'Bot' && payload.sender.type !== 'Bot';
}

/**
 * Read the moment a comment's delivery arrives (before it waits behind the repository's other
 * deliveries): the pull request's head, and what it was when the comment was written. Only for a
 * new comment with `/dstack run` on a pull request by a user with write permission.
 */
export async function readPullHeadOnArrival(app: GithubApp, context: Context<'issue_comment'>): Promise<PullHeadAtComment | undefined> {
  const { payload } = context;
  if (!actsOn(payload) || !payload.issue.pull_request || !commentCommands(payload.comment.body ?? '').some((c) => c.name === 'run')) return undefined;
  const repo = { owner: payload.repository.owner.login, repo: payload.repository.name };
  // Only a writer's command can run: a flood of others' comments costs no reads of heads and pushes.
  const user = payload.comment.user?.login ?? payload.sender.login;
  if (!WRITERS.has(await app.permissions.of(context.octokit, repo, user))) return undefined;
  return pullHeadAtComment(context.octokit, repo, payload.issue.number, payload.comment.created_at);
}

/**
 * `/dstack run`: on a pull request, at its head when the comment was written (read on arrival), or
 * nothing and a reply with both SHAs when the head moved since; on an issue, the default branch's
 * head. `key` is the command in its delivery: the run it started before a restart, if any, is the answer.
 */
async function run(app: GithubApp, context: Context<'issue_comment'>, command: Extract<CommentCommand, { name: 'run' }>, key: string, repository: GithubRepository, user: string): Promise<RunView | string> {
  const { payload, octokit } = context;
  const before = await app.startedBefore(octokit, key);
  if (before) return before;
  const repo = { owner: repository.owner, repo: repository.name };
  let sha: string;
  let branch: string;
  let untrusted = false;
  if (payload.issue.pull_request) {
    // Read on arrival; read now only if the arrival's read was not made (it is made for every such comment).
    const head = (await app.arrival<PullHeadAtComment>(context)) ?? (await pullHeadAtComment(octokit, repo, payload.issue.number, payload.comment.created_at));
    if (!headUnchanged(head)) {
      // Unknown: the head repository's pushes cannot be read (a private fork outside the installation,
      // a deleted fork) or list none before the comment. Commenting again would meet the same.
      if (head.atComment === null) {
        return `@${user} the app cannot tell which commit was the head of #${payload.issue.number} when you wrote your comment (it cannot read the pushes of its head branch, \`${head.branch}\`: a private fork outside this installation, a deleted fork, or no push listed before your comment), so \`${quoteLine(command.line)}\` did nothing; push the commit to a branch this app can read and comment there.`;
      }
      return `@${user} the head of #${payload.issue.number} changed after your comment: it was \`${head.atComment}\` when you wrote it and is \`${head.sha}\` now, so \`${quoteLine(command.line)}\` did nothing; comment again to run the new head.`;
    }
    sha = head.sha;
    branch = head.branch;
    untrusted = head.untrusted ?? true;
  } else {
    const { data } = await octokit.rest.repos.get(repo);
    branch = data.default_branch;
    sha = (await octokit.rest.git.getRef({ ...repo, ref: `heads/${branch}` })).data.object.sha;
  }
  return app.startRun(octokit, {
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
    key,
  });
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
