import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import ignore, { type Ignore } from 'ignore';

/**
 * Copies a folder's files to `dest` the way a job should see them: what git would track, that is
 * tracked files plus untracked ones `.gitignore` does not exclude. Outside git, `.gitignore`
 * files are honoured all the same (seed 000), and `.git` itself is never copied.
 *
 * The names stream from git (or a walk) straight into `cp` (GNU coreutils, through xargs), which
 * copies in the kernel (copy_file_range, or a reflink where the file system has them) at the
 * speed of `cp -a`; nothing here holds the list, so memory stays flat in the number of files.
 * Without GNU cp (macOS), Node copies the files itself.
 */
export async function copySource(src: string, dest: string): Promise<void> {
  await fsp.mkdir(dest, { recursive: true });
  const names = (await isGitTop(src)) ? await gitNames(src) : Readable.from(walkNames(src));
  if (await hasGnuCp()) {
    await run('xargs', ['-0', '-r', 'cp', '-a', '--reflink=auto', '--parents', '-t', dest, '--'], src, names);
    return;
  }
  await copyEach(src, dest, names);
}

/**
 * Copies a whole tree (a run's snapshot into a job's folder): one `cp -a`, with reflinks where the
 * file system has them, so each further job of a run costs metadata only there.
 */
export async function copyTree(src: string, dest: string): Promise<void> {
  await fsp.mkdir(dest, { recursive: true });
  if (await hasGnuCp()) {
    await run('cp', ['-a', '--reflink=auto', '--', `${src}/.`, dest], src);
    return;
  }
  await copyEach(src, dest, Readable.from(walkNames(src, { gitignore: false })));
}

let gnuCp: Promise<boolean> | undefined;
function hasGnuCp(): Promise<boolean> {
  gnuCp ??= new Promise((resolve) => execFile('cp', ['--version'], (err, stdout) => resolve(!err && stdout.includes('GNU coreutils'))));
  return gnuCp;
}

async function isGitTop(src: string): Promise<boolean> {
  const top = await new Promise<string | undefined>((resolve) =>
    execFile('git', ['rev-parse', '--show-toplevel'], { cwd: src }, (err, stdout) => resolve(err ? undefined : stdout.trim())),
  );
  return top !== undefined && path.resolve(top) === (await fsp.realpath(src));
}

/**
 * The NUL-separated names of tracked files and untracked ones .gitignore does not exclude, as git
 * streams them, less tracked files deleted from the work tree.
 */
async function gitNames(src: string): Promise<Readable> {
  const deleted = new Set(
    (
      await new Promise<string>((resolve, reject) =>
        execFile('git', ['ls-files', '-z', '--deleted'], { cwd: src, maxBuffer: 1 << 28 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
      )
    )
      .split('\0')
      .filter(Boolean),
  );
  const git = spawn('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: src, stdio: ['ignore', 'pipe', 'ignore'] });
  // Read from the start: Node discards a child's unread output when it exits, and git is quick.
  const listed = git.stdout.pipe(new PassThrough());
  if (deleted.size === 0) return listed;
  return Readable.from(
    (async function* () {
      for await (const name of splitNul(listed)) if (!deleted.has(name)) yield `${name}\0`;
    })(),
  );
}

async function* splitNul(stream: Readable): AsyncGenerator<string> {
  let rest = '';
  for await (const chunk of stream) {
    const parts = (rest + (chunk as Buffer).toString()).split('\0');
    rest = parts.pop()!;
    yield* parts.filter(Boolean);
  }
  if (rest) yield rest;
}

/** Files under `root` (NUL-terminated names), honouring `.gitignore` files unless told not to; never `.git`. */
async function* walkNames(root: string, options: { gitignore: boolean } = { gitignore: true }): AsyncGenerator<string> {
  const stack: { dir: string; rules: { base: string; ig: Ignore }[] }[] = [{ dir: '', rules: [] }];
  while (stack.length > 0) {
    let { dir, rules } = stack.pop()!;
    const gitignore = path.join(root, dir, '.gitignore');
    if (options.gitignore && fs.existsSync(gitignore)) rules = [...rules, { base: dir, ig: ignore().add(await fsp.readFile(gitignore, 'utf8')) }];
    for (const entry of await fsp.readdir(path.join(root, dir), { withFileTypes: true })) {
      if (entry.name === '.git' && options.gitignore) continue;
      const rel = dir ? `${dir}/${entry.name}` : entry.name;
      const isDir = entry.isDirectory();
      if (rules.some(({ base, ig }) => ig.ignores(path.posix.relative(base, rel) + (isDir ? '/' : '')))) continue;
      if (isDir) stack.push({ dir: rel, rules });
      else yield `${rel}\0`;
    }
  }
}

/** Runs a command to its end, feeding it `input`; its error output makes the error's message. */
function run(cmd: string, args: string[], cwd: string, input?: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: [input ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 4000) stderr += d.toString();
    });
    if (input) {
      child.stdin!.on('error', () => {});
      input.on('error', (err) => child.stdin!.destroy(err));
      input.pipe(child.stdin!);
    }
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`copying the repository failed: ${stderr.trim() || `${cmd} exited with ${code}`}`))));
  });
}

/** The portable copy: a few files at a time, without holding up the event loop. */
async function copyEach(src: string, dest: string, names: Readable): Promise<void> {
  const made = new Set<string>();
  const copyOne = async (rel: string) => {
    const from = path.join(src, rel);
    let st: fs.Stats;
    try {
      st = await fsp.lstat(from);
    } catch {
      return; // gone since it was listed
    }
    const to = path.join(dest, rel);
    const dir = path.dirname(to);
    if (!made.has(dir)) {
      await fsp.mkdir(dir, { recursive: true });
      made.add(dir);
    }
    if (st.isSymbolicLink()) await fsp.symlink(await fsp.readlink(from), to);
    else if (st.isFile()) await fsp.copyFile(from, to, fs.constants.COPYFILE_FICLONE);
  };
  const inflight = new Set<Promise<void>>();
  for await (const rel of splitNul(names)) {
    const p = copyOne(rel).finally(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= 8) await Promise.race(inflight);
  }
  await Promise.all(inflight);
}
