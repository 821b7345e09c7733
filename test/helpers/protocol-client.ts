import { WebSocket } from 'ws';
import { AGENT_SOCKET_PATH } from '../../agent/connection.js';
import { agentFrame, PROTOCOL_VERSION, type AgentMessage, type AppMessage } from '../../shared/protocol.js';
import type { MachineResources } from '../../shared/resources.js';
import { waitFor } from './cli.js';

export interface FakeAgentOptions {
  name?: string;
  labels?: string[];
  resources?: MachineResources;
  running?: { jobId: string; acked: number }[];
  protocol?: number;
  instance?: string;
}

/**
 * A runner agent at the protocol level, for the hub's tests and the benches: a real WebSocket
 * that records what the server sends and sends what the test says, and nothing on its own.
 */
export class ProtocolClient {
  readonly received: AppMessage[] = [];
  closed: { code: number; reason: string } | undefined;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.received.push(JSON.parse(data.toString()) as AppMessage));
    ws.on('close', (code, reason) => (this.closed = { code, reason: reason.toString() }));
    ws.on('error', () => {});
  }

  /** Connects; resolves once the socket is open, or with the HTTP status the upgrade was refused with. */
  static open(baseUrl: string, token: string): Promise<ProtocolClient | { status: number }> {
    const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}${AGENT_SOCKET_PATH}`, { headers: { authorization: `Bearer ${token}` } });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new ProtocolClient(ws)));
      ws.once('unexpected-response', (_req, res) => {
        resolve({ status: res.statusCode ?? 0 });
        res.resume();
        ws.terminate();
      });
      ws.once('error', reject);
    });
  }

  /** Connects and says hello; resolves once welcomed. */
  static async connect(baseUrl: string, token: string, options: FakeAgentOptions = {}): Promise<ProtocolClient> {
    const client = await ProtocolClient.open(baseUrl, token);
    if (!(client instanceof ProtocolClient)) throw new Error(`the upgrade was refused with HTTP ${client.status}`);
    client.send({
      type: 'hello',
      protocol: options.protocol ?? PROTOCOL_VERSION,
      agent: {
        name: options.name ?? 'box',
        ...(options.instance ? { instance: options.instance } : {}),
        version: 'test',
        labels: options.labels ?? [],
        resources: options.resources ?? { cpus: 4, memoryMiB: 8192, gpus: [] },
      },
      running: options.running ?? [],
    });
    await client.next('welcome');
    return client;
  }

  send(message: AgentMessage | Record<string, unknown>): void {
    this.ws.send(JSON.stringify(message));
  }

  sendRaw(data: string | Buffer): void {
    this.ws.send(data);
  }

  /** The first message of `type` (for `jobId`) not taken yet; taken messages are not returned again. */
  async next<T extends AppMessage['type']>(type: T, jobId?: string, ms = 10_000): Promise<Extract<AppMessage, { type: T }>> {
    const found = await waitFor(
      () => {
        const i = this.received.findIndex((m) => m.type === type && (jobId === undefined || ('jobId' in m && m.jobId === jobId)));
        return i === -1 ? undefined : this.received.splice(i, 1)[0];
      },
      ms,
      `a '${type}' message`,
    );
    return found as Extract<AppMessage, { type: T }>;
  }

  /** Waits for the ack of chunk `seq` of `jobId` (the chunks that came together get one ack, of the highest). */
  async acked(jobId: string, seq: number, ms = 10_000): Promise<void> {
    await this.acksUntil(jobId, seq, ms);
  }

  /** The seqs of `jobId`'s acks, taken in order up to and with the one of chunk `seq`. */
  async acksUntil(jobId: string, seq: number, ms = 10_000): Promise<number[]> {
    const seqs: number[] = [];
    await waitFor(async () => {
      seqs.push((await this.next('ack', jobId, ms)).seq);
      return seqs.at(-1) === seq;
    }, ms, `the ack of chunk ${seq}`);
    return seqs;
  }

  /** Resolves with the close code and reason once the server has closed the socket. */
  async waitClosed(ms = 10_000): Promise<{ code: number; reason: string }> {
    return (await waitFor(() => this.closed, ms, 'the socket to close'))!;
  }

  /** Accepts an offer and waits for the start. */
  async take(jobId: string): Promise<void> {
    this.send({ type: 'accept', jobId });
    await this.next('start', jobId);
  }

  status(jobId: string, status: string, extra: Record<string, unknown> = {}): void {
    this.send({ type: 'status', jobId, status, ...extra });
  }

  log(jobId: string, seq: number, text: string): void {
    this.ws.send(agentFrame({ type: 'log', jobId, seq, data: Buffer.from(text) }));
  }

  close(): void {
    this.ws.terminate();
  }
}
