import type { RunView } from '../run-service.js';
import { duration, size } from './check-runs-output.js';

/** GitHub refuses release assets of 2 GiB or more: those are linked to the server's download instead. */
export const MAX_ASSET_BYTES = 2 * 1024 ** 3;

/** The first line of every release the app makes: how it knows its own (with the store's table). */
export const RELEASE_MARKER = '<!-- dstack-release';

/** One of the run's artifacts as the release carries it: an asset, or a link when too large. */
export interface ReleaseArtifact {
  jobId: string;
  workflow: string;
  path: string;
  files: number;
  /** The files' size, as the artifact's row has it. */
  bytes: number;
  /** The archive's size (a tar): what is uploaded, and what GitHub's limit applies to. */
  archiveBytes: number;
  /** The asset's name on GitHub. */
  asset: string;
  /** The server's download, for an archive too large to upload (or when there is no asset). */
  url?: string;
}

/** `WORKFLOW-PATH.tar` with what GitHub would rename replaced, unique within the release. */
export function assetNames(artifacts: readonly { workflow: string; path: string }[]): string[] {
  const seen = new Set<string>();
  return artifacts.map((a) => {
    const stem = `${a.workflow}-${a.path}`.replace(/[^\w.+-]+/g, '_').replace(/^[._]+|[._]+$/g, '') || 'artifact';
    let name = `${stem}.tar`;
    for (let i = 2; seen.has(name); i++) name = `${stem}-${i}.tar`;
    seen.add(name);
    return name;
  });
}

export interface ReleaseBodyInput {
  view: RunView;
  tag: string;
  sha: string;
  sender?: string;
  runUrl?: string;
  artifacts: ReleaseArtifact[];
  now?: number;
}

/**
 * A release's body: the run (workflow, arguments, who, when, its jobs) and its artifacts, with a
 * marker line that says the app made it and a manifest (asset → workflow and path) a later run
 * reads the assets back with.
 */
export function releaseBody(input: ReleaseBodyInput): string {
  const { view, tag } = input;
  const now = input.now ?? Date.now();
  const run = input.runUrl ? `[\`${view.run.name}\`](${input.runUrl})` : `\`${view.run.name}\``;
  const manifest = input.artifacts.map((a) => ({ asset: a.url ? null : a.asset, workflow: a.workflow, path: a.path, files: a.files, bytes: a.bytes, archiveBytes: a.archiveBytes }));
  const lines = [
    `${RELEASE_MARKER} run=${view.run.name} -->`,
    `**dstack** run ${run} of \`${view.run.workflow}\`${view.run.args ? ` \`${view.run.args.replace(/`/g, "'")}\`` : ''} at ${input.sha.slice(0, 7)}${input.sender ? `, started by @${input.sender}` : ''} on ${new Date(view.run.submitted_at).toISOString()}; tagged \`${tag}\` on ${new Date(now).toISOString()}.`,
    '',
    '| job | status | duration |',
    '|---|---|---|',
    ...view.jobs.map((j) => `| \`${j.workflow}\` | ${j.status}${j.exit_code ? ` (exit ${j.exit_code})` : ''} | ${j.started_at !== null ? duration(((j.finished_at ?? now) - j.started_at) / 1000) : '–'} |`),
    '',
  ];
  if (input.artifacts.length > 0) {
    lines.push('**Artifacts**', '');
    for (const a of input.artifacts) {
      const where = a.url ? `[download from the server](${a.url}) (${a.archiveBytes >= MAX_ASSET_BYTES ? 'too large for a release asset' : 'not uploaded'})` : `asset \`${a.asset}\``;
      lines.push(`- \`${a.workflow}\`: \`${a.path}\` — ${a.files} file${a.files === 1 ? '' : 's'}, ${size(a.bytes)}: ${where}`);
    }
    lines.push('');
  }
  lines.push(`Later runs of this repository use them with \`depends-on: ${view.run.workflow}:${tag}\`.`, '', `<!-- dstack-assets ${JSON.stringify(manifest).replace(/--/g, '-\\u002d')} -->`);
  return lines.join('\n');
}

/** The manifest of a release the app made, or undefined when the body has none. */
export function releaseManifest(body: string | null | undefined): { asset: string | null; workflow: string; path: string; files: number; bytes: number; archiveBytes: number }[] | undefined {
  const m = /<!-- dstack-assets (.*) -->/.exec(body ?? '');
  if (!m) return undefined;
  try {
    return JSON.parse(m[1]!) as ReturnType<typeof releaseManifest>;
  } catch {
    return undefined;
  }
}
