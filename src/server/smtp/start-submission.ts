/**
 * The signing service's SMTP submission port (`kakitome serve --smtp HOST:PORT
 * --relay HOST:PORT`, issue 10): an existing mail platform adds signing by sending
 * through it, without code changes.
 *
 * - AUTH PLAIN or LOGIN, required before MAIL: the username is the tenant's name,
 *   the password one of its API keys with scope sign (kakitome tenant key NAME
 *   --scope sign). Every failure is the same 535; an unauthenticated client may
 *   send a few commands, then it is disconnected.
 * - TLS: STARTTLS (AUTH is refused with 538 before it) or implicit TLS, TLS 1.2 at
 *   least, with the configured certificate; a port without one listens on loopback
 *   only (submission-config.ts).
 * - Per message (MAIL FROM): the key is read again (a revoked key stops at once)
 *   and its rate limit taken, the same bucket as the key's HTTP requests; over it,
 *   451 with the wait.
 * - Deadlines (--smtp-command-timeout, --smtp-min-data-rate, --smtp-session-timeout):
 *   a client that trickles its commands or its message is told 421 4.4.2 and dropped.
 * - DATA: read whole up to the size limit (552 above it, nothing kept), signed,
 *   relayed and answered by submit-message.ts; one JSON log line per message (no
 *   address, subject or body), every signing and refusal audited.
 *
 * stop(): stops accepting, lets every message in flight finish and get its reply,
 * says 421 to idle connections.
 */
import { hostname } from 'node:os';
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerSession } from 'smtp-server';
import { isKakitomeError } from '../../errors.ts';
import type { HostPort } from '../../smtp/parse-host-port.ts';
import { readSmtpData, smtpError } from '../../smtp/read-smtp-data.ts';
import { acceptMailDsn, acceptRcptDsn, receivedDsn } from '../../smtp/received-dsn-parameters.ts';
import { receivedRecipients, recordRecipient, startRecipients } from '../../smtp/received-recipients.ts';
import { enforceClientDeadlines, isSlowClientDrop } from '../../smtp/client-deadlines.ts';
import { coalesceReplies, dismissSmtpConnections, listenSmtp } from '../../smtp/smtp-listener.ts';
import { oneLine, RelayPool } from '../../smtp/relay-message.ts';
import type { ApiKeyRecord } from '../../store/tenant-directory.ts';
import type { ServiceContext } from '../service-context.ts';
import { serviceCache } from '../service-cache.ts';
import { isLoopback, type SubmissionConfig } from './submission-config.ts';
import { submitMessage, type Relay } from './submit-message.ts';

export interface RunningSubmission {
  listening: HostPort;
  stop(): Promise<void>;
}

const AUTH_FAILED = '5.7.8 Authentication credentials invalid: the username is the tenant\'s name and the password one of its API keys with scope sign.';

function authFailed(): Error {
  return Object.assign(new Error(AUTH_FAILED), { responseCode: 535 });
}

/** The API key behind an AUTH: UNAUTHENTICATED-like failures are one 535; a store that does not answer is 454 (try again). */
async function authenticate(ctx: ServiceContext, auth: SMTPServerAuthentication): Promise<ApiKeyRecord> {
  let key: ApiKeyRecord;
  try {
    const cache = serviceCache(ctx);
    await cache.refresh();
    key = await cache.authenticate(auth.password ?? '');
  } catch (e) {
    if (isKakitomeError(e, 'UNAUTHENTICATED')) throw authFailed();
    throw smtpError(454, '4.7.0', 'Temporary authentication failure; try again later.');
  }
  if (auth.username !== key.tenant) throw authFailed();
  if (!key.scopes.includes('sign')) throw Object.assign(new Error(`5.7.8 This API key has the scope${key.scopes.length > 1 ? 's' : ''} ${key.scopes.join(', ')}; submission needs sign (an administrator makes a key of tenant "${key.tenant}" with scope sign).`), { responseCode: 535 });
  return key;
}

