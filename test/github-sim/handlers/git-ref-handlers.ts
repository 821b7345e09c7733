import type { RestHandlers } from '../rest-handler.js';
import { sendPush } from '../send-push.js';
import { GithubApiError, unprocessable } from '../sim-errors.js';

/** `heads/main`, `tags/v1` (the routes' `{ref}`) → `refs/heads/main`. */
const fullRef = (ref: string) => (ref.startsWith('refs/') ? ref : `refs/${ref}`);

/** Branches and tags in the repository's git data: what releases' tags and pushes change. */
export const gitRefHandlers: RestHandlers = {
  'git/get-ref': {
    auth: 'repo',
    permissions: { contents: 'read' },
    async handle({ sim, repo, params }) {
      const ref = fullRef(params.ref!);
      const sha = (await sim.store(repo).refs()).get(ref);
      if (!sha) throw new GithubApiError(404, 'Not Found');
      return { status: 200, body: sim.objects.gitRef(repo, ref, sha, (await sim.store(repo).objectType(sha)) ?? 'commit') };
    },
  },

  'git/create-ref': {
    auth: 'repo',
    permissions: { contents: 'write' },
    async handle({ sim, repo, body }) {
      const ref: string = body.ref;
      // GitHub wants the full name and at least two slashes.
      if (!/^refs\/[^/]+\/.+/.test(ref)) throw unprocessable('Reference name must start with \'refs/\' and have at least two slashes.');
      const store = sim.store(repo);
      if ((await store.refs()).has(ref)) throw unprocessable('Reference already exists');
      if (!(await store.objectType(body.sha)) || !/^[0-9a-f]{40}$/.test(body.sha)) throw unprocessable('Object does not exist');
      const before = await store.refs();
      await store.updateRef(ref, body.sha);
      // GitHub sends a push for refs made through the API too.
      sim.background(sendPush(sim, repo, before, sim.objects.botLogin()));
      return { status: 201, body: sim.objects.gitRef(repo, ref, body.sha, (await store.objectType(body.sha)) ?? 'commit'), headers: { location: `${sim.objects.repoUrls(repo).api}/git/${ref}` } };
    },
  },

  'git/update-ref': {
    auth: 'repo',
    permissions: { contents: 'write' },
    async handle({ sim, repo, params, body }) {
      const ref = fullRef(params.ref!);
      const store = sim.store(repo);
      const current = (await store.refs()).get(ref);
      if (!current) throw unprocessable('Reference does not exist');
      if (!(await store.objectType(body.sha)) || !/^[0-9a-f]{40}$/.test(body.sha)) throw unprocessable('Object does not exist');
      if (!body.force && !(await store.isAncestor(current, body.sha))) throw unprocessable('Update is not a fast forward');
      const before = await store.refs();
      await store.updateRef(ref, body.sha);
      sim.background(sendPush(sim, repo, before, sim.objects.botLogin()));
      return { status: 200, body: sim.objects.gitRef(repo, ref, body.sha, (await store.objectType(body.sha)) ?? 'commit') };
    },
  },
};
