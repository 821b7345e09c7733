import { z } from 'zod';
import { JOB_STATUSES } from './job-status.js';
import { decodeLogFrame, encodeLogFrame } from './log-frame.js';
import type { ResolvedWorkflow } from './workflow/types.js';

/**
 * The app ⇄ agent protocol: one WebSocket per agent, JSON text frames `{type, …}`, each validated
 * by its schema here on receipt (on both sides), and the agent's log chunks as binary frames
 * (shared/log-frame.ts). Liveness is the WebSocket's own ping/pong; bulk data (code, archives)
 * moves over HTTP with a per-job token, never through the socket.
 *
 * Raise PROTOCOL_VERSION for any change an older peer would misread; `hello` carries it and the
 * server refuses a mismatch, saying which side to upgrade.
 *
 * 2: offers may carry `source.credentials`. An agent of protocol 1 checks offers strictly and would
 * close its socket on such an offer, reconnect and be offered the job again; refusing its hello
 * tells its owner to upgrade it instead.
 * 3: log chunks are binary frames, no longer JSON `log` messages with base64 data.
 * 4: offers may carry `source.untrusted` (a fork's pull request), which an agent with host
 * isolation refuses. An agent of protocol 3 would close its socket on such an offer (as in 2), and
 * could not refuse it: refusing its hello tells its owner to upgrade it.
 */
export const PROTOCOL_VERSION = 4;

/**
 * The largest frame either side accepts: a log chunk (64 KiB) or an offer, with room to spare. A
 * bigger one is refused by the WebSocket itself (`maxPayload`) and the socket closed with 1008.
 */
export const MAX_MESSAGE_BYTES = 256 * 1024;

/**
 * Log chunks an agent sends ahead of the server's ack, at most (64 × 64 KiB in the sockets'
 * buffers). The server acks at least every quarter of that, so the window never runs dry, and
 * within ACK_DELAY_MS of any chunk: not each chunk, as each ack is a packet that wakes the agent.
 */
export const LOG_WINDOW_CHUNKS = 64;
export const ACK_EVERY_CHUNKS = LOG_WINDOW_CHUNKS / 4;
export const ACK_DELAY_MS = 20;

/** WebSocket close codes used by the protocol (RFC 6455). */
export const CLOSE = {
  normal: 1000,
  /** A malformed, unknown or oversized message; a protocol version mismatch. */
  policy: 1008,
  /** The server is shutting down; reconnect. */
  goingAway: 1001,
} as const;

/** Job ids are the server's own (`RUN-N`): printable ASCII, so one is never cut mid-character in a close reason or a log line. */
const jobId = z.string().regex(/^[\x21-\x7e]{1,200}$/, 'a job id is 1 to 200 printable ASCII characters');
const gpu = z.strictObject({
  index: z.number().int().nonnegative(),
  name: z.string(),
  memoryMiB: z.number().nonnegative(),
  uuid: z.string().min(1),
});

/** What an agent's machine has. */
export const agentResources = z.strictObject({
  cpus: z.number().positive(),
  memoryMiB: z.number().positive(),
  gpus: z.array(gpu),
  /** From nvidia-smi, when there are GPUs. */
  driverVersion: z.string().optional(),
  cudaVersion: z.string().optional(),
});

/** A workflow as the loader resolved it (shared/workflow/types.ts); the spec is the provider's keys. */
export const resolvedWorkflow = z.looseObject({
  name: z.string(),
  provider: z.string(),
  spec: z.record(z.string(), z.unknown()),
  dependsOn: z.array(z.strictObject({ workflow: z.string(), tag: z.string().optional() })),
  workingDir: z.string(),
  artifacts: z.array(z.string()),
  cache: z.array(z.string()),
  ports: z.array(z.number().int()),
  env: z.record(z.string(), z.string()),
  resources: z.looseObject({}),
})
  // Its keys were checked by the loader that made it; here only its shape is.
  .transform((w) => w as unknown as ResolvedWorkflow);

// Agent → app.

export const helloMessage = z.strictObject({
  type: z.literal('hello'),
  protocol: z.number().int().positive(),
  agent: z.strictObject({
    name: z.string().min(1).max(100),
    /** Random per agent process: a second process with the same name is told apart from a reconnect. */
    instance: z.string().min(1).max(100).optional(),
    version: z.string(),
    labels: z.array(z.string().min(1).max(100)).max(50),
    resources: agentResources,
  }),
  /** Jobs still running on the agent (after a reconnect), with the last log seq the app acknowledged. */
  running: z.array(z.strictObject({ jobId, acked: z.number().int().nonnegative() })),
});

export const acceptMessage = z.strictObject({ type: z.literal('accept'), jobId });

export const rejectMessage = z.strictObject({ type: z.literal('reject'), jobId, reason: z.string().max(2000) });

export const statusMessage = z.strictObject({
  type: z.literal('status'),
  jobId,
  status: z.enum(JOB_STATUSES),
  reason: z.string().max(4000).nullable().optional(),
  exitCode: z.number().int().nullable().optional(),
});

/** A chunk of a job's log, `seq` from 1 without gaps: on the socket as a binary frame, not JSON. */
export interface LogMessage {
  type: 'log';
  jobId: string;
  seq: number;
  data: Buffer;
}

export const portMessage = z.strictObject({ type: z.literal('port'), jobId, port: z.number().int().min(1).max(65535) });

/** The agent's JSON messages: every one but its log chunks. */
export const agentMessage = z.discriminatedUnion('type', [helloMessage, acceptMessage, rejectMessage, statusMessage, portMessage]);
export type AgentMessage = z.infer<typeof agentMessage> | LogMessage;

// App → agent.

