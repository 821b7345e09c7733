import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { allRuns, cli, makeRepo, runNameOf, startCli, tempDir, waitFor } from '../helpers/cli.js';


// The job traps SIGINT like a training script that saves a checkpoint before it exits.
const workflows = [
  'workflows:',
  '  - name: long',
  '    provider: bash',
  '    commands:',
  '      - mkdir -p out',
  "      - trap 'echo interrupted > out/state; echo got-sigint; exit 130' INT",
  '      - echo started > out/state',
  '      - echo ready',
  '      - for i in $(seq 1 600); do sleep 0.1; done',
  '    artifacts: [out]',
  '  - name: after',
  '    provider: bash',
  '    depends-on: [long]',
  '    commands: [echo never]',
  '',
].join('\n');


describe('stopping runs', () => {
  it('Ctrl+C once stops the run: the job gets SIGINT, artifacts are saved, the run ends stopped', async () => {
    const home = tempDir();
    const cwd = makeRepo({ '.dstack/workflows.yaml': workflows });
    const child = startCli(['run', 'after'], { cwd, home });
    await waitFor(() => child.output().stdout.includes('ready'), 20_000, 'the job to start');
    child.kill('SIGINT');
    const r = await child.exited;
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('Stopping… (press Ctrl+C again to abort)');
    expect(r.stdout).toContain('got-sigint');
    const [run] = await allRuns(cwd, home);
    expect(run!.status).toBe('stopped');
    expect(run!.jobs).toMatchObject([
      { workflow: 'long', status: 'stopped', reason: 'stopped by the user' },
      { workflow: 'after', status: 'stopped', reason: 'stopped before it started' },
    ]);
    const out = tempDir();
    await cli(['artifacts', 'download', run!.name, '-o', out], { cwd, home });
    expect(fs.readFileSync(path.join(out, 'out/state'), 'utf8')).toBe('interrupted\n');
  });

  it('Ctrl+C twice aborts a job that ignores SIGINT, without waiting for the grace period', async () => {
    const home = tempDir();
    const cwd = makeRepo({
      '.dstack/workflows.yaml': "workflows:\n  - name: stubborn\n    provider: bash\n    commands:\n      - trap '' INT\n      - echo ready\n      - for i in $(seq 1 600); do sleep 0.1; done\n",
    });
    const child = startCli(['run', 'stubborn'], { cwd, home, env: { DSTACK_STOP_GRACE_SECONDS: '60' } });
    await waitFor(() => child.output().stdout.includes('ready'), 20_000, 'the job to start');
    child.kill('SIGINT');
    await waitFor(() => child.output().stdout.includes('Stopping…'), 10_000, 'the stop to begin');
    child.kill('SIGINT');
    const r = await child.exited;
    expect(r.stdout).toContain('Aborting…');
    expect(r.code).toBe(1);
    const [run] = await allRuns(cwd, home);
    expect(run!.jobs[0]).toMatchObject({ status: 'aborted', reason: 'aborted by the user' });
  });

  it('runs detached with -d, follows with logs -f, and dstack stop ends it with artifacts kept', async () => {
    const home = tempDir();
    const cwd = makeRepo({ '.dstack/workflows.yaml': workflows });
    const r = await cli(['run', 'long', '-d'], { cwd, home });
    expect(r.code).toBe(0);
    const name = runNameOf(r.stdout);
    expect(r.stdout).toContain(`Detached. Follow with: dstack logs ${name} -f`);
    const follow = startCli(['logs', name, '-f'], { cwd, home });
    await waitFor(() => follow.output().stdout.includes('ready'), 20_000, 'logs -f to show the job');
    const stop = await cli(['stop', name], { cwd, home });
    expect(stop.code).toBe(0);
    expect(stop.stdout).toBe(`Stopping ${name}…\n${name}: stopped\n`);
    const followed = await follow.exited;
    expect(followed.code).toBe(0);
    expect(followed.stdout).toContain('got-sigint');
    const logs = await cli(['logs', name], { cwd, home });
    expect(logs.stdout).toBe(followed.stdout);
    const list = JSON.parse((await cli(['artifacts', 'list', name, '--json'], { cwd, home })).stdout);
    expect(list).toEqual([{ workflow: 'long', path: 'out', files: 1, bytes: 'interrupted\n'.length }]);
  });

  it('stop --abort kills at once and the run ends aborted', async () => {
    const home = tempDir();
    const cwd = makeRepo({ '.dstack/workflows.yaml': workflows });
    const name = runNameOf((await cli(['run', 'long', '-d'], { cwd, home })).stdout);
    await waitFor(async () => (await cli(['logs', name], { cwd, home })).stdout.includes('ready'), 20_000, 'the job to start');
    const stop = await cli(['stop', name, '--abort'], { cwd, home });
    expect(stop.stdout).toBe(`Aborting ${name}…\n${name}: aborted\n`);
    const [run] = await allRuns(cwd, home);
    expect(run!.jobs[0]).toMatchObject({ status: 'aborted', reason: 'aborted by the user' });
  });

  it('shows the run of a CLI that was killed as aborted, not running forever', async () => {
    const home = tempDir();
    const cwd = makeRepo({ '.dstack/workflows.yaml': workflows });
    const child = startCli(['run', 'long'], { cwd, home });
    await waitFor(() => child.output().stdout.includes('ready'), 20_000, 'the job to start');
    child.kill('SIGKILL');
    await child.exited;
    const [run] = await allRuns(cwd, home);
    expect(run!.status).toBe('aborted');
    expect(run!.jobs[0]!.reason).toMatch(/^the dstack process running this job exited/);
    // The log written before the crash is still there.
    expect((await cli(['logs', run!.name], { cwd, home })).stdout).toContain('ready');
  });

  it("kills what a killed CLI's job left running (a process that ignores the hangup) at the next command", async () => {
    const home = tempDir();
    const marks = tempDir();
    const cwd = makeRepo({
      '.dstack/workflows.yaml': `workflows:\n  - name: daemon\n    provider: bash\n    commands:\n      - nohup sleep 600 > /dev/null 2>&1 & echo $! > ${marks}/pid\n      - echo ready\n      - wait\n`,
    });
    const child = startCli(['run', 'daemon'], { cwd, home });
    await waitFor(() => child.output().stdout.includes('ready'), 20_000, 'the job to start');
    child.kill('SIGKILL');
    await child.exited;
    const pid = Number(fs.readFileSync(path.join(marks, 'pid'), 'utf8'));
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(alive()).toBe(true);
    expect((await cli(['ps'], { cwd, home })).code).toBe(0);
    await waitFor(() => !alive(), 5000, 'the leftover process to be killed');
  });

  it("removes a killed CLI's job folder and run snapshot at the next command", async () => {
    const home = tempDir();
    const cwd = makeRepo({ '.dstack/workflows.yaml': workflows });
    const child = startCli(['run', 'long'], { cwd, home });
    await waitFor(() => child.output().stdout.includes('ready'), 20_000, 'the job to start');
    const name = runNameOf(child.output().stdout);
    expect(fs.readdirSync(path.join(home, 'jobs'))).toEqual([`${name}-0`]);
    expect(fs.readdirSync(path.join(home, 'runs'))).toEqual([name]);
    child.kill('SIGKILL');
    await child.exited;
    expect((await cli(['ps'], { cwd, home })).code).toBe(0);
    expect(fs.readdirSync(path.join(home, 'jobs'))).toEqual([]);
    expect(fs.readdirSync(path.join(home, 'runs'))).toEqual([]);
  });
});
