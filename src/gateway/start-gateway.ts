/**
 * The gateway process: an SMTP (or LMTP) listener for Postfix's after-queue
 * content filter (smtp-server), the relay to the next hop (nodemailer), the policy
 * and store context, the optional health and metrics listener.
 *
 * A transaction is admitted at MAIL FROM (admission-gate.ts: backpressure to
 * Postfix). Each message is read into memory up to the policy's streamAboveBytes,
 * and beyond that into a spool file (spooled-message.ts; a message over
 * maxMessageBytes is refused with 552 by smtp-server, which still reads it to the
 * end without keeping it), transformed (in a crypto worker, or streaming on this
 * thread when spooled, at most maxStreamedMessages at once), relayed, and only then
 * answered (handle-message.ts): the gateway holds no queue of its own, Postfix keeps
 * the message until the answer is 250.
 *
 * stop(): stops accepting connections, lets every message in flight finish (its
 * reply is sent), says 421 to idle connections, then resolves. reload() (SIGHUP):
 * imports the policy file again, reads the store's policy and trust anchors, and
 * swaps the context for messages that start afterwards; a bad policy file keeps
 * the old one (and says so in the log). Between reloads, the store's policy
 * revision is read every `policyRefreshMs` (POLICY_REFRESH_MS): an edit made with
 * `kakitome policy` on any node is in force on every node within that time.
 */
