/**
/**
 * `kakitome serve`: the web console (issue 11) and the signing service (issue 10)
 * over the key store, on 127.0.0.1:8080 unless told otherwise, and with `--smtp
 * HOST:PORT --relay HOST:PORT` its SMTP submission port (alongside the HTTP
 * server, or alone when only --smtp is given). Configuration is checked before
 * anything listens; logs are JSON lines on standard output (one per request or
 * message, never a body or a key); SIGTERM or SIGINT stops it gracefully and it
 * exits 0.
 *
 * First run: on a fresh KAKITOME_HOME (no master key, no store, no database URL)
 * it creates the home and a master key as `kakitome init` does, and while the
 * store has no administrator it prints a one-time setup link on standard error.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createMasterKeyFile, resolveKakitomeHome } from '../../keys/master-key.ts';
import type { Command } from 'commander';
import type { ServeOptions } from '../../server/config.ts';
import { commandAction } from './message-options.ts';
import { masterKeyPassphrase } from './store-options.ts';

/** The HTTP options (ServeOptions: --http, --public-url, the size limits, the batch options...) and the rest. */
interface ServeCliOptions extends ServeOptions {
  smtp?: string;
  relay?: string;
  smtpTlsCert?: string;
  smtpTlsKey?: string;
  smtpImplicitTls?: boolean;
  home?: string;
  databaseUrl?: string;
}

/**
 * On a fresh machine (no database URL, no master key configured, a home without
 * master.key or kakitome.db) makes the home (0700) and a master key file, as
 * `kakitome init` does; returns the key file's path when it made one.
 */
