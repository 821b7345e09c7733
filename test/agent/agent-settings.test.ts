import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentSettings } from '../../agent/agent-settings.js';
import { tempDir } from '../helpers/cli.js';

describe('agentSettings', () => {
  it('takes each setting from its option, else its DSTACK_AGENT_* variable, else its default', () => {
    const env = {
      DSTACK_AGENT_URL: 'https://dstack.example.com/base',
      DSTACK_AGENT_TOKEN: 'dstack_from_env',
      DSTACK_AGENT_NAME: 'env-name',
      DSTACK_AGENT_LABELS: 'a100, nvme,,a100',
      DSTACK_AGENT_ISOLATION: 'docker',
      DSTACK_AGENT_IMAGE: 'ubuntu:24.04',
    };
    expect(agentSettings({ name: 'option-name', workDir: 'rel/dir' }, env)).toEqual({
      url: 'https://dstack.example.com/base',
      token: 'dstack_from_env',
      name: 'option-name',
      labels: ['a100', 'nvme'],
      workDir: path.resolve('rel/dir'),
      isolation: { mode: 'docker', image: 'ubuntu:24.04' },
      allowUntrustedOnHost: false,
    });
    expect(agentSettings({ url: 'http://127.0.0.1:3000', token: 't' }, { DSTACK_AGENT_NAME: '' })).toEqual({
      url: 'http://127.0.0.1:3000',
      token: 't',
      name: os.hostname(),
      labels: [],
      workDir: path.join(os.homedir(), '.dstack-agent'),
      isolation: { mode: 'host', image: 'python:3.11-slim' },
      allowUntrustedOnHost: false,
    });
  });

  it('names the option or the variable a bad value came from', () => {
    expect(() => agentSettings({ url: 'http://x', token: 't', isolation: 'vm' }, {})).toThrow("--isolation must be host or docker, got 'vm'; fix it");
    expect(() => agentSettings({ url: 'http://x', token: 't' }, { DSTACK_AGENT_LABELS: 'ok,-bad' })).toThrow(
      "DSTACK_AGENT_LABELS must be labels separated by commas, each letters, digits, `_`, `.` and `-`, got 'ok,-bad'; fix or unset it",
    );
    expect(() => agentSettings({ url: 'http://x', token: 't', labels: Array.from({ length: 51 }, (_, i) => `l${i}`).join(',') }, {})).toThrow('--labels must be at most 50 labels');
    expect(() => agentSettings({ token: 't' }, {})).toThrow('--url (or DSTACK_AGENT_URL) is required');
  });
});

describe('the agent token from a file', () => {
  const tokenFile = (text: string) => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'dstack-agent-token'), text, { mode: 0o600 });
    return { dir, file: path.join(dir, 'dstack-agent-token') };
  };

  it('reads --token-file, DSTACK_AGENT_TOKEN_FILE or the systemd credential dstack-agent-token, an option winning over every variable', () => {
    const a = tokenFile('dstack_from_file\n');
    const b = tokenFile('dstack_from_credential');
    const url = 'http://127.0.0.1:3000';
    expect(agentSettings({ url, tokenFile: a.file }, { DSTACK_AGENT_TOKEN: 'dstack_env' }).token).toBe('dstack_from_file');
    expect(agentSettings({ url }, { DSTACK_AGENT_TOKEN_FILE: a.file, CREDENTIALS_DIRECTORY: b.dir }).token).toBe('dstack_from_file');
    expect(agentSettings({ url }, { CREDENTIALS_DIRECTORY: b.dir }).token).toBe('dstack_from_credential');
    expect(agentSettings({ url, token: 'dstack_option' }, { CREDENTIALS_DIRECTORY: b.dir }).token).toBe('dstack_option');
  });

  it('says in one line when the token file cannot be read or holds no single token', () => {
    const url = 'http://127.0.0.1:3000';
    const missing = path.join(tempDir(), 'nope');
    expect(() => agentSettings({ url, tokenFile: missing }, {})).toThrow(`cannot read the token file ${missing}: ENOENT; give a readable file holding the agent token`);
    const empty = tokenFile('\n').file;
    expect(() => agentSettings({ url, tokenFile: empty }, {})).toThrow(`the token file ${empty} must hold one agent token, without spaces; it is empty`);
    expect(() => agentSettings({ url, token: 't', tokenFile: empty }, {})).toThrow('give --token or --token-file, not both');
  });
});

describe('--run-as', () => {
  it('takes an existing unprivileged user, and refuses one that does not exist or is root', () => {
    const base = { url: 'http://127.0.0.1:3000', token: 't' };
    expect(agentSettings({ ...base, runAs: 'nobody' }, {}).runAs).toEqual({ user: 'nobody', uid: 65534, gid: Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' })) });
    expect(() => agentSettings({ ...base, runAs: 'no-such-user-x' }, {})).toThrow('--run-as no-such-user-x: there is no user no-such-user-x on this machine; create one (useradd --system --no-create-home no-such-user-x) or name another');
    expect(() => agentSettings({ ...base, runAs: 'root' }, {})).toThrow('--run-as root: root is root; name an unprivileged user');
  });
});
