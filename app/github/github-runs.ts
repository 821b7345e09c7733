import path from 'node:path';
import type { ProbotOctokit } from 'probot';
import { DstackError } from '../../shared/errors.js';
import { checkLabels, parseRunArgs, withLabels } from '../../shared/run-args.js';
import { shellJoin } from '../../shared/shell-quote.js';
import { ProviderRepos } from '../../shared/workflow/provider-repos.js';
import type { Project } from '../../shared/workflow/project.js';
import type { RunService, RunView } from '../run-service.js';
import { ownerRepo } from '../server/user-views.js';
import type { GithubRunOrigin, GithubStore } from './github-store.js';
import { withWorkflowsAt } from './workflow-files.js';

/** A repository as the app keeps it for a run. */
export interface GithubRepository {
  id: number;
  owner: string;
  name: string;
  /** `clone_url`: where agents fetch the code, and (with the owner) the run's repository key. */
  cloneUrl: string;
}

/** A run the app is asked to start: a workflow of a repository at a commit. */
export interface GithubRunRequest {
  installationId: number;
  repository: GithubRepository;
  /** The commit to run, pinned (a pull request's head when it was asked, a pushed commit). */
  sha: string;
  workflow: string;
  /** What follows the workflow, as words: `--NAME VALUE` for variables, `--label L`, the run's arguments. */
  words: readonly string[];
  event: GithubRunOrigin['event'];
  branch: string | null;
  issueNumber: number | null;
  sender: string;
  /**
   * The code is a fork's pull request: anyone on GitHub may have written it, whoever asked for the
   * run. Agents with host isolation decline it (it would run as their own user, beside their token).
   */
  untrusted: boolean;
  /**
   * What of a webhook delivery asks for the run, `<delivery id>#<n>` (n: the command's or
   * workflow's place in it): stored with the run, so that the delivery replayed after a restart
   * finds the run (GithubApp.startedBefore) rather than starting it again.
   */
  key?: string;
}

/**
 * Starts runs for the app as `dstack run` does: the workflows read at the run's commit, the
 * depends-on closure resolved with `--NAME VALUE` and the run's arguments, a new run name. The run
 * is an ordinary one whose owner is the repository's owner (the installation's account), so that
 * account's agents run it, and whose repository key is the one a CLI run of the same repository
 * has, so they share caches. Its agents fetch the code with a token the server mints for them.
 */
export class GithubRuns {
  /** Fetches a tag the server lacks from elsewhere (a release on GitHub, see releases.ts). */
  private missingTag: ((request: GithubRunRequest, tag: string) => Promise<unknown>) | undefined;

  constructor(
    private readonly service: RunService,
    private readonly store: GithubStore,
    private readonly dataDir: string,
  ) {}

  /** Sets where a `depends-on: WF:TAG` the server has no such tag for is looked for before it is an error. */
  onMissingTag(fetch: (request: GithubRunRequest, tag: string) => Promise<unknown>): void {
    this.missingTag = fetch;
  }

  /** The tagged job a dependency names, fetched first when the server lacks the tag. */
  private async taggedJob(request: GithubRunRequest, workflow: string, tag: string): Promise<void> {
    const owner = request.repository.owner;
    try {
      this.service.taggedJob(workflow, tag, owner);
    } catch (err) {
      if (!this.missingTag || !(err instanceof DstackError) || err.code !== 'DSTACK_ERR_TAG_UNKNOWN') throw err;
      await this.missingTag(request, tag);
      this.service.taggedJob(workflow, tag, owner);
    }
  }

  /** Loads the workflows at the request's commit and submits the run; a mistake is a DstackError to show as is. */
  async start(octokit: ProbotOctokit, request: GithubRunRequest): Promise<RunView> {
    const { repository } = request;
    return withWorkflowsAt(octokit, { owner: repository.owner, repo: repository.name, sha: request.sha }, (project) => this.submit(project, request));
  }

  /** Submits a run of `request.workflow` from an already loaded project (a push starts several from one load). */
  async submit(project: Project, request: GithubRunRequest): Promise<RunView> {
    const { repository } = request;
    const owner = repository.owner;
    const closure = project.closure(request.workflow);
    const variableNames = new Set(closure.flatMap((wf) => Object.keys(project.variablesOf(wf))));
    const parsed = parseRunArgs(request.words, (name) => variableNames.has(name));
    if (parsed.isolation !== undefined || parsed.image !== undefined) {
      throw new DstackError('DSTACK_ERR_USAGE', `--${parsed.isolation !== undefined ? 'isolation' : 'image'} is the agent's to choose: start it with 'dstack-agent --isolation docker --image IMAGE'`);
    }
    const labels = checkLabels(parsed.labels ?? []);
    const runName = this.service.newRunName();
    const providers = await project.providersFor(closure, new ProviderRepos(path.join(this.dataDir, 'providers')));
    const plan = closure.map((name) => withLabels(project.resolve(name, { args: parsed.args, runName, overrides: parsed.overrides, secrets: [], providers }), labels));
    for (const wf of plan) for (const dep of wf.dependsOn) if (dep.tag) await this.taggedJob(request, dep.workflow, dep.tag);
    // The origin (with the delivery's key) and the run are written in one transaction: a run
    // stored is always found by its key, and a key is never stored for a run that is not.
    return this.store.transaction(() => {
      this.store.putOrigin(
        {
          runName,
          installationId: request.installationId,
          repoId: repository.id,
          repoOwner: owner,
          repoName: repository.name,
          sha: request.sha,
          event: request.event,
          branch: request.branch,
          issueNumber: request.issueNumber,
          sender: request.sender,
          words: [...request.words],
        },
        request.key,
      );
      return this.service.submit({
        repo: ownerRepo(owner, repository.cloneUrl),
        workflow: request.workflow,
        args: shellJoin(parsed.args),
        runName,
        plan,
        executor: null,
        owner,
        source: { repoUrl: repository.cloneUrl, commit: request.sha, patch: null, credentials: true, ...(request.untrusted ? { untrusted: true } : {}) },
      });
    });
  }
}