/** `reusePort`: a serving thread's listener, sharing the port with the others (server/workers). */
export async function startSubmission(ctx: ServiceContext, config: SubmissionConfig, options: { reusePort?: boolean } = {}): Promise<RunningSubmission> {
  const name = hostname();
  let inFlight = 0;
  let transactions = 0;
  let idle: (() => void) | undefined;
  // Connections to the relay are reused between messages (relay-message.ts). Up to one idle
  // connection per message this thread had in flight: with the pool's default of 16, a thread
  // serving more clients than that at once closed the extra connections after their message and
  // opened new ones for the next (connect, greeting, EHLO, QUIT): 2-4% of messages under the
  // bench's 32 connections. An idle connection still closes after 5 s unused (idleMs), so the
  // larger bound keeps only what the load of the last seconds needed.
  const relayPool = new RelayPool({ nextHop: config.relay, name, maxIdle: config.maxClients });
  const relay: Relay = (envelope, message) => relayPool.relay(envelope, message, config.relayTimeoutMs);
  const log = (entry: Record<string, string | number | boolean | undefined>) => ctx.log({ time: new Date().toISOString(), level: 'info', listener: 'smtp', ...entry });
  const keyOf = (session: SMTPServerSession) => session.user as ApiKeyRecord;

  const server = new SMTPServer({
    name,
    banner: 'Kakitome signing service (submission)',
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: false,
    // With a certificate: no AUTH before STARTTLS (538), for every client. Without one the port is loopback-only (and onAuth checks again).
    allowInsecureAuth: !config.tls,
    ...(config.tls ? { key: config.tls.key, cert: config.tls.cert, secure: config.tls.implicit, minVersion: 'TLSv1.2' } : { disabledCommands: ['STARTTLS'] }),
    disableReverseLookup: true,
    // DSN (RFC 3461): RET, ENVID, NOTIFY and ORCPT are relayed with the signed message (received-dsn-parameters.ts).
    hideDSN: false,
    size: config.maxMessageBytes,
    rejectOversized: true,
    maxClients: config.maxClients,
    maxRecipients: config.maxRecipients,
    maxAllowedUnauthenticatedCommands: 6,
    logger: false,
    // stop() decides when connections close.
    closeTimeout: 24 * 3600 * 1000,
    onAuth(auth, session, callback) {
      if (!session.secure && !isLoopback(session.remoteAddress)) return callback(smtpError(538, '5.7.11', 'Encryption required: use STARTTLS before AUTH.'));
      authenticate(ctx, auth).then(
        (key) => {
          log({ msg: 'auth', session: session.id, tenant: key.tenant, key: key.id, outcome: 'ok' });
          callback(null, { user: key });
        },
        (e: Error & { responseCode?: number }) => {
          log({ msg: 'auth', session: session.id, outcome: 'refused', reply: e.responseCode });
          callback(e);
        },
      );
    },
    onMailFrom(address, session, callback) {
      startRecipients(session);
      const badDsn = acceptMailDsn(address, session);
      if (badDsn) return callback(badDsn);
      // The key again, per message: revoked or re-limited since AUTH counts now.
      const cache = serviceCache(ctx);
      cache.refresh().then(() => cache.findApiKey(keyOf(session).id)).then(async (key) => ({ key, rate: key && !key.revokedAt ? await ctx.rateLimiter.take(key.id, key.ratePerMinute) : undefined })).then(
        ({ key, rate }) => {
          if (!key || !rate) return callback(smtpError(535, '5.7.8', 'This API key was revoked; authenticate with another.'));
          session.user = key;
          if (!rate.allowed) {
            log({ msg: 'message', session: session.id, tenant: key.tenant, key: key.id, reply: 451, outcome: 'deferred', code: 'RATE_LIMITED' });
            return callback(smtpError(451, '4.7.1', `This API key may send ${key.ratePerMinute} messages a minute; try again in ${rate.retryAfter} s.`));
          }
          callback();
        },
        () => callback(smtpError(451, '4.3.0', 'The service cannot check the API key now; try again later.')),
      );
    },
    onRcptTo(address, session, callback) {
      callback(acceptRcptDsn(address) ?? recordRecipient(address, session, config.maxRecipients) ?? null);
    },
    onData(stream, session, callback) {
      const started = performance.now();
      inFlight++;
      const key = keyOf(session);
      const transaction = `${session.id}.${++transactions}`;
      // Every RCPT as given, Bob@ apart from bob@ (received-recipients.ts).
      const { recipients } = receivedRecipients(session);
      const envelope = { from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: recipients.map((r) => r.address), ...receivedDsn(session.envelope, recipients) };
      const base = { msg: 'message', session: session.id, transaction, tenant: key.tenant, key: key.id, recipients: envelope.to.length };
      const finish = (reply: { code: number; enhanced: string; text: string }, entry: Record<string, string | number | undefined>) => {
        inFlight--;
        ctx.metrics.countOperation('submit', String(entry.outcome));
        log({ ...base, ...entry, reply: reply.code, ms: Math.round((performance.now() - started) * 10) / 10 });
        if (reply.code < 300) callback(null, `${reply.enhanced} ${reply.text}`);
        else callback(smtpError(reply.code, reply.enhanced, oneLine(reply.text)));
        if (inFlight === 0) idle?.();
      };
      readSmtpData(stream, config.maxMessageBytes)
        .then(async (message) => {
          // smtp-server answers 552 itself (rejectOversized); nothing of the message was kept.
          if (message === undefined) return finish({ code: 552, enhanced: '5.3.4', text: `The message is larger than this service accepts (${config.maxMessageBytes} bytes).` }, { outcome: 'refused', code: 'LIMIT' });
          const r = await submitMessage(ctx, relay, key, envelope, message, name);
          return finish(r.reply, { outcome: r.outcome, code: r.code, bytes: message.length, signedBytes: r.signedBytes, ...(r.relay ? { relayAccepted: r.relay.accepted, relayDeferred: r.relay.temporary, relayRefused: r.relay.permanent } : {}), ...(r.relayedDsn ? { relayedDsn: r.relayedDsn } : {}) });
        })
        .catch((e: unknown) => {
          // The client was dropped for slowness mid-DATA (client-deadlines.ts, logged there): nothing was taken.
          if (isSlowClientDrop(e)) return finish({ code: 421, enhanced: '4.4.2', text: 'Timeout - closing connection' }, { outcome: 'deferred', code: 'TIMEOUT' });
          // Nothing escapes as a crash: an unexpected failure defers the message.
          ctx.log({ time: new Date().toISOString(), level: 'error', listener: 'smtp', msg: 'internal error', transaction, error: oneLine(String((e as Error)?.message ?? e)) });
          finish({ code: 451, enhanced: '4.3.0', text: 'The message could not be handled now; try again later.' }, { outcome: 'deferred', code: 'INTERNAL' });
        });
    },
  });
  // Replies to pipelined commands leave together (smtp-listener.ts).
  coalesceReplies(server);
  // A client too slow for a command, a message or a whole session is told 421 4.4.2 and dropped (client-deadlines.ts).
  enforceClientDeadlines(server, () => config.deadlines, (limit, session, detail) => {
    ctx.metrics.countOperation('smtp-slow-client', limit);
    ctx.log({ time: new Date().toISOString(), level: 'warn', listener: 'smtp', msg: 'slow-client', session, limit, ...detail });
  });
  server.on('error', (e: Error) => ctx.log({ time: new Date().toISOString(), level: 'warn', listener: 'smtp', msg: 'smtp-error', error: oneLine(e.message) }));

  const listening = await listenSmtp(server, config.listen, options.reusePort);
  return {
    listening,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      if (inFlight > 0) await new Promise<void>((resolve) => (idle = resolve));
      // Connections between messages are told to go away.
      dismissSmtpConnections(server, 'Kakitome signing service shutting down');
      relayPool.close();
      await closed;
    },
  };
}