export const welcomeMessage = z.strictObject({
  type: z.literal('welcome'),
  protocol: z.number().int().positive(),
  agentId: z.string(),
  /** Jobs of the hello's `running` list that the app no longer knows as running: stop them. */
  forget: z.array(jobId),
});

export const offerMessage = z.strictObject({
  type: z.literal('offer'),
  jobId,
  runName: z.string(),
  workflow: resolvedWorkflow,
  /** UUIDs of the GPUs the job gets on this agent. */
  gpus: z.array(z.string()),
  /** Values of the secrets the workflow refers to. */
  secrets: z.record(z.string(), z.string()),
  /**
   * Where the code is: the commit to check out, and a patch to apply (fetched over HTTP). With
   * `credentials`, the agent gets a short-lived token from `GET /api/jobs/:id/git-credentials` just
   * before fetching, and git sends it as a header; it is never written down. With `untrusted`, the
   * code is a fork's pull request (anyone on GitHub may have written it): an agent running jobs on
   * its own host, as its own user, declines it unless its owner allowed that.
   */
  source: z.strictObject({ repoUrl: z.string(), commit: z.string(), patch: z.boolean(), credentials: z.boolean().optional(), untrusted: z.boolean().optional() }),
  /** Base URL of the job's HTTP endpoints, and the short-lived token scoped to this job. */
  api: z.strictObject({ url: z.string(), token: z.string() }),
  /** Accept within this many milliseconds, or the job goes back to the queue. */
  acceptWithinMs: z.number().int().positive(),
  /** The `seq` of the job's first log chunk: past 1 when an interrupted job runs again, so its new log follows the old. */
  firstLogSeq: z.number().int().positive(),
});

/** The app took the agent's accept: run the job now. Until then the agent runs nothing, so a job never runs twice. */
export const startMessage = z.strictObject({ type: z.literal('start'), jobId });

/** Log chunks up to `seq` are stored; with `final`, the job's end is recorded too and the agent may forget the job. */
export const ackMessage = z.strictObject({ type: z.literal('ack'), jobId, seq: z.number().int().nonnegative(), final: z.boolean().optional() });

/** A fresh job token, before the one in the offer expires (jobs may run for days). */
export const tokenMessage = z.strictObject({ type: z.literal('token'), jobId, token: z.string() });

export const stopMessage = z.strictObject({ type: z.literal('stop'), jobId, mode: z.enum(['stop', 'abort']) });

/** An offer withdrawn (not accepted in time, a late accept refused, the job stopped): do not run it. */
export const cancelMessage = z.strictObject({ type: z.literal('cancel'), jobId, reason: z.string() });

export const appMessage = z.discriminatedUnion('type', [welcomeMessage, offerMessage, startMessage, ackMessage, stopMessage, cancelMessage, tokenMessage]);
export type AppMessage = z.infer<typeof appMessage>;

/** A message that breaks the protocol; the receiver closes the socket with 1008 and this reason. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

/**
 * Parses and validates one received frame. Throws ProtocolError with a short reason (it goes into
 * the close frame, which allows 123 bytes) for anything that is not a valid message.
 */
export function parseMessage<S extends z.ZodType>(schema: S, frame: string | Buffer, isBinary = false): z.infer<S> {
  if (isBinary) throw new ProtocolError('binary frames are not part of the protocol');
  checkSize(typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length);
  let value: unknown;
  try {
    value = JSON.parse(frame.toString());
  } catch {
    throw new ProtocolError('message is not JSON');
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const type = (value as { type?: unknown } | null)?.type;
  const where = issue.path.length > 0 ? ` at '${issue.path.join('.')}'` : '';
  throw new ProtocolError(`invalid ${typeof type === 'string' ? `'${type.slice(0, 20)}' ` : ''}message${where}: ${issue.message}`.slice(0, 120));
}

function checkSize(size: number): void {
  if (size > MAX_MESSAGE_BYTES) throw new ProtocolError(`message of ${size} bytes is over the ${MAX_MESSAGE_BYTES}-byte limit`);
}

/** One frame from an agent: a log chunk when binary, else one of its JSON messages. */
export function parseAgentFrame(frame: Buffer, isBinary: boolean): AgentMessage {
  if (!isBinary) return parseMessage(agentMessage, frame);
  checkSize(frame.length);
  const log = decodeLogFrame(frame);
  if ('error' in log) throw new ProtocolError(log.error);
  if (log.at < 1) throw new ProtocolError(`log chunk ${log.at} of job ${log.jobId.slice(0, 60)}: seqs start at 1`);
  return { type: 'log', jobId: log.jobId, seq: log.at, data: log.data };
}

/** A message as an agent puts it on its socket: a log chunk as a binary frame, the rest as checked JSON. */
export function agentFrame(message: AgentMessage): string | Buffer {
  if (message.type === 'log') return encodeLogFrame({ jobId: message.jobId, at: message.seq, data: message.data });
  return JSON.stringify(agentMessage.parse(message));
}

/** A close frame's reason: at most 123 bytes (RFC 6455), cut on a character boundary. */
export function closeReason(text: string): string {
  // Every character is a byte or more: past 123 characters nothing fits anyway.
  let out = text.slice(0, 123);
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1);
  return out;
}

/** The reason for refusing a hello from another protocol version: which side to upgrade. */
export function versionMismatch(ours: number, theirs: number, side: 'app' | 'agent'): string | undefined {
  if (ours === theirs) return undefined;
  const older = theirs < ours ? (side === 'app' ? 'agent' : 'app') : side;
  return `protocol ${theirs} is not ${ours}: upgrade the ${older === 'app' ? 'server (dstack-app)' : 'agent (dstack-agent)'}`;
}
