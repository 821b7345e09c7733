import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { escapeHtml } from '../../../app/github/run-page-html.js';
import { RunPageLinks } from '../../../app/github/run-page-links.js';

const key = crypto.randomBytes(32);

describe('run page links', () => {
  it('carry a key that opens only their own run, and that another server key does not make', () => {
    const links = new RunPageLinks(key, 'https://dstack.example.com/', () => null);
    const url = new URL(links.runUrl('slim-octopus-1')!);
    expect(`${url.origin}${url.pathname}`).toBe('https://dstack.example.com/runs/slim-octopus-1');
    const k = url.searchParams.get('key')!;
    expect(links.verify('slim-octopus-1', k)).toBe(true);
    expect(links.verify('slim-octopus-2', k)).toBe(false);
    expect(links.verify('slim-octopus-1', undefined)).toBe(false);
    expect(links.verify('slim-octopus-1', k.slice(1))).toBe(false);
    expect(new RunPageLinks(crypto.randomBytes(32), undefined, () => null).verify('slim-octopus-1', k)).toBe(false);
    // The same key after a restart: it is derived, not stored.
    expect(new RunPageLinks(key, undefined, () => null).keyOf('slim-octopus-1')).toBe(k);
    expect(links.artifactUrl('slim-octopus-1', 'slim-octopus-1-0', 'out/a b')).toBe(`https://dstack.example.com/runs/slim-octopus-1/jobs/slim-octopus-1-0/artifact?path=out%2Fa%20b&key=${k}`);
  });

  it('use the address the server listens on without DSTACK_SERVER_URL, localhost for every interface, and none before it listens', () => {
    let address: { address: string; family: string; port: number } | null = null;
    const links = new RunPageLinks(key, undefined, () => address);
    expect(links.runUrl('r-r-1')).toBeUndefined();
    address = { address: '127.0.0.1', family: 'IPv4', port: 3000 };
    expect(links.base()).toBe('http://127.0.0.1:3000');
    address = { address: '0.0.0.0', family: 'IPv4', port: 3000 };
    expect(links.base()).toBe('http://localhost:3000');
    address = { address: '::1', family: 'IPv6', port: 8080 };
    expect(links.base()).toBe('http://[::1]:8080');
  });

  it('escape everything a run shows as HTML', () => {
    expect(escapeHtml(`<script>alert("x" & 'y')</script>`)).toBe('&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;');
  });
});
