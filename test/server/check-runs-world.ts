import { execFileSync } from 'node:child_process';
import { afterEach, onTestFailed } from 'vitest';
import { startGithubSim, type GithubSim } from '../github-sim/start-github-sim.js';
import { userApi } from '../helpers/api.js';
import { tempDir, waitFor, writeFiles } from '../helpers/cli.js';
import { createToken, startAgent, startServer, type Proc, type ServerProc } from '../helpers/server.js';

export const OWNER = 'octo';
export const REPO = 'models';
const AT = { owner: OWNER, repo: REPO };

/** A check run as the sim's admin API gives it: REST's fields, its buttons and every body accepted. */
export interface SimCheckRun {
  id: number;
  name: string;
  head_sha: string;
  status: string;
  conclusion: string | null;
  details_url: string | null;
  external_id: string | null;
  output: { title: string | null; summary: string | null; text: string | null };
  actions: { identifier: string; label: string }[];
  updates: { status?: string; conclusion?: string }[];
}

export interface SimRelease {
  id: number;
  tag_name: string;
  target_commitish: string;
  body: string | null;
  assets: { id: number; name: string; size: number; browser_download_url: string }[];
}

/**
 * The fake GitHub with octo/models (a real git repository of `files`) and the app installed, a
 * real `dstack-app` configured for it with Probot's variables, and a real agent of octo.
 */
export async function checksWorld(files: Record<string, string>) {
  const sim = await startGithubSim();
  sims.push(sim);
  const dir = tempDir('dstack-checks-work-');
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: dir, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' } }).trim();
  git('init', '--quiet', '-b', 'main');
  writeFiles(dir, files);
  git('add', '-A');
  git('commit', '--quiet', '-m', 'first');
  const repo = await sim.createRepo({ owner: OWNER, name: REPO, path: dir, private: true });
  const installation = await sim.createInstallation({ account: OWNER });
  const dataDir = tempDir('dstack-checks-server-');
  let server: ServerProc = await startServer(dataDir, sim.env());
  sim.setWebhookUrl(`${server.url}/api/github/webhooks`);
  const outputs: string[] = [];
  onTestFailed(() => {
    process.stderr.write(`--- dstack-app output:\n${outputs.join('\n')}${server.output()}\n--- sim requests:\n${sim.requests.log().map((r) => `${r.method} ${r.path} ${r.status}`).join('\n')}\n`);
  });
  const { token } = await createToken(dataDir, OWNER, 'user');
  const agentToken = await createToken(dataDir, OWNER, 'agent');
  const agent: Proc = await startAgent({ url: server.url, token: agentToken.token, name: 'gpu-box', workDir: tempDir('dstack-checks-agent-') });
  const issue = sim.createIssue({ owner: OWNER, repo: REPO, title: 'experiments' });
  const w = {
    sim,
    get server() {
      return server;
    },
    agent,
    dataDir,
    dir,
    git,
    cloneUrl: repo.clone_url,
    installationId: installation.id,
    /** A GitHub REST GET as the app's installation (what the app would see). */
    async rest<T>(route: string): Promise<{ status: number; body: T }> {
      const { token } = sim.createToken(installation.id);
      const res = await fetch(`${sim.apiUrl}${route}`, { headers: { authorization: `token ${token}`, accept: 'application/vnd.github+json' } });
      return { status: res.status, body: (await res.json().catch(() => null)) as T };
    },
    /** Commits `more` on main and pushes it; gives the new head. */
    async pushCommit(more: Record<string, string>): Promise<string> {
      writeFiles(dir, more);
      git('add', '-A');
      git('commit', '--quiet', '-m', 'more');
      await sim.push({ owner: OWNER, repo: REPO, path: dir });
      return git('rev-parse', 'HEAD');
    },
    issue: issue.number,
    api: () => userApi(server.url, token),
    sha: () => git('rev-parse', 'HEAD'),
    checkRuns: () => sim.checkRuns(AT) as unknown as SimCheckRun[],
    releases: () => sim.releases(AT) as unknown as SimRelease[],
    botComments: () => (sim.comments(AT) as unknown as { body: string; user: { login: string } }[]).filter((c) => c.user.login === sim.botLogin),
    /** Comments `/dstack …` on the issue as alice, a writer. */
    comment: (body: string, user = 'alice', permission = 'write') => sim.comment({ ...AT, number: issue.number, user, permission, body }),
    /** The newest run of the server. */
    async lastRun(): Promise<string> {
      const { runs } = await userApi(server.url, token).call<{ runs: { run: { name: string } }[] }>('GET', '/api/runs');
      return runs[0]!.run.name;
    },
    /** The check run of a job, once `check` holds for it. */
    async checkRun(jobId: string, check: (c: SimCheckRun) => boolean = () => true, what = 'the check run', ms = 60_000): Promise<SimCheckRun> {
      return (await waitFor(() => w.checkRuns().find((c) => c.external_id === jobId && check(c)), ms, `${what} of ${jobId}`)) as SimCheckRun;
    },
    completed: (jobId: string, ms?: number) => w.checkRun(jobId, (c) => c.status === 'completed', 'the completed check run', ms),
    /** Restarts dstack-app on the same data folder and port (the agent reconnects). */
    async restart(env: NodeJS.ProcessEnv = {}): Promise<void> {
      outputs.push(server.output());
      await server.stop();
      server = await startServer(dataDir, { ...sim.env(), ...env }, server.port);
    },
  };
  return w;
}

export type ChecksWorld = Awaited<ReturnType<typeof checksWorld>>;

const sims: GithubSim[] = [];
afterEach(async () => {
  for (const sim of sims.splice(0)) {
    // A request or response of the app's that broke GitHub's schema fails the test.
    const problems = sim.takeSchemaProblems();
    await sim.close().catch(() => {});
    if (problems.length > 0) throw new Error(`GitHub's schema was broken:\n${JSON.stringify(problems, null, 1)}`);
  }
});
