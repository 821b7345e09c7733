import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentSettings } from '../../agent/agent-settings.js';

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
    });
    expect(agentSettings({ url: 'http://127.0.0.1:3000', token: 't' }, { DSTACK_AGENT_NAME: '' })).toEqual({
      url: 'http://127.0.0.1:3000',
      token: 't',
      name: os.hostname(),
      labels: [],
      workDir: path.join(os.homedir(), '.dstack-agent'),
      isolation: { mode: 'host', image: 'python:3.11-slim' },
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
