import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UNTRUSTED_ON_HOST } from '../../agent/runner-agent.js';
import { openState, type State } from '../../app/state.js';
import type { RunSource } from '../../app/run-service.js';
import type { ResolvedWorkflow } from '../../shared/workflow/types.js';
import { ended } from '../helpers/api.js';
import { closeAfterTest, tempDir, waitFor } from '../helpers/cli.js';
import { bareRepo } from '../helpers/git-repo.js';
import { AGENT, createToken, startAgent, startProcess, startServer } from '../helpers/server.js';
import { workflow } from '../helpers/service.js';

/** A server with an agent token of `acme` (also written to a root-only file), and its state opened here to submit runs. */
async function serverWithToken() {
  const dataDir = tempDir();
  const token = await createToken(dataDir, 'acme', 'agent');
  const server = await startServer(dataDir);
  const state: State = closeAfterTest(openState(dataDir));
  const tokenFile = path.join(tempDir(), 'token');
  fs.writeFileSync(tokenFile, `${token.token}\n`, { mode: 0o600 });
  return { token: token.token, tokenFile, server, state };
}

const bash = (name: string, commands: string[], extra: Partial<ResolvedWorkflow> = {}) => workflow(name, { spec: { name, provider: 'bash', commands } as ResolvedWorkflow['spec'], ...extra });

/**
 * Submits a run straight into the server's store, before an agent starts: the server's scheduler
 * looks at the queue when an agent connects. Its last workflow is the run's.
 */
function submit(state: State, runName: string, plan: ResolvedWorkflow[], source: RunSource): void {
  state.service.submit({ repo: source.repoUrl, workflow: plan.at(-1)!.name, args: '', runName, plan, executor: null, owner: 'acme', source });
}

/** Commits everything in `repo`'s work tree (links too) and pushes it; the new commit. */
function commitAll(repo: { work: string; repoUrl: string }, message: string): string {
  const git = (...args: string[]) => execFileSync('git', ['-C', repo.work, '-c', 'user.name=t', '-c', 'user.email=t@x', ...args], { encoding: 'utf8' }).trim();
  git('add', '-A');
  git('commit', '--quiet', '-m', message);
  git('push', '--quiet', repo.repoUrl, 'main');
  return git('rev-parse', 'HEAD');
}

const logOf = (state: State, jobId: string) => state.service.readLog(jobId, 0).toString();
const procFile = (pid: number, name: string) => fs.readFileSync(`/proc/${pid}/${name}`, 'latin1');

/** A shell line that says whether the job's user could run `command`. */
const attempt = (what: string, command: string) => `if ${command} >/dev/null 2>&1; then echo "${what}: read"; else echo "${what}: denied"; fi`;

