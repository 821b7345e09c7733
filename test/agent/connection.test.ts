import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { AgentConnection, agentSocketUrl, type ConnectionState } from '../../agent/connection.js';
import { PROTOCOL_VERSION, type AppMessage } from '../../shared/protocol.js';
import { waitFor } from '../helpers/cli.js';

/** A server end of the protocol on loopback: it records what agents send and who connected. */
function server(port = 0, check: (req: http.IncomingMessage) => number = () => 0) {
  const httpServer = http.createServer();
  const wss = new WebSocketServer({ noServer: true });
  const received: { socket: WebSocket; message: Record<string, unknown> }[] = [];
  const sockets: WebSocket[] = [];
  httpServer.on('upgrade', (req, socket, head) => {
    const status = check(req);
    if (status) {
      socket.end(`HTTP/1.1 ${status} Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.push(ws);
      ws.on('message', (d) => received.push({ socket: ws, message: JSON.parse(d.toString()) }));
    });
  });
  const listening = new Promise<number>((resolve) => httpServer.listen(port, '127.0.0.1', () => resolve((httpServer.address() as AddressInfo).port)));
  return {
    listening,
    received,
    sockets,
    async close() {
      for (const s of sockets) s.terminate();
      wss.close();
      await new Promise((r) => httpServer.close(r));
    },
  };
}

const hello = () => ({
  type: 'hello' as const,
  protocol: PROTOCOL_VERSION,
  agent: { name: 'box', version: '0.1.0', labels: [], resources: { cpus: 2, memoryMiB: 1024, gpus: [] } },
  running: [],
});

const cleanup: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

function connect(port: number, extra: { token?: string; heartbeatMs?: number; onMessage?: (m: AppMessage) => void; backoff?: { initialMs: number; maxMs: number }; urgent?: () => boolean } = {}) {
  const states: ConnectionState[] = [];
  const conn = new AgentConnection({
    url: `http://127.0.0.1:${port}`,
    token: extra.token ?? 'dstack_secret',
    hello,
    onMessage: extra.onMessage ?? (() => {}),
    onState: (s) => states.push(s),
    heartbeatMs: extra.heartbeatMs,
    backoff: extra.backoff ?? { initialMs: 20, maxMs: 100 },
    urgent: extra.urgent,
  });
  conn.start();
  cleanup.push(() => conn.close());
  return { conn, states };
}

describe('AgentConnection', () => {
  it('maps http and https server URLs to the agent socket', () => {
    expect(agentSocketUrl('http://127.0.0.1:3000')).toBe('ws://127.0.0.1:3000/api/agents/ws');
    expect(agentSocketUrl('https://dstack.example.com/base/')).toBe('wss://dstack.example.com/base/api/agents/ws');
    expect(() => agentSocketUrl('ftp://x')).toThrow("the server URL must start with http:// or https://, got 'ftp://x'");
  });

  it('sends hello with the token in the upgrade request, and passes on valid messages', async () => {
    let auth: string | undefined;
    const s = server(0, (req) => ((auth = req.headers.authorization), 0));
    const port = await s.listening;
    cleanup.push(() => s.close());
    const got: AppMessage[] = [];
    connect(port, { onMessage: (m) => got.push(m) });
    await waitFor(() => s.received.length === 1, 5000, 'hello');
    expect(auth).toBe('Bearer dstack_secret');
    expect(s.received[0]!.message).toEqual(hello());
    s.sockets[0]!.send(JSON.stringify({ type: 'ack', jobId: 'j', seq: 3 }));
    await waitFor(() => got.length === 1, 5000, 'the ack');
    expect(got).toEqual([{ type: 'ack', jobId: 'j', seq: 3 }]);
  });

  it('closes with 1008 and the reason on a malformed message, then reconnects', async () => {
    const s = server();
    const port = await s.listening;
    cleanup.push(() => s.close());
    connect(port);
    await waitFor(() => s.sockets.length === 1, 5000, 'a connection');
    const closed = new Promise<[number, string]>((resolve) => s.sockets[0]!.on('close', (code, reason) => resolve([code, reason.toString()])));
    s.sockets[0]!.send(JSON.stringify({ type: 'offer', jobId: 'j' }));
    const [code, reason] = await closed;
    expect(code).toBe(1008);
    expect(reason).toMatch(/^invalid 'offer' message at '\w+'/);
    await waitFor(() => s.received.filter((r) => r.message.type === 'hello').length === 2, 5000, 'a second hello');
  });

  it('reconnects with backoff after the server goes away, and says hello again', async () => {
    const first = server();
    const port = await first.listening;
    const { states } = connect(port);
    await waitFor(() => first.received.length === 1, 5000, 'hello');
    await first.close();
    await waitFor(() => states.some((s) => s.state === 'disconnected'), 5000, 'the disconnect');
    const second = server(port);
    await second.listening;
    cleanup.push(() => second.close());
    await waitFor(() => second.received.length === 1, 5000, 'hello to the new server');
    const delays = states.flatMap((s) => (s.state === 'disconnected' ? [s.retryInMs] : []));
    for (const d of delays) expect(d).toBeLessThanOrEqual(100);
  });

  it('comes back within 5 s while it holds running jobs, however long its backoff would be', async () => {
    const backoff = { initialMs: 40_000, maxMs: 60_000 };
    const s = server();
    const port = await s.listening;
    const idle = connect(port, { backoff, urgent: () => false });
    await waitFor(() => s.received.length === 1, 5000, 'hello');
    s.sockets[0]!.terminate();
    const first = (await waitFor(() => idle.states.find((st) => st.state === 'disconnected'), 5000, 'the disconnect')) as { retryInMs: number };
    expect(first.retryInMs).toBeGreaterThanOrEqual(20_000);
    await idle.conn.close();
    await s.close();
    // With jobs: every retry within 5 s, while the server stays away and when it is back.
    const busy = connect(port, { backoff, urgent: () => true });
    await waitFor(() => busy.states.filter((st) => st.state === 'disconnected').length >= 2, 15_000, 'two failed attempts');
    const back = server(port);
    await back.listening;
    cleanup.push(() => back.close());
    await waitFor(() => back.received.length === 1, 8000, 'hello once the server is back');
    const delays = busy.states.flatMap((st) => (st.state === 'disconnected' ? [st.retryInMs] : []));
    for (const d of delays) expect(d).toBeLessThanOrEqual(5000);
  });

  it('notices a server that stops answering pings, and reconnects', async () => {
    const s = server();
    const port = await s.listening;
    cleanup.push(() => s.close());
    const { states } = connect(port, { heartbeatMs: 50 });
    await waitFor(() => s.sockets.length === 1, 5000, 'a connection');
    // The server process hangs: it reads nothing more, so no pong comes back.
    (s.sockets[0] as unknown as { _socket: { pause(): void } })._socket.pause();
    await waitFor(() => s.sockets.length === 2, 5000, 'a new connection');
    expect(states.filter((x) => x.state === 'connected')).toHaveLength(2);
  });

  it('stops for good when the server refuses the token', async () => {
    const s = server(0, () => 401);
    const port = await s.listening;
    cleanup.push(() => s.close());
    const { states } = connect(port, { token: 'wrong' });
    await waitFor(() => states.some((x) => x.state === 'refused'), 5000, 'the refusal');
    expect(states.at(-1)).toEqual({
      state: 'refused',
      reason: "the server refused the token (HTTP 401); check it, or create a new one with 'dstack-app token create --agent'",
    });
  });

  it('stops for good when the server speaks another protocol version', async () => {
    const s = server();
    const port = await s.listening;
    cleanup.push(() => s.close());
    const { states } = connect(port);
    await waitFor(() => s.sockets.length === 1, 5000, 'a connection');
    s.sockets[0]!.close(1008, 'protocol 1 is not 2: upgrade the agent (dstack-agent)');
    await waitFor(() => states.some((x) => x.state === 'refused'), 5000, 'the refusal');
    expect(states.at(-1)).toEqual({ state: 'refused', reason: 'protocol 1 is not 2: upgrade the agent (dstack-agent)' });
  });
});
