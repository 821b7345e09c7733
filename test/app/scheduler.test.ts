import { describe, expect, it } from 'vitest';
import { Scheduler, type Agent, type StartedJob, type StopMode } from '../../app/scheduler/scheduler.js';
import type { RunService } from '../../app/run-service.js';
import type { JobRow } from '../../app/store/store.js';
import type { JobStatus } from '../../shared/job-status.js';
import type { Gpu, MachineResources } from '../../shared/resources.js';
import type { Resources } from '../../shared/workflow/types.js';
import { closeAfterTest } from '../helpers/cli.js';
import { openService, workflow } from '../helpers/service.js';

const A100 = (index: number): Gpu => ({ index, name: 'NVIDIA A100-SXM4-80GB', memoryMiB: 81920, uuid: `GPU-a100-${index}` });

/**
 * An agent whose jobs run until the test ends them: it reports statuses to the service as a job
 * runner would, so the scheduler sees exactly what it sees in production.
 */
class HeldAgent implements Agent {
  readonly started: { job: JobRow; gpus: Gpu[]; stops: StopMode[]; end: (status: JobStatus) => void }[] = [];

  constructor(
    private readonly service: RunService,
    readonly id: string,
    readonly resources: MachineResources,
    who: { owner?: string; labels?: string[] } = {},
  ) {
    this.owner = who.owner;
    this.labels = who.labels;
  }

  readonly owner: string | undefined;
  readonly labels: string[] | undefined;

  start(job: JobRow, gpus: Gpu[]): StartedJob {
    this.service.setJobStatus(job.id, 'running');
    let end!: (status: JobStatus) => void;
    const done = new Promise<JobStatus>((resolve) => {
      end = (status) => {
        this.service.setJobStatus(job.id, status);
        resolve(status);
      };
    });
    const entry = { job, gpus, stops: [] as StopMode[], end };
    this.started.push(entry);
    return { done, stop: (mode) => entry.stops.push(mode) };
  }

  job(workflow: string) {
    return this.started.find((s) => s.job.workflow === workflow);
  }
}

const machine = (over: Partial<MachineResources> = {}): MachineResources => ({ cpus: 8, memoryMiB: 32768, gpus: [], ...over });
const needs = (over: Partial<Resources>): Resources => ({ gpu: { count: 0 }, interruptible: false, ...over });

/** Resolves once the scheduler has had a chance to look (it looks on setImmediate). */
const settle = () => new Promise((r) => setImmediate(() => setImmediate(r)));


function setup() {
  const s = openService();
  closeAfterTest(s);
  let n = 0;
  const submit = (...plan: Parameters<typeof workflow>[]) => submitAs(null, ...plan);
  const submitAs = (owner: string | null, ...plan: Parameters<typeof workflow>[]) => {
    const runName = `test-run-${++n}`;
    s.service.submit({ repo: '/repo', workflow: plan.at(-1)![0], args: '', runName, plan: plan.map((p) => workflow(...p)), executor: null, owner });
    return runName;
  };
  const scheduler = (runs?: string[]) => {
    const sch = new Scheduler(s.service, { runs });
    closeAfterTest(sch);
    return sch;
  };
  return { ...s, submit, submitAs, scheduler };
}

