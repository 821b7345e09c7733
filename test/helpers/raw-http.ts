import net from 'node:net';

/**
 * Sends `head` (a request's head, no body) on a raw socket and returns what came back within `ms`:
 * how a test declares a body it never sends, which fetch cannot.
 */
export function headOnly(port: number, head: string, ms = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(head));
    let got = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(got);
    }, ms);
    socket.on('data', (d) => (got += d.toString()));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    socket.on('error', reject);
  });
}
