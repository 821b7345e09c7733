import { WebSocket, type RawData } from 'ws';
import { agentFrame, appMessage, CLOSE, closeReason, MAX_MESSAGE_BYTES, parseMessage, ProtocolError, type AgentMessage, type AppMessage } from '../shared/protocol.js';

export type ConnectionState =
  | { state: 'connecting'; attempt: number }
  | { state: 'connected' }
  | { state: 'disconnected'; reason: string; retryInMs: number }
  /** The server refused the agent for good (wrong token, protocol version): retrying cannot help. */
  | { state: 'refused'; reason: string };

export interface ConnectionOptions {
  /** The server's URL: `http://…` or `https://…` (the socket is `ws://…` or `wss://…`). */
  url: string;
  token: string;
  /** The hello to send on each (re)connect, made then, so it lists the jobs running at that moment. */
  hello: () => Extract<AgentMessage, { type: 'hello' }>;
  onMessage: (message: AppMessage) => void;
  onState?: (state: ConnectionState) => void;
  /** How often to ping; the server is taken as lost after three pings without an answer. */
  heartbeatMs?: number;
  /** Reconnect delays: exponential from `initialMs`, capped at `maxMs`, with full jitter. */
  backoff?: { initialMs: number; maxMs: number };
  /**
   * While this says true (the agent holds running jobs), reconnects come within URGENT_MAX_MS
   * however long the server was away: it keeps a job only for an agent back within its window.
   */
  urgent?: () => boolean;
}

/** The longest wait between reconnects while jobs run: well inside the server's 30 s liveness window. */
export const URGENT_MAX_MS = 5000;

/** Where agents connect on a server. */
export const AGENT_SOCKET_PATH = '/api/agents/ws';

/** `http://host/base` → `ws://host/base/api/agents/ws` (https → wss). */
export function agentSocketUrl(serverUrl: string): string {
  const url = new URL(serverUrl);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`the server URL must start with http:// or https://, got '${serverUrl}'`);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${AGENT_SOCKET_PATH}`;
  return url.toString();
}

/**
 * An agent's one WebSocket to the server: sends `hello` on every connect, validates every message
 * both ways, pings to notice a dead server (three silent intervals), and reconnects with capped,
 * jittered exponential backoff until closed or refused for good.
 */
export class AgentConnection {
  private socket: WebSocket | undefined;
  private attempt = 0;
  private retry: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly heartbeatMs: number;
  private readonly backoff: { initialMs: number; maxMs: number };

  constructor(private readonly options: ConnectionOptions) {
    this.heartbeatMs = options.heartbeatMs ?? 10_000;
    this.backoff = options.backoff ?? { initialMs: 500, maxMs: 30_000 };
  }

  get connected(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  start(): void {
    this.connect();
  }

  /** Sends a message if connected; false when not (the caller keeps what must not be lost). */
  send(message: AgentMessage): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(agentFrame(message));
    return true;
  }

  /** Closes for good: no more reconnects. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    clearInterval(this.heartbeat);
    const socket = this.socket;
    if (!socket || socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.close(CLOSE.normal, 'agent stopping');
      setTimeout(() => socket.terminate(), 2000).unref();
    });
  }

  private connect(): void {
    if (this.closed) return;
    this.attempt++;
    this.options.onState?.({ state: 'connecting', attempt: this.attempt });
    const socket = new WebSocket(agentSocketUrl(this.options.url), {
      headers: { authorization: `Bearer ${this.options.token}` },
      maxPayload: MAX_MESSAGE_BYTES,
      handshakeTimeout: 10_000,
    });
    this.socket = socket;
    let refused: string | undefined;
    let lastPong = Date.now();

    let answered: string | undefined;
    socket.on('unexpected-response', (_req, res) => {
      // 401/403: the token is wrong or revoked; no retry fixes that.
      if (res.statusCode === 401 || res.statusCode === 403) refused = `the server refused the token (HTTP ${res.statusCode}); check it, or create a new one with 'dstack-app token create --agent'`;
      answered = `the server answered HTTP ${res.statusCode} instead of opening the socket`;
      res.resume();
      socket.terminate(); // aborts the handshake: 'close' follows
    });
    let welcomed = false;
    socket.on('open', () => {
      this.options.onState?.({ state: 'connected' });
      socket.send(agentFrame(this.options.hello()));
      lastPong = Date.now();
      this.heartbeat = setInterval(() => {
        if (Date.now() - lastPong > this.heartbeatMs * 3) {
          socket.terminate();
          return;
        }
        socket.ping();
      }, this.heartbeatMs);
    });
    socket.on('pong', () => (lastPong = Date.now()));
    socket.on('message', (data: RawData, isBinary) => {
      let message: AppMessage;
      try {
        message = parseMessage(appMessage, data as Buffer, isBinary);
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        socket.close(CLOSE.policy, closeReason(err.message));
        return;
      }
      // Backoff starts again only once the server answers: one that accepts sockets and closes
      // them at once is not hammered.
      if (!welcomed) {
        welcomed = true;
        this.attempt = 0;
      }
      this.options.onMessage(message);
    });
    let failure: string | undefined;
    socket.on('error', (err) => {
      // 'close' follows; this says why (`connect ECONNREFUSED …`). Without a listener it would be thrown.
      failure = err.message;
    });
    socket.on('close', (code, reasonBuffer) => {
      clearInterval(this.heartbeat);
      if (this.socket === socket) this.socket = undefined;
      if (this.closed) return;
      const reason = reasonBuffer.toString();
      // The server closes with 1008 for a protocol version it cannot speak (that needs an upgrade)
      // and for a token revoked while connected: no retry fixes either.
      if (code === CLOSE.policy && (reason.startsWith('protocol ') || reason.startsWith('refused: '))) refused = reason;
      if (refused) {
        this.options.onState?.({ state: 'refused', reason: refused });
        return;
      }
      const retryInMs = this.delay();
      this.options.onState?.({ state: 'disconnected', reason: reason || answered || failure || `connection closed (${code})`, retryInMs });
      this.retry = setTimeout(() => this.connect(), retryInMs);
    });
  }

  /** Between half and all of the exponential bound, at random, so agents do not reconnect in step. */
  private delay(): number {
    const cap = this.options.urgent?.() ? Math.min(this.backoff.maxMs, URGENT_MAX_MS) : this.backoff.maxMs;
    const bound = Math.min(cap, this.backoff.initialMs * 2 ** Math.min(Math.max(this.attempt - 1, 0), 20));
    return Math.round(bound / 2 + (Math.random() * bound) / 2);
  }
}
