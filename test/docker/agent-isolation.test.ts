import { describe, expect, it } from 'vitest';
import { openState, type State } from '../../app/state.js';
import { JOB_LABEL } from '../../agent/docker/run-container.js';
import { bash, ended, userApi } from '../helpers/api.js';
import { closeAfterTest, tempDir, waitFor } from '../helpers/cli.js';
import { containersWithLabel, IMAGE } from '../helpers/docker.js';
import { bareRepo } from '../helpers/git-repo.js';
import { createToken, startAgent, startServer } from '../helpers/server.js';

describe('a runner agent with --isolation docker', () => {
  it("runs a bash job in a container, saves its artifact, and leaves no container behind", async () => {
    const dataDir = tempDir();
    const agentToken = (await createToken(dataDir, 'acme', 'agent')).token;
    const userToken = (await createToken(dataDir, 'acme', 'user')).token;
    const server = await startServer(dataDir);
    const api = userApi(server.url, userToken);
    const state: State = closeAfterTest(openState(dataDir));
    const repo = bareRepo({ 'data.txt': 'from the repo\n' });
    const agent = await startAgent({ url: server.url, token: agentToken, name: 'boxed', workDir: tempDir(), args: ['--isolation', 'docker', '--image', IMAGE] });
    const run = await api.submit(
      [bash('where', ['test -f /.dockerenv && echo in-a-container || echo on-the-host', 'cat data.txt', 'echo "home=$HOME"', 'mkdir -p out && echo made > out/f'], { artifacts: ['out'] })],
      repo,
    );
    const job = await ended(state, `${run}-0`);
    expect(job.status).toBe('done');
    const log = state.service.readLog(job.id, 0).toString();
    expect(log).toContain('in-a-container');
    expect(log).toContain('from the repo');
    expect(log).toContain('home=/dstack/home');
    expect(state.service.artifactsOfRun(run)).toMatchObject([{ path: 'out', files: 1, bytes: 5 }]);
    expect(containersWithLabel(`${JOB_LABEL}=${job.id}`)).toEqual([]);
    expect(agent.output()).toContain(`job ${job.id}: done`);
  });
});
