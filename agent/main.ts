#!/usr/bin/env node
import { Command, Option } from 'commander';
import { DstackError } from '../shared/errors.js';
import type { AgentOptions } from './agent-settings.js';
import type { AgentEvent } from './runner-agent.js';
import { reportError } from '../shared/report-error.js';

/** How long a shutdown waits for the jobs' ends to be recorded: the grace period twice over, and room to upload artifacts. */
const SHUTDOWN_TIMEOUT_MS = 5 * 60 * 1000;

const TONES: Record<AgentEvent['tone'], number | undefined> = { info: undefined, good: 32, bad: 31, warn: 33 };

/** Colours only in a terminal; NO_COLOR and FORCE_COLOR are honoured (as cli/output/colors.ts does). */
function colors(env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR && env.FORCE_COLOR !== '0') return true;
  return Boolean(process.stdout.isTTY) && env.TERM !== 'dumb';
}

/**
 * `dstack-agent`: the runner agent people install on their GPU machines. It connects to the server
 * (`dstack-app`), takes its owner's jobs and runs them here. Each option may also come from a
 * DSTACK_AGENT_* variable (the option wins).
 */
export function buildProgram(run: (options: AgentOptions) => Promise<void>): Command {
  const program = new Command('dstack-agent')
    .description("Runs dstack jobs on this machine for a dstack server: connects to it, takes its owner's jobs, and streams their logs and artifacts back")
    .showSuggestionAfterError(true)
    .configureOutput({ outputError: (str, write) => write(`dstack-agent: ${str}`) })
    .addOption(new Option('--url <url>', "the server's URL, http:// or https:// (DSTACK_AGENT_URL)"))
    .addOption(new Option('--token <token>', "an agent token from 'dstack-app token create --owner OWNER --agent' (DSTACK_AGENT_TOKEN); any user here can read it in the process list: prefer --token-file"))
    .addOption(new Option('--token-file <path>', 'a file holding the agent token (DSTACK_AGENT_TOKEN_FILE; under systemd, the credential dstack-agent-token of LoadCredential= is read)'))
    .addOption(new Option('--name <name>', "this agent's name among its owner's agents (DSTACK_AGENT_NAME; default: the host name)"))
    .addOption(new Option('--labels <labels>', 'labels that workflows can ask for in resources.labels, separated by commas (DSTACK_AGENT_LABELS)'))
    .addOption(new Option('--work-dir <dir>', 'where repository mirrors, job folders and unsent logs live (DSTACK_AGENT_WORK_DIR; default ~/.dstack-agent)'))
    .addOption(new Option('--isolation <mode>', 'host: bash and python jobs run on this machine; docker: every job in a container, for untrusted code (DSTACK_AGENT_ISOLATION; default host)'))
    .addOption(new Option('--image <image>', 'the image for bash and python jobs under docker isolation (DSTACK_AGENT_IMAGE; default python:3.11-slim)'))
    .addOption(new Option('--run-as <user>', "host jobs run as this unprivileged user, who cannot read the agent's token, process or mirrors; the agent must run as root (DSTACK_AGENT_RUN_AS)"))
    .addOption(new Option('--allow-untrusted-on-host', "host isolation runs a fork's pull request too (declined by default: serve such repositories with --isolation docker) (DSTACK_AGENT_ALLOW_UNTRUSTED_ON_HOST=1)"))
    .action(async (options: AgentOptions) => run(options));
  program.exitOverride();
  return program;
}

/** Runs the agent until SIGINT or SIGTERM (a second one kills its jobs at once), or until the server refuses it for good. */
async function runAgent(options: AgentOptions): Promise<void> {
  const env = process.env;
  const { agentSettings } = await import('./agent-settings.js');
  const settings = agentSettings(options, env);
  // Read: the token need not stay in the environment that jobs' and tools' processes inherit
  // (/proc/PID/environ still shows the agent's first environment: --token-file keeps it out of that).
  delete env.DSTACK_AGENT_TOKEN;
  const { RunnerAgent } = await import('./runner-agent.js');
  const painted = colors(env);
  const agent = new RunnerAgent({
    settings,
    env,
    graceSeconds: await graceSeconds(env),
    print: ({ line, tone }) => {
      const code = painted ? TONES[tone] : undefined;
      process.stdout.write(code ? `\x1b[${code}m${line}\x1b[0m\n` : `${line}\n`);
    },
  });
  const onSignal = () => void agent.shutdown(SHUTDOWN_TIMEOUT_MS);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  await agent.start();
  const refusal = await agent.finished;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  // Done: a socket left open by a library (the Docker engine's, say) must not keep the agent alive.
  setTimeout(() => process.exit(), 2000).unref();
  // Retrying cannot help (a wrong or revoked token, another protocol version): say so and exit 1.
  if (refusal) throw new DstackError('DSTACK_ERR_AGENT_REFUSED', refusal);
}

/** DSTACK_STOP_GRACE_SECONDS, read as the CLI reads it (unset: the runner's default of 10). */
async function graceSeconds(env: NodeJS.ProcessEnv): Promise<number | undefined> {
  const [{ z }, { readEnv, seconds }] = await Promise.all([import('zod'), import('../shared/config/read-env.js')]);
  return readEnv(z.object({ DSTACK_STOP_GRACE_SECONDS: seconds.optional() }), env).DSTACK_STOP_GRACE_SECONDS;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await buildProgram(runAgent).parseAsync(argv);
  } catch (err) {
    process.exitCode = reportError('dstack-agent', err);
  }
}
