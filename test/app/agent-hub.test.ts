import net, { type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createServer, type DstackServer } from '../../app/server/server.js';
import { WebSocket } from 'ws';
import { decodeLogFrame, encodeLogFrame } from '../../shared/log-frame.js';
import { ACK_DELAY_MS, ACK_EVERY_CHUNKS, agentFrame, CLOSE, LOG_WINDOW_CHUNKS, MAX_MESSAGE_BYTES, PROTOCOL_VERSION } from '../../shared/protocol.js';
import type { ResolvedWorkflow } from '../../shared/workflow/types.js';
import { tempDir, waitFor } from '../helpers/cli.js';
import { ProtocolClient } from '../helpers/protocol-client.js';
import { workflow } from '../helpers/service.js';

const servers: DstackServer[] = [];
const clients: ProtocolClient[] = [];

interface Setup {
  server: DstackServer;
  url: string;
  logs: string[];
  agentToken(owner?: string): string;
  submit(plan?: ResolvedWorkflow[], owner?: string): string;
  job(id: string): ReturnType<DstackServer['state']['service']['job']> & object;
  agent(options?: Parameters<typeof ProtocolClient.connect>[2] & { owner?: string; token?: string }): Promise<ProtocolClient>;
  /** Submits a one-job run and has `agent` take it; its job's id. */
  started(agent: ProtocolClient): Promise<string>;
}

let runs = 0;

