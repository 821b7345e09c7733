import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { githubSettings } from '../../../app/github/github-settings.js';
import { tempDir } from '../../helpers/cli.js';

const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();

function error(env: Record<string, string>): string {
  try {
    githubSettings(env as NodeJS.ProcessEnv);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the settings to be refused');
}

describe('GitHub App settings', () => {
  it('are absent without any of the app variables: the server serves the CLI only', () => {
    expect(githubSettings({ PORT: '3000', GHE_HOST: 'github.example.com' })).toBeUndefined();
  });

  it('read Probot variables: a key file, GitHub Enterprise over http, the log level', () => {
    const file = path.join(tempDir(), 'app.pem');
    fs.writeFileSync(file, pem);
    expect(githubSettings({ APP_ID: '12', PRIVATE_KEY_PATH: file, WEBHOOK_SECRET: 's', GHE_HOST: '127.0.0.1:8080', GHE_PROTOCOL: 'http', LOG_LEVEL: 'warn' })).toEqual({
      appId: 12,
      privateKey: pem,
      webhookSecret: 's',
      apiUrl: 'http://127.0.0.1:8080/api/v3',
      logLevel: 'warn',
    });
  });

  it('take PRIVATE_KEY as PEM with escaped newlines, or base64', () => {
    const base = { APP_ID: '1', WEBHOOK_SECRET: 's' };
    expect(githubSettings({ ...base, PRIVATE_KEY: pem.replace(/\n/g, '\\n') })!.privateKey).toBe(pem);
    expect(githubSettings({ ...base, PRIVATE_KEY: Buffer.from(pem).toString('base64') })!.privateKey).toBe(pem);
    expect(githubSettings({ ...base, PRIVATE_KEY: pem })!.apiUrl).toBe('https://api.github.com');
  });

  it('name the variable that is missing or wrong, in one line, never printing a secret', () => {
    expect(error({ WEBHOOK_SECRET: 's' })).toBe(
      "APP_ID is not set: the GitHub App needs the App ID from the app's settings page (or unset APP_ID, PRIVATE_KEY, PRIVATE_KEY_PATH and WEBHOOK_SECRET to serve the CLI only)",
    );
    expect(error({ APP_ID: '1', WEBHOOK_SECRET: 's' })).toMatch(/^PRIVATE_KEY or PRIVATE_KEY_PATH is not set: /);
    expect(error({ APP_ID: '1', PRIVATE_KEY: pem })).toMatch(/^WEBHOOK_SECRET is not set: /);
    expect(error({ APP_ID: 'abc', PRIVATE_KEY: pem, WEBHOOK_SECRET: 's' })).toBe("APP_ID must be the GitHub App's numeric id, got 'abc'; fix or unset it");
    expect(error({ APP_ID: '1', PRIVATE_KEY: 'hunter2', WEBHOOK_SECRET: 's' })).not.toContain('hunter2');
    expect(error({ APP_ID: '1', PRIVATE_KEY_PATH: '/nope/app.pem', WEBHOOK_SECRET: 's' })).toBe("PRIVATE_KEY_PATH cannot be read: ENOENT '/nope/app.pem'");
    expect(error({ APP_ID: '1', PRIVATE_KEY: pem, WEBHOOK_SECRET: 's', GHE_HOST: 'https://ghe.example.com' })).toMatch(/^GHE_HOST must be a host name/);
    expect(error({ APP_ID: '1', PRIVATE_KEY: pem, WEBHOOK_SECRET: 's', GHE_PROTOCOL: 'ftp' })).toBe("GHE_PROTOCOL must be http or https, got 'ftp'; fix or unset it");
    expect(error({ APP_ID: '1', PRIVATE_KEY: pem, WEBHOOK_SECRET: 's', LOG_LEVEL: 'loud' })).toMatch(/^LOG_LEVEL must be one of trace, debug/);
  });
});
