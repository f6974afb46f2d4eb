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
import type { MasterKey } from '../../keys/master-key.ts';
import type { Store } from '../../store/store.ts';
import type { ServeConfig } from '../../server/config.ts';
import type { SubmissionConfig } from '../../server/smtp/submission-config.ts';
import type { RunningSubmission } from '../../server/smtp/start-submission.ts';
import type { ConsoleContext } from '../../server/console/console-context.ts';
import type { HostPort } from '../../smtp/parse-host-port.ts';
import { masterKeyPassphrase } from './store-options.ts';

/**
 * The least time between two commits of the service's audit rows (StoreOptions.auditGroupMs):
 * a commit costs its fsync (200-250 µs of CPU on the reference machine, record-key-use.ts),
 * so under load the rows of 2 ms of requests share one; an idle service, or a client sending
 * one message at a time, commits at once.
 * Every answer still waits for its row's commit (docs/performance.md, "The signing service").
 */
const AUDIT_GROUP_MS = 2;

/** The HTTP options (ServeOptions: --http, --public-url, the size limits, the batch options...) and the rest. */
interface ServeCliOptions extends ServeOptions {
  smtp?: string;
  relay?: string;
  smtpTlsCert?: string;
  smtpTlsKey?: string;
  smtpImplicitTls?: boolean;
  smtpCommandTimeout?: string;
  smtpMinDataRate?: string;
  smtpSessionTimeout?: string;
  home?: string;
  databaseUrl?: string;
  workers?: string;
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

/** The running service, however it runs: what it listens on and how to stop it (the caller closes the store). */
interface ServiceRun {
  url?: string;
  smtp?: HostPort;
  /** The console's context, for the first-run setup link. */
  console?: ConsoleContext;
  failed?: Promise<Error>;
  stop(): Promise<void>;
}

/** --workers 0: the HTTP server and the submission port on this thread, as one process always did. */
async function runOnMainThread(o: { store: Store; location: { home?: string; databaseUrl?: string; masterKey: MasterKey }; config: ServeConfig; submission: SubmissionConfig | undefined; log: (e: Record<string, unknown>) => void; write: (text: string) => void; smtpOnly: boolean }): Promise<ServiceRun> {
  const [{ startServer }, { Metrics }, { RateLimiter }, { TenantDirectory }, { ServiceCache }] = await Promise.all([
    import('../../server/start-server.ts'), import('../../server/metrics.ts'), import('../../server/rate-limiter.ts'), import('../../store/tenant-directory.ts'), import('../../server/service-cache.ts'),
  ]);
  const tenants = new TenantDirectory(o.store);
  const shared = { rateLimiter: new RateLimiter(), metrics: new Metrics(), cache: new ServiceCache(o.store, tenants), log: o.log, logLine: (json: string) => o.write(`${json}\n`), version: version() };
  // Batch chunks are signed in a thread of their own (its young generation small: server/batches/batch-thread.ts).
  const server = o.smtpOnly ? undefined : await startServer(o.store, o.config, { ...shared, batchThread: { location: o.location, write: o.write } });
  let smtp: RunningSubmission | undefined;
  try {
    if (o.submission) {
      const { startSubmission } = await import('../../server/smtp/start-submission.ts');
      smtp = await startSubmission({ store: o.store, tenants, config: o.config, ...shared, shuttingDown: () => false }, o.submission);
    }
  } catch (e) {
    await server?.close();
    throw e;
  }
  return {
    ...(server ? { url: server.url, console: server.console } : {}),
    ...(smtp ? { smtp: smtp.listening } : {}),
    async stop() {
      // The submission port first: its messages in flight still need the store, which the HTTP server closes.
      await smtp?.stop();
      await server?.close();
    },
  };
}

/** --workers N: N serving threads on the shared port, this thread coordinating (server/workers). */
async function runOnThreads(o: { store: Store; location: { home?: string; databaseUrl?: string; masterKey: MasterKey }; config: ServeConfig; submission: SubmissionConfig | undefined; workers: number; write: (text: string) => void; smtpOnly: boolean }): Promise<ServiceRun> {
  const { startServeWorkers } = await import('../../server/workers/start-serve-workers.ts');
  const running = await startServeWorkers({ workers: o.workers, store: o.store, location: o.location, config: o.config, http: !o.smtpOnly, ...(o.submission ? { submission: o.submission } : {}), version: version(), write: o.write });
  return {
    ...(running.url ? { url: running.url } : {}),
    ...(running.console ? { console: running.console } : {}),
    ...(running.smtp ? { smtp: running.smtp } : {}),
    failed: running.failed,
    stop: running.stop,
  };
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
    .option('--step-up-minutes <n>', 'how long the console\'s re-authentication before its most dangerous actions (a backup, a key leaving, an administrator made) holds, 1 to 60 (default 5; $KAKITOME_STEP_UP_MINUTES)')
    .option('--ldap-url <url>', 'ldap://host:port the console\'s "can I send encrypted mail to ...?" asks when the store has no certificate (default: $KAKITOME_LDAP_URL); with --ldap-base')
    .option('--ldap-base <dn>', 'search base for --ldap-url, e.g. dc=example,dc=co,dc=jp (default: $KAKITOME_LDAP_BASE)')
    .option('--mail-relay <host:port>', 'the SMTP relay the console hands its mail to (sign-in links, invitations, expiry notices), e.g. 127.0.0.1:25 (default: $KAKITOME_MAIL_RELAY); with --mail-from')
    .option('--mail-from <address>', 'the address the console\'s mail comes from, e.g. kakitome@example.co.jp (default: $KAKITOME_MAIL_FROM)')
    .option('--oidc-issuer <url>', 'single sign-on: the OpenID provider\'s issuer URL, https (default: $KAKITOME_OIDC_ISSUER); with --oidc-client-id and --oidc-client-secret')
    .option('--oidc-client-id <id>', 'single sign-on: the client id the provider gave the console (default: $KAKITOME_OIDC_CLIENT_ID)')
    .option('--oidc-client-secret <spec>', 'single sign-on: where the client secret is, env:VAR, file:PATH or fd:N (default: $KAKITOME_OIDC_CLIENT_SECRET); never on the command line')
    .option('--smtp <host:port>', 'also (or, without --http, only) run the SMTP submission port here, e.g. 0.0.0.0:587 (default: $KAKITOME_SMTP); AUTH with the tenant name and an API key with scope sign')
    .option('--relay <host:port>', 'with --smtp: the MTA that takes the signed mail on, e.g. 127.0.0.1:25 (default: $KAKITOME_SMTP_RELAY)')
    .option('--smtp-tls-cert <file>', 'with --smtp: the TLS certificate (PEM, with its chain) for STARTTLS; needed unless --smtp listens on loopback')
    .option('--smtp-tls-key <file>', 'with --smtp: its private key (PEM)')
    .option('--smtp-implicit-tls', 'with --smtp: TLS from the first byte (port 465 style) instead of STARTTLS')
    .option('--smtp-command-timeout <seconds>', 'with --smtp: a command line (an AUTH exchange) must arrive within this, from its first byte; also the grace before --smtp-min-data-rate counts (default 60; $KAKITOME_SMTP_COMMAND_TIMEOUT)')
    .option('--smtp-min-data-rate <bytes/s>', 'with --smtp: the least average rate of a message\'s DATA after the grace (default 500; $KAKITOME_SMTP_MIN_DATA_RATE)')
    .option('--smtp-session-timeout <seconds>', 'with --smtp: a connection ends at the first pause between messages after this (default 1800; $KAKITOME_SMTP_SESSION_TIMEOUT)')
    .option('--max-message-size <size>', 'largest message accepted, e.g. 50MiB (default; $KAKITOME_MAX_MESSAGE_SIZE); larger ones get 413 before they are read')
    .option('--shutdown-grace <seconds>', 'after SIGTERM, how long requests in flight may take before connections are cut', '30')
    .option('--revocation <mode>', 'revocation checking for /verify: require, allow-unknown (default) or off', 'allow-unknown')
    .option('--max-batch-size <size>', 'largest batch upload (POST /api/v1/batches), e.g. 4GiB (default); larger ones get 413')
    .option('--max-batch-messages <n>', 'most messages in one batch (default 1000000)')
    .option('--batch-chunk <n>', 'messages per chunk, the unit of work nodes claim from the shared queue (default 500)')
    .option('--batch-workers <n>', 'batch chunks each serving thread (or the main thread with --workers 0) signs at once, in its batch thread (default 1)')
    .option('--batch-lease <seconds>', 'a node that stops renewing its chunk for this long loses it to another node (default 30)')
    .option('--batch-poll <ms>', 'how often an idle node looks for batch work another node received, in milliseconds (50 to 60000, default 1000)')
    .option('--batch-retention <hours>', 'how long a finished batch and its result are kept (default 24)')
    .option('--max-connections <n>', 'HTTP connections open at once on this node, all serving threads together; more are closed as they arrive (default: $KAKITOME_MAX_CONNECTIONS, else from the open-files limit, ulimit -n)')
    .option('--workers <n>', 'serving threads, each answering whole requests and messages on the shared ports (0: the main thread serves; default: one per CPU)')
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
      const [{ resolveServeConfig }, { openStore, resolveMasterKey }, { describeSetupLink, issueSetupLink }] = await Promise.all([
        import('../../server/config.ts'), import('../../store/open-store.ts'), import('../../server/console/first-run.ts'),
      ]);
      const { resolveSubmissionConfig } = await import('../../server/smtp/submission-config.ts');
      // Every option is checked before the store is opened or a port bound.
      const smtpOnly = o.smtp !== undefined && o.http === undefined && !process.env.KAKITOME_HTTP;
      // Without --http the HTTP options still apply to the submission port (the message size limit); the address is never listened on.
      const config = resolveServeConfig(smtpOnly ? { ...o, http: '127.0.0.1:0' } : o);
      const oidc = await (await import('../../server/config.ts')).resolveOidcConfig(o, async (spec) => (await import('../pass-spec.ts')).resolvePassSpec(spec, { stdinInUse: true }));
      if (oidc) config.oidc = oidc;
      const submission = resolveSubmissionConfig(o, config.maxMessageBytes);
      const createdKey = createHomeOnFirstRun(o);
      if (createdKey) process.stderr.write(`Created a new Kakitome store in ${dirname(createdKey)} with its master key ${createdKey}: back that file up apart from the store (without it no stored key opens).\n`);
      const location = { ...(o.home ? { home: o.home } : {}), ...(o.databaseUrl ? { databaseUrl: o.databaseUrl } : {}) };
      // Read once here: serving threads open the store with it (a passphrase is asked once, not per thread).
      const masterKey = await resolveMasterKey({ ...location, masterKeyPassphrase });
      // SIGTERM and SIGINT are ours from here, before anything listens: a serving thread answers
      // as soon as it listens, seconds before the last one is up on a loaded machine, and a signal
      // then went to Node's default action (the process killed, exit 143, requests in flight cut).
      // Now it stops the node as documented, once started: in-flight requests finish, exit 0.
      const signalled = new Promise<{ signal: string }>((resolve) => {
        process.once('SIGTERM', () => resolve({ signal: 'SIGTERM' }));
        process.once('SIGINT', () => resolve({ signal: 'SIGINT' }));
      });
      // This store commits the audit rows of every request (the serving threads hand theirs over):
      // at most one commit per AUDIT_GROUP_MS, so under load each commit's fsync serves many rows.
      const store = await openStore({ ...location, masterKey, actor: 'serve', auditGroupMs: AUDIT_GROUP_MS });
      const { createLineLog } = await import('../../server/line-log.ts');
      // One write per turn of the event loop for the request lines of that turn.
      const lines = createLineLog((text) => process.stdout.write(text));
      const log = (entry: Record<string, unknown>) => lines.log(entry);
      // The serving threads' lines, after this thread's pending ones, in the same write per turn.
      const write = (text: string) => lines.append(text);
      const workers = config.workers ?? 0;
      let running: ServiceRun;
      try {
        running = workers > 0
          ? await runOnThreads({ store, location: { ...location, masterKey }, config, submission, workers, write, smtpOnly })
          : await runOnMainThread({ store, location: { ...location, masterKey }, config, submission, log, write, smtpOnly });
      } catch (e) {
        await store.close();
        throw e;
      }
      const engine = store.engine.dialect;
      if (running.url) log({ time: new Date().toISOString(), level: 'info', msg: 'listening', listener: 'http', url: running.url, console: running.console!.origin.baseUrl, engine, maxMessageBytes: config.maxMessageBytes, maxConnections: config.maxConnections, workers });
      if (running.smtp && submission) {
        const { formatHostPort } = await import('../../smtp/parse-host-port.ts');
        log({ time: new Date().toISOString(), level: 'info', msg: 'listening', listener: 'smtp', address: formatHostPort(running.smtp), tls: submission.tls ? (submission.tls.implicit ? 'implicit' : 'starttls') : 'none', relay: formatHostPort(submission.relay), engine, maxMessageBytes: config.maxMessageBytes, workers });
      }
      const setup = running.console ? await issueSetupLink(running.console) : undefined;
      if (setup) {
        // The link is a secret for whoever started the server: the terminal, never the JSON log.
        log({ time: new Date().toISOString(), level: 'info', msg: 'setup link printed', expires: setup.expiresAt.toISOString() });
        process.stderr.write(describeSetupLink(setup, new Date()));
      }
      // Expiry notices by mail: from this thread only (one run per node; the store's claims keep nodes from both sending).
      const { startExpiryNotices } = await import('../../server/console/expiry-mailer.ts');
      const notices = config.mail && running.console ? startExpiryNotices({ store, mail: config.mail, baseUrl: running.console.origin.baseUrl, log }) : undefined;
      // This thread's compiled modules too, now rather than at exit (persist-compile-cache.ts).
      (await import('../../server/workers/persist-compile-cache.ts')).persistCompileCache();
      const stopped: { signal?: string; error?: Error } = await Promise.race([signalled, ...(running.failed ? [running.failed.then((error) => ({ error }))] : [])]);
      if (stopped.error) log({ time: new Date().toISOString(), level: 'error', msg: 'serving thread failed', error: stopped.error.message });
      log({ time: new Date().toISOString(), level: 'info', msg: 'stopping', ...(stopped.signal ? { signal: stopped.signal } : {}) });
      await notices?.stop();
      await running.stop();
      // Every audit row handed over is committed before the store closes.
      await store.close();
      log({ time: new Date().toISOString(), level: 'info', msg: 'stopped' });
      lines.flush();
      return stopped.error ? 1 : 0;
    }));
}
