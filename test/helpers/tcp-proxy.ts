import net from 'node:net';

/**
 * A TCP proxy on loopback in front of a server, whose connections a test can cut at will (as a
 * flaky network or a NAT timeout would), to check what survives a dropped agent connection.
 */
export async function tcpProxy(targetPort: number): Promise<{ url: string; port: number; cuts: number; cut(): void; close(): Promise<void> }> {
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    open.add(client);
    open.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const proxy = {
    url: `http://127.0.0.1:${port}`,
    port,
    cuts: 0,
    /** Resets every connection through the proxy now; new ones go through as before. */
    cut() {
      proxy.cuts++;
      for (const socket of open) socket.resetAndDestroy();
      open.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
  return proxy;
}
