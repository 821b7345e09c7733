import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { DstackError } from './errors.js';

const BLOCK = 512;
/** GNU long names and pax headers are read whole; anything larger is not a name. */
const MAX_META_BYTES = 1024 * 1024;

/** Entry types an artifact or cache may hold: files, hard and symbolic links, folders. */
const CONTENT_TYPES = new Set(['0', '\0', '1', '2', '5', '7']);
/** Headers that describe the next entry: GNU long name / long link, pax per-file and global. */
const META_TYPES = new Set(['L', 'K', 'x', 'g']);

interface Meta {
  type: string;
  size: number;
  parts: Buffer[];
  got: number;
}

/**
 * Passes a tar stream through unchanged while reading each member's header, and fails the stream
 * at the first member that could land outside the folder it is unpacked into: an absolute path, a
 * `..` step, a link whose target leaves the folder, or a device or FIFO. Piped between an upload
 * and the temporary file it is written to, a refused archive is never stored.
 *
 * Understands ustar (with its name prefix), GNU long names (`L`/`K`) and pax headers (`path`,
 * `linkpath`), the forms GNU tar and bsdtar write.
 */
export class TarMemberCheck extends Transform {
  private header = Buffer.alloc(0);
  /** Bytes of the current member's data (with padding) still to pass over. */
  private skip = 0;
  private meta: Meta | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;
  private paxPath: string | undefined;
  private paxLink: string | undefined;
  private ended = false;
  /** Symbolic links among the members so far: nothing may be unpacked through one. */
  private readonly links = new Set<string>();
  /** Members seen so far. */
  members = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.scan(chunk);
      callback(null, chunk);
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (!this.ended && (this.header.length > 0 || this.skip > 0)) callback(refused('the archive is cut short'));
    else callback();
  }

  private scan(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.ended) {
        // After the end block only padding: anything else would be read by a tar that goes on.
        for (; pos < chunk.length; pos++) if (chunk[pos] !== 0) throw refused('there is data after the end of the archive');
        return;
      }
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - pos);
        if (this.meta) this.collect(chunk.subarray(pos, pos + n));
        pos += n;
        this.skip -= n;
        if (this.skip === 0 && this.meta) this.endMeta();
        continue;
      }
      const take = chunk.subarray(pos, pos + BLOCK - this.header.length);
      this.header = this.header.length === 0 ? Buffer.from(take) : Buffer.concat([this.header, take]);
      pos += take.length;
      if (this.header.length === BLOCK) {
        const block = this.header;
        this.header = Buffer.alloc(0);
        this.onHeader(block);
      }
    }
  }

  private onHeader(block: Buffer): void {
    // A zero block ends the archive (GNU tar writes two; what follows is padding).
    if (block.every((b) => b === 0)) {
      this.ended = true;
      return;
    }
    const type = String.fromCharCode(block[156]!);
    const size = octal(block.subarray(124, 136));
    this.skip = Math.ceil(size / BLOCK) * BLOCK;
    if (META_TYPES.has(type)) {
      if (size > MAX_META_BYTES) throw refused(`a ${type} header of ${size} bytes is too large`);
      this.meta = { type, size, parts: [], got: 0 };
      if (this.skip === 0) this.endMeta();
      return;
    }
    const magic = block.subarray(257, 262).toString('latin1');
    const prefix = magic === 'ustar' ? text(block.subarray(345, 500)) : '';
    const name = this.paxPath ?? this.longName ?? (prefix ? `${prefix}/${text(block.subarray(0, 100))}` : text(block.subarray(0, 100)));
    const link = this.paxLink ?? this.longLink ?? text(block.subarray(157, 257));
    this.longName = this.longLink = this.paxPath = this.paxLink = undefined;
    this.members++;
    if (!CONTENT_TYPES.has(type)) throw refused(`member '${name}' is a ${type === '3' || type === '4' ? 'device' : type === '6' ? 'FIFO' : `type '${type}' entry`}`);
    checkPath(name, name);
    this.checkNotUnderLink(name);
    if (type === '1') {
      checkPath(link, `${name} (a hard link to '${link}')`);
      this.checkNotUnderLink(link);
      // Linux hard-links a symbolic link itself: the new name is a symbolic link with the same
      // target, read from another folder (`d/s -> ..` is the root; linked as `h`, it is its parent).
      if (this.links.has(clean(link))) throw refused(`member '${name}' is a hard link to the symbolic link '${clean(link)}'`);
    }
    if (type === '2') {
      if (link.startsWith('/')) throw refused(`member '${name}' links to the absolute path '${link}'`);
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(name), link));
      if (target === '..' || target.startsWith('../')) throw refused(`member '${name}' links to '${link}', outside the folder`);
      // `a -> d/s/..` looks inside, but with `d/s -> ..` it is the folder's parent: a link's target
      // is read through the links before it, so it may not step through one.
      this.checkNotUnderLink(`${path.posix.dirname(name)}/${link}`, `member '${name}' links to '${link}', through`);
      this.links.add(clean(name));
    }
  }

  /**
   * A member whose path goes through an earlier symbolic link would be written wherever that link
   * points. A link stays in the set when a later member has its name: tar keeps a symbolic link to
   * a folder in place of a folder member, so a later folder of that name is still the link.
   */
  private checkNotUnderLink(name: string, what = `member '${name}' is under`): void {
    const parts = name.split('/').filter((p) => p !== '' && p !== '.');
    const at: string[] = [];
    for (let i = 0; i < parts.length - 1; i++) {
      // Walked a step at a time, so a `..` after a link is caught before it cancels the link out.
      if (parts[i] === '..') at.pop();
      else at.push(parts[i]!);
      const dir = at.join('/');
      if (this.links.has(dir)) throw refused(`${what} the symbolic link '${dir}'`);
    }
  }

  private collect(data: Buffer): void {
    const meta = this.meta!;
    const want = meta.size - meta.got;
    if (want <= 0) return;
    const part = data.subarray(0, want);
    meta.parts.push(Buffer.from(part));
    meta.got += part.length;
  }

  private endMeta(): void {
    const meta = this.meta!;
    this.meta = undefined;
    const data = Buffer.concat(meta.parts);
    if (meta.type === 'L') this.longName = text(data);
    else if (meta.type === 'K') this.longLink = text(data);
    else if (meta.type === 'x') {
      const records = paxRecords(data);
      this.paxPath = records.get('path') ?? this.paxPath;
      this.paxLink = records.get('linkpath') ?? this.paxLink;
    }
    // 'g' (global) headers set defaults such as mtime; a global path is not something tar honours.
  }
}

function checkPath(name: string, what: string): void {
  if (name.startsWith('/')) throw refused(`member '${what}' has an absolute path`);
  if (name.split('/').includes('..')) throw refused(`member '${what}' has a '..' in its path`);
}

/** A member's path as the set of links keeps it: no `./`, no trailing `/`. */
function clean(name: string): string {
  return path.posix.normalize(name).replace(/\/+$/, '');
}

function refused(why: string): DstackError {
  return new DstackError('DSTACK_ERR_ARCHIVE_REFUSED', `archive refused: ${why}; nothing of it was kept`);
}

/** A NUL-terminated header field. */
function text(field: Buffer): string {
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? field.length : end).toString('utf8');
}

/** A numeric header field: octal text, or base-256 when its first byte has the high bit set. */
function octal(field: Buffer): number {
  if (field[0]! & 0x80) {
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!;
    return value;
  }
  const digits = text(field).trim();
  return digits ? parseInt(digits, 8) : 0;
}

/** pax records: `LEN key=value\n` each. */
function paxRecords(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) break;
    const length = parseInt(data.subarray(pos, space).toString('latin1'), 10);
    if (!(length > 0)) break;
    const record = data.subarray(space + 1, pos + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += length;
  }
  return out;
}
