import type { State } from '../../app/state.js';
import type { JobRow } from '../../app/store/store.js';
import { isFinal } from '../../shared/job-status.js';
import type { ResolvedWorkflow } from '../../shared/workflow/types.js';
import { waitFor } from './cli.js';
import { workflow } from './service.js';

/** A bash workflow as the loader resolves it. */
export function bash(name: string, commands: string[], extra: Partial<ResolvedWorkflow> = {}): ResolvedWorkflow {
  // The spec says what the plan says (the server checks a submitted plan against its spec, as the loader makes it).
  const spec = {
    name,
    provider: 'bash',
    commands,
    ...(extra.artifacts ? { artifacts: extra.artifacts } : {}),
    ...(extra.cache ? { cache: extra.cache } : {}),
    ...(extra.dependsOn ? { 'depends-on': extra.dependsOn.map((d) => (d.tag ? `${d.workflow}:${d.tag}` : d.workflow)) } : {}),
  };
  return workflow(name, { spec: spec as ResolvedWorkflow['spec'], ...extra });
}

/** The server's user API, as the CLI calls it, with a user token. */
export function userApi(url: string, token: string) {
  const call = async <T>(method: string, route: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${url}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${route}: HTTP ${res.status} ${await res.text()}`);
    return (res.status === 204 ? undefined : await res.json()) as T;
  };
  return {
    call,
    /** Submits a run of `plan` at `source`; resolves with its name. */
    async submit(plan: ResolvedWorkflow[], source: { repoUrl: string; commit: string; patch?: string | null }): Promise<string> {
      const { name } = await call<{ name: string }>('POST', '/api/run-names');
      await call('POST', '/api/runs', {
        name,
        repo: source.repoUrl,
        workflow: plan.at(-1)!.name,
        args: '',
        plan,
        source: { repoUrl: source.repoUrl, commit: source.commit, patch: source.patch ?? null },
      });
      return name;
    },
    stop: (run: string, abort = false) => call('POST', `/api/runs/${run}/stop`, { abort }),
  };
}

/** The job once it has ended (as the server stored it), waiting up to `ms`. */
export async function ended(state: State, jobId: string, ms = 60_000): Promise<JobRow> {
  return (await waitFor(() => {
    const job = state.service.job(jobId);
    return job && isFinal(job.status) ? job : undefined;
  }, ms, `job ${jobId} to end`))!;
}
