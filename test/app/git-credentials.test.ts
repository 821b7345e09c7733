import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type DstackServer } from '../../app/server/server.js';
import { tempDir, waitFor } from '../helpers/cli.js';
import { ProtocolClient } from '../helpers/protocol-client.js';
import { workflow } from '../helpers/service.js';

const opened: { server: DstackServer; client?: ProtocolClient }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0)) {
    o.client?.close();
    await o.server.close();
  }
});

describe('git credentials for a job', () => {
  it("are offered only for runs that need them, and minted for the job's own token on demand", async () => {
    const server = createServer({ dataDir: tempDir(), log: () => {} });
    const entry: (typeof opened)[number] = { server };
    opened.push(entry);
    const asked: string[] = [];
    server.gitCredentials.provide(async (run) => {
      asked.push(run.name);
      return `ghs_for_${run.name}`;
    });
    const { port } = (await server.listen(0, '127.0.0.1')) as AddressInfo;
    const url = `http://127.0.0.1:${port}`;
    const client = (entry.client = await ProtocolClient.connect(url, server.tokens.create('acme', 'agent').token));
    const start = async (name: string, credentials: boolean) => {
      server.state.service.submit({
        repo: 'acme:https://github.example/acme/models.git',
        workflow: 'train',
        args: '',
        runName: name,
        plan: [workflow('train')],
        executor: null,
        owner: 'acme',
        source: { repoUrl: 'https://github.example/acme/models.git', commit: 'a'.repeat(40), patch: null, ...(credentials ? { credentials: true } : {}) },
      });
      const jobId = `${name}-0`;
      const offer = await client.next('offer', jobId);
      await client.take(jobId);
      client.status(jobId, 'downloading');
      await waitFor(() => server.state.service.job(jobId)!.status === 'downloading', 5000, 'the job to start');
      const get = (token = offer.api.token) => fetch(`${url}/api/jobs/${jobId}/git-credentials`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
      return { offer, get };
    };

    const github = await start('gh-run-1', true);
    expect(github.offer.source).toEqual({ repoUrl: 'https://github.example/acme/models.git', commit: 'a'.repeat(40), patch: false, credentials: true });
    const res = await github.get();
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ token: 'ghs_for_gh-run-1' });
    expect((await github.get('')).status).toBe(401);
    expect(asked).toEqual(['gh-run-1']);

    const cli = await start('cli-run-1', false);
    expect(cli.offer.source).toEqual({ repoUrl: 'https://github.example/acme/models.git', commit: 'a'.repeat(40), patch: false });
    const none = await cli.get();
    expect(none.status).toBe(404);
    expect(await none.json()).toEqual({ error: 'run cli-run-1 needs no credentials to fetch its code' });
    expect(asked).toEqual(['gh-run-1']);
  });
});
