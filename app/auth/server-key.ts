import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * The server's own secret, 32 random bytes in `DATA_DIR/server.key` (mode 0600), made on first
 * start. It signs job tokens and seals secrets at rest, so both survive a restart of the server.
 */
export function loadServerKey(dataDir: string): Buffer {
  const file = path.join(dataDir, 'server.key');
  try {
    const key = fs.readFileSync(file);
    if (key.length === 32) return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = crypto.randomBytes(32);
  fs.mkdirSync(dataDir, { recursive: true });
  // 'wx': two servers starting on one new folder must not each write their own key.
  try {
    fs.writeFileSync(file, key, { mode: 0o600, flag: 'wx' });
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return fs.readFileSync(file);
    throw err;
  }
}

/** A key for one purpose, derived from the server key, so a job token can never open a sealed secret. */
export function subKey(key: Buffer, purpose: string): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', key, Buffer.alloc(0), purpose, 32));
}
