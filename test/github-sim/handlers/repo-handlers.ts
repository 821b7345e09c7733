import { Readable } from 'node:stream';
import type { RestContext, RestHandlers } from '../rest-handler.js';
import { GithubApiError } from '../sim-errors.js';
import type { RepoRole } from '../sim-state.js';

/** The permission API's legacy level of each role (maintain counts as write, triage as read). */
const LEGACY: Record<RepoRole, string> = { admin: 'admin', maintain: 'write', write: 'write', triage: 'read', read: 'read', none: 'none' };
/** GitHub serves file content inline up to 1 MB; larger files only raw. */
const INLINE_LIMIT = 1024 * 1024;

function contentEntry({ sim, repo }: RestContext, path: string, entry: { type: string; sha: string; size: number; name: string }, ref: string) {
  const { api, html } = sim.objects.repoUrls(repo);
  const type = entry.type === 'tree' ? 'dir' : entry.type === 'commit' ? 'submodule' : 'file';
  const self = `${api}/contents/${encodeURI(path)}?ref=${encodeURIComponent(ref)}`;
  const git = type === 'submodule' ? null : `${api}/git/${type === 'dir' ? 'trees' : 'blobs'}/${entry.sha}`;
  const web = `${html}/${type === 'dir' ? 'tree' : 'blob'}/${encodeURIComponent(ref)}/${encodeURI(path)}`;
  return {
    type, size: type === 'file' ? entry.size : 0, name: entry.name, path, sha: entry.sha, url: self, git_url: git, html_url: web,
    download_url: type === 'file' ? `${html}/raw/${encodeURIComponent(ref)}/${encodeURI(path)}` : null,
    _links: { self, git, html: web },
  };
}

/** Repository reads: the repository, a user's permission, a pull request, contents at a ref. */
export const repoHandlers: RestHandlers = {
  'repos/get': {
    auth: 'repo',
    permissions: { metadata: 'read' },
    async handle({ sim, repo }) {
      return { status: 200, body: sim.objects.repository(repo) };
    },
  },

  'repos/get-collaborator-permission-level': {
    auth: 'repo',
    permissions: { metadata: 'read' },
    async handle({ sim, repo, params }) {
      const known = sim.state.users.get(params.username!.toLowerCase());
      if (!known) throw new GithubApiError(404, 'Not Found');
      let role = sim.state.role(repo, known.login);
      // Anyone may read a public repository.
      if (role === 'none' && !repo.private) role = 'read';
      const user = { ...sim.objects.user(known.login), role_name: role, permissions: { admin: role === 'admin', maintain: ['admin', 'maintain'].includes(role), push: ['admin', 'maintain', 'write'].includes(role), triage: role !== 'read' && role !== 'none', pull: role !== 'none' } };
      return { status: 200, body: { permission: LEGACY[role], role_name: role, user } };
    },
  },

  'repos/list-activities': {
    auth: 'repo',
    permissions: { metadata: 'read' },
    async handle({ sim, repo, query }) {
      // Newest first, as GitHub lists them; `ref` is a branch's name or full ref. One page only (no cursors).
      const ref = query.get('ref');
      const type = query.get('activity_type');
      const perPage = Math.min(Number(query.get('per_page') ?? 30) || 30, 100);
      const entries = repo.activity
        .filter((a) => (!ref || a.ref === (ref.startsWith('refs/') ? ref : `refs/heads/${ref}`)) && (!type || a.type === type))
        .reverse()
        .slice(0, perPage);
      return { status: 200, body: entries.map((a) => sim.objects.activity(a)) };
    },
  },

  'pulls/get': {
    auth: 'repo',
    permissions: { pull_requests: 'read' },
    async handle({ sim, repo, params }) {
      const issue = sim.state.issues.get(sim.state.issueKey(repo, Number(params.pull_number)));
      if (!issue?.pull) throw new GithubApiError(404, 'Not Found');
      return { status: 200, body: sim.objects.pullRequest(issue) };
    },
  },

  'repos/get-content': {
    auth: 'repo',
    permissions: { contents: 'read' },
    async handle(ctx) {
      const { sim, repo, params, query, req } = ctx;
      const store = sim.store(repo);
      const ref = query.get('ref') || repo.defaultBranch;
      const commit = await store.commit(ref);
      if (!commit) throw new GithubApiError(404, `No commit found for the ref ${ref}`);
      const path = params.path!.replace(/^\/+|\/+$/g, '');
      const entry = await store.entry(commit, path);
      if (!entry) throw new GithubApiError(404, 'Not Found');
      const raw = /application\/vnd\.github(\.v3)?\.raw/.test(req.headers.accept ?? '');
      if (entry.type === 'tree') {
        const entries = await store.list(commit, path);
        return { status: 200, body: entries.map((e) => contentEntry(ctx, path ? `${path}/${e.name}` : e.name, e, ref)) };
      }
      if (entry.type === 'commit') {
        return { status: 200, body: { ...contentEntry(ctx, path, entry, ref), submodule_git_url: `${sim.objects.base}/unknown.git` } };
      }
      const bytes = await store.blob(entry.sha);
      if (raw) return { status: 200, stream: Readable.from([bytes]), mediaType: 'application/vnd.github.raw' };
      const base = contentEntry(ctx, path, entry, ref);
      if (entry.mode === '120000') return { status: 200, body: { ...base, type: 'symlink', target: bytes.toString('utf8') } };
      // GitHub wraps base64 at 60 characters, as `base64` does.
      const inline = bytes.length <= INLINE_LIMIT;
      const content = inline ? (bytes.toString('base64').match(/.{1,60}/g) ?? []).join('\n') + (bytes.length ? '\n' : '') : '';
      return { status: 200, body: { ...base, content, encoding: inline ? 'base64' : 'none' } };
    },
  },
};
