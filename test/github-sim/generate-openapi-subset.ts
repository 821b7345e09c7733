/**
 * Writes the parts of GitHub's official descriptions that the sim serves and sends, so that the
 * sim validates against GitHub's own schemas without loading 10 MB documents in every test:
 * - openapi-subset.json: the REST operations in OPERATIONS (api.github.com, from @octokit/openapi)
 *   and every component they reference, transitively;
 * - webhooks-subset.json: the webhook payload schemas in WEBHOOKS (from @octokit/openapi-webhooks),
 *   their components, and one official example payload per event and action (from
 *   @octokit/webhooks-examples), which the sim fills from its state.
 *
 * Run `npx tsx test/github-sim/generate-openapi-subset.ts` after adding an operation, and commit
 * both files. Descriptions and examples are dropped: they are most of the size and none of the
 * contract.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** [method, path] of every REST operation the app calls: the sim implements exactly these. */
export const OPERATIONS: [string, string][] = [
  ['get', '/app'],
  ['get', '/app/installations'],
  ['get', '/repos/{owner}/{repo}/installation'],
  ['post', '/app/installations/{installation_id}/access_tokens'],
  ['get', '/repos/{owner}/{repo}'],
  ['get', '/repos/{owner}/{repo}/collaborators/{username}/permission'],
  ['get', '/repos/{owner}/{repo}/pulls/{pull_number}'],
  ['get', '/repos/{owner}/{repo}/activity'],
  ['get', '/repos/{owner}/{repo}/contents/{path}'],
  ['post', '/repos/{owner}/{repo}/issues/{issue_number}/comments'],
  ['patch', '/repos/{owner}/{repo}/issues/comments/{comment_id}'],
  ['post', '/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions'],
  ['post', '/repos/{owner}/{repo}/check-runs'],
  ['patch', '/repos/{owner}/{repo}/check-runs/{check_run_id}'],
  ['get', '/repos/{owner}/{repo}/check-runs/{check_run_id}'],
  ['get', '/repos/{owner}/{repo}/releases/tags/{tag}'],
  ['post', '/repos/{owner}/{repo}/releases'],
  ['patch', '/repos/{owner}/{repo}/releases/{release_id}'],
  ['get', '/repos/{owner}/{repo}/releases/{release_id}/assets'],
  ['post', '/repos/{owner}/{repo}/releases/{release_id}/assets'],
  ['get', '/repos/{owner}/{repo}/releases/assets/{asset_id}'],
  ['delete', '/repos/{owner}/{repo}/releases/assets/{asset_id}'],
  ['get', '/repos/{owner}/{repo}/git/ref/{ref}'],
  ['post', '/repos/{owner}/{repo}/git/refs'],
  ['patch', '/repos/{owner}/{repo}/git/refs/{ref}'],
];

/** [webhook name in @octokit/openapi-webhooks, X-GitHub-Event, action] of every event the sim sends. */
export const WEBHOOKS: [string, string, string | null][] = [
  ['installation-created', 'installation', 'created'],
  ['issue-comment-created', 'issue_comment', 'created'],
  ['issue-comment-edited', 'issue_comment', 'edited'],
  ['pull-request-opened', 'pull_request', 'opened'],
  ['push', 'push', null],
  ['check-run-rerequested', 'check_run', 'rerequested'],
  ['check-run-requested-action', 'check_run', 'requested_action'],
];

type Json = any;
const DROPPED = new Set(['description', 'summary', 'examples', 'example', 'externalDocs', 'x-github', 'x-githubEnterpriseOverlays', 'x-octokit']);

/** A copy of `node` without documentation keys (only where they are keywords, not property names). */
function strip(node: Json, underProperties = false): Json {
  if (Array.isArray(node)) return node.map((n) => strip(n));
  if (node === null || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if (!underProperties && DROPPED.has(k) && !(k === 'description' && typeof v !== 'string')) continue;
    out[k] = strip(v, k === 'properties' && !underProperties);
  }
  return out;
}

