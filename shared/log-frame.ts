/**
 * A piece of a job's log as one binary WebSocket frame, on both of the server's sockets: agent →
 * app (with the chunk's `seq`) and app → a client following a run (with the byte offset of the
 * piece in the job's log). Log bytes are most of what crosses either socket, so they go as they
 * are: no base64, no JSON, nothing per byte but the copy the socket makes.
 *
 *   byte 0        FRAME_KIND_LOG
 *   bytes 1–8     `at`: the seq, or the offset (float64, little-endian; a safe integer)
 *   byte 9        the job id's length in bytes, 1–200
 *   bytes 10…     the job id (printable ASCII), then the log bytes to the frame's end
 */
export interface LogFrame {
  jobId: string;
  at: number;
  data: Buffer;
}

export const FRAME_KIND_LOG = 1;
const HEAD = 10;
const MAX_JOB_ID_BYTES = 200;

export function encodeLogFrame(frame: LogFrame): Buffer {
  return encodeLogFrameOf(frame.jobId, frame.at, [frame.data]);
}

/** One log frame of pieces that follow each other in the log: each is copied once, into the frame. */
export function encodeLogFrameOf(jobId: string, at: number, pieces: readonly Buffer[]): Buffer {
  const id = Buffer.from(jobId);
  if (id.length === 0 || id.length > MAX_JOB_ID_BYTES) throw new RangeError(`job id of ${id.length} bytes`);
  let length = HEAD + id.length;
  for (const piece of pieces) length += piece.length;
  const out = Buffer.allocUnsafe(length);
  out[0] = FRAME_KIND_LOG;
  out.writeDoubleLE(at, 1);
  out[9] = id.length;
  id.copy(out, HEAD);
  let offset = HEAD + id.length;
  for (const piece of pieces) offset += piece.copy(out, offset);
  return out;
}

/** The frame's parts (its data a view of `frame`, not a copy), or why it is not a log frame. */
export function decodeLogFrame(frame: Buffer): LogFrame | { error: string } {
  if (frame.length < HEAD + 1) return { error: `binary frame of ${frame.length} bytes is too short for a log frame` };
  if (frame[0] !== FRAME_KIND_LOG) return { error: `binary frame of unknown kind ${frame[0]}` };
  const at = frame.readDoubleLE(1);
  if (!Number.isSafeInteger(at) || at < 0) return { error: 'log frame with a bad seq or offset' };
  const idLength = frame[9]!;
  if (idLength === 0 || idLength > MAX_JOB_ID_BYTES || frame.length < HEAD + idLength) return { error: 'log frame with a bad job id length' };
  // Job ids are printable ASCII (see shared/protocol.ts): anything else is refused, not misfiled.
  for (let i = HEAD; i < HEAD + idLength; i++) if (frame[i]! < 0x21 || frame[i]! > 0x7e) return { error: 'log frame with a job id that is not printable ASCII' };
  const jobId = frame.toString('latin1', HEAD, HEAD + idLength);
  return { jobId, at, data: frame.subarray(HEAD + idLength) };
}
