import net from 'node:net';

/**
 * Calls `onOpen(port)` once for each port as soon as something listens on it on this machine,
 * polling until `stop()`.
 */
export function watchPorts(ports: readonly number[], onOpen: (port: number) => void, intervalMs = 250): { stop(): void } {
  const waiting = new Set(ports);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const probe = (port: number) =>
    new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  const tick = async () => {
    for (const port of [...waiting]) {
      if (stopped) return;
      if (await probe(port)) {
        waiting.delete(port);
        if (!stopped) onOpen(port);
      }
    }
    if (!stopped && waiting.size > 0) timer = setTimeout(tick, intervalMs);
  };
  if (waiting.size > 0) timer = setTimeout(tick, intervalMs);
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
