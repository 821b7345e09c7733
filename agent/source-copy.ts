import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import ignore, { type Ignore } from 'ignore';

/**
 * Copies a folder's files to `dest` the way a job should see them: what git would track, that is
 * tracked files plus untracked ones `.gitignore` does not exclude. Outside git, `.gitignore`
 * files are honoured all the same (seed 000), and `.git` itself is never copied.
 */
export async function copySource(src: string, dest: string): Promise<{ files: number }> {
  fs.mkdirSync(dest, { recursive: true });
  const files = gitFiles(src) ?? walk(src);
  const made = new Set<string>();
  let n = 0;
  // Copies run a few at a time, without holding up the event loop (other jobs' logs, stops).
  const copyOne = async (rel: string) => {
    const from = path.join(src, rel);
    let st: fs.Stats;
    try {
      st = await fsp.lstat(from);
    } catch {
      return; // tracked but deleted in the work tree
    }
    const to = path.join(dest, rel);
    const dir = path.dirname(to);
    if (!made.has(dir)) {
      await fsp.mkdir(dir, { recursive: true });
      made.add(dir);
    }
    if (st.isSymbolicLink()) await fsp.symlink(await fsp.readlink(from), to);
    else if (st.isFile()) await fsp.copyFile(from, to, fs.constants.COPYFILE_FICLONE);
    else return;
    n++;
  };
  let next = 0;
  const worker = async () => {
    while (next < files.length) await copyOne(files[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(8, files.length) }, worker));
  return { files: n };
}

function gitFiles(src: string): string[] | undefined {
  try {
    const top = execFileSync('git', ['rev-parse', '--show-toplevel'], { cwd: src, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    if (path.resolve(top) !== fs.realpathSync(src)) return undefined;
    const out = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
      cwd: src,
      stdio: ['ignore', 'pipe', 'ignore'],
      maxBuffer: 1 << 30,
    });
    return [...new Set(out.toString().split('\0').filter(Boolean))];
  } catch {
    return undefined;
  }
}

function walk(root: string): string[] {
  const out: string[] = [];
  const visit = (dir: string, rules: { base: string; ig: Ignore }[]) => {
    const gitignore = path.join(root, dir, '.gitignore');
    if (fs.existsSync(gitignore)) rules = [...rules, { base: dir, ig: ignore().add(fs.readFileSync(gitignore, 'utf8')) }];
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      if (entry.name === '.git') continue;
      const rel = dir ? `${dir}/${entry.name}` : entry.name;
      const isDir = entry.isDirectory();
      const ignored = rules.some(({ base, ig }) => ig.ignores(path.posix.relative(base, rel) + (isDir ? '/' : '')));
      if (ignored) continue;
      if (isDir) visit(rel, rules);
      else out.push(rel);
    }
  };
  visit('', []);
  return out;
}
