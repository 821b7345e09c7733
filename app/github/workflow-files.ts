import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ProbotOctokit } from 'probot';
import { DstackError, isDstackError } from '../../shared/errors.js';
import { Project } from '../../shared/workflow/project.js';

export interface RepoAt {
  owner: string;
  repo: string;
  sha: string;
}

/** The files of `.dstack/` that the loader reads (shared/workflow/project.ts). */
const TOP = /^(workflows|variables)\.ya?ml$/;
const IN_WORKFLOWS = /\.ya?ml$/;

/**
 * Loads a repository's workflows at one commit through the contents API (`.dstack/workflows.yaml`,
 * `.dstack/workflows/*.yaml`, `.dstack/variables.yaml`), into a temporary folder that `use` gets the
 * Project of; the folder is removed afterwards. A mistake in the files is the loader's own
 * DstackError (file:line:col); one that names the folder names the repository and commit instead.
 */
export async function withWorkflowsAt<T>(octokit: ProbotOctokit, at: RepoAt, use: (project: Project, root: string) => Promise<T>): Promise<T> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'dstack-github-'));
  const where = `${at.owner}/${at.repo} at ${at.sha.slice(0, 7)}`;
  try {
    const top = await list(octokit, at, '.dstack');
    const files = top.filter((e) => e.type === 'file' && TOP.test(e.name)).map((e) => e.path);
    if (top.some((e) => e.type === 'dir' && e.name === 'workflows')) {
      files.push(...(await list(octokit, at, '.dstack/workflows')).filter((e) => e.type === 'file' && IN_WORKFLOWS.test(e.name)).map((e) => e.path));
    }
    await fsp.mkdir(path.join(root, '.dstack/workflows'), { recursive: true });
    for (const file of files) await fsp.writeFile(path.join(root, file), await read(octokit, at, file));
    let project: Project;
    try {
      project = Project.load(root);
    } catch (err) {
      if (isDstackError(err) && err.message.includes(root)) throw new DstackError(err.code, err.message.split(root).join(where), { cause: err });
      throw err;
    }
    return await use(project, root);
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
}

interface Entry {
  type: string;
  name: string;
  path: string;
}

async function list(octokit: ProbotOctokit, at: RepoAt, dir: string): Promise<Entry[]> {
  try {
    const { data } = await octokit.rest.repos.getContent({ owner: at.owner, repo: at.repo, path: dir, ref: at.sha });
    return Array.isArray(data) ? data.filter((e) => !e.path.includes('..')).map((e) => ({ type: e.type, name: e.name, path: e.path })) : [];
  } catch (err) {
    if ((err as { status?: number }).status === 404) return [];
    throw err;
  }
}

async function read(octokit: ProbotOctokit, at: RepoAt, file: string): Promise<Buffer> {
  const { data } = await octokit.rest.repos.getContent({ owner: at.owner, repo: at.repo, path: file, ref: at.sha });
  if (Array.isArray(data) || data.type !== 'file' || !('content' in data)) throw new DstackError('DSTACK_ERR_WORKFLOW_INVALID', `${file} is not a file at ${at.sha.slice(0, 7)}`);
  if (data.encoding === 'base64') return Buffer.from(data.content, 'base64');
  // Files over 1 MB come without content: ask for the raw bytes.
  const raw = await octokit.request('GET /repos/{owner}/{repo}/contents/{path}', { owner: at.owner, repo: at.repo, path: file, ref: at.sha, mediaType: { format: 'raw' } });
  return Buffer.from(raw.data as unknown as string);
}
