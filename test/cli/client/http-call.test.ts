import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { answerText, httpCall } from '../../../cli/client/http-call.js';

const servers: http.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    s.close();
  }
});

async function serve(handler: http.RequestListener): Promise<URL> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x`);
}

describe("the CLI's requests to a server", () => {
  it('fail with a reason when the server stops sending, before its answer and in the middle of it', async () => {
    const silent = await serve(() => {});
    await expect(httpCall(silent, 'GET', {}, undefined, 200)).rejects.toThrow('the server sent nothing for 0.2 s');

    const stalls = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('{"half":');
    });
    const res = await httpCall(stalls, 'GET', {}, undefined, 200);
    await expect(answerText(res)).rejects.toThrow('the server sent nothing for 0.2 s');
  });

  it('reads an answer up to a bound, and never takes a cut one as whole', async () => {
    const big = await serve((_req, res) => res.end('x'.repeat(100_000)));
    expect(await answerText(await httpCall(big, 'GET', {}), 1000)).toBe('x'.repeat(1000));

    const cut = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('{"own');
      setTimeout(() => res.destroy(), 20);
    });
    await expect(answerText(await httpCall(cut, 'GET', {}))).rejects.toThrow();
  });
});
