import type { StopMode } from '../../app/scheduler/scheduler.js';
import { DstackError } from '../../shared/errors.js';
import { shellJoin } from '../../shared/shell-quote.js';
import { Project } from '../../shared/workflow/project.js';
import { ProviderRepos } from '../../shared/workflow/provider-repos.js';
import { openClient } from '../client/open-client.js';
import { dstackHome, homePaths } from '../local/home.js';
import { findRepoRoot } from '../local/repo-root.js';
import { SecretStore } from '../local/secret-store.js';
import { localSettings } from '../local/settings.js';
import { colorsEnabled, paint } from '../output/colors.js';
import { LogPrinter } from '../output/log-printer.js';
import { jobSummary, runTable } from '../output/run-table.js';
import { checkLabels, parseRunArgs, withLabels } from '../../shared/run-args.js';

export interface RunOptions {
  detach?: boolean;
  isolation?: string;
  image?: string;
  /** `--label L` (repeatable): agent labels every job of the run asks for. */
  label?: string[];
}

/**
 * `dstack run`: resolves the plan here (workflows, variables, custom providers, secret names), then
 * submits it — to this machine's state, where this process runs it, or to a server, whose agents
 * do — and follows it to its end. Ctrl+C stops it, twice aborts it; the exit code is 0 when every
 * job is done.
 */
export async function runCommand(workflow: string, tokens: string[], opts: RunOptions): Promise<number> {
  // A bad setting is found now, not when the run is stopped.
  localSettings();
  const root = findRepoRoot();
  const client = await openClient();
  // Against a server, git reads the changes to send while the workflows are loaded and planned.
  client.prepare?.(root);
  try {
    const project = Project.load(root);
    const closure = project.closure(workflow);
    const variableNames = new Set(closure.flatMap((wf) => Object.keys(project.variablesOf(wf))));
    const parsed = parseRunArgs(tokens, (name) => variableNames.has(name));
    const detach = Boolean(opts.detach || parsed.detach);
    const labels = checkLabels([...(opts.label ?? []), ...(parsed.labels ?? [])]);

    const home = dstackHome();
    const runName = await client.newRunName();
    const secrets = new SecretStore(home).names().map((s) => s.name);
    const providers = await project.providersFor(closure, new ProviderRepos(homePaths(home).providers));
    const plan = closure.map((name) => withLabels(project.resolve(name, { args: parsed.args, runName, overrides: parsed.overrides, secrets, providers }), labels));
    const view = await client.submit({
      root,
      workflow,
      args: shellJoin(parsed.args),
      runName,
      plan,
      detach,
      isolation: parsed.isolation ?? opts.isolation,
      image: parsed.image ?? opts.image,
    });
    const colors = colorsEnabled();
    const color = paint(colors);
    process.stdout.write(runTable([view], colors));
    if (detach) {
      process.stdout.write(`\nDetached. Follow with: dstack logs ${runName} -f\n`);
      return 0;
    }

    const printer = new LogPrinter(process.stdout, new Map(view.jobs.map((j) => [j.id, j.workflow])), colors, client.logSource);
    let interrupts = 0;
    // Set once the run had ABORT_WAIT_MS to end after an abort: following stops there.
    const giveUp = new AbortController();
    let giveUpTimer: NodeJS.Timeout | undefined;
    const offSignals = onStopSignals((mode) => {
      interrupts++;
      const abort = mode === 'abort' || interrupts > 1;
      printer.line(color('yellow', abort ? 'Aborting…' : 'Stopping… (press Ctrl+C again to abort)'));
      client.stop(runName, abort ? 'abort' : 'stop').catch((err: unknown) => {
        // Cut by the exit after the second signal: said already.
        if (giveUp.signal.aborted) return;
        printer.line(color('red', `could not ${abort ? 'abort' : 'stop'} ${runName}: ${err instanceof Error ? err.message : String(err)}`));
      });
      // An abort (the second signal, or a hang-up) ends this process, whatever the server does (it
      // may answer errors, or nothing).
      if (abort && !giveUpTimer) giveUpTimer = setTimeout(() => giveUp.abort(), ABORT_WAIT_MS).unref();
    });
    try {
      const final = await client.attach(runName, printer, colors, giveUp.signal);
      await printer.finish();
      printer.line('\n' + jobSummary(final, colors).trimEnd());
      await printer.finish();
      return final.jobs.every((j) => j.status === 'done') ? 0 : 1;
    } catch (err) {
      if (!giveUp.signal.aborted) throw err;
      await printer.finish();
      printer.line(color('red', `${runName} did not end within ${ABORT_WAIT_MS / 1000} s of the abort; not waiting for it ('dstack ps ${runName}' shows how it ends)`));
      await printer.finish();
      return 1;
    } finally {
      offSignals();
    }
  } finally {
    client.close();
  }
}

/** After the second signal, how long the run gets to end (and print its summary) before `dstack run` exits anyway. */
const ABORT_WAIT_MS = 5000;

/** `dstack run -d` runs here, in a background process of its own (local mode). */
export async function executeDetached(runName: string): Promise<number> {
  const { LocalClient } = await import('../client/local-client.js');
  const client = new LocalClient();
  const offSignals = onStopSignals((mode) => void client.stop(runName, mode));
  try {
    const final = await client.attach(runName);
    return final.jobs.every((j) => j.status === 'done') ? 0 : 1;
  } finally {
    offSignals();
    client.close();
  }
}

/**
 * SIGINT (Ctrl+C) and SIGTERM stop (a service manager's SIGTERM asks for the same graceful end as a
 * user's Ctrl+C; the second of either aborts); SIGHUP aborts, since the terminal that could say
 * more is gone. Returns what removes the handlers.
 */
function onStopSignals(handler: (mode: StopMode) => void): () => void {
  const onStop = () => handler('stop');
  const onHangUp = () => handler('abort');
  process.on('SIGINT', onStop);
  process.on('SIGTERM', onStop);
  process.on('SIGHUP', onHangUp);
  return () => {
    process.off('SIGINT', onStop);
    process.off('SIGTERM', onStop);
    process.off('SIGHUP', onHangUp);
  };
}
