import { describe, expect, it } from 'vitest';
import { encodeLogFrame } from '../../shared/log-frame.js';
import { agentFrame, agentMessage, appMessage, closeReason, MAX_MESSAGE_BYTES, parseAgentFrame, parseMessage, PROTOCOL_VERSION, ProtocolError, versionMismatch } from '../../shared/protocol.js';

const hello = {
  type: 'hello',
  protocol: PROTOCOL_VERSION,
  agent: {
    name: 'gpu-box-1',
    version: '0.1.0',
    labels: ['a100'],
    resources: { cpus: 16, memoryMiB: 128000, gpus: [{ index: 0, name: 'NVIDIA A100-SXM4-80GB', memoryMiB: 81920, uuid: 'GPU-1' }], driverVersion: '550.54' },
  },
  running: [{ jobId: 'slim-octopus-3-0', acked: 12 }],
};

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err.message;
    throw err;
  }
  throw new Error('no ProtocolError');
}

describe('protocol', () => {
  it('parses every message an agent sends, and the ones the app sends', () => {
    expect(parseMessage(agentMessage, JSON.stringify(hello))).toEqual(hello);
    for (const m of [
      { type: 'accept', jobId: 'j' },
      { type: 'reject', jobId: 'j', reason: 'busy' },
      { type: 'status', jobId: 'j', status: 'failed', reason: 'exit code 2', exitCode: 2 },
      { type: 'port', jobId: 'j', port: 6006 },
    ]) {
      expect(parseMessage(agentMessage, Buffer.from(JSON.stringify(m)))).toEqual(m);
      expect(parseAgentFrame(Buffer.from(agentFrame(m as never)), false)).toEqual(m);
    }
    // A log chunk goes as a binary frame: its bytes as they are, any bytes at all.
    const bytes = Buffer.from([0, 255, 10, 13, 0x1b, 0xc3]);
    const frame = agentFrame({ type: 'log', jobId: 'slim-octopus-3-0', seq: 12, data: bytes });
    expect(Buffer.isBuffer(frame)).toBe(true);
    expect(frame.length).toBe(10 + 'slim-octopus-3-0'.length + bytes.length);
    expect(parseAgentFrame(frame as Buffer, true)).toEqual({ type: 'log', jobId: 'slim-octopus-3-0', seq: 12, data: bytes });
    for (const m of [
      { type: 'welcome', protocol: PROTOCOL_VERSION, agentId: 'a1', forget: [] },
      { type: 'start', jobId: 'j' },
      { type: 'ack', jobId: 'j', seq: 7 },
      { type: 'stop', jobId: 'j', mode: 'abort' },
      { type: 'cancel', jobId: 'j', reason: 'not accepted in time' },
    ]) {
      expect(parseMessage(appMessage, JSON.stringify(m))).toEqual(m);
    }
  });

  it('refuses what is not a valid message with a reason short enough for a close frame', () => {
    const cases: [string | Buffer, string][] = [
      ['{nope', 'message is not JSON'],
      [JSON.stringify({ type: 'launch', jobId: 'j' }), "invalid 'launch' message at 'type': Invalid input"],
      [JSON.stringify({ type: 'log', jobId: 'j', seq: 1, data: 'aGk=' }), "invalid 'log' message at 'type': Invalid input"],
      [JSON.stringify({ type: 'accept', jobId: 'j', extra: 1 }), 'invalid \'accept\' message: Unrecognized key: "extra"'],
      [JSON.stringify({ ...hello, protocol: 'one' }), "invalid 'hello' message at 'protocol': Invalid input: expected number, received string"],
      [JSON.stringify({ type: 'ack', jobId: 'j', seq: 1 }), "invalid 'ack' message at 'type': Invalid input"],
    ];
    for (const [frame, expected] of cases) {
      const got = reason(() => parseMessage(agentMessage, frame));
      expect(got.startsWith(expected.slice(0, 40)), `${got} / ${expected}`).toBe(true);
      expect(Buffer.byteLength(got)).toBeLessThanOrEqual(123);
    }
    expect(reason(() => parseMessage(agentMessage, 'x'.repeat(MAX_MESSAGE_BYTES + 1)))).toBe(
      `message of ${MAX_MESSAGE_BYTES + 1} bytes is over the ${MAX_MESSAGE_BYTES}-byte limit`,
    );
    expect(reason(() => parseMessage(appMessage, Buffer.from('{}'), true))).toBe('binary frames are not part of the protocol');
    const log = (jobId: string, at: number, data = 'x') => encodeLogFrame({ jobId, at, data: Buffer.from(data) });
    const badId = log('jj', 1);
    badId[10] = 0xff;
    const badKind = log('j', 1);
    badKind[0] = 7;
    const binary: [Buffer, string][] = [
      [Buffer.from('{}'), 'binary frame of 2 bytes is too short for a log frame'],
      [badKind, 'binary frame of unknown kind 7'],
      [log('j', 0), 'log chunk 0 of job j: seqs start at 1'],
      [log('j', 1.5), 'log frame with a bad seq or offset'],
      [log('j', 1).subarray(0, 10 + 1 - 1).fill(1, 9, 10), 'binary frame of 10 bytes is too short for a log frame'],
      [Buffer.concat([log('j', 1).subarray(0, 9), Buffer.from([50, 106])]), 'log frame with a bad job id length'],
      [badId, 'log frame with a job id that is not printable ASCII'],
      [log('j', 1, 'x'.repeat(MAX_MESSAGE_BYTES)), `message of ${MAX_MESSAGE_BYTES + 11} bytes is over the ${MAX_MESSAGE_BYTES}-byte limit`],
    ];
    for (const [frame, expected] of binary) expect(reason(() => parseAgentFrame(frame, true))).toBe(expected);
  });

  it('keeps close reasons within the 123 bytes a close frame allows, whatever the characters', () => {
    const long = `log chunk 0 of job ${'€'.repeat(60)}: seqs start at 1`;
    expect(Buffer.byteLength(closeReason(long))).toBeLessThanOrEqual(123);
    expect(long.startsWith(closeReason(long))).toBe(true);
    expect(closeReason('short')).toBe('short');
    // A job id of other characters is refused before it gets that far.
    expect(reason(() => parseMessage(agentMessage, JSON.stringify({ type: 'accept', jobId: '€'.repeat(60) })))).toMatch(/printable ASCII/);
  });

  it('says which side to upgrade when protocol versions differ', () => {
    expect(versionMismatch(2, 2, 'app')).toBeUndefined();
    expect(versionMismatch(2, 1, 'app')).toBe('protocol 1 is not 2: upgrade the agent (dstack-agent)');
    expect(versionMismatch(2, 3, 'app')).toBe('protocol 3 is not 2: upgrade the server (dstack-app)');
    expect(versionMismatch(2, 1, 'agent')).toBe('protocol 1 is not 2: upgrade the server (dstack-app)');
    expect(versionMismatch(2, 3, 'agent')).toBe('protocol 3 is not 2: upgrade the agent (dstack-agent)');
  });
});
