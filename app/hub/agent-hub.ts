import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { isFinal } from '../../shared/job-status.js';
import { CLOSE, closeReason, MAX_MESSAGE_BYTES, parseAgentFrame, PROTOCOL_VERSION, ProtocolError, versionMismatch, type AgentMessage } from '../../shared/protocol.js';
import type { Tokens } from '../auth/tokens.js';
import { jobSpec } from '../store/store.js';
import { AgentViolation, RemoteAgent, type HubContext } from './remote-agent.js';
import { TokenBucket } from './token-bucket.js';

/** How often the tokens of connected agents are looked at again (a revoke happens in another process). */
const TOKEN_CHECK_MS = 5000;

/**
 * What one agent socket may send, in messages per second (and at once). Log frames: an agent
 * streams at most LOG_WINDOW_CHUNKS (64) ahead of the acks, in chunks of up to 64 KiB flushed every
 * 100 ms per job (agent/log-streamer.ts), so 20,000 a second is 1.3 GB/s of full chunks, or 2,000
 * jobs each flushing small ones: far over what bench:logs sees (about 45 MB/s, 700 chunks a
 * second). Its other messages (accept, reject, status, port) are a handful per job.
 */
export const LOG_FRAMES_PER_SECOND = 20_000;
export const MESSAGES_PER_SECOND = 1_000;

export interface AgentHubOptions extends HubContext {
  tokens: Tokens;
  /** An agent not heard from for this long is lost (default 30 s). */
  lostAfterMs: number;
  /** How often the hub pings each agent; it looks for lost ones more often, so a loss is seen within a second or so of the window. */
  heartbeatMs: number;
  /** The server's URL as agents reach it (DSTACK_SERVER_URL); by default what each agent connected to. */
  publicUrl?: string;
  /** A new socket that sends no hello within this long is closed. */
  helloWithinMs?: number;
  onAgentsChanged?: (connected: number) => void;
}

/**
 * The agents' side of the server: one WebSocket per agent at /api/agents/ws, authenticated by an
 * agent token in the upgrade request. Each socket starts with `hello` (protocol version checked);
 * the agent is then one of the scheduler's agents until it has been silent for `lostAfterMs`,
 * across reconnects. Anything malformed closes that one socket with 1008 and a logged reason.
 */
