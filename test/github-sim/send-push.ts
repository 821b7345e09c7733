import type { RefMap } from './git-store.js';
import type { SimCore } from './sim-core.js';
import { ZERO_SHA as ZERO, type SimRepo } from './sim-state.js';
import type { Delivery } from './webhook-sender.js';

/**
 * Compares the repository's refs with `before`, records each changed branch in the repository's
 * activity (with the time of the push) and sends one `push` webhook per changed ref (branches and
 * tags), in ref order, as GitHub does after a push.
 */
export async function sendPush(core: SimCore, repo: SimRepo, before: RefMap, pusher: string): Promise<Delivery[]> {
  const store = core.store(repo);
  const after = await store.refs();
  const names = [...new Set([...before.keys(), ...after.keys()])].filter((r) => r.startsWith('refs/heads/') || r.startsWith('refs/tags/')).sort();
  const deliveries: Delivery[] = [];
  for (const ref of names) {
    const was = before.get(ref) ?? null;
    const now = after.get(ref) ?? null;
    if (was === now) continue;
    const others = [...before.entries()].filter(([r]) => r !== ref && r.startsWith('refs/heads/')).map(([, sha]) => sha);
    const commits = now ? await store.pushedCommits(was, now, others) : [];
    const forced = !!was && !!now && !(await store.isAncestor(was, now));
    if (ref.startsWith('refs/heads/')) {
      const type = !was ? 'branch_creation' : !now ? 'branch_deletion' : forced ? 'force_push' : 'push';
      repo.activity.push({ id: core.state.id(), ref, before: was ?? ZERO, after: now ?? ZERO, timestamp: new Date().toISOString(), type, actor: pusher });
    }
    if (now && ref.startsWith('refs/heads/')) await movePullHeads(core, repo, ref.slice('refs/heads/'.length), now);
    const delivery = await core.sendForRepo(repo, (inst) => core.events.push(repo, inst, { ref, before: was ?? ZERO, after: now ?? ZERO, created: !was, deleted: !now, forced, commits, pusher }), 'push');
    if (delivery) deliveries.push(delivery);
  }
  return deliveries;
}

/** Pull requests from `branch` of `repo` follow it, as on GitHub: their head and `refs/pull/N/head` move. */
async function movePullHeads(core: SimCore, repo: SimRepo, branch: string, sha: string): Promise<void> {
  const full = core.state.fullName(repo).toLowerCase();
  for (const issue of core.state.issues.values()) {
    if (!issue.pull || issue.pull.head.repo.toLowerCase() !== full || issue.pull.head.ref !== branch) continue;
    issue.pull.head.sha = sha;
    const [owner, name] = issue.repo.split('/') as [string, string];
    const base = core.state.adminRepo(owner, name);
    await core.store(base).git(['fetch', '--quiet', repo.gitDir, `+refs/heads/${branch}:refs/pull/${issue.number}/head`]);
  }
}
