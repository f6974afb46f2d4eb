import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createHttpFetcher } from '../../src/pki/create-http-fetcher.ts';

let server: Server;
let base = '';

before(async () => {
  server = createServer((req, res) => {
    if (req.url === '/small') res.writeHead(200, { 'content-length': 3 }).end('abc');
    else if (req.url === '/big-declared') res.writeHead(200, { 'content-length': 10_000 }).end(Buffer.alloc(10_000));
    else if (req.url === '/big-chunked') {
      res.writeHead(200);
      for (let i = 0; i < 20; i++) res.write(Buffer.alloc(1000));
      res.end();
    } else if (req.url === '/slow') setTimeout(() => res.writeHead(200).end('late'), 3000).unref();
    else if (req.url === '/echo') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => res.writeHead(200).end(Buffer.concat([Buffer.from(`${req.method} ${req.headers['content-type']} `), ...chunks])));
    } else if (req.url === '/redirect') res.writeHead(302, { location: '/small' }).end();
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

const get = { method: 'GET' as const, maxBytes: 4096, timeoutMs: 1000 };
/** The test server is on loopback, which the default fetcher refuses (test/security/08-no-fetch.test.ts). */
const loopback = createHttpFetcher({ allowInternal: ['127.0.0.1'] });

test('fetches within bounds; POST carries body and content type', async () => {
  const f = loopback;
  assert.equal(Buffer.from(await f(`${base}/small`, get)).toString(), 'abc');
  const echo = await f(`${base}/echo`, { method: 'POST', body: Buffer.from('xyz'), contentType: 'application/ocsp-request', maxBytes: 4096, timeoutMs: 1000 });
  assert.equal(Buffer.from(echo).toString(), 'POST application/ocsp-request xyz');
});

test('size limits: announced and streamed', async () => {
  const f = loopback;
  await assert.rejects(f(`${base}/big-declared`, get), { code: 'LIMIT' });
  await assert.rejects(f(`${base}/big-chunked`, get), { code: 'LIMIT' });
});

test('deadline, HTTP errors, redirects, schemes and allowed hosts', async () => {
  const f = loopback;
  const t0 = Date.now();
  await assert.rejects(f(`${base}/slow`, { ...get, timeoutMs: 200 }), /did not answer within 200 ms/);
  assert.ok(Date.now() - t0 < 2000);
  await assert.rejects(f(`${base}/missing`, get), /HTTP 404/);
  await assert.rejects(f(`${base}/redirect`, get), /HTTP 302/);
  await assert.rejects(f('https://127.0.0.1/x', get), /Only http:/);
  await assert.rejects(f('file:///etc/passwd', get), /Only http:/);
  await assert.rejects(createHttpFetcher({ allowedHosts: ['127.0.0.1'] })('http://localhost:1/x', get), /not in the fetcher's allowed hosts/);
  await assert.rejects(createHttpFetcher()(`${base}/small`, get), /is a loopback address/);
  assert.throws(() => createHttpFetcher({ allowInternal: ['10.0.0.0/33'] }), /not a valid CIDR block/);
  assert.throws(() => createHttpFetcher({ allowInternal: ['http://x/'] }), /neither a host name/);
});
