import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
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

type Member = { name: string; type?: '0' | '1' | '2' | '3' | '5'; link?: string; data?: string };

/** A tar archive of members written by hand, so it can say what real tar refuses to write. */
function tarWith(...members: Member[]): Buffer {
  return Buffer.concat([...members.map(memberBlocks), Buffer.alloc(1024)]);
}

function memberBlocks(member: Member): Buffer {
  const data = Buffer.from(member.data ?? '');
  const header = Buffer.alloc(512);
  header.write(member.name, 0, 100, 'utf8');
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write(member.type ?? '0', 156);
  header.write(member.link ?? '', 157, 100, 'utf8');
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  const body = Buffer.alloc(Math.ceil(data.length / 512) * 512);
  data.copy(body);
  return Buffer.concat([header, body]);
}

/** A server with one job of `acme` running on a protocol-level agent; the job's token from its offer. */
async function runningJob(spec = workflow('train', { artifacts: ['model'], cache: ['data'] })) {
  const dataDir = tempDir();
  const server = createServer({ dataDir, log: () => {} });
  const entry: (typeof opened)[number] = { server };
  opened.push(entry);
  const { port } = (await server.listen(0, '127.0.0.1')) as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  const client = await ProtocolClient.connect(url, server.tokens.create('acme', 'agent').token);
  entry.client = client;
  const submit = (name: string) => {
    server.state.service.submit({
      repo: 'https://example.invalid/acme/repo.git',
      workflow: spec.name,
      args: '',
      runName: name,
      plan: [spec],
      executor: null,
      owner: 'acme',
      source: { repoUrl: 'https://example.invalid/acme/repo.git', commit: 'a'.repeat(40), patch: null },
    });
    return `${name}-0`;
  };
  const jobId = submit('routes-run-1');
  const offer = await client.next('offer', jobId);
  await client.take(jobId);
  client.status(jobId, 'running');
  await waitFor(() => server.state.service.job(jobId)!.status === 'running', 5000, 'the job to run');
  const request = (method: string, route: string, options: { token?: string; body?: Buffer } = {}) =>
    fetch(`${url}/api/jobs/${route}`, {
      method,
      headers: options.token === '' ? {} : { authorization: `Bearer ${options.token ?? offer.api.token}` },
      body: options.body,
    });
  return { server, client, dataDir, jobId, token: offer.api.token, request, submit };
}

