/**
 * The gateway's small HTTP listener (--metrics HOST:PORT): GET /metrics (Prometheus
 * text), GET /healthz (200 "ok" while the gateway accepts mail, 503 "draining" after
 * SIGTERM; a load balancer or systemd watchdog stops sending it mail). Nothing else
 * is served; nothing here reads a request body.
 */
import { createServer, type Server } from 'node:http';
import type { HostPort } from '../smtp/parse-host-port.ts';

export function serveHealth(at: HostPort, state: { metrics: () => Promise<string>; contentType: string; accepting: () => boolean }): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/metrics') {
      state.metrics().then(
        (text) => res.writeHead(200, { 'content-type': state.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    } else if (path === '/healthz') {
      const ok = state.accepting();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' }).end(ok ? 'ok\n' : 'draining\n');
    } else {
      res.writeHead(404).end();
    }
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
