import { checkIsolation, ConfigFile, DEFAULT_ISOLATION_IMAGE } from '../local/config-file.js';
import { dstackHome } from '../local/home.js';

/** `dstack config`: keeps settings for later runs; with no options, prints them. */
export function configCommand(opts: { isolation?: string; image?: string; json?: boolean }): void {
  const file = new ConfigFile(dstackHome());
  const changes = {
    ...(opts.isolation !== undefined ? { isolation: checkIsolation(opts.isolation) } : {}),
    ...(opts.image !== undefined ? { image: opts.image } : {}),
  };
  const config = Object.keys(changes).length ? file.update(changes) : file.read();
  const effective = { isolation: config.isolation ?? 'host', image: config.image ?? DEFAULT_ISOLATION_IMAGE };
  if (opts.json) {
    process.stdout.write(JSON.stringify(effective, null, 2) + '\n');
    return;
  }
  process.stdout.write(`isolation: ${effective.isolation}\nimage: ${effective.image}\n`);
}
