import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { RestContext, RestHandlers } from '../rest-handler.js';
import { sendPush } from '../send-push.js';
import type { SimCore } from '../sim-core.js';
import { GithubApiError, unprocessable } from '../sim-errors.js';
import type { SimAsset, SimRelease, SimRepo } from '../sim-state.js';

/** How long a presigned download URL works, like GitHub's storage redirects (5 minutes). */
const DOWNLOAD_URL_TTL_MS = 5 * 60 * 1000;

function findRelease({ sim, repo }: RestContext, id: number): SimRelease {
  const rel = sim.state.releases.get(id);
  if (!rel || rel.repo.toLowerCase() !== sim.state.fullName(repo).toLowerCase()) throw new GithubApiError(404, 'Not Found');
  return rel;
}

function findAsset(ctx: RestContext): SimAsset {
  const asset = ctx.sim.state.assets.get(Number(ctx.params.asset_id));
  if (!asset) throw new GithubApiError(404, 'Not Found');
  findRelease(ctx, asset.releaseId);
  return asset;
}

/** A published release's tag is a real ref: made at `target_commitish` when it does not exist. */
async function ensureTag(sim: SimCore, repo: SimRepo, rel: SimRelease): Promise<void> {
  const store = sim.store(repo);
  if (await store.commit(`refs/tags/${rel.tagName}`)) return;
  const sha = await store.commit(rel.targetCommitish);
  if (!sha) throw unprocessable('Validation Failed', [{ resource: 'Release', code: 'invalid', field: 'target_commitish' }]);
  const before = await store.refs();
  await store.updateRef(`refs/tags/${rel.tagName}`, sha);
  sim.background(sendPush(sim, repo, before, sim.objects.botLogin()));
}

/** One release per tag and repository: 422 already_exists otherwise, as GitHub answers. */
function refuseTakenTag(sim: SimCore, repo: string, tag: string, except?: number): void {
  if ([...sim.state.releases.values()].some((r) => r.id !== except && r.repo.toLowerCase() === repo.toLowerCase() && r.tagName === tag)) {
    throw unprocessable('Validation Failed', [{ resource: 'Release', code: 'already_exists', field: 'tag_name' }]);
  }
}

/** The sim's presigned URL of an asset's bytes: what `Accept: application/octet-stream` redirects to. */
export function signedAssetUrl(sim: SimCore, asset: SimAsset): string {
  const expires = Date.now() + DOWNLOAD_URL_TTL_MS;
  const signature = crypto.createHmac('sha256', sim.urlKey).update(`${asset.id}:${expires}`).digest('hex');
  return `${sim.objects.base}/_sim/storage/assets/${asset.id}?expires=${expires}&signature=${signature}`;
}

export function checkAssetSignature(sim: SimCore, id: number, expires: number, signature: string): boolean {
  const expected = crypto.createHmac('sha256', sim.urlKey).update(`${id}:${expires}`).digest('hex');
  return expires > Date.now() && signature.length === expected.length && crypto.timingSafeEqual(Buffer.from(signature), Buffer.from(expected));
}

/** GitHub renames asset files with unusual characters; the sim keeps letters, digits and `._-+`. */
function assetName(name: string): string {
  return name.replace(/[^\w.+-]/g, '.').replace(/^\.+|\.+$/g, '') || 'default.bin';
}

