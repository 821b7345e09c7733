import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allRuns, cli, FIXTURE_BIN, makeRepo, startCli, tempDir, waitFor } from '../helpers/cli.js';

const PATH = `${FIXTURE_BIN}:${process.env.PATH}`;
const gpuRepo = (resources: string) =>
  makeRepo({
    '.dstack/workflows.yaml': `workflows:\n  - name: gpu\n    provider: bash\n    commands:\n      - echo "cuda=[$CUDA_VISIBLE_DEVICES]"\n    resources:\n${resources}`,
  });

describe('resources on this machine', () => {
  it('fails at once when a job needs a GPU the machine does not have', async () => {
    const r = await cli(['run', 'gpu'], { cwd: gpuRepo('      gpu: 1\n'), home: tempDir(), env: { PATH, FAKE_GPUS: '' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      "dstack: error: workflow 'gpu' needs 1 GPU, this machine has 0; lower 'resources' in the workflow, or run it on a machine that has them\n",
    );
  });

  it('gives a GPU job its GPUs through CUDA_VISIBLE_DEVICES', async () => {
    const home = tempDir();
    const r = await cli(['run', 'gpu'], { cwd: gpuRepo('      gpu: 2\n'), home, env: { PATH, FAKE_GPUS: 'NVIDIA A100-SXM4-80GB:81920,NVIDIA A100-SXM4-80GB:81920,Tesla V100-SXM2-16GB:16384' } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('cuda=[0,1]');
    const [run] = JSON.parse((await cli(['ps', '--json'], { cwd: tempDir(), home })).stdout);
    expect(run.jobs[0].gpus).toEqual([0, 1]);
  });

  it('never gives one GPU to two runs at once: the second waits, saying for what', async () => {
    const home = tempDir();
    const env = { PATH, FAKE_GPUS: 'NVIDIA A100-SXM4-80GB:81920' };
    const cwd = makeRepo({
      '.dstack/workflows.yaml': 'workflows:\n  - name: gpu\n    provider: bash\n    commands:\n      - echo "cuda=[$CUDA_VISIBLE_DEVICES]"\n      - sleep 2\n    resources:\n      gpu: 1\n',
    });
    const first = await cli(['run', 'gpu', '-d'], { cwd, home, env });
    const firstName = /^(\S+) /m.exec(first.stdout.split('\n')[1]!)![1]!;
    await waitFor(async () => (await allRuns(cwd, home))[0]!.jobs[0]!.status === 'running', 20_000, 'the first run to start');
    const second = startCli(['run', 'gpu'], { cwd, home, env });
    await waitFor(async () => (await allRuns(cwd, home))[0]!.jobs[0]!.reason === `waiting for 1 GPU(s): in use by ${firstName}`, 20_000, 'the second run to wait');
    const r = await second.exited;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('cuda=[0]');
    const [b, a] = await allRuns(cwd, home);
    expect(a!.status).toBe('done');
    expect(Date.parse(b!.jobs[0]!.started_at!)).toBeGreaterThanOrEqual(Date.parse(a!.jobs[0]!.finished_at!));
  });

  it('never overcommits CPUs across runs: a run that needs every CPU waits for the one that holds them, and starts when it ends', async () => {
    const home = tempDir();
    const cpus = os.availableParallelism();
    const cwd = makeRepo({
      '.dstack/workflows.yaml': `workflows:\n  - name: all\n    provider: bash\n    commands:\n      - sleep 1.5\n    resources:\n      cpu: ${cpus}\n`,
    });
    const first = await cli(['run', 'all', '-d'], { cwd, home });
    const firstName = /^(\S+) /m.exec(first.stdout.split('\n')[1]!)![1]!;
    await waitFor(async () => (await allRuns(cwd, home))[0]!.jobs[0]!.status === 'running', 20_000, 'the first run to start');
    const second = startCli(['run', 'all'], { cwd, home });
    await waitFor(async () => (await allRuns(cwd, home))[0]!.jobs[0]!.reason === `waiting for ${cpus} CPU(s): in use by ${firstName}`, 20_000, 'the second run to wait');
    expect((await second.exited).code).toBe(0);
    const [b, a] = await allRuns(cwd, home);
    const gap = Date.parse(b!.jobs[0]!.started_at!) - Date.parse(a!.jobs[0]!.finished_at!);
    expect(gap).toBeGreaterThanOrEqual(0);
    // Woken by the end of the other run, not by the slow check for crashed processes (every 5 s).
    expect(gap).toBeLessThan(3000);
  });

  it('never overcommits memory across runs either', async () => {
    const home = tempDir();
    const mib = Math.floor(os.totalmem() / 1048576);
    const cwd = makeRepo({
      '.dstack/workflows.yaml': `workflows:\n  - name: big\n    provider: bash\n    commands:\n      - sleep 1\n    resources:\n      memory: ${Math.ceil(mib * 0.6)}MB\n`,
    });
    await cli(['run', 'big', '-d'], { cwd, home });
    await waitFor(async () => (await allRuns(cwd, home))[0]!.jobs[0]!.status === 'running', 20_000, 'the first run to start');
    const second = await cli(['run', 'big'], { cwd, home });
    expect(second.code).toBe(0);
    const runs = JSON.parse((await cli(['ps', '-a', '--json'], { cwd, home })).stdout);
    const [b, a] = runs;
    const reasons = b.jobs[0].events.map((e: { reason: string | null }) => e.reason);
    expect(reasons).toContainEqual(`waiting for ${(Math.ceil(mib * 0.6) / 1024).toFixed(1).replace(/\.0$/, '')}GB of memory: in use by ${a.name}`);
    expect(Date.parse(b!.jobs[0]!.started_at!)).toBeGreaterThanOrEqual(Date.parse(a!.jobs[0]!.finished_at!));
  });

  it('matches GPUs by name and memory', async () => {
    const env = { PATH, FAKE_GPUS: 'NVIDIA A100-SXM4-80GB:81920,Tesla V100-SXM2-16GB:16384' };
    const ok = await cli(['run', 'gpu'], { cwd: gpuRepo('      gpu:\n        name: V100\n'), home: tempDir(), env });
    expect(ok.stdout).toContain('cuda=[1]');
    const no = await cli(['run', 'gpu'], { cwd: gpuRepo('      gpu:\n        name: A100\n        count: 2\n'), home: tempDir(), env });
    expect(no.code).toBe(1);
    expect(no.stderr).toContain("workflow 'gpu' needs 2 A100 GPUs, this machine has 1 such (NVIDIA A100-SXM4-80GB, Tesla V100-SXM2-16GB)");
  });

  it('fails at once when a job needs more CPUs or memory than the machine has', async () => {
    const cpu = await cli(['run', 'gpu'], { cwd: gpuRepo('      cpu: 4096\n'), home: tempDir() });
    expect(cpu.stderr).toMatch(/^dstack: error: workflow 'gpu' needs 4096 CPUs, this machine has \d+;/);
    const mem = await cli(['run', 'gpu'], { cwd: gpuRepo('      memory: 64TB\n'), home: tempDir() });
    expect(mem.stderr).toMatch(/^dstack: error: workflow 'gpu' needs 65536GB of memory, this machine has [\d.]+GB;/);
  });
});

describe('providers', () => {
  let server: http.Server;
  let base: string;
  let flaky = 0;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/data.txt') {
        res.writeHead(200, { 'content-length': '12' }).end('hello world\n');
      } else if (req.url === '/flaky.txt' && flaky++ < 1) {
        res.writeHead(503).end();
      } else if (req.url === '/flaky.txt') {
        res.writeHead(200).end('second try\n');
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('curl downloads a URL to output and saves it as an artifact, retrying server errors', async () => {
    const home = tempDir();
    const cwd = makeRepo({
      '.dstack/workflows.yaml': `workflows:\n  - name: get\n    provider: curl\n    url: ${base}/data.txt\n    output: raw/input.txt\n    artifacts: [raw]\n  - name: flaky\n    provider: curl\n    url: ${base}/flaky.txt\n    output: f.txt\n  - name: missing\n    provider: curl\n    url: ${base}/nope\n    output: n.txt\n`,
    });
    const r = await cli(['run', 'get'], { cwd, home });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('100% 0.0 MB of 0.0 MB');
    const name = /^(\S+) /m.exec(r.stdout.split('\n')[1]!)![1]!;
    expect(JSON.parse((await cli(['artifacts', 'list', name, '--json'], { cwd, home })).stdout)).toEqual([{ workflow: 'get', path: 'raw', files: 1, bytes: 12 }]);
    const f = await cli(['run', 'flaky'], { cwd, home });
    expect(f.code).toBe(0);
    expect(f.stdout).toContain('download failed (HTTP 503 Service Unavailable); retrying in 0.5s (1/3)');
    const m = await cli(['run', 'missing'], { cwd, home });
    expect(m.code).toBe(1);
    expect(m.stdout).toContain('download failed: HTTP 404 Not Found');
  });

  it('python runs the script with its arguments by the interpreter for `python:`', async () => {
    const home = tempDir();
    const version = (await import('node:child_process')).execFileSync('python3', ['-c', 'import sys;print("%d.%d"%sys.version_info[:2])']).toString().trim();
    const cwd = makeRepo({
      '.dstack/workflows.yaml': `workflows:\n  - name: py\n    provider: python\n    python: ${version}\n    script: main.py --name "big world" \${{ run.args }}\n    environment:\n      GREETING: hello\n  - name: old\n    provider: python\n    python: 2.6\n    script: main.py\n`,
      'main.py': 'import os, sys\nprint(os.environ["GREETING"], sys.argv[1:], "%d.%d" % sys.version_info[:2])\n',
    });
    const r = await cli(['run', 'py', '--x', '1'], { cwd, home });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`hello ['--name', 'big world', '--x', '1'] ${version}`);
    const old = await cli(['run', 'old'], { cwd, home });
    expect(old.code).toBe(1);
    expect(old.stdout).toMatch(/python 2\.6 is not installed: this machine has python3 \(\d+\.\d+\).*; install python2\.6, or change or remove 'python:' in the workflow/);
  });

  it('python installs requirements (a list, or a file) into a virtualenv of the job', async () => {
    const home = tempDir();
    const cwd = makeRepo({
      '.dstack/workflows.yaml':
        'workflows:\n  - name: venv\n    provider: python\n    requirements: []\n    script: main.py\n  - name: file\n    provider: python\n    requirements: requirements.txt\n    script: main.py\n',
      'main.py': 'import sys\nprint("prefix", sys.prefix, sys.prefix != sys.base_prefix)\n',
      // Nothing to fetch (no network here), but pip reads the file: a comment and a blank line.
      'requirements.txt': '# no packages\n\n',
    });
    const r = await cli(['run', 'venv'], { cwd, home });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/prefix \S+\/jobs\/[a-z]+-[a-z]+-\d+-0\/venv True/);
    const f = await cli(['run', 'file'], { cwd, home });
    expect(f.code).toBe(0);
    expect(f.stdout).toMatch(/prefix \S+\/venv True/);
  });

  it('prints the URL of a declared port once the job listens on it', async () => {
    const home = tempDir();
    const cwd = makeRepo({
      '.dstack/workflows.yaml': `workflows:\n  - name: serve\n    provider: bash\n    ports: [PORT]\n    commands:\n      - python3 -c "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', PORT)); s.listen(); print('listening', flush=True); time.sleep(30)"\n`,
    });
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const yaml = (await import('node:fs')).readFileSync(`${cwd}/.dstack/workflows.yaml`, 'utf8').replaceAll('PORT', String(port));
    (await import('node:fs')).writeFileSync(`${cwd}/.dstack/workflows.yaml`, yaml);
    const child = startCli(['run', 'serve'], { cwd, home, env: { DSTACK_STOP_GRACE_SECONDS: '1' } });
    await waitFor(() => child.output().stdout.includes(`serve: port ${port} is open at http://127.0.0.1:${port}`), 20_000, 'the port URL');
    child.kill('SIGINT');
    expect((await child.exited).code).toBe(1);
  });
});