export class AgentHub {
  // Twice the limit, so a message just over it is read and refused with 1008 and a reason
  // (parseAgentFrame); one far over it is cut off by ws itself with 1009, unread.
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 2 * MAX_MESSAGE_BYTES });
  private readonly agents = new Map<string, RemoteAgent>();
  private readonly timer: NodeJS.Timeout;
  /** When the hub started: jobs a previous server left on agents wait this long for them to return. */
  private readonly startedAt = Date.now();
  private orphansSettled = false;
  /** The token each open socket was opened with, to cut it off when the token is revoked. */
  private readonly tokenOf = new Map<WebSocket, string>();

  constructor(private readonly options: AgentHubOptions) {
    this.timer = setInterval(() => this.heartbeat(), Math.min(1000, options.heartbeatMs));
    this.timer.unref();
    options.storage.onRoom(() => {
      for (const agent of this.agents.values()) agent.resumeAfterSpace();
    });
  }

  /** Takes an HTTP upgrade request for the agent socket: 401 without a valid agent token. */
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const principal = this.options.tokens.verify(/^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1]);
    if (!principal || principal.kind !== 'agent') {
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"error":"a valid agent token is required: Authorization: Bearer TOKEN"}');
      return;
    }
    const secure = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
    const base = this.options.publicUrl?.replace(/\/+$/, '') ?? `${secure}://${req.headers.host}`;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.tokenOf.set(ws, principal.tokenId);
      ws.on('close', () => this.tokenOf.delete(ws));
      this.connection(ws, principal.owner, base);
    });
  }

  /** Agents whose socket is open now. */
  get connected(): RemoteAgent[] {
    return [...this.agents.values()].filter((a) => a.connected);
  }

  close(): void {
    clearInterval(this.timer);
    for (const agent of this.agents.values()) agent.close();
    for (const ws of this.wss.clients) ws.close(CLOSE.goingAway, 'server shutting down');
    this.wss.close();
  }

  private connection(ws: WebSocket, owner: string, base: string): void {
    let agent: RemoteAgent | undefined;
    const helloTimer = setTimeout(() => ws.close(CLOSE.policy, 'no hello'), this.options.helloWithinMs ?? 10_000);
    const violation = (reason: string) => {
      this.options.log(`agent socket of ${agent?.id ?? owner} closed: ${reason}`);
      ws.close(CLOSE.policy, closeReason(reason));
    };
    // Its pongs to our pings, and its own pings, say it is alive as much as its messages do.
    const heard = () => {
      if (agent) agent.lastHeard = Date.now();
    };
    ws.on('pong', heard);
    ws.on('ping', heard);
    // Checked before a frame is parsed, so a flood costs the server as little as it can.
    const budget = { logs: new TokenBucket(LOG_FRAMES_PER_SECOND, LOG_FRAMES_PER_SECOND), messages: new TokenBucket(MESSAGES_PER_SECOND, 2 * MESSAGES_PER_SECOND) };
    let overBudget = false;
    ws.on('message', (data: RawData, isBinary) => {
      if (overBudget) return;
      if (!(isBinary ? budget.logs : budget.messages).take()) {
        overBudget = true;
        return violation(`rate limit: more than ${isBinary ? LOG_FRAMES_PER_SECOND : MESSAGES_PER_SECOND} ${isBinary ? 'log frames' : 'messages'} a second`);
      }
      let message: AgentMessage;
      try {
        message = parseAgentFrame(data as Buffer, isBinary);
        if (!agent) {
          if (message.type !== 'hello') throw new ProtocolError(`the first message must be hello, not ${message.type}`);
          clearTimeout(helloTimer);
          const mismatch = versionMismatch(PROTOCOL_VERSION, message.protocol, 'app');
          if (mismatch) throw new ProtocolError(mismatch);
          agent = this.register(ws, owner, message, base);
          return;
        }
        if (message.type === 'hello') throw new ProtocolError('hello was sent twice');
        agent.receive(message);
      } catch (err) {
        if (err instanceof ProtocolError || err instanceof AgentViolation) return violation(err.message);
        // The data folder is full: not the agent's fault, and a reconnect would not help (it would be a storm).
        if (this.options.storage.failed(err)) return this.options.log(`agent ${agent?.id ?? owner}: a message was not handled: ${this.options.storage.error().message}`);
        // A bug of ours on one message must not take the server down with it.
        violation(`server error: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
    ws.on('error', (err) => this.options.log(`agent socket error: ${err.message}`));
    ws.on('close', () => {
      clearTimeout(helloTimer);
      agent?.detach(ws);
      this.changed();
    });
  }

  private register(ws: WebSocket, owner: string, hello: Extract<AgentMessage, { type: 'hello' }>, base: string): RemoteAgent {
    const id = `${owner}/${hello.agent.name}`;
    let agent = this.agents.get(id);
    // Two machines started with one name would each take the other's place, ending its jobs, in turn.
    if (agent?.connected && agent.instance && hello.agent.instance && agent.instance !== hello.agent.instance) {
      throw new ProtocolError(`an agent named ${hello.agent.name} is connected already (another process); give this one its own --name`);
    }
    if (!agent) {
      agent = new RemoteAgent(this.options, owner, hello);
      this.agents.set(id, agent);
    }
    agent.attach(ws, hello, base);
    this.options.scheduler.addAgent(agent);
    this.changed();
    return agent;
  }

  private changed(): void {
    this.options.onAgentsChanged?.(this.connected.length);
  }

  private lastPing = 0;

  private heartbeat(): void {
    const now = Date.now();
    // Room again tells the agents that wait for it (see the constructor).
    if (this.options.storage.degraded) this.options.storage.check();
    if (now - this.lastPing >= this.options.heartbeatMs) {
      this.lastPing = now;
      for (const ws of this.wss.clients) ws.ping();
    }
    for (const agent of [...this.agents.values()]) {
      agent.refreshTokens(now);
      const silent = now - agent.lastHeard;
      if (silent < this.options.lostAfterMs) continue;
      this.drop(agent, `agent ${agent.name} was lost (silent for ${Math.round(silent / 1000)} s)`);
    }
    if (now - this.lastTokenCheck >= TOKEN_CHECK_MS) {
      this.lastTokenCheck = now;
      this.closeRevoked();
    }
    this.settleOrphans(now);
  }

  /** Takes an agent out: its jobs are given up (or wait again), its socket closed. */
  private drop(agent: RemoteAgent, why: string): void {
    try {
      agent.lost(why);
    } catch (err) {
      // The data folder is full: the agent stays (silent, so dropped again at the next heartbeat), and its
      // jobs end once their ends can be stored.
      if (!this.options.storage.failed(err)) throw err;
      if (!this.waitingToDrop.has(agent)) this.options.log(`${why}; its jobs end once the data folder ${this.options.storage.dataDir} has room to record it`);
      this.waitingToDrop.add(agent);
      return;
    }
    this.waitingToDrop.delete(agent);
    this.options.log(`${why}`);
    this.agents.delete(agent.id);
    this.options.scheduler.removeAgent(agent.id);
    agent.close();
    this.changed();
  }

  /** Agents found lost while their jobs' ends could not be stored. */
  private readonly waitingToDrop = new Set<RemoteAgent>();

  private lastTokenCheck = 0;

  /**
   * An agent whose token was revoked (`dstack-app token revoke`, another process) is cut off: its
   * socket closed with the reason, its jobs given up, so a compromised machine gets nothing more.
   */
  private closeRevoked(): void {
    for (const [ws, tokenId] of this.tokenOf) {
      if (!this.options.tokens.revoked(tokenId)) continue;
      this.tokenOf.delete(ws);
      const agent = [...this.agents.values()].find((a) => a.usesSocket(ws));
      ws.close(CLOSE.policy, `refused: the agent token ${tokenId} was revoked`);
      if (agent) this.drop(agent, `agent ${agent.name}'s token ${tokenId} was revoked`);
    }
  }

  /**
   * Jobs that a previous run of the server had on agents: an agent that comes back within the
   * liveness window takes them up again (its hello lists them); the rest are its lost jobs.
   */
  private settleOrphans(now: number): void {
    if (this.orphansSettled || now - this.startedAt < this.options.lostAfterMs) return;
    this.orphansSettled = true;
    const { service } = this.options;
    const held = new Set([...this.agents.values()].flatMap((a) => a.jobIds()));
    for (const job of service.jobsOnAgents()) {
      if (held.has(job.id) || isFinal(job.status)) continue;
      const why = `agent ${job.agent} did not come back after the server restarted`;
      service.releaseResources(job.id);
      if (jobSpec(job).resources.interruptible) service.setJobStatus(job.id, 'submitted', { reason: `${why}; interruptible, so it waits to run again` });
      else service.setJobStatus(job.id, 'aborted', { reason: why });
    }
    this.options.scheduler.wake();
  }
}
