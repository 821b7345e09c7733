import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Per upload: 100 at once hold 100 MB at most. */
const WRITE_BUFFER_BYTES = 1024 * 1024;

/**
 * Tar archives on disk (artifacts and caches), written through a temporary file and renamed, so a
 * reader never sees half an archive and a failed upload leaves the previous one in place.
 */
export class ArchiveStore {
  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
  }

  /** Stores a stream under `key` (a relative path this store chose) and returns the key. */
  async put(key: string, stream: Readable): Promise<string> {
    const file = this.file(key);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${crypto.randomBytes(4).toString('hex')}.part`;
    // A MB may wait for the disk (written together, with writev), so the upload is read on
    // while a write is under way rather than after it: a 16 KB buffer would wait out every write.
    const out = fs.createWriteStream(tmp, { highWaterMark: WRITE_BUFFER_BYTES });
    try {
      await pipeline(stream, out);
      fs.renameSync(tmp, file);
    } catch (err) {
      // A stream that failed at once may still be opening its file: remove it once it is closed.
      if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    return key;
  }

  open(key: string): Readable {
    return fs.createReadStream(this.file(key));
  }

  /** The keys of the archives under a folder of the store (recursively). */
  list(folder: string): string[] {
    const dir = this.file(folder);
    if (!fs.existsSync(dir)) return [];
    return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
      .filter((e) => e.isFile() && !e.name.endsWith('.part'))
      .map((e) => path.relative(this.dir, path.join(e.parentPath, e.name)));
  }

  /** When an archive was written, in ms since the epoch. */
  modifiedAt(key: string): number {
    return fs.statSync(this.file(key)).mtimeMs;
  }

  /** Moves an archive to another key of the store; returns the new key. */
  rename(from: string, to: string): string {
    fs.mkdirSync(path.dirname(this.file(to)), { recursive: true });
    fs.renameSync(this.file(from), this.file(to));
    return to;
  }

  exists(key: string): boolean {
    return fs.existsSync(this.file(key));
  }

  remove(key: string): void {
    fs.rmSync(this.file(key), { force: true });
  }

  private file(key: string): string {
    const full = path.resolve(this.dir, key);
    if (!full.startsWith(path.resolve(this.dir) + path.sep)) throw new Error(`archive key escapes the store: ${key}`);
    return full;
  }
}

/** A short stable name for a path, for file names of archives. */
export function digest(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex').slice(0, 16);
}