async function setup(options: { dataDir?: string; lostAfterMs?: number; acceptWithinMs?: number } = {}): Promise<Setup> {
  const logs: string[] = [];
  const server = createServer({
    dataDir: options.dataDir ?? tempDir(),
    agentLostAfterMs: options.lostAfterMs ?? 60_000,
    acceptWithinMs: options.acceptWithinMs ?? 5000,
    log: (line) => logs.push(line),
  });
  servers.push(server);
  const address: AddressInfo = await server.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${address.port}`;
  const tokens = new Map<string, string>();
  const agentToken = (owner = 'acme') => {
    if (!tokens.has(owner)) tokens.set(owner, server.tokens.create(owner, 'agent').token);
    return tokens.get(owner)!;
  };
  const setup: Setup = {
    server,
    url,
    logs,
    agentToken,
    submit(plan = [workflow('train')], owner = 'acme') {
      const runName = `hub-run-${++runs}`;
      server.state.service.submit({
        repo: 'https://example.invalid/acme/repo.git',
        workflow: plan.at(-1)!.name,
        args: '',
        runName,
        plan,
        executor: null,
        owner,
        source: { repoUrl: 'https://example.invalid/acme/repo.git', commit: 'a'.repeat(40), patch: null },
      });
      return runName;
    },
    job: (id) => server.state.service.job(id)!,
    async agent(o = {}) {
      const client = await ProtocolClient.connect(url, o.token ?? agentToken(o.owner), o);
      clients.push(client);
      return client;
    },
    async started(agent) {
      const jobId = `${setup.submit()}-0`;
      await agent.next('offer', jobId);
      await agent.take(jobId);
      return jobId;
    },
  };
  return setup;
}

/** Closes what a test opened (servers last, so their sockets close first). */
async function cleanup(): Promise<void> {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close().catch(() => {});
}

describe('the agent hub', () => {
  it('refuses the socket without a valid agent token: none, wrong, a user token, a revoked one', async () => {
    const { url, server, agentToken } = await setup();
    try {
      const user = server.tokens.create('acme', 'user').token;
      const revoked = server.tokens.create('acme', 'agent');
      server.tokens.revoke(revoked.id);
      for (const token of ['', 'dstack_wrong', user, revoked.token]) {
        expect(await ProtocolClient.open(url, token)).toEqual({ status: 401 });
      }
      expect(await ProtocolClient.open(url, agentToken())).toBeInstanceOf(ProtocolClient);
    } finally {
      await cleanup();
    }
  });

  it('answers a malformed upgrade request with 400 and goes on serving', async () => {
    const { url, server } = await setup();
    try {
      const user = server.tokens.create('acme', 'user').token;
      const { port } = new URL(url);
      const raw = (request: string) =>
        new Promise<string>((resolve) => {
          const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(request));
          let answer = '';
          socket.on('data', (d) => (answer += d.toString()));
          socket.on('close', () => resolve(answer));
          socket.on('error', () => resolve(answer));
        });
      const upgrade = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nHost: x';
      expect(await raw(`GET http://[ HTTP/1.1\r\n${upgrade}\r\n\r\n`)).toMatch(/^HTTP\/1.1 400 /);
      expect(await raw(`GET /api/runs/%E0/logs HTTP/1.1\r\n${upgrade}\r\nAuthorization: Bearer ${user}\r\n\r\n`)).toMatch(/^HTTP\/1.1 400 /);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
    } finally {
      await cleanup();
    }
  });

  it('cuts off a connected agent whose token is revoked, and gives up its jobs', async () => {
    const s = await setup();
    try {
      const { id, token } = s.server.tokens.create('acme', 'agent');
      const box = await s.agent({ name: 'box', token });
      const jobId = await s.started(box);
      box.status(jobId, 'running');
      await waitFor(() => s.job(jobId).status === 'running', 5000, 'the job to run');
      s.server.tokens.revoke(id);
      expect(await box.waitClosed(10_000)).toEqual({ code: CLOSE.policy, reason: `refused: the agent token ${id} was revoked` });
      await waitFor(() => s.job(jobId).status === 'aborted', 5000, 'the job to be given up');
      expect(s.job(jobId).reason).toBe(`agent box's token ${id} was revoked`);
      expect(await ProtocolClient.open(s.url, token)).toEqual({ status: 401 });
    } finally {
      await cleanup();
    }
  });

  it('refuses a second agent process with a name that is connected already, and takes a reconnect of the same one', async () => {
    const s = await setup();
    try {
      const first = await s.agent({ name: 'gpu-box', instance: 'process-1' });
      const jobId = `${s.submit()}-0`;
      await first.next('offer', jobId);
      await first.take(jobId);
      first.status(jobId, 'running');
      const twin = await ProtocolClient.open(s.url, s.agentToken());
      if (!(twin instanceof ProtocolClient)) throw new Error('refused');
      clients.push(twin);
      twin.send({ type: 'hello', protocol: PROTOCOL_VERSION, agent: { name: 'gpu-box', instance: 'process-2', version: 't', labels: [], resources: { cpus: 1, memoryMiB: 1, gpus: [] } }, running: [] });
      expect(await twin.waitClosed()).toEqual({ code: CLOSE.policy, reason: 'an agent named gpu-box is connected already (another process); give this one its own --name' });
      await waitFor(() => s.job(jobId).status === 'running', 5000, 'the job to run');
      // The same process on a new connection takes its place, and keeps its job.
      const again = await s.agent({ name: 'gpu-box', instance: 'process-1', running: [{ jobId, acked: 0 }] });
      expect(await again.next('ack', jobId)).toMatchObject({ seq: 0 });
      expect(s.job(jobId).status).toBe('running');
    } finally {
      await cleanup();
    }
  });

  it("offers a job only to its owner's agents, runs it once accepted, stores its log and acks its end", async () => {
    const s = await setup();
    try {
      const other = await s.agent({ owner: 'globex', name: 'other' });
      const box = await s.agent({ name: 'box' });
      const run = s.submit();
      const jobId = `${run}-0`;
      const offer = await box.next('offer', jobId);
      expect(offer).toMatchObject({ runName: run, gpus: [], firstLogSeq: 1, source: { commit: 'a'.repeat(40), patch: false } });
      expect(offer.api.url).toBe(s.url);
      await box.take(jobId);
      box.status(jobId, 'running');
      box.log(jobId, 1, 'hello\n');
      expect(await box.next('ack', jobId)).toMatchObject({ seq: 1 });
      box.log(jobId, 2, 'world\n');
      expect(await box.next('ack', jobId)).toMatchObject({ seq: 2 });
      box.status(jobId, 'done', { exitCode: 0 });
      expect(await box.next('ack', jobId)).toEqual({ type: 'ack', jobId, seq: 2, final: true });
      expect(s.job(jobId)).toMatchObject({ status: 'done', exit_code: 0, agent: 'acme/box' });
      expect(s.server.state.service.readLog(jobId, 0).toString()).toBe('hello\nworld\n');
      expect(other.received.filter((m) => m.type === 'offer')).toEqual([]);
      const metrics = await (await fetch(`${s.url}/metrics`)).text();
      expect(metrics).toContain('dstack_agents_connected 2');
      expect(metrics).toContain('dstack_dispatch_latency_seconds_count 1');
      expect(metrics).toMatch(/dstack_jobs\{status="done"\} 1/);
      expect(metrics).toContain('dstack_log_bytes_total 12');
    } finally {
      await cleanup();
    }
  });

  it('takes back an offer not accepted in time, offers it elsewhere when declined, and refuses a late accept', async () => {
    const s = await setup({ acceptWithinMs: 300 });
    try {
      const slow = await s.agent({ name: 'slow' });
      const run = s.submit();
      const jobId = `${run}-0`;
      await slow.next('offer', jobId);
      expect(await slow.next('cancel', jobId)).toMatchObject({ reason: 'not accepted within 300 ms' });
      await slow.next('offer', jobId);
      const fast = await s.agent({ name: 'fast' });
      slow.send({ type: 'reject', jobId, reason: 'busy' });
      expect(await slow.next('cancel', jobId)).toMatchObject({ reason: 'declined: busy' });
      await fast.next('offer', jobId);
      await fast.take(jobId);
      slow.send({ type: 'accept', jobId });
      expect(await slow.next('cancel', jobId)).toMatchObject({ reason: 'the offer was withdrawn' });
      expect(slow.received.some((m) => m.type === 'start')).toBe(false);
      expect(s.job(jobId).agent).toBe('acme/fast');
      const reasons = s.server.state.service.jobEvents(jobId).map((e) => e.reason);
      expect(reasons).toContain('waiting: agent slow did not take it (not accepted within 300 ms)');
    } finally {
      await cleanup();
    }
  });

  it('closes the socket of an agent that breaks the protocol with 1008 and a reason, and serves the others', async () => {
    const s = await setup();
    try {
      const cases: [string, (c: ProtocolClient) => void, RegExp][] = [
        ['not JSON', (c) => c.sendRaw('{nope'), /not JSON/],
        ['an unknown type', (c) => c.send({ type: 'launch', jobId: 'x' }), /invalid 'launch' message/],
        ['a binary frame that is no log frame', (c) => c.sendRaw(Buffer.from([1, 2, 3])), /^binary frame of 3 bytes is too short for a log frame$/],
        ['a log chunk as JSON', (c) => c.send({ type: 'log', jobId: 'x', seq: 1, data: 'aGk=' }), /invalid 'log' message/],
        ['a log frame whose job id is not ASCII', (c) => c.sendRaw(encodeLogFrame({ jobId: '€'.repeat(60), at: 0, data: Buffer.from('x') })), /not printable ASCII/],
        ['a message whose reason would be long in bytes', (c) => c.send({ type: '€'.repeat(40), jobId: '€'.repeat(60) }), /^invalid '€+/],
        ['an oversized message', (c) => c.sendRaw('x'.repeat(MAX_MESSAGE_BYTES + 10)), /.*/],
      ];
      for (const [what, send, reason] of cases) {
        const bad = await s.agent({ name: 'bad' });
        send(bad);
        const closed = await bad.waitClosed();
        expect(closed.code, what).toBe(CLOSE.policy);
        expect(closed.reason, what).toMatch(reason);
      }
      const first = await ProtocolClient.open(s.url, s.agentToken());
      if (!(first instanceof ProtocolClient)) throw new Error('refused');
      clients.push(first);
      first.send({ type: 'accept', jobId: 'x' });
      expect(await first.waitClosed()).toEqual({ code: CLOSE.policy, reason: 'the first message must be hello, not accept' });

      const future = await ProtocolClient.open(s.url, s.agentToken());
      if (!(future instanceof ProtocolClient)) throw new Error('refused');
      clients.push(future);
      future.send({ type: 'hello', protocol: PROTOCOL_VERSION + 1, agent: { name: 'new', version: '9', labels: [], resources: { cpus: 1, memoryMiB: 1, gpus: [] } }, running: [] });
      expect(await future.waitClosed()).toEqual({ code: CLOSE.policy, reason: `protocol ${PROTOCOL_VERSION + 1} is not ${PROTOCOL_VERSION}: upgrade the server (dstack-app)` });

      // A message about a job that is not this agent's.
      const good = await s.agent({ name: 'good' });
      const run = s.submit();
      const jobId = `${run}-0`;
      await good.next('offer', jobId);
      await good.take(jobId);
      const intruder = await s.agent({ name: 'intruder' });
      intruder.status(jobId, 'failed', { exitCode: 1 });
      expect(await intruder.waitClosed()).toMatchObject({ code: CLOSE.policy, reason: `message about job ${jobId}, which is not this agent's` });
      expect(s.job(jobId).status).not.toBe('failed');
      good.status(jobId, 'done', { exitCode: 0 });
      await good.next('ack', jobId);
      expect(s.job(jobId).status).toBe('done');
      expect(s.logs.some((l) => l.includes('which is not this agent'))).toBe(true);
    } finally {
      await cleanup();
    }
  });

  it('closes the socket of an agent that answers an offer it was never made, and takes a late answer to one it was', async () => {
    const s = await setup({ acceptWithinMs: 300 });
    try {
      const fake = await s.agent({ name: 'fake' });
      for (let i = 0; i < 100_000; i++) fake.send({ type: 'reject', jobId: `nope-${i}-0`, reason: 'busy' });
      expect(await fake.waitClosed(5000)).toEqual({ code: CLOSE.policy, reason: 'reject of job nope-0-0, which was never offered to this agent' });
      expect(s.logs).toContain('agent socket of acme/fake closed: reject of job nope-0-0, which was never offered to this agent');

      const other = await s.agent({ name: 'other' });
      other.send({ type: 'accept', jobId: 'nope-1-0' });
      expect(await other.waitClosed(5000)).toEqual({ code: CLOSE.policy, reason: 'accept of job nope-1-0, which was never offered to this agent' });

      // An offer taken back in time is a race, not abuse: its late answers are taken quietly.
      const slow = await s.agent({ name: 'slow' });
      const jobId = `${s.submit()}-0`;
      await slow.next('offer', jobId);
      await slow.next('cancel', jobId);
      await slow.next('offer', jobId);
      slow.send({ type: 'reject', jobId, reason: 'busy' });
      await slow.next('cancel', jobId);
      slow.send({ type: 'reject', jobId, reason: 'busy' });
      slow.send({ type: 'accept', jobId });
      expect(await slow.next('cancel', jobId)).toMatchObject({ reason: 'the offer was withdrawn' });
      expect(slow.closed).toBeUndefined();
    } finally {
      await cleanup();
    }
  });

  it('keeps an agent streaming a log as fast as its window allows, and closes its socket with 1008 once it floods', async () => {
    const s = await setup();
    try {
      const box = await s.agent({ name: 'box' });
      const streamed = await s.started(box);
      // Full chunks, a window at a time, each window sent once the last was acked: as fast as an agent may.
      const chunk = 'x'.repeat(64 * 1024 - 1) + '\n';
      let seq = 0;
      while (seq < 8 * LOG_WINDOW_CHUNKS) {
        for (let i = 0; i < LOG_WINDOW_CHUNKS; i++) box.log(streamed, ++seq, chunk);
        await box.acked(streamed, seq);
      }
      expect(box.closed).toBeUndefined();
      expect(s.server.state.service.lastLogSeq(streamed)).toBe(8 * LOG_WINDOW_CHUNKS);

      // The same agent, sending what would each be harmless, but 100,000 of them at once.
      for (let i = 0; i < 100_000; i++) box.status(streamed, 'running');
      expect(await box.waitClosed(5000)).toEqual({ code: CLOSE.policy, reason: 'rate limit: more than 1000 messages a second' });
      expect(s.logs).toContain('agent socket of acme/box closed: rate limit: more than 1000 messages a second');
    } finally {
      await cleanup();
    }
  });

  it('acks a stream of chunks once per quarter of the window, and a lone chunk within moments', async () => {
    const s = await setup();
    try {
      const box = await s.agent();
      const jobId = await s.started(box);
      const started = Date.now();
      box.log(jobId, 1, 'lone\n');
      await box.acked(jobId, 1);
      expect(Date.now() - started).toBeLessThan(2000);
      // A window's worth, one chunk every 2 ms (each in a socket read of its own, as a job's output
      // comes): an ack per ACK_EVERY_CHUNKS or per ACK_DELAY_MS, not one per chunk.
      const last = 1 + LOG_WINDOW_CHUNKS;
      const sending = (async () => {
        for (let seq = 2; seq <= last; seq++) {
          box.log(jobId, seq, `line ${seq}\n`);
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      const seqs = await box.acksUntil(jobId, last);
      await sending;
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(seqs.length).toBeGreaterThanOrEqual(LOG_WINDOW_CHUNKS / ACK_EVERY_CHUNKS);
      expect(seqs.length).toBeLessThanOrEqual(Math.ceil((LOG_WINDOW_CHUNKS * 2) / ACK_DELAY_MS) + LOG_WINDOW_CHUNKS / ACK_EVERY_CHUNKS);
      expect(s.server.state.service.lastLogSeq(jobId)).toBe(1 + LOG_WINDOW_CHUNKS);
    } finally {
      await cleanup();
    }
  });

  it('drops a log chunk sent again, and aborts a job whose log has a gap no resend can fill, the others going on', async () => {
    const s = await setup();
    try {
      const box = await s.agent();
      const jobId = await s.started(box);
      const other = await s.started(box);
      box.log(jobId, 1, 'one\n');
      box.log(jobId, 1, 'one\n');
      box.log(jobId, 2, 'two\n');
      // Acks of chunks that came together are one ack, of the highest seq stored.
      const acks = await box.acksUntil(jobId, 2);
      expect([...acks].sort((a, b) => a - b)).toEqual(acks);
      box.log(jobId, 4, 'four\n');
      expect(await box.next('stop', jobId)).toMatchObject({ mode: 'abort' });
      expect(s.job(jobId)).toMatchObject({ status: 'aborted', reason: 'its log lost chunk 3: the server does not have them and agent box no longer does (it sent chunk 4), so the log cannot be whole' });
      // What else comes of that job is acknowledged and dropped; its end is taken as it was.
      box.log(jobId, 5, 'five\n');
      await box.acked(jobId, 5);
      box.status(jobId, 'aborted', { reason: 'aborted by the user' });
      expect(await box.next('ack', jobId)).toMatchObject({ final: true });
      expect(s.job(jobId).reason).toMatch(/^its log lost chunk 3:/);
      expect(s.server.state.service.readLog(jobId, 0).toString()).toBe('one\ntwo\n');
      // The socket stays open and the other job goes on.
      box.log(other, 1, 'fine\n');
      expect((await box.next('ack', other)).seq).toBe(1);
      expect(box.closed).toBeUndefined();
      expect(s.server.state.service.readLog(other, 0).toString()).toBe('fine\n');
    } finally {
      await cleanup();
    }
  });

  it("serves a run's log to followers as binary frames when asked, else as JSON with base64, the same bytes either way", async () => {
    const s = await setup();
    try {
      const box = await s.agent();
      const run = s.submit();
      const jobId = `${run}-0`;
      await box.next('offer', jobId);
      await box.take(jobId);
      const bytes = Buffer.from([0x1b, 0x5b, 0x32, 0x6d, 0xff, 0x00, 0x0a]);
      box.log(jobId, 1, 'first\n');
      box.ws.send(agentFrame({ type: 'log', jobId, seq: 2, data: bytes }));
      await box.acked(jobId, 2);
      box.status(jobId, 'done', { exitCode: 0 });
      await box.next('ack', jobId);
      const user = s.server.tokens.create('acme', 'user').token;
      const follow = (query: string) =>
        new Promise<{ log: Buffer; binary: number; json: number }>((resolve, reject) => {
          const ws = new WebSocket(`${s.url.replace(/^http/, 'ws')}/api/runs/${run}/logs?follow=0${query}`, { headers: { authorization: `Bearer ${user}` } });
          const parts: Buffer[] = [];
          let binary = 0;
          let json = 0;
          ws.on('message', (data: Buffer, isBinary) => {
            if (isBinary) {
              binary++;
              const frame = decodeLogFrame(data);
              if ('error' in frame) throw new Error(frame.error);
              expect(frame.jobId).toBe(jobId);
              expect(frame.at).toBe(Buffer.concat(parts).length);
              parts.push(Buffer.from(frame.data));
              return;
            }
            const m = JSON.parse(data.toString()) as { type: string; data?: string };
            if (m.type !== 'log') return;
            json++;
            parts.push(Buffer.from(m.data!, 'base64'));
          });
          ws.on('close', () => resolve({ log: Buffer.concat(parts), binary, json }));
          ws.on('error', reject);
        });
      const expected = Buffer.concat([Buffer.from('first\n'), bytes]);
      const asBinary = await follow('&frames=binary');
      expect(asBinary.log.equals(expected)).toBe(true);
      expect([asBinary.binary > 0, asBinary.json]).toEqual([true, 0]);
      const asJson = await follow('');
      expect(asJson.log.equals(expected)).toBe(true);
      expect([asJson.binary, asJson.json > 0]).toEqual([0, true]);
    } finally {
      await cleanup();
    }
  });

  it('sends a live follower the chunks that arrive together as one frame, in order, with the end of the job after its log', async () => {
    const s = await setup();
    try {
      const box = await s.agent();
      const jobId = await s.started(box);
      box.status(jobId, 'running');
      const user = s.server.tokens.create('acme', 'user').token;
      const ws = new WebSocket(`${s.url.replace(/^http/, 'ws')}/api/runs/${jobId.replace(/-0$/, '')}/logs?follow=1&frames=binary`, { headers: { authorization: `Bearer ${user}` } });
      const seen: string[] = [];
      let log = '';
      let frames = 0;
      ws.on('message', (data: Buffer, isBinary) => {
        if (isBinary) {
          const frame = decodeLogFrame(data);
          if ('error' in frame) throw new Error(frame.error);
          expect(frame.at).toBe(Buffer.byteLength(log));
          log += frame.data.toString();
          frames++;
          return;
        }
        const m = JSON.parse(data.toString()) as { type: string; job?: { status: string } };
        seen.push(m.type === 'job' ? `job ${m.job!.status} after ${log.length} bytes` : m.type);
      });
      const closed = new Promise((resolve) => ws.on('close', resolve));
      await waitFor(() => seen.includes('run'), 5000, 'the follower to attach');
      // Eight chunks and the job's end in one burst, as an agent sends a fast job's output.
      const lines = Array.from({ length: 8 }, (_, i) => `line ${i}\n`);
      lines.forEach((line, i) => box.log(jobId, i + 1, line));
      box.status(jobId, 'done', { exitCode: 0 });
      await closed;
      expect(log).toBe(lines.join(''));
      expect(frames).toBeLessThan(lines.length);
      expect(seen).toEqual(['run', `job done after ${log.length} bytes`, 'end']);
    } finally {
      await cleanup();
    }
  });

  it('aborts the running job of an agent silent past the liveness window, and runs an interruptible one again elsewhere', async () => {
    const s = await setup({ lostAfterMs: 600 });
    try {
      const box = await s.agent({ name: 'box' });
      const plain = `${s.submit([workflow('plain')])}-0`;
      const spot = `${s.submit([workflow('spot', { resources: { gpu: { count: 0 }, interruptible: true } })])}-0`;
      for (const id of [plain, spot]) {
        await box.next('offer', id);
        await box.take(id);
        box.status(id, 'running');
      }
      await waitFor(() => s.job(spot).status === 'running', 5000, 'the jobs to run');
      box.close();
      await waitFor(() => s.job(plain).status === 'aborted', 10_000, 'the job to be aborted');
      expect(s.job(plain).reason).toMatch(/^agent box was lost \(silent for \d+ s\)$/);
      await waitFor(() => s.job(spot).status === 'submitted', 10_000, 'the interruptible job to wait again');
      expect(s.job(spot).reason).toMatch(/interruptible, so it waits to run again|waiting/);
      const spare = await s.agent({ name: 'spare' });
      await spare.next('offer', spot);
    } finally {
      await cleanup();
    }
  });

  it('lets an agent that reconnects in time go on with its job: the log resumes after the last ack', async () => {
    const s = await setup({ lostAfterMs: 5000 });
    try {
      const box = await s.agent({ name: 'box' });
      const jobId = await s.started(box);
      box.status(jobId, 'running');
      box.log(jobId, 1, 'before\n');
      await box.next('ack', jobId);
      box.close();
      const again = await s.agent({ name: 'box', running: [{ jobId, acked: 1 }] });
      expect(again.received.find((m) => m.type === 'welcome')).toBeUndefined(); // taken by connect()
      expect(await again.next('ack', jobId)).toMatchObject({ seq: 1 });
      again.log(jobId, 2, 'after\n');
      again.status(jobId, 'done', { exitCode: 0 });
      expect(await again.next('ack', jobId)).toMatchObject({ seq: 2 });
      expect(await again.next('ack', jobId)).toMatchObject({ final: true });
      expect(s.server.state.service.readLog(jobId, 0).toString()).toBe('before\nafter\n');
      expect(s.job(jobId).status).toBe('done');
    } finally {
      await cleanup();
    }
  });

  it('queues a job again when its start was lost with the connection, and aborts one that had begun', async () => {
    const s = await setup({ lostAfterMs: 5000 });
    try {
      const box = await s.agent({ name: 'box' });
      const unstarted = `${s.submit([workflow('unstarted')])}-0`;
      const begun = `${s.submit([workflow('begun')])}-0`;
      for (const id of [unstarted, begun]) {
        await box.next('offer', id);
        await box.take(id);
      }
      box.status(begun, 'downloading');
      await waitFor(() => s.job(begun).status === 'downloading', 5000, 'the job to begin');
      box.close();
      // The agent comes back holding neither: it never saw the first start, and lost the second job.
      const again = await s.agent({ name: 'box' });
      await waitFor(() => s.job(begun).status === 'aborted', 5000, 'the begun job to be aborted');
      expect(s.job(begun).reason).toBe('agent box restarted and no longer runs it');
      expect(await again.next('offer', unstarted)).toMatchObject({ jobId: unstarted });
      expect(s.server.state.service.jobEvents(unstarted).map((e) => e.reason)).toContain('waiting: the start did not reach agent box before its connection dropped');
    } finally {
      await cleanup();
    }
  });

  it('after a restart, takes running jobs back from agents that return and aborts those of agents that do not', async () => {
    const dataDir = tempDir();
    const first = await setup({ dataDir });
    const back = await first.agent({ name: 'back', labels: ['back'] });
    const gone = await first.agent({ name: 'gone', labels: ['gone'] });
    const on = (label: string) => ({ resources: { gpu: { count: 0 }, interruptible: false, labels: [label] } });
    const kept = `${first.submit([workflow('kept', on('back'))])}-0`;
    await back.next('offer', kept);
    await back.take(kept);
    back.status(kept, 'running');
    const lost = `${first.submit([workflow('lost', on('gone'))])}-0`;
    await gone.next('offer', lost);
    await gone.take(lost);
    gone.status(lost, 'running');
    await waitFor(() => first.job(lost).status === 'running', 5000, 'both jobs to run');
    await cleanup();

    const second = await setup({ dataDir, lostAfterMs: 800 });
    try {
      const token = second.server.tokens.create('acme', 'agent').token;
      const returned = await second.agent({ name: 'back', labels: ['back'], token, running: [{ jobId: kept, acked: 0 }] });
      expect(await returned.next('ack', kept)).toMatchObject({ seq: 0 });
      await waitFor(() => second.job(lost).status === 'aborted', 10_000, 'the lost job to be aborted');
      expect(second.job(lost).reason).toBe('agent acme/gone did not come back after the server restarted');
      returned.log(kept, 1, 'still here\n');
      returned.status(kept, 'done', { exitCode: 0 });
      await returned.next('ack', kept);
      expect(await returned.next('ack', kept)).toMatchObject({ final: true });
      expect(second.job(kept).status).toBe('done');
    } finally {
      await cleanup();
    }
  });
});