/** Copies into `out.components` every component that `node` references, and theirs. */
function collectRefs(doc: Json, node: Json, out: Json): void {
  if (Array.isArray(node)) return node.forEach((n) => collectRefs(doc, n, out));
  if (node === null || typeof node !== 'object') return;
  for (const [k, v] of Object.entries(node)) {
    if (k === '$ref' && typeof v === 'string' && v.startsWith('#/components/')) {
      const [, , kind, name] = v.split('/') as [string, string, string, string];
      out.components[kind] ??= {};
      if (out.components[kind][name]) continue;
      const target = doc.components[kind]?.[name];
      if (!target) throw new Error(`${v} is referenced but not in the description`);
      out.components[kind][name] = strip(target);
      collectRefs(doc, out.components[kind][name], out);
    } else collectRefs(doc, v, out);
  }
}

function sortKeys(obj: Json): Json {
  return Object.fromEntries(Object.entries(obj).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * Known errors of GitHub's description, fixed in the subset (each one a response real GitHub
 * sends that the description would refuse):
 * - an installation's `account` written inline as `allOf: [Simple User, Enterprise]` (both at
 *   once, which no account is) where the `installation` component says `anyOf`.
 */
export function fixQuirks(node: Json): Json {
  if (Array.isArray(node)) return node.map(fixQuirks);
  if (node === null || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) out[k] = fixQuirks(v);
  const titles = Array.isArray(out.allOf) ? out.allOf.map((s: Json) => s?.title).sort().join('|') : '';
  if (titles === 'Enterprise|Simple User') {
    out.anyOf = out.allOf;
    delete out.allOf;
  }
  return out;
}

export function restSubset(doc: Json): Json {
  const out: Json = { openapi: doc.openapi, info: { title: doc.info.title, version: doc.info.version }, paths: {}, components: {} };
  for (const [method, p] of OPERATIONS) {
    const op = doc.paths[p]?.[method];
    if (!op) throw new Error(`${method.toUpperCase()} ${p} is not in the description`);
    out.paths[p] ??= {};
    out.paths[p][method] = fixQuirks(strip(op));
    collectRefs(doc, out.paths[p][method], out);
  }
  for (const kind of Object.keys(out.components)) out.components[kind] = sortKeys(out.components[kind]);
  return out;
}

export function webhooksSubset(doc: Json, examples: Json[]): Json {
  const out: Json = { openapi: doc.openapi, info: { title: doc.info.title, version: doc.info.version }, webhooks: {}, components: {}, examples: {} };
  for (const [name, event, action] of WEBHOOKS) {
    const hook = doc.webhooks[name]?.post;
    if (!hook) throw new Error(`webhook ${name} is not in the description`);
    out.webhooks[name] = { event, action, schema: strip(hook.requestBody.content['application/json'].schema) };
    collectRefs(doc, out.webhooks[name].schema, out);
    const example = examples.find((e) => e.name === event)?.examples.find((x: Json) => (x.action ?? null) === action);
    if (!example) throw new Error(`no example payload for ${event}.${action}`);
    out.examples[name] = example;
  }
  for (const kind of Object.keys(out.components)) out.components[kind] = sortKeys(out.components[kind]);
  return out;
}

function main(): void {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const require = createRequire(import.meta.url);
  const restFile = path.join(path.dirname(require.resolve('@octokit/openapi/package.json')), 'generated/api.github.com.json');
  const hooksFile = path.join(path.dirname(require.resolve('@octokit/openapi-webhooks/package.json')), 'generated/api.github.com.json');
  const examplesFile = require.resolve('@octokit/webhooks-examples');
  const rest = restSubset(JSON.parse(fs.readFileSync(restFile, 'utf8')));
  const hooks = webhooksSubset(JSON.parse(fs.readFileSync(hooksFile, 'utf8')), JSON.parse(fs.readFileSync(examplesFile, 'utf8')));
  fs.writeFileSync(path.join(here, 'openapi-subset.json'), JSON.stringify(rest, null, 1) + '\n');
  fs.writeFileSync(path.join(here, 'webhooks-subset.json'), JSON.stringify(hooks, null, 1) + '\n');
  console.log(`openapi-subset.json: ${Object.keys(rest.paths).length} paths, ${Object.keys(rest.components.schemas ?? {}).length} schemas; webhooks-subset.json: ${Object.keys(hooks.webhooks).length} events`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
