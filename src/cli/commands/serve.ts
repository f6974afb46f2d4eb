/**
 * `kakitome serve --http HOST:PORT`: the signing service (issue 10) over the key
 * store. Configuration is checked before anything listens; logs are JSON lines on
 * standard output (one per request, never a body or a key); SIGTERM or SIGINT
 * stops it gracefully and it exits 0.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { commandAction } from './message-options.ts';
import { masterKeyPassphrase } from './store-options.ts';

interface ServeCliOptions {
  http?: string;
  maxMessageSize?: string;
  shutdownGrace?: string;
  revocation?: string;
  home?: string;
  databaseUrl?: string;
}

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export function register(program: Command): void {
  program
    .command('serve')
    .summary('run the signing service: the HTTP API under /api/v1')
    .description('Run the HTTP signing service over the key store: POST /api/v1/sign, /verify, /encrypt and /decrypt with tenant API keys (kakitome tenant), /healthz, /metrics (Prometheus) and /api/v1/openapi.json. Logs one JSON line per request on standard output. SIGTERM stops accepting, lets requests in flight finish, and exits 0. See docs/api.md.')
    .option('--http <host:port>', 'listen address, e.g. 127.0.0.1:8080 (default: $KAKITOME_HTTP); port 0 picks a free port')
    .option('--max-message-size <size>', 'largest message accepted, e.g. 50MiB (default; $KAKITOME_MAX_MESSAGE_SIZE); larger ones get 413 before they are read')
    .option('--shutdown-grace <seconds>', 'after SIGTERM, how long requests in flight may take before connections are cut', '30')
    .option('--revocation <mode>', 'revocation checking for /verify: require, allow-unknown (default) or off', 'allow-unknown')
    .option('--home <dir>', 'key store home (default: $KAKITOME_HOME or ~/.kakitome)')
    .option('--database-url <url>', 'postgres://... key store (default: $KAKITOME_DATABASE_URL)')
    .addHelpText('after', `
Examples:
  kakitome tenant key default --scope sign,verify       # prints an API key once
  kakitome serve --http 127.0.0.1:8080
  curl -H "Authorization: Bearer $KEY" -H 'Content-Type: message/rfc822' --data-binary @draft.eml http://127.0.0.1:8080/api/v1/sign`)
    .action(commandAction('serve', async (o: ServeCliOptions) => {
      const [{ resolveServeConfig }, { openStore }, { startServer }] = await Promise.all([
        import('../../server/config.ts'), import('../../store/open-store.ts'), import('../../server/start-server.ts'),
      ]);
      // Every option is checked before the store is opened or a port bound.
      const config = resolveServeConfig(o);
      const store = await openStore({ ...(o.home ? { home: o.home } : {}), ...(o.databaseUrl ? { databaseUrl: o.databaseUrl } : {}), actor: 'serve', masterKeyPassphrase });
      const log = (entry: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(entry)}\n`);
      let server;
      try {
        server = await startServer(store, config, { log, version: version() });
      } catch (e) {
        await store.close();
        throw e;
      }
      log({ time: new Date().toISOString(), level: 'info', msg: 'listening', url: server.url, engine: store.engine.dialect, maxMessageBytes: config.maxMessageBytes });
      const signal = await new Promise<string>((resolve) => {
        process.once('SIGTERM', () => resolve('SIGTERM'));
        process.once('SIGINT', () => resolve('SIGINT'));
      });
      log({ time: new Date().toISOString(), level: 'info', msg: 'stopping', signal });
      await server.close();
      log({ time: new Date().toISOString(), level: 'info', msg: 'stopped' });
      return 0;
    }));
}
