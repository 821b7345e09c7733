import type { DockerSpec } from '../../shared/workflow/schema.js';
import type { Provider } from './provider.js';
import { setRunArgs } from './shell-script.js';

/**
 * `provider: docker`: the image's own entrypoint and command, or `commands` run by `entrypoint`
 * (default `/bin/sh -c`, stopping at the first failure), with the job's folder mounted as for
 * every other provider.
 */
export const dockerProvider: Provider = async (ctx) => {
  const spec = ctx.workflow.spec as DockerSpec;
  const entrypoint = typeof spec.entrypoint === 'string' ? spec.entrypoint.trim().split(/\s+/) : spec.entrypoint;
  const commands = spec.commands && spec.commands.length > 0 ? ['set -e', setRunArgs(ctx.workflow.runArgs ?? []), ...spec.commands].join('\n') : undefined;
  return ctx.container({
    image: spec.image,
    auth: spec.registry_auth,
    // As `docker stop`: SIGTERM, the grace period, then SIGKILL.
    stopSignal: 'SIGTERM',
    ...(commands ? { entrypoint: entrypoint ?? ['/bin/sh', '-c'], cmd: [commands] } : entrypoint ? { entrypoint } : {}),
  });
};