import { hostname, tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { smtpError, type SmtpError } from '../smtp/read-smtp-data.ts';
import { acceptMailDsn, acceptRcptDsn, receivedDsn } from '../smtp/received-dsn-parameters.ts';
import { receivedRecipients, recordRecipient, startRecipients } from '../smtp/received-recipients.ts';
import { ContentSpool } from '../cms/stream/content-spool.ts';
import { prepareSpoolDirectory, spoolBytesFor } from './spool-directory.ts';
import { SpooledMessage, spoolSmtpData } from './spooled-message.ts';
import { enforceClientDeadlines, isSlowClientDrop } from '../smtp/client-deadlines.ts';
import { coalesceReplies, dismissSmtpConnections, listenSmtp } from '../smtp/smtp-listener.ts';
import { greetAtOnce } from '../smtp/greet-at-once.ts';
import type { Store } from '../store/store.ts';
import { PolicyDirectory } from '../store/policy-directory.ts';
import { createGatewayContext, withPolicy, type GatewayContext } from './gateway-context.ts';
import type { GatewayLog } from './gateway-log.ts';
import { GatewayMetrics } from './gateway-metrics.ts';
import { loadGatewayPolicy, POLICY_REFRESH_MS } from './gateway-policy.ts';
import { handleMessage, type HandledMessage } from './handle-message.ts';
import type { HostPort } from '../smtp/parse-host-port.ts';
import { RelayPool } from '../smtp/relay-message.ts';
import { serveHealth } from './serve-health.ts';
import { AdmissionGate } from './admission-gate.ts';
import { CryptoPool, type CryptoPoolOptions } from './crypto-pool.ts';
import { transformMessage, type TransformRequest } from './transform-message.ts';

export interface GatewayConfig {
  listen: HostPort;
  nextHop: HostPort;
  domains: ReadonlySet<string>;
  authservId: string;
  policyPath?: string;
  /** Health and metrics listener. */
  metrics?: HostPort;
  /** Speak LMTP on --listen (per-recipient replies) instead of SMTP. */
  lmtp: boolean;
  /** DNS servers for inbound sender authentication (policy senderAuthentication); default: the system's. */
  dnsServers?: string[];
  /** How often the store's policy revision is read (default POLICY_REFRESH_MS). */
  policyRefreshMs?: number;
  /** Worker threads for per-message crypto (crypto-pool.ts); 0 or absent: on the main thread. */
  workers?: number;
  /** Where messages over streamAboveBytes and their copies are spooled (default: the OS temporary directory). */
  spoolDir?: string;
}

/** How the workers open the store: its location and the master key the main thread read. */
export type WorkerStore = CryptoPoolOptions['store'];

export interface RunningGateway {
  /** Where the SMTP/LMTP listener is bound (port 0 resolved). */
  listening: HostPort;
  metricsListening?: HostPort;
  metrics: GatewayMetrics;
  reload(): Promise<boolean>;
  /** Reads the store's policy now if its revision moved (what the timer does); true when a new policy is in force. */
  refreshPolicy(): Promise<boolean>;
  stop(): Promise<void>;
}

export async function startGateway(config: GatewayConfig, store: Store, log: GatewayLog, workerStore?: WorkerStore): Promise<RunningGateway> {
  const metrics = new GatewayMetrics();
  const spoolDir = await prepareSpoolDirectory(config.spoolDir ?? tmpdir(), log);
  let ctx: GatewayContext = await createGatewayContext(store, await loadGatewayPolicy(store, config.policyPath), config.authservId, config.domains, { ...(config.dnsServers ? { dnsServers: config.dnsServers } : {}) });
  const policies = new PolicyDirectory(store);
  const name = hostname();
  // Connections to the next hop are reused between messages (relay-message.ts).
  const nextHop = new RelayPool({ nextHop: config.nextHop, name });
  if (config.workers && !workerStore) throw new Error('startGateway: workers need the store\'s location and master key');
  const pool = config.workers ? new CryptoPool({ workers: config.workers, store: workerStore!, authservId: config.authservId, domains: config.domains }) : undefined;
  // One transaction per worker at work, plus maxQueuedMessages waiting (admission-gate.ts).
  const gate = new AdmissionGate(() => (pool?.size ?? 1) + ctx.global.maxQueuedMessages);
  // Spooled messages stream on this thread, each with some tens of MiB: at most maxStreamedMessages at once.
  const streamGate = new AdmissionGate(() => ctx.global.maxStreamedMessages);
  /** Sessions admitted by the gate ('admitted'), waiting at MAIL FROM ('waiting'), or closed while waiting ('gone'). */
  const admission = new Map<string, 'waiting' | 'admitted' | 'gone'>();
  const leaveGate = (sessionId: string) => {
    if (admission.get(sessionId) === 'admitted') gate.leave();
    admission.delete(sessionId);
  };
  let inFlight = 0;
  let accepting = true;
  let transactions = 0;
  let idle: (() => void) | undefined;

  const server = new SMTPServer({
    lmtp: config.lmtp,
    name,
    banner: 'Kakitome S/MIME gateway',
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    // Postfix's XFORWARD carries its queue id (IDENT) for the log, and the client's address
    // and HELO name (ADDR, HELO) for SPF (policy senderAuthentication). Only Postfix reaches
    // --listen (docs/gateway.md): what it forwards is believed.
    useXForward: true,
    // DSN (RFC 3461): RET, ENVID, NOTIFY and ORCPT are taken and relayed with each copy (received-dsn-parameters.ts).
    hideDSN: false,
    size: ctx.global.maxMessageBytes,
    rejectOversized: true,
    maxClients: ctx.global.maxConnections,
    logger: false,
    // The drain in stop() decides when connections close.
    closeTimeout: 24 * 3600 * 1000,
    onMailFrom(address, session: SMTPServerSession, callback: (err?: Error | null) => void) {
      startRecipients(session);
      const badDsn = acceptMailDsn(address, session);
      if (badDsn) return callback(badDsn);
      if (admission.get(session.id) === 'admitted') return callback();
      admission.set(session.id, 'waiting');
      const since = performance.now();
      // Whether it waits is known now: timing the admission would count a transaction
      // admitted at once whenever the event loop is slow to run the continuation.
      const waits = !gate.open;
      void gate.enter(ctx.global.queueWaitMs).then((admitted) => {
        if (admission.get(session.id) === 'gone') {
          if (admitted) gate.leave();
          admission.delete(session.id);
          return;
        }
        if (!admitted) {
          admission.delete(session.id);
          metrics.inc('kakitome_gateway_busy_total');
          log('busy', { session: session.id, waitedMs: Math.round(performance.now() - since) });
          return callback(smtpError(451, '4.3.2', 'The gateway is busy; try again later.'));
        }
        admission.set(session.id, 'admitted');
        if (waits) metrics.inc('kakitome_gateway_queue_waits_total');
        callback();
      });
    },
    onRcptTo(address, session, callback: (err?: Error | null) => void) {
      callback(acceptRcptDsn(address) ?? recordRecipient(address, session) ?? null);
    },
    onClose(session: SMTPServerSession) {
      if (admission.get(session.id) === 'waiting') admission.set(session.id, 'gone');
      else leaveGate(session.id);
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string | Array<string | Error>) => void) {
      const started = performance.now();
      inFlight++;
      metrics.setInFlight(inFlight);
      const current = ctx;
      const limit = current.global.maxMessageBytes;
      const transactionId = `${session.id}.${++transactions}`;
      // Every recipient as given, Bob@ apart from bob@, each once; and every accepted RCPT, repeats included (received-recipients.ts).
      const { recipients, commands } = receivedRecipients(session);
      const envelope = {
        from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
        to: recipients.map((r) => r.address),
        transactionId,
        ...receivedDsn(session.envelope, recipients),
        ...(session.xForward?.get('IDENT') ? { queueId: String(session.xForward.get('IDENT')) } : {}),
        ...(session.xForward?.get('ADDR') ? { clientAddress: String(session.xForward.get('ADDR')) } : {}),
        ...(session.xForward?.get('HELO') ? { clientHelo: String(session.xForward.get('HELO')) } : {}),
        ...(session.xForward?.get('SOURCE') ? { clientSource: String(session.xForward.get('SOURCE')) } : {}),
      };
      const done = (handled: HandledMessage | SmtpError) => {
        // The next transaction on this connection is admitted anew at its MAIL FROM.
        leaveGate(session.id);
        inFlight--;
        metrics.setInFlight(inFlight);
        if (handled instanceof Error) callback(handled);
        else if (config.lmtp) {
          // One reply per accepted RCPT, in order (RFC 2033 4.2): a repeated address gets its one copy's reply again.
          const position = new Map(envelope.to.map((r, i) => [r, i]));
          callback(null, commands.map((c) => handled.perRecipient[position.get(c)!]!).map((r) => (r.code < 300 ? `${r.enhanced} ${r.text}` : smtpError(r.code, r.enhanced, r.text))));
        }
        else if (handled.whole.code < 300) callback(null, `${handled.whole.enhanced} ${handled.whole.text}`);
        else callback(smtpError(handled.whole.code, handled.whole.enhanced, handled.whole.text));
        if (inFlight === 0) idle?.();
      };
      const streamAbove = current.global.streamAboveBytes;
      // Up to streamAboveBytes in memory; a larger message goes on into an unlinked file in the spool directory.
      const spool = new ContentSpool({ dir: spoolDir, memoryBytes: streamAbove, maxBytes: limit });
      spoolSmtpData(stream, limit, spool)
        .then(async (size) => {
          if (size === undefined) {
            metrics.inc('kakitome_gateway_errors_total', { code: 'SIZE' });
            log('message', { transactionId, ...(envelope.queueId ? { queueId: envelope.queueId } : {}), recipients: envelope.to.length, reply: 552, error: 'SIZE', ms: Math.round((performance.now() - started) * 10) / 10 });
            // smtp-server answers 552 itself (rejectOversized).
            return done(smtpError(552, '5.3.4', `The message exceeds the gateway's limit of ${limit} bytes.`));
          }
          if (size > streamAbove && !(await streamGate.enter(current.global.queueWaitMs))) {
            metrics.inc('kakitome_gateway_busy_total');
            log('busy', { transactionId, streamed: true, bytes: size });
            return done(smtpError(451, '4.3.2', 'The gateway is busy with other large messages; try again later.'));
          }
          try {
            const message = size > streamAbove ? await SpooledMessage.read(spool) : await spool.readAll();
            const transform = pool ? (request: TransformRequest) => pool.transform(request, current.policy.revision) : (request: TransformRequest) => transformMessage(current, request);
            const place = { dir: spoolDir, maxBytes: spoolBytesFor(limit), inMemoryBytes: streamAbove };
            return done(await handleMessage({ ctx: current, lmtp: config.lmtp, log, metrics, transform, place, relay: (env, msg) => nextHop.relay(env, msg, current.global.relayTimeoutMs), nextHopMaxSize: () => nextHop.maxSize }, envelope, message));
          } finally {
            if (size > streamAbove) streamGate.leave();
          }
        })
        .catch((e: unknown) => {
          // The client was dropped for slowness mid-DATA (client-deadlines.ts, logged and counted there): nothing was taken.
          if (isSlowClientDrop(e)) return done(smtpError(421, '4.4.2', 'Timeout - closing connection'));
          // Nothing escapes as a crash: an unexpected failure defers the message.
          metrics.inc('kakitome_gateway_errors_total', { code: 'INTERNAL' });
          log('error', { transactionId, error: String((e as Error)?.message ?? e).split('\n')[0]!.slice(0, 300) });
          done(smtpError(451, '4.3.0', 'The gateway could not process the message; try again later.'));
        })
        // After the reply, whatever happened: the spool file (if any) is gone with its handle.
        .finally(() => spool.dispose());
    },
  });
  // Replies to pipelined commands leave together (smtp-listener.ts), at the end of the turn that wrote
  // them: onMailFrom answers in a microtask when the gate is open, so one turn holds the whole group.
  coalesceReplies(server, 1);
  // Only Postfix connects, and as a before-queue filter it connects for every message (greet-at-once.ts).
  greetAtOnce(server);
  // Before-queue, Postfix passes an outside client's pace on: a command, a message or a session too slow is
  // answered 421 4.4.2 and dropped (client-deadlines.ts), read from the policy in force per connection.
  enforceClientDeadlines(server, () => ({ commandMs: ctx.global.commandTimeoutMs, dataGraceMs: ctx.global.commandTimeoutMs, minDataRate: ctx.global.minDataRate, sessionMs: ctx.global.sessionTimeoutMs }), (limit, session, detail) => {
    metrics.inc('kakitome_gateway_slow_clients_total', { limit });
    log('slow-client', { session, limit, ...detail });
  });
  server.on('error', (e: Error) => log('smtp-error', { error: e.message.slice(0, 300) }));

  let bound: HostPort;
  try {
    bound = await listenSmtp(server, config.listen);
  } catch (e) {
    await pool?.close();
    throw e;
  }
  let health: Server | undefined;
  try {
    if (config.metrics) health = await serveHealth(config.metrics, { metrics: () => metrics.render(), contentType: metrics.contentType, accepting: () => accepting });
  } catch (e) {
    server.close();
    nextHop.close();
    await pool?.close();
    throw e;
  }
  const healthAddress = health?.address() as AddressInfo | undefined;
  log('listening', { listen: `${bound.host}:${bound.port}`, protocol: config.lmtp ? 'lmtp' : 'smtp', nextHop: `${config.nextHop.host}:${config.nextHop.port}`, domains: config.domains.size, ...(healthAddress ? { metrics: `${healthAddress.address}:${healthAddress.port}` } : {}) });

  const applyLimits = () => {
    // smtp-server reads these per connection and per DATA: new limits apply from the next message on.
    Object.assign(server.options, { size: ctx.global.maxMessageBytes, maxClients: ctx.global.maxConnections });
    gate.resize();
    streamGate.resize();
  };
  let refreshing: Promise<boolean> | undefined;
  const refreshPolicy = (): Promise<boolean> => {
    refreshing ??= (async () => {
      try {
        if ((await policies.revision()) === ctx.policy.revision) return false;
        ctx = withPolicy(ctx, await policies.load());
        applyLimits();
        log('policy-refreshed', { revision: ctx.policy.revision });
        return true;
      } catch (e) {
        // The store down, or a bad row: the policy in force stays, and the next tick tries again.
        log('policy-refresh-failed', { error: (e as Error).message.split('\n')[0]!.slice(0, 300) });
        return false;
      } finally {
        refreshing = undefined;
      }
    })();
    return refreshing;
  };
  const refreshTimer = setInterval(() => void refreshPolicy(), config.policyRefreshMs ?? POLICY_REFRESH_MS);
  refreshTimer.unref();

  return {
    listening: bound,
    ...(healthAddress ? { metricsListening: { host: healthAddress.address, port: healthAddress.port } } : {}),
    metrics,
    refreshPolicy,
    async reload() {
      try {
        ctx = await createGatewayContext(store, await loadGatewayPolicy(store, config.policyPath), config.authservId, config.domains, { ...(config.dnsServers ? { dnsServers: config.dnsServers } : {}) });
        pool?.reload();
        applyLimits();
        log('reloaded', { policy: config.policyPath ?? 'store', revision: ctx.policy.revision });
        return true;
      } catch (e) {
        log('reload-failed', { error: (e as Error).message.slice(0, 300) });
        return false;
      }
    },
    async stop() {
      accepting = false;
      clearInterval(refreshTimer);
      log('stopping', { inFlight });
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Transactions waiting for a place are answered 451 now; those admitted finish.
      gate.close();
      streamGate.close();
      if (inFlight > 0) await new Promise<void>((resolve) => (idle = resolve));
      // Connections between messages (Postfix's connection cache) are told to go away.
      dismissSmtpConnections(server, 'Kakitome gateway shutting down');
      nextHop.close();
      await pool?.close();
      await closed;
      await new Promise<void>((resolve) => (health ? health.close(() => resolve()) : resolve()));
      log('stopped', {});
    },
  };
}
