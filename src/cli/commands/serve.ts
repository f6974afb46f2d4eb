/**
 * `kakitome serve --http HOST:PORT`: the signing service (issue 10) over the key
 * store, and with `--smtp HOST:PORT --relay HOST:PORT` its SMTP submission port
 * (alongside the HTTP API or alone). Configuration is checked before anything
 * listens; logs are JSON lines on standard output (one per request or message,
 * never a body or a key); SIGTERM or SIGINT stops it gracefully and it exits 0.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { commandAction } from './message-options.ts';
import { masterKeyPassphrase } from './store-options.ts';

interface ServeCliOptions {
  http?: string;
  smtp?: string;
  relay?: string;
  smtpTlsCert?: string;
  smtpTlsKey?: string;
  smtpImplicitTls?: boolean;
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
    .summary('run the signing service: the HTTP API under /api/v1, and SMTP submission')
    .description('Run the HTTP signing service over the key store: POST /api/v1/sign, /verify, /encrypt and /decrypt with tenant API keys (kakitome tenant), /healthz, /metrics (Prometheus) and /api/v1/openapi.json; with --smtp and --relay also (or only) the SMTP submission port, which signs each message by its From and relays it, answering 250 only once the relay accepted it. Logs one JSON line per request or message on standard output. SIGTERM stops accepting, lets requests in flight finish, and exits 0. See docs/api.md.')
    .option('--http <host:port>', 'listen address, e.g. 127.0.0.1:8080 (default: $KAKITOME_HTTP); port 0 picks a free port')
    .option('--smtp <host:port>', 'also (or, without --http, only) run the SMTP submission port here, e.g. 0.0.0.0:587 (default: $KAKITOME_SMTP); AUTH with the tenant name and an API key with scope sign')
    .option('--relay <host:port>', 'with --smtp: the MTA that takes the signed mail on, e.g. 127.0.0.1:25 (default: $KAKITOME_SMTP_RELAY)')
    .option('--smtp-tls-cert <file>', 'with --smtp: the TLS certificate (PEM, with its chain) for STARTTLS; needed unless --smtp listens on loopback')
    .option('--smtp-tls-key <file>', 'with --smtp: its private key (PEM)')
    .option('--smtp-implicit-tls', 'with --smtp: TLS from the first byte (port 465 style) instead of STARTTLS')
    .option('--max-message-size <size>', 'largest message accepted, e.g. 50MiB (default; $KAKITOME_MAX_MESSAGE_SIZE); larger ones get 413 before they are read')
    .option('--shutdown-grace <seconds>', 'after SIGTERM, how long requests in flight may take before connections are cut', '30')
    .option('--revocation <mode>', 'revocation checking for /verify: require, allow-unknown (default) or off', 'allow-unknown')
    .option('--home <dir>', 'key store home (default: $KAKITOME_HOME or ~/.kakitome)')
    .option('--database-url <url>', 'postgres://... key store (default: $KAKITOME_DATABASE_URL)')
    .addHelpText('after', `
Examples:
  kakitome tenant key default --scope sign,verify       # prints an API key once
  kakitome serve --http 127.0.0.1:8080
  kakitome serve --smtp 0.0.0.0:587 --relay 127.0.0.1:25 --smtp-tls-cert submit.pem --smtp-tls-key submit.key
  curl -H "Authorization: Bearer $KEY" -H 'Content-Type: message/rfc822' --data-binary @draft.eml http://127.0.0.1:8080/api/v1/sign`)
    .action(commandAction('serve', async (o: ServeCliOptions) => {
      const [{ resolveServeConfig }, { openStore }, { startServer }] = await Promise.all([
        import('../../server/config.ts'), import('../../store/open-store.ts'), import('../../server/start-server.ts'),
      ]);
      const { resolveSubmissionConfig } = await import('../../server/smtp/submission-config.ts');
      // Every option is checked before the store is opened or a port bound.
      const smtpOnly = o.smtp !== undefined && o.http === undefined && !process.env.KAKITOME_HTTP;
      // Without --http the HTTP options still apply to the submission port (the message size limit); the address is never listened on.
      const config = resolveServeConfig(smtpOnly ? { ...o, http: '127.0.0.1:0' } : o);
      const submission = resolveSubmissionConfig(o, config.maxMessageBytes);
      const store = await openStore({ ...(o.home ? { home: o.home } : {}), ...(o.databaseUrl ? { databaseUrl: o.databaseUrl } : {}), actor: 'serve', masterKeyPassphrase });
      const log = (entry: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(entry)}\n`);
      const [{ Metrics }, { RateLimiter }, { TenantDirectory }] = await Promise.all([import('../../server/metrics.ts'), import('../../server/rate-limiter.ts'), import('../../store/tenant-directory.ts')]);
      const shared = { rateLimiter: new RateLimiter(), metrics: new Metrics() };
      let server;
      let smtp;
      try {
        if (!smtpOnly) server = await startServer(store, config, { log, version: version(), ...shared });
        if (submission) {
          const { startSubmission } = await import('../../server/smtp/start-submission.ts');
          smtp = await startSubmission({ store, tenants: new TenantDirectory(store), config, ...shared, log, version: version(), shuttingDown: () => false }, submission);
        }
      } catch (e) {
        await (server ? server.close() : store.close());
        throw e;
      }
      if (server) log({ time: new Date().toISOString(), level: 'info', msg: 'listening', listener: 'http', url: server.url, engine: store.engine.dialect, maxMessageBytes: config.maxMessageBytes });
      if (smtp && submission) {
        const { formatHostPort } = await import('../../smtp/parse-host-port.ts');
        log({ time: new Date().toISOString(), level: 'info', msg: 'listening', listener: 'smtp', address: formatHostPort(smtp.listening), tls: submission.tls ? (submission.tls.implicit ? 'implicit' : 'starttls') : 'none', relay: formatHostPort(submission.relay), engine: store.engine.dialect, maxMessageBytes: config.maxMessageBytes });
      }
      const signal = await new Promise<string>((resolve) => {
        process.once('SIGTERM', () => resolve('SIGTERM'));
        process.once('SIGINT', () => resolve('SIGINT'));
      });
      log({ time: new Date().toISOString(), level: 'info', msg: 'stopping', signal });
      // The submission port first: its messages in flight still need the store, which the HTTP server closes.
      await smtp?.stop();
      await (server ? server.close() : store.close());
      log({ time: new Date().toISOString(), level: 'info', msg: 'stopped' });
      return 0;
    }));
}