function createHomeOnFirstRun(o: ServeCliOptions, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (o.databaseUrl || env.KAKITOME_DATABASE_URL || env.KAKITOME_MASTER_KEY || env.KAKITOME_MASTER_KEY_FD || env.KAKITOME_MASTER_KEY_FILE || env.CREDENTIALS_DIRECTORY) return undefined;
  const home = o.home ?? resolveKakitomeHome(env);
  const keyFile = join(home, 'master.key');
  if (existsSync(keyFile) || existsSync(join(home, 'kakitome.db'))) return undefined;
  createMasterKeyFile(keyFile);
  return keyFile;
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
    .summary('run the web console (/), the signing service (/api/v1) and SMTP submission')
    .description('Run the web console under / (docs/console.md) and the HTTP signing service over the key store: POST /api/v1/sign, /verify, /encrypt and /decrypt and batches (POST /api/v1/batches, signed by every node sharing the store) with tenant API keys (kakitome tenant), /healthz, /metrics (Prometheus) and /api/v1/openapi.json (docs/api.md); with --smtp and --relay also (or only) the SMTP submission port, which signs each message by its From and relays it, answering 250 only once the relay accepted it. On a fresh KAKITOME_HOME it creates the store and its master key, and while there is no administrator it prints a one-time setup link on standard error. Logs one JSON line per request or message on standard output. SIGTERM stops accepting, lets requests in flight finish, and exits 0.')
    .option('--http <host:port>', 'listen address (default: $KAKITOME_HTTP, else 127.0.0.1:8080); port 0 picks a free port')
    .option('--public-url <url>', 'the address people open the console at, e.g. https://mail-console.example.co.jp behind a TLS proxy (default: $KAKITOME_PUBLIC_URL, else the listen address); the only host name the console answers to')
    .option('--check-max-size <size>', 'largest mail the console\'s check page reads, e.g. 10MiB (default; $KAKITOME_CHECK_MAX_SIZE)')
    .option('--ldap-url <url>', 'ldap://host:port the console\'s "can I send encrypted mail to ...?" asks when the store has no certificate (default: $KAKITOME_LDAP_URL); with --ldap-base')
    .option('--ldap-base <dn>', 'search base for --ldap-url, e.g. dc=example,dc=co,dc=jp (default: $KAKITOME_LDAP_BASE)')
    .option('--smtp <host:port>', 'also (or, without --http, only) run the SMTP submission port here, e.g. 0.0.0.0:587 (default: $KAKITOME_SMTP); AUTH with the tenant name and an API key with scope sign')
    .option('--relay <host:port>', 'with --smtp: the MTA that takes the signed mail on, e.g. 127.0.0.1:25 (default: $KAKITOME_SMTP_RELAY)')
    .option('--smtp-tls-cert <file>', 'with --smtp: the TLS certificate (PEM, with its chain) for STARTTLS; needed unless --smtp listens on loopback')
    .option('--smtp-tls-key <file>', 'with --smtp: its private key (PEM)')
    .option('--smtp-implicit-tls', 'with --smtp: TLS from the first byte (port 465 style) instead of STARTTLS')
    .option('--max-message-size <size>', 'largest message accepted, e.g. 50MiB (default; $KAKITOME_MAX_MESSAGE_SIZE); larger ones get 413 before they are read')
    .option('--shutdown-grace <seconds>', 'after SIGTERM, how long requests in flight may take before connections are cut', '30')
    .option('--revocation <mode>', 'revocation checking for /verify: require, allow-unknown (default) or off', 'allow-unknown')
    .option('--max-batch-size <size>', 'largest batch upload (POST /api/v1/batches), e.g. 4GiB (default); larger ones get 413')
    .option('--max-batch-messages <n>', 'most messages in one batch (default 1000000)')
    .option('--batch-chunk <n>', 'messages per chunk, the unit of work nodes claim from the shared queue (default 500)')
    .option('--batch-workers <n>', 'batch chunks this node signs at once (default 1)')
    .option('--batch-lease <seconds>', 'a node that stops renewing its chunk for this long loses it to another node (default 30)')
    .option('--batch-retention <hours>', 'how long a finished batch and its result are kept (default 24)')
    .option('--home <dir>', 'key store home (default: $KAKITOME_HOME or ~/.kakitome)')
    .option('--database-url <url>', 'postgres://... key store (default: $KAKITOME_DATABASE_URL)')
    .addHelpText('after', `
Examples:
  kakitome serve                                          # first run: prints the setup link
  kakitome tenant key default --scope sign,verify       # prints an API key once
  kakitome serve --http 0.0.0.0:8080 --public-url https://mail-console.example.co.jp
  kakitome serve --smtp 0.0.0.0:587 --relay 127.0.0.1:25 --smtp-tls-cert submit.pem --smtp-tls-key submit.key
  curl -H "Authorization: Bearer $KEY" -H 'Content-Type: message/rfc822' --data-binary @draft.eml http://127.0.0.1:8080/api/v1/sign`)
    .action(commandAction('serve', async (o: ServeCliOptions) => {
      const [{ resolveServeConfig }, { openStore }, { startServer }, { issueSetupLink }] = await Promise.all([
        import('../../server/config.ts'), import('../../store/open-store.ts'), import('../../server/start-server.ts'), import('../../server/console/first-run.ts'),
      ]);
      const { resolveSubmissionConfig } = await import('../../server/smtp/submission-config.ts');
      // Every option is checked before the store is opened or a port bound.
      const smtpOnly = o.smtp !== undefined && o.http === undefined && !process.env.KAKITOME_HTTP;
      // Without --http the HTTP options still apply to the submission port (the message size limit); the address is never listened on.
      const config = resolveServeConfig(smtpOnly ? { ...o, http: '127.0.0.1:0' } : o);
      const submission = resolveSubmissionConfig(o, config.maxMessageBytes);
      const createdKey = createHomeOnFirstRun(o);
      if (createdKey) process.stderr.write(`Created a new Kakitome store in ${dirname(createdKey)} with its master key ${createdKey}: back that file up apart from the store (without it no stored key opens).\n`);
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
      if (server) log({ time: new Date().toISOString(), level: 'info', msg: 'listening', listener: 'http', url: server.url, console: server.console.origin.baseUrl, engine: store.engine.dialect, maxMessageBytes: config.maxMessageBytes });
      if (smtp && submission) {
        const { formatHostPort } = await import('../../smtp/parse-host-port.ts');
        log({ time: new Date().toISOString(), level: 'info', msg: 'listening', listener: 'smtp', address: formatHostPort(smtp.listening), tls: submission.tls ? (submission.tls.implicit ? 'implicit' : 'starttls') : 'none', relay: formatHostPort(submission.relay), engine: store.engine.dialect, maxMessageBytes: config.maxMessageBytes });
      }
      const setup = server ? await issueSetupLink(server.console) : undefined;
      if (setup) {
        // The link is a secret for whoever started the server: the terminal, never the JSON log.
        log({ time: new Date().toISOString(), level: 'info', msg: 'setup link printed', expires: setup.expiresAt.toISOString() });
        process.stderr.write(`\nKakitome is not set up yet. Open this link within ${Math.round((setup.expiresAt.getTime() - Date.now()) / 60_000)} minutes to create the first administrator, your CA and your mail domains:\n\n  ${setup.url}\n\nIt works once; restart kakitome serve for a new one.\n\n`);
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
