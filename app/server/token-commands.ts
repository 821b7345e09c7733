import { DstackError } from '../../shared/errors.js';
import { Tokens } from '../auth/tokens.js';
import { openState } from '../state.js';
import { serverSettings } from './settings.js';

function withTokens<T>(work: (tokens: Tokens) => T): T {
  const state = openState(serverSettings().dataDir);
  try {
    return work(new Tokens(state.store));
  } finally {
    state.close();
  }
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function tokenCreate(opts: { owner: string; agent?: boolean; user?: boolean }): void {
  if (!opts.agent && !opts.user) throw new DstackError('DSTACK_ERR_USAGE', "say what the token is for: --agent (a runner agent) or --user (the dstack CLI)");
  const kind = opts.agent ? 'agent' : 'user';
  const { id, token } = withTokens((t) => t.create(opts.owner, kind));
  const use = kind === 'agent' ? 'dstack-agent --url URL --token TOKEN' : 'dstack config --url URL --token TOKEN';
  // The secret alone on the last line, so a script can take it with `tail -n 1`.
  process.stdout.write(`Created ${kind} token ${id} for ${opts.owner}. It is shown once; use it with: ${use}\n${token}\n`);
}

export function tokenList(opts: { json?: boolean }): void {
  const rows = withTokens((t) => t.list());
  if (opts.json) {
    const json = rows.map((r) => ({ id: r.id, owner: r.owner, kind: r.kind, created_at: iso(r.created_at), last_used_at: iso(r.last_used_at), revoked_at: iso(r.revoked_at) }));
    process.stdout.write(JSON.stringify(json, null, 2) + '\n');
    return;
  }
  const lines = [['ID', 'OWNER', 'KIND', 'CREATED', 'LAST USED', 'REVOKED'], ...rows.map((r) => [r.id, r.owner, r.kind, iso(r.created_at)!, iso(r.last_used_at) ?? '-', iso(r.revoked_at) ?? '-'])];
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  process.stdout.write(lines.map((l) => l.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n');
}

export function tokenRevoke(id: string): void {
  withTokens((t) => t.revoke(id));
  process.stdout.write(`Revoked ${id}\n`);
}