describe('job routes', () => {
  it("take only the job's own token, and only while the job runs", async () => {
    const { jobId, request, client, server, token } = await runningJob();
    expect((await request('GET', `${jobId}/inputs`)).status).toBe(200);
    expect((await request('GET', `${jobId}/inputs`, { token: '' })).status).toBe(401);
    expect((await request('GET', `${jobId}/inputs`, { token: `${token.slice(0, -2)}xx` })).status).toBe(401);
    expect((await request('GET', `${jobId}/inputs`, { token: server.tokens.create('acme', 'agent').token })).status).toBe(401);
    // A token for one job opens nothing of another's.
    expect((await request('GET', `routes-run-2-0/inputs`)).status).toBe(401);
    client.status(jobId, 'done', { exitCode: 0 });
    await client.next('ack', jobId);
    const after = await request('GET', `${jobId}/inputs`);
    expect(after.status).toBe(401);
    expect(await after.json()).toEqual({ error: 'a valid token for this job is required: Authorization: Bearer TOKEN (it ends with the job)' });
  });

  it('refuse the token of an agent whose offer was taken back, and take the token of the agent that has the job', async () => {
    const server = createServer({ dataDir: tempDir(), acceptWithinMs: 200, log: () => {} });
    opened.push({ server });
    const { port } = (await server.listen(0, '127.0.0.1')) as AddressInfo;
    const url = `http://127.0.0.1:${port}`;
    const token = server.tokens.create('acme', 'agent').token;
    const slow = await ProtocolClient.connect(url, token, { name: 'slow' });
    server.state.service.submit({
      repo: 'r', workflow: 'train', args: '', runName: 'taken-back-1', plan: [workflow('train')], executor: null, owner: 'acme',
      source: { repoUrl: 'https://example.invalid/r.git', commit: 'a'.repeat(40), patch: null },
    });
    const first = await slow.next('offer', 'taken-back-1-0');
    await slow.next('cancel', 'taken-back-1-0');
    const second = await slow.next('offer', 'taken-back-1-0');
    slow.send({ type: 'reject', jobId: 'taken-back-1-0', reason: 'busy' });
    const fast = await ProtocolClient.connect(url, token, { name: 'fast' });
    const third = await fast.next('offer', 'taken-back-1-0');
    await fast.take('taken-back-1-0');
    const inputs = (t: string) => fetch(`${url}/api/jobs/taken-back-1-0/inputs`, { headers: { authorization: `Bearer ${t}` } });
    expect((await inputs(first.api.token)).status).toBe(401);
    expect((await inputs(second.api.token)).status).toBe(401);
    expect((await inputs(third.api.token)).status).toBe(200);
    slow.close();
    fast.close();
  });

  it('store an artifact streamed in, and hand it to a later job that depends on it', async () => {
    const { jobId, request, client, server, dataDir } = await runningJob();
    const src = tempDir();
    fs.mkdirSync(path.join(src, 'model'));
    fs.writeFileSync(path.join(src, 'model/weights.bin'), 'w'.repeat(5000));
    const tar = execFileSync('tar', ['-cf', '-', '-C', src, 'model']);
    const put = await request('PUT', `${jobId}/artifacts?path=model&files=1&bytes=5000`, { body: tar });
    expect(put.status).toBe(204);
    expect(server.state.service.artifactsOfRun('routes-run-1')).toMatchObject([{ path: 'model', files: 1, bytes: 5000 }]);
    expect(fs.readdirSync(path.join(dataDir, 'archives/artifacts/routes-run-1', jobId)).filter((f) => f.endsWith('.part'))).toEqual([]);
    client.status(jobId, 'done', { exitCode: 0 });
    await client.next('ack', jobId);
    expect(server.state.service.job(jobId)!.status).toBe('done');
  });

  it('refuse an upload whose archive leaves its folder, and keep nothing of it', async () => {
    const { jobId, request, server, dataDir } = await runningJob();
    const cases: [string, Buffer, RegExp][] = [
      ['a .. step', tarWith({ name: 'model/../../evil', data: 'x' }), /member 'model\/..\/..\/evil' has a '..' in its path/],
      ['an absolute path', tarWith({ name: '/etc/evil', data: 'x' }), /member '\/etc\/evil' has an absolute path/],
      ['a link outside', tarWith({ name: 'model/out', type: '2', link: '../../etc' }), /member 'model\/out' links to '..\/..\/etc', outside the folder/],
      ['an absolute link', tarWith({ name: 'model/out', type: '2', link: '/etc/passwd' }), /links to the absolute path/],
      ['a device', tarWith({ name: 'model/null', type: '3' }), /member 'model\/null' is a device/],
      [
        'a chain of links',
        tarWith({ name: 'model/a', type: '2', link: '.' }, { name: 'model/a/b', type: '2', link: '../..' }),
        /member 'model\/a\/b' is under the symbolic link 'model\/a'/,
      ],
      ['a file through a link', tarWith({ name: 'model/up', type: '2', link: '.' }, { name: 'model/up/x', data: 'x' }), /is under the symbolic link 'model\/up'/],
      [
        'a hard link to a symbolic link, then a member through it',
        tarWith({ name: 'model/d/s', type: '2', link: '..' }, { name: 'model/h', type: '1', link: 'model/d/s' }, { name: 'model/h/x', data: 'x' }),
        /member 'model\/h' is a hard link to the symbolic link 'model\/d\/s'/,
      ],
      [
        'a hard link to a hard link to a symbolic link',
        tarWith({ name: 'model/s', type: '2', link: '.' }, { name: 'model/h1', type: '1', link: './model/s/' }, { name: 'model/h2', type: '1', link: 'model/h1' }),
        /member 'model\/h1' is a hard link to the symbolic link 'model\/s'/,
      ],
      [
        'a link whose target steps back out through another link',
        tarWith({ name: 'model/d/s', type: '2', link: '..' }, { name: 'model/a', type: '2', link: 'd/s/../..' }),
        /member 'model\/a' links to 'd\/s\/..\/..', through the symbolic link 'model\/d\/s'/,
      ],
      [
        'a folder replaced by a link, then a member under it',
        tarWith({ name: 'model/sub/', type: '5' }, { name: 'model/sub', type: '2', link: '.' }, { name: 'model/sub/', type: '5' }, { name: 'model/sub/x', data: 'x' }),
        /member 'model\/sub\/x' is under the symbolic link 'model\/sub'/,
      ],
      ['data after the end', Buffer.concat([tarWith({ name: 'model/ok', data: 'x' }), memberBlocks({ name: '../evil', data: 'x' })]), /there is data after the end of the archive/],
    ];
    for (const [what, body, message] of cases) {
      const res = await request('PUT', `${jobId}/artifacts?path=model&files=1&bytes=1`, { body });
      expect(res.status, what).toBe(400);
      const answer = (await res.json()) as { error: string; code: string };
      expect(answer.code, what).toBe('DSTACK_ERR_ARCHIVE_REFUSED');
      expect(answer.error, what).toMatch(message);
    }
    expect(server.state.service.artifactsOfRun('routes-run-1')).toEqual([]);
    const stored = path.join(dataDir, 'archives/artifacts');
    expect(fs.existsSync(stored) ? fs.readdirSync(stored, { recursive: true }).filter((f) => String(f).endsWith('.tar') || String(f).endsWith('.part')) : []).toEqual([]);
    // A path the workflow does not name is not the job's to upload.
    const other = await request('PUT', `${jobId}/artifacts?path=elsewhere&files=0&bytes=0`, { body: tarWith({ name: 'elsewhere/x' }) });
    expect(other.status).toBe(400);
    expect(await other.json()).toMatchObject({ error: "'elsewhere' is not one of the workflow's artifacts" });
    // Its counts are whole numbers as written, never read as whatever Number() makes of them.
    for (const query of ['path=model&files=1e3&bytes=0', 'path=model&files=&bytes=0', 'path=model&path=x&files=0&bytes=0']) {
      const odd = await request('PUT', `${jobId}/artifacts?${query}`, { body: tarWith({ name: 'model/x' }) });
      expect(odd.status, query).toBe(400);
      expect(await odd.json(), query).toEqual({ error: 'path (once), files and bytes (whole numbers) are required: ?path=PATH&files=N&bytes=N', code: 'DSTACK_ERR_USAGE' });
    }
  });

  it("list a job's cached folders, and stream one to it", async () => {
    const { jobId, request, client, server } = await runningJob();
    const src = tempDir();
    fs.mkdirSync(path.join(src, 'data'));
    fs.writeFileSync(path.join(src, 'data/set.csv'), 'a,b\n');
    const put = await request('PUT', `${jobId}/caches?path=data&files=1&bytes=4`, { body: execFileSync('tar', ['-cf', '-', '-C', src, 'data']) });
    expect(put.status).toBe(204);
    client.status(jobId, 'done', { exitCode: 0 });
    await client.next('ack', jobId);

    const next = server.state.service;
    const again = await (async () => {
      const id = `routes-run-2-0`;
      next.submit({
        repo: 'https://example.invalid/acme/repo.git',
        workflow: 'train',
        args: '',
        runName: 'routes-run-2',
        plan: [workflow('train', { artifacts: ['model'], cache: ['data'] })],
        executor: null,
        owner: 'acme',
        source: { repoUrl: 'https://example.invalid/acme/repo.git', commit: 'a'.repeat(40), patch: null },
      });
      const offer = await client.next('offer', id);
      await client.take(id);
      return { id, token: offer.api.token };
    })();
    const list = await request('GET', `${again.id}/inputs`, { token: again.token });
    const inputs = (await list.json()) as { dependencies: unknown[]; caches: { path: string; url: string }[] };
    expect(inputs).toEqual({ dependencies: [], caches: [{ path: 'data', url: `/api/jobs/${again.id}/inputs/caches/0` }] });
    const archive = await request('GET', `${again.id}/inputs/caches/0`, { token: again.token });
    expect(archive.headers.get('content-type')).toBe('application/x-tar');
    const dest = tempDir();
    fs.writeFileSync(path.join(dest, 'in.tar'), Buffer.from(await archive.arrayBuffer()));
    execFileSync('tar', ['-xf', 'in.tar'], { cwd: dest });
    expect(fs.readFileSync(path.join(dest, 'data/set.csv'), 'utf8')).toBe('a,b\n');
    expect((await request('GET', `${again.id}/inputs/caches/1`, { token: again.token })).status).toBe(404);
    expect((await request('GET', `${again.id}/patch`, { token: again.token })).status).toBe(404);
  });
});
