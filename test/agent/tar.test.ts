import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packStream } from '../../agent/tar.js';
import { tempDir } from '../helpers/cli.js';

const id = (flag: string) => Number(execFileSync('id', [flag, 'nobody'], { encoding: 'utf8' }).trim());

describe('packStream', () => {
  it("packs as the job's user when given one: a file only root may read is refused, not archived", async () => {
    if (process.getuid?.() !== 0) throw new Error("this test packs as another user (setpriv) and must run as root (it does in CI)");
    const base = tempDir();
    fs.chmodSync(base, 0o755);
    fs.writeFileSync(path.join(base, 'secret'), 'root only\n', { mode: 0o600 });
    const { stream, done } = packStream(base, 'secret', { user: 'nobody', uid: id('-u'), gid: id('-g') });
    const chunks: Buffer[] = [];
    stream.on('data', (d: Buffer) => chunks.push(d));
    await expect(done).rejects.toThrow("tar -c failed (2): tar: secret: Cannot open: Permission denied\ntar: Exiting with failure status due to previous errors");
    expect(Buffer.concat(chunks).toString('latin1')).not.toContain('root only');
  });
});
