import type { RestHandlers } from '../rest-handler.js';
import { GithubApiError } from '../sim-errors.js';

/** The app's own routes, called with its JWT: itself, its installations, installation tokens. */
export const appHandlers: RestHandlers = {
  'apps/get-authenticated': {
    auth: 'jwt',
    async handle({ sim }) {
      return { status: 200, body: { ...sim.objects.integration(), installations_count: sim.state.installations.size } };
    },
  },

  'apps/list-installations': {
    auth: 'jwt',
    async handle({ sim, query }) {
      const perPage = Math.min(Number(query.get('per_page') ?? 30) || 30, 100);
      const page = Math.max(Number(query.get('page') ?? 1) || 1, 1);
      const all = [...sim.state.installations.values()];
      return { status: 200, body: all.slice((page - 1) * perPage, page * perPage).map((i) => sim.objects.installation(i)) };
    },
  },

  'apps/get-repo-installation': {
    auth: 'jwt',
    async handle({ sim, params }) {
      const repo = sim.state.findRepo(params.owner!, params.repo!);
      const inst = repo && sim.state.installationFor(repo);
      if (!inst) throw new GithubApiError(404, 'Not Found');
      return { status: 200, body: sim.objects.installation(inst) };
    },
  },

  'apps/create-installation-access-token': {
    auth: 'jwt',
    async handle({ sim, params, body }) {
      const inst = sim.state.installations.get(Number(params.installation_id));
      if (!inst) throw new GithubApiError(404, 'Not Found');
      const token = sim.issueToken(inst, body ?? {});
      const repos = token.repositoryIds?.map((id) => sim.state.repoById(id)!);
      return {
        status: 201,
        body: {
          token: token.token, expires_at: new Date(token.expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z'), permissions: token.permissions,
          repository_selection: token.repositoryIds ? 'selected' : inst.selection,
          ...(repos ? { repositories: repos.map((r) => sim.objects.repository(r)) } : {}),
        },
      };
    },
  },
};