describe('dstack-agent on a shared host', () => {
  it("runs a host job as the --run-as user, who cannot read the agent's environment, token file, mirrors or job folders, while its own work succeeds", async () => {
    const { token, tokenFile, server, state } = await serverWithToken();
    const repo = bareRepo({ 'data.txt': 'from the repository\n' });
    const workDir = tempDir();
    // The agent's pid, as anyone may find it (`ps` would do too).
    const pid = `$(cat ${workDir}/agent.pid)`;
    const first = bash('first', [
      'echo "user=$(id -un)"',
      attempt('environ', `cat /proc/${pid}/environ`),
      attempt('token file', `cat ${tokenFile}`),
      attempt('mirrors', `ls ${workDir}/mirrors`),
      attempt('jobs', `ls ${workDir}/jobs`),
      attempt('spool', `ls ${workDir}/spool`),
      // Anyone may read a command line: the token must not be in it.
      `echo "cmdline=$(tr '\\0' ' ' < /proc/${pid}/cmdline)"`,
      'cat data.txt',
      'echo made > made.txt && cat made.txt',
      'echo home > ~/in-home && cat ~/in-home',
      'echo "owner=$(stat -c %U .)"',
    ]);
    // After it (so it gets the tree the first had, made its user's, put back as its commit has it).
    const second = bash('second', ['cat data.txt made.txt 2>&1 || true', 'echo again > made.txt && cat made.txt'], { dependsOn: [{ workflow: 'first' }] });
    submit(state, 'run-as-1', [first, second], { ...repo, patch: null });
    await startAgent({ url: server.url, token: { file: tokenFile }, name: 'shared-1', workDir, args: ['--run-as', 'nobody'] });
    const job = await ended(state, 'run-as-1-0');
    const log = logOf(state, job.id);
    expect([job.status, job.reason], log).toEqual(['done', null]);
    for (const what of ['environ', 'token file', 'mirrors', 'jobs', 'spool']) expect(log).toContain(`${what}: denied`);
    expect(log).toContain('user=nobody');
    expect(log).toMatch(/^cmdline=\S*node \S*dstack-agent\.js --url \S+ --token-file /m);
    expect(log).not.toContain(token);
    expect(log).toContain('from the repository\r\nmade\r\nhome\r\nowner=nobody');
    expect(fs.readdirSync(path.join(workDir, 'mirrors'))).toHaveLength(1);
    const next = await ended(state, 'run-as-1-1');
    expect([next.status, logOf(state, next.id)]).toEqual(['done', 'from the repository\r\ncat: made.txt: No such file or directory\r\nagain\r\n']);
  });

  it("saves no artifact or cache of a --run-as job through a link it made to the agent's token folder or work folder, and says why", async () => {
    const { token, tokenFile, server, state } = await serverWithToken();
    const repo = bareRepo({ 'README.md': 'hi\n' });
    const workDir = tempDir();
    // Each path is lexically inside the job's folder; a folder on the way is the job's link out of it.
    const commands = [`ln -s ${path.dirname(tokenFile)} out`, `ln -s ${workDir} ~/agent`, 'mkdir kept ~/.pip && echo model > kept/model.bin && echo wheel > ~/.pip/wheel'];
    const job = bash('leak', commands, { artifacts: ['out/token', 'kept'], cache: ['~/agent/mirrors', '~/.pip'] });
    submit(state, 'run-as-link-1', [job], { ...repo, patch: null });
    await startAgent({ url: server.url, token: { file: tokenFile }, name: 'shared-3', workDir, args: ['--run-as', 'nobody'] });
    const saved = await ended(state, 'run-as-link-1-0');
    const log = logOf(state, saved.id);
    expect([saved.status, saved.reason], log).toEqual(['done', null]);
    // What the job made in its folder is saved (packed as its user).
    expect(state.service.artifactsOfRun('run-as-link-1').map((a) => [a.path, a.files])).toEqual([['kept', 1]]);
    expect(state.service.cachesOf(repo.repoUrl, 'leak').map((c) => c.path)).toEqual(['~/.pip']);
    expect(log).toContain("artifact 'out/token' not saved: it leads out of the job's folder through a link");
    expect(log).toContain("cache '~/agent/mirrors' not saved: it leads out of the job's folder through a link");
    expect(log).not.toContain(token);
  });

  it("unpacks a --run-as job's dependencies and makes its working folder as its user: a link committed in the repository leads neither out of its folder", async () => {
    const { tokenFile, server, state } = await serverWithToken();
    // A folder only root may write, which the repository's `out` names.
    const outside = tempDir();
    const repo = bareRepo({ 'README.md': 'hi\n' });
    fs.symlinkSync(outside, path.join(repo.work, 'out'));
    const commit = commitAll(repo, 'link');
    const make = bash('make', ['rm out && mkdir out && echo planted > out/planted'], { artifacts: ['out/planted'] });
    const use = bash('use', ['cat out/planted'], { dependsOn: [{ workflow: 'make' }] });
    submit(state, 'run-as-unpack-1', [make, use], { ...repo, commit, patch: null });
    await startAgent({ url: server.url, token: { file: tokenFile }, name: 'shared-4', workDir: tempDir(), args: ['--run-as', 'nobody'] });
    const used = await ended(state, 'run-as-unpack-1-1');
    expect(fs.readdirSync(outside)).toEqual([]);
    expect(used.status).toBe('aborted');
    expect(used.reason).toMatch(/^infrastructure error: tar -x failed \(2\): tar: out\/planted: Cannot open: Permission denied/);
    // Nor does its working folder, made through that link.
    submit(state, 'run-as-unpack-2', [workflow('deeper', { spec: { name: 'deeper', provider: 'bash', commands: ['pwd'] } as ResolvedWorkflow['spec'], workingDir: 'out/deeper' })], { ...repo, commit, patch: null });
    const deeper = await ended(state, 'run-as-unpack-2-0');
    expect(fs.readdirSync(outside)).toEqual([]);
    expect([deeper.status, deeper.reason]).toEqual(['aborted', "infrastructure error: cannot make the folder work/out/deeper: mkdir: cannot create directory 'work/out': Permission denied"]);
  });

  it("downloads a curl job's output nowhere a link committed in the repository leads out of its folder, and says why", async () => {
    const { tokenFile, server, state } = await serverWithToken();
    const outside = tempDir();
    const files = http.createServer((_req, res) => res.end('planted\n'));
    await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
    closeAfterTest({ close: () => files.close() });
    const url = `http://127.0.0.1:${(files.address() as AddressInfo).port}/x`;
    const repo = bareRepo({ 'README.md': 'hi\n' });
    fs.symlinkSync(outside, path.join(repo.work, 'out'));
    fs.symlinkSync(path.join(outside, 'file'), path.join(repo.work, 'model.bin.part'));
    const commit = commitAll(repo, 'links');
    const curl = (name: string, output: string) => workflow(name, { provider: 'curl', spec: { name, provider: 'curl', url, output } as ResolvedWorkflow['spec'] });
    submit(state, 'run-as-curl-1', [curl('through-folder', 'out/planted')], { ...repo, commit, patch: null });
    submit(state, 'run-as-curl-2', [curl('through-part', 'model.bin')], { ...repo, commit, patch: null });
    await startAgent({ url: server.url, token: { file: tokenFile }, name: 'shared-5', workDir: tempDir(), args: ['--run-as', 'nobody'] });
    const [folder, part] = [await ended(state, 'run-as-curl-1-0'), await ended(state, 'run-as-curl-2-0')];
    expect(fs.readdirSync(outside)).toEqual([]);
    expect([folder.status, folder.reason]).toEqual(['failed', "output 'out/planted' leads out of the job's folder through a link; name a path inside it"]);
    expect([part.status, logOf(state, part.id)]).toEqual(['failed', expect.stringContaining("download failed: ELOOP")]);
  });

  it('stops a job running as the --run-as user as a user would, on the agent\'s SIGTERM', async () => {
    const { tokenFile, server, state } = await serverWithToken();
    const repo = bareRepo({ 'README.md': 'hi\n' });
    submit(state, 'run-as-stop-1', [bash('wait', ['trap "echo interrupted; exit 130" INT', 'echo started', 'sleep 600 & wait'])], { ...repo, patch: null });
    const agent = await startAgent({ url: server.url, token: { file: tokenFile }, name: 'shared-2', workDir: tempDir(), args: ['--run-as', 'nobody'], env: { DSTACK_STOP_GRACE_SECONDS: '5' } });
    await waitFor(() => logOf(state, 'run-as-stop-1-0').includes('started'), 20_000, 'the job to start');
    expect(await agent.stop()).toBe(0);
    expect(state.service.job('run-as-stop-1-0')).toMatchObject({ status: 'stopped', reason: 'stopped by the user' });
    expect(logOf(state, 'run-as-stop-1-0')).toContain('interrupted');
  });

  it('keeps its token off its command line and out of its environment when it reads it from --token-file or the systemd credential', async () => {
    const { token, tokenFile, server } = await serverWithToken();
    const fromFile = await startAgent({ url: server.url, token: { file: tokenFile }, name: 'file-1', workDir: tempDir() });
    const credentials = tempDir();
    fs.copyFileSync(tokenFile, path.join(credentials, 'dstack-agent-token'));
    const fromCredential = startProcess([AGENT, '--url', server.url, '--name', 'credential-1', '--work-dir', tempDir()], { CREDENTIALS_DIRECTORY: credentials });
    await waitFor(() => fromCredential.output().includes('connected to'), 20_000, 'the agent to connect with its credential');
    for (const agent of [fromFile, fromCredential]) {
      expect(procFile(agent.child.pid!, 'cmdline')).not.toContain(token);
      expect(procFile(agent.child.pid!, 'environ')).not.toContain(token);
    }
  });

  it("declines a fork pull request's job on host isolation, saying to serve it with --isolation docker, and runs it with --allow-untrusted-on-host", async () => {
    const { tokenFile, server, state } = await serverWithToken();
    const repo = bareRepo({ 'README.md': 'hi\n' });
    submit(state, 'fork-1', [bash('job', ['echo "from a fork"'])], { ...repo, patch: null, untrusted: true });
    const host = await startAgent({ url: server.url, token: { file: tokenFile }, name: 'host-1', workDir: tempDir() });
    const waiting = `waiting: needs an agent (an agent of acme); agents: host-1 declined it (${UNTRUSTED_ON_HOST})`;
    await waitFor(() => state.service.job('fork-1-0')!.reason === waiting, 20_000, 'the job to wait with the reason');
    // Declined once, not offered to it again and again.
    await new Promise((r) => setTimeout(r, 1000));
    expect(host.output().match(/job fork-1-0: declined/g)).toHaveLength(1);
    expect(state.service.job('fork-1-0')).toMatchObject({ status: 'submitted', reason: waiting });
    await host.stop();
    const trusting = await startAgent({ url: server.url, token: { file: tokenFile }, name: 'host-1', workDir: tempDir(), args: ['--allow-untrusted-on-host'] });
    const job = await ended(state, 'fork-1-0');
    expect(job.status).toBe('done');
    expect(logOf(state, job.id)).toContain('from a fork');
    expect(trusting.output()).not.toContain('declined');
  });

  it('refuses --run-as in one line when it is not root or the user does not exist, and exits 1', async () => {
    const url = 'http://127.0.0.1:1';
    const missing = startProcess([AGENT, '--url', url, '--token', 't', '--work-dir', tempDir(), '--run-as', 'no-such-user-x'], {});
    expect(await missing.exited).toBe(1);
    expect(missing.output()).toBe('dstack-agent: error: --run-as no-such-user-x: there is no user no-such-user-x on this machine; create one (useradd --system --no-create-home no-such-user-x) or name another\n');
    const workDir = tempDir();
    fs.chmodSync(workDir, 0o777);
    const unprivileged = spawn('setpriv', ['--reuid', 'nobody', '--regid', execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim(), '--init-groups', '--', process.execPath, AGENT, '--url', url, '--token', 't', '--work-dir', workDir, '--run-as', 'nobody'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    unprivileged.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise((resolve) => unprivileged.on('close', resolve));
    expect([code, output]).toEqual([1, 'dstack-agent: error: --run-as nobody needs the agent to run as root (it switches each job to nobody); start it as root, or leave --run-as out\n']);
  });
});
