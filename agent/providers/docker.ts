import { commandsRunByShell } from '../../shared/workflow/commands-run-by-shell.js';
import type { DockerSpec } from '../../shared/workflow/schema.js';
import type { Provider } from './provider.js';
import { setRunArgs } from './shell-script.js';

/**
 * `provider: docker`: the image's own entrypoint and command, or `commands` run by `entrypoint`
 * (default `/bin/sh -c`, stopping at the first failure when it is a shell), with the job's folder
 * mounted as for every other provider.
 */
export const dockerProvider: Provider = async (ctx) => {
  const spec = ctx.workflow.spec as DockerSpec;
  const entrypoint = typeof spec.entrypoint === 'string' ? spec.entrypoint.trim().split(/\s+/) : spec.entrypoint;
  // A shell stops at the first failure and has the run's arguments; another program (`python -c`)
  // gets the commands as they are, one a line.
  const lines = spec.commands && spec.commands.length > 0 ? (commandsRunByShell(spec.entrypoint) ? ['set -e', setRunArgs(ctx.workflow.runArgs ?? []), ...spec.commands] : spec.commands) : [];
  const commands = lines.length > 0 ? lines.join('\n') : undefined;
  return ctx.container({
    image: spec.image,
    auth: spec.registry_auth,
    // As `docker stop`: SIGTERM, the grace period, then SIGKILL.
    stopSignal: 'SIGTERM',
    ...(commands ? { entrypoint: entrypoint ?? ['/bin/sh', '-c'], cmd: [commands] } : entrypoint ? { entrypoint } : {}),
  });
};