/** Releases (a tag, a body, assets) and their assets' upload, listing, download and deletion. */
export const releaseHandlers: RestHandlers = {
  'repos/get-release-by-tag': {
    auth: 'repo',
    permissions: { contents: 'read' },
    async handle({ sim, repo, params }) {
      const rel = [...sim.state.releases.values()].find((r) => r.repo.toLowerCase() === sim.state.fullName(repo).toLowerCase() && r.tagName === params.tag && !r.draft);
      if (!rel) throw new GithubApiError(404, 'Not Found');
      return { status: 200, body: sim.objects.release(rel) };
    },
  },

  'repos/create-release': {
    auth: 'repo',
    permissions: { contents: 'write' },
    async handle({ sim, repo, body }) {
      const full = sim.state.fullName(repo);
      refuseTakenTag(sim, full, body.tag_name);
      const now = new Date().toISOString();
      const rel: SimRelease = {
        id: sim.state.id(), repo: full, tagName: body.tag_name, targetCommitish: body.target_commitish ?? repo.defaultBranch, name: body.name ?? null,
        body: body.body ?? null, draft: body.draft ?? false, prerelease: body.prerelease ?? false, createdAt: now, publishedAt: body.draft ? null : now, author: sim.objects.botLogin(),
      };
      if (!rel.draft) await ensureTag(sim, repo, rel);
      sim.state.releases.set(rel.id, rel);
      return { status: 201, body: sim.objects.release(rel), headers: { location: `${sim.objects.api}/repos/${full}/releases/${rel.id}` } };
    },
  },

  'repos/update-release': {
    auth: 'repo',
    permissions: { contents: 'write' },
    async handle(ctx) {
      const { sim, repo, body } = ctx;
      const rel = findRelease(ctx, Number(ctx.params.release_id));
      const next = { ...rel };
      if (body.tag_name !== undefined) next.tagName = body.tag_name;
      if (body.target_commitish !== undefined) next.targetCommitish = body.target_commitish;
      if (body.name !== undefined) next.name = body.name;
      if (body.body !== undefined) next.body = body.body;
      if (body.prerelease !== undefined) next.prerelease = body.prerelease;
      if (body.draft !== undefined) next.draft = body.draft;
      if (!next.draft && !next.publishedAt) next.publishedAt = new Date().toISOString();
      refuseTakenTag(sim, rel.repo, next.tagName, rel.id);
      if (!next.draft) await ensureTag(sim, repo, next);
      Object.assign(rel, next);
      return { status: 200, body: sim.objects.release(rel) };
    },
  },

  'repos/list-release-assets': {
    auth: 'repo',
    permissions: { contents: 'read' },
    async handle(ctx) {
      const rel = findRelease(ctx, Number(ctx.params.release_id));
      const perPage = Math.min(Number(ctx.query.get('per_page') ?? 30) || 30, 100);
      const page = Math.max(Number(ctx.query.get('page') ?? 1) || 1, 1);
      const assets = [...ctx.sim.state.assets.values()].filter((a) => a.releaseId === rel.id);
      return { status: 200, body: assets.slice((page - 1) * perPage, page * perPage).map((a) => ctx.sim.objects.asset(a)) };
    },
  },

  'repos/upload-release-asset': {
    auth: 'repo',
    permissions: { contents: 'write' },
    async handle(ctx) {
      const { sim, req, query } = ctx;
      const rel = findRelease(ctx, Number(ctx.params.release_id));
      const rawName = query.get('name');
      if (!rawName) throw unprocessable('Validation Failed', [{ resource: 'ReleaseAsset', code: 'missing', field: 'name' }]);
      const name = assetName(rawName);
      if ([...sim.state.assets.values()].some((a) => a.releaseId === rel.id && a.name === name)) {
        throw unprocessable('Validation Failed', [{ resource: 'ReleaseAsset', code: 'already_exists', field: 'name' }]);
      }
      // GitHub needs the length up front: a chunked upload is refused.
      const length = Number(req.headers['content-length']);
      if (!req.headers['content-length'] || !Number.isInteger(length) || length < 0) throw new GithubApiError(400, 'Bad Content-Length');
      const contentType = req.headers['content-type'];
      if (!contentType) throw unprocessable('Validation Failed', [{ resource: 'ReleaseAsset', code: 'missing', field: 'content_type' }]);
      const id = sim.state.id();
      const file = path.join(sim.dataDir, 'assets', String(id));
      const hash = crypto.createHash('sha256');
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        hash.update(chunk);
      });
      await pipeline(req, fs.createWriteStream(file));
      if (size !== length) {
        fs.rmSync(file, { force: true });
        throw new GithubApiError(400, 'Bad Content-Length');
      }
      const now = new Date().toISOString();
      const asset: SimAsset = {
        id, releaseId: rel.id, name, label: query.get('label'), contentType, size, file, digest: `sha256:${hash.digest('hex')}`,
        createdAt: now, updatedAt: now, uploader: sim.objects.botLogin(),
      };
      sim.state.assets.set(id, asset);
      return { status: 201, body: sim.objects.asset(asset) };
    },
  },

  'repos/get-release-asset': {
    auth: 'repo',
    permissions: { contents: 'read' },
    async handle(ctx) {
      const asset = findAsset(ctx);
      // As GitHub: the bytes come from storage, through a redirect to a short-lived signed URL.
      if ((ctx.req.headers.accept ?? '').includes('application/octet-stream')) return { status: 302, headers: { location: signedAssetUrl(ctx.sim, asset) } };
      return { status: 200, body: ctx.sim.objects.asset(asset) };
    },
  },

  'repos/delete-release-asset': {
    auth: 'repo',
    permissions: { contents: 'write' },
    async handle(ctx) {
      const asset = findAsset(ctx);
      ctx.sim.state.assets.delete(asset.id);
      fs.rmSync(asset.file, { force: true });
      return { status: 204 };
    },
  },
};
