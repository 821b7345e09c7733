import crypto from 'node:crypto';
import { subKey } from './server-key.js';

/**
 * Secret values at rest (a run's secrets, between its submission and its jobs' start), sealed with
 * AES-256-GCM under a key derived from the server's: the database alone does not give them away.
 */
export class Sealer {
  private readonly key: Buffer;

  constructor(serverKey: Buffer) {
    this.key = subKey(serverKey, 'dstack sealed secrets');
  }

  seal(values: Record<string, string>): string {
    const iv = crypto.randomBytes(12);
    const cipher = crypto.createCipheriv('aes-256-gcm', this.key, iv);
    const data = Buffer.concat([cipher.update(JSON.stringify(values)), cipher.final()]);
    return [iv, cipher.getAuthTag(), data].map((b) => b.toString('base64')).join('.');
  }

  open(sealed: string): Record<string, string> {
    const [iv, tag, data] = sealed.split('.').map((p) => Buffer.from(p, 'base64'));
    const decipher = crypto.createDecipheriv('aes-256-gcm', this.key, iv!);
    decipher.setAuthTag(tag!);
    return JSON.parse(Buffer.concat([decipher.update(data!), decipher.final()]).toString()) as Record<string, string>;
  }
}