describe('Scheduler', () => {
  it('starts a job once its dependencies are done, and independent jobs side by side', async () => {
    const { service, submit, scheduler } = setup();
    const run = submit(['a'], ['b'], ['c', { dependsOn: [{ workflow: 'a' }, { workflow: 'b' }] }]);
    const sch = scheduler();
    const agent = new HeldAgent(service, 'box', machine());
    sch.addAgent(agent);
    await settle();
    expect(agent.started.map((s) => s.job.workflow)).toEqual(['a', 'b']);
    agent.job('a')!.end('done');
    await settle();
    expect(agent.job('c')).toBeUndefined();
    agent.job('b')!.end('done');
    await settle();
    expect(agent.job('c')).toBeDefined();
    agent.job('c')!.end('done');
    const view = await sch.finished(run);
    expect(view.jobs.map((j) => j.status)).toEqual(['done', 'done', 'done']);
  });

  it('fails a job whose dependency did not finish, without running it', async () => {
    const { service, submit, scheduler } = setup();
    const run = submit(['a'], ['b', { dependsOn: [{ workflow: 'a' }] }]);
    const sch = scheduler();
    const agent = new HeldAgent(service, 'box', machine());
    sch.addAgent(agent);
    await settle();
    agent.job('a')!.end('failed');
    const view = await sch.finished(run);
    expect(view.jobs[1]).toMatchObject({ status: 'failed', reason: "not run: dependency 'a' failed" });
    expect(agent.job('b')).toBeUndefined();
  });

  it('hands each GPU to one job at a time, by UUID, and says which run holds a busy one', async () => {
    const { service, submit, scheduler } = setup();
    const gpu = needs({ gpu: { count: 1, name: 'a100' } });
    const first = submit(['one', { resources: gpu }]);
    const second = submit(['two', { resources: gpu }]);
    const third = submit(['three', { resources: gpu }]);
    const sch = scheduler();
    const agent = new HeldAgent(service, 'box', machine({ gpus: [A100(0), A100(1)] }));
    sch.addAgent(agent);
    await settle();
    expect(agent.started.map((s) => [s.job.workflow, s.gpus.map((g) => g.uuid)])).toEqual([
      ['one', ['GPU-a100-0']],
      ['two', ['GPU-a100-1']],
    ]);
    expect(service.view(third).jobs[0]!.reason).toBe(`waiting for 1 GPU(s): in use by ${first}, ${second}`);
    agent.job('one')!.end('done');
    await settle();
    expect(agent.job('three')!.gpus.map((g) => g.uuid)).toEqual(['GPU-a100-0']);
    expect(service.view(third).jobs[0]!.gpus).toBe('0');
  });

  it('shares a machine with another scheduler through the store: CPUs and memory are never overcommitted', async () => {
    const { service, submit, scheduler } = setup();
    const mine = submit(['big', { resources: needs({ cpu: 6, memoryMiB: 1024 }) }]);
    const theirs = submit(['also-big', { resources: needs({ cpu: 4 }) }]);
    const small = submit(['small', { resources: needs({ memoryMiB: 40000 }) }]);
    // Two processes on one machine: one agent id, one scheduler each.
    const a = new HeldAgent(service, 'local', machine());
    const b = new HeldAgent(service, 'local', machine());
    scheduler([mine]).addAgent(a);
    await settle();
    const other = scheduler([theirs, small]);
    other.addAgent(b);
    await settle();
    expect(a.started).toHaveLength(1);
    expect(b.started).toHaveLength(0);
    expect(service.view(theirs).jobs[0]!.reason).toBe(`waiting for 4 CPU(s): in use by ${mine}`);
    // More memory than the machine has: it waits, saying so, for an agent that could run it.
    expect(service.view(small).jobs[0]!.reason).toBe('waiting: needs 39.1GB of memory, this machine has 32GB');
    a.job('big')!.end('done');
    await settle();
    expect(b.started.map((s) => s.job.workflow)).toEqual(['also-big']);
  });

  it('stops a run: jobs not started end stopped at once, running ones are asked to stop', async () => {
    const { service, submit, scheduler } = setup();
    const run = submit(['a'], ['b', { dependsOn: [{ workflow: 'a' }] }]);
    const sch = scheduler();
    const agent = new HeldAgent(service, 'box', machine());
    sch.addAgent(agent);
    await settle();
    sch.stop(run, 'stop');
    expect(service.view(run).jobs[1]).toMatchObject({ status: 'stopped', reason: 'stopped before it started' });
    expect(agent.job('a')!.stops).toEqual(['stop']);
    sch.stop(run, 'abort');
    expect(agent.job('a')!.stops).toEqual(['stop', 'abort']);
    agent.job('a')!.end('aborted');
    expect((await sch.finished(run)).status).toBe('aborted');
  });

  it('drives only its own runs when told which', async () => {
    const { service, submit, scheduler } = setup();
    submit(['theirs']);
    const mine = submit(['mine']);
    const agent = new HeldAgent(service, 'box', machine());
    scheduler([mine]).addAgent(agent);
    await settle();
    expect(agent.started.map((s) => s.job.run_name)).toEqual([mine]);
  });

  it('aborts a job whose agent fails to start it, and frees what it claimed', async () => {
    const { service, submit, scheduler } = setup();
    const run = submit(['a', { resources: needs({ cpu: 8 }) }]);
    const sch = scheduler();
    sch.addAgent({ id: 'box', resources: machine(), start: () => { throw new Error('no such directory'); } });
    const view = await sch.finished(run);
    expect(view.jobs[0]).toMatchObject({ status: 'aborted', reason: 'infrastructure error: no such directory' });
    const next = submit(['b', { resources: needs({ cpu: 8 }) }]);
    const agent = new HeldAgent(service, 'box', machine());
    sch.removeAgent('box');
    sch.addAgent(agent);
    await settle();
    expect(agent.started.map((s) => s.job.run_name)).toEqual([next]);
  });

  it("gives a job only to its owner's agents with every label it asks for, and names the agents while it waits", async () => {
    const { service, submitAs, scheduler } = setup();
    const sch = scheduler();
    const theirs = new HeldAgent(service, 'other-box', machine({ gpus: [A100(0)] }), { owner: 'globex', labels: ['a100'] });
    const cpu = new HeldAgent(service, 'cpu-1', machine(), { owner: 'acme', labels: ['cpu'] });
    sch.addAgent(theirs);
    sch.addAgent(cpu);
    const run = submitAs('acme', ['train', { resources: needs({ gpu: { count: 1, name: 'A100' }, labels: ['a100'] }) }]);
    await settle();
    expect(theirs.started).toHaveLength(0);
    expect(cpu.started).toHaveLength(0);
    expect(service.view(run).jobs[0]!.reason).toBe("waiting: needs 1× A100, labels a100 (an agent of acme); agents: cpu-1 no label a100");
    // An agent of the owner with the label connects: the job goes there.
    const gpuBox = new HeldAgent(service, 'gpu-box-1', machine({ gpus: [A100(0)] }), { owner: 'acme', labels: ['a100', 'nvme'] });
    sch.addAgent(gpuBox);
    await settle();
    expect(gpuBox.started.map((s) => s.job.run_name)).toEqual([run]);
    // A second such job waits for it, and says it is busy.
    const next = submitAs('acme', ['train', { resources: needs({ gpu: { count: 1, name: 'A100' }, labels: ['a100'] }) }]);
    await settle();
    expect(service.view(next).jobs[0]!.reason).toBe("waiting: needs 1× A100, labels a100 (an agent of acme); agents: cpu-1 no label a100, gpu-box-1 1× A100 busy");
  });
});
