/**
 * Deadlines for SMTP clients, shared by the gateway's listener and the submission
 * port: a client that sends one byte at a time must not hold a connection (and with
 * it one of maxClients places) for as long as it likes.
 *
 * smtp-server's only clock is its idle timeout (socketTimeout), which every byte
 * restarts. What mail servers add (Postfix: smtpd_per_record_deadline,
 * smtpd_min_data_rate; RFC 5321 4.5.3.2 gives 5 minutes per command and 10 for
 * DATA's end as a server's maxima), this adds:
 *
 * - commandMs: a command line, from the first byte read after the previous command
 *   line to its CRLF, must arrive within this. An AUTH exchange counts as one command,
 *   from AUTH's first byte to its last continuation line; STARTTLS too, through the
 *   TLS handshake to the next command line; an implicit TLS handshake gets as long.
 * - DATA: the message must arrive at minDataRate bytes/s on average after a grace of
 *   dataGraceMs: at time t after DATA's 354, at least (t - dataGraceMs) × minDataRate
 *   bytes (Postfix extends its deadline by bytes / smtpd_min_data_rate the same way).
 * - sessionMs: a connection's whole life. At expiry it ends at the next point where
 *   no transaction is in flight: between commands, never during DATA (bounded by
 *   the rate) nor while a reply is owed.
 *
 * Time the server itself takes (an onAuth or onMailFrom handler, the admission queue,
 * processing an accepted message) never counts: a deadline falling then is put off
 * until the client owes input again. On expiry the client gets `421 4.4.2 ... timeout`
 * and the connection is closed; a message whose DATA is cut is failed (its stream
 * errors, so no handler sees it whole and nothing is answered 250).
 *
 * Installed over server.connect (call after greetAtOnce, which replaces it). It uses
 * smtp-server's internals (pinned 3.21.7): SMTPServer._acceptSocket (a socket before
 * its implicit TLS handshake); per connection _onCommand (the parser's
 * callback per line), _createParser (a new parser after STARTTLS), _parser._dataMode,
 * _dataStream, _handlerPending, _nextHandler, _upgrading, _onClose.
 */
import type { Socket } from 'node:net';
import type { SMTPServer } from 'smtp-server';
import { KakitomeError } from '../errors.ts';

export interface ClientDeadlines {
  /** A command line (an AUTH exchange: all its lines), from its first byte to its CRLF. */
  commandMs: number;
  /** DATA: the time before minDataRate counts. */
  dataGraceMs: number;
  /** DATA: the least average rate after the grace, bytes per second. */
  minDataRate: number;
  /** A connection's whole life; it ends at the next point between transactions. */
  sessionMs: number;
}

export type DeadlineKind = 'handshake' | 'command' | 'data' | 'session';

/** The error a message's DATA stream fails with when its client was dropped for slowness (not an internal failure). */
export function isSlowClientDrop(e: unknown): boolean {
  return (e as { code?: unknown } | undefined)?.code === 'ESLOWCLIENT';
}

/** Bounds every listener validates its values against (milliseconds; bytes/s). */
export const DEADLINE_BOUNDS = {
  commandMs: [100, 600_000],
  dataGraceMs: [0, 3_600_000],
  minDataRate: [1, 1024 ** 3],
  sessionMs: [1000, 24 * 3_600_000],
} as const satisfies Record<keyof ClientDeadlines, readonly [number, number]>;

/** INVALID_ARGUMENT with `explain`'s text (the option, its bounds in its units) when a value is outside DEADLINE_BOUNDS. */
export function checkClientDeadlines(d: ClientDeadlines, explain: (name: keyof ClientDeadlines, min: number, max: number) => string): ClientDeadlines {
  for (const name of Object.keys(DEADLINE_BOUNDS) as (keyof ClientDeadlines)[]) {
    const [min, max] = DEADLINE_BOUNDS[name];
    const v = d[name];
    if (!Number.isInteger(v) || v < min || v > max) throw new KakitomeError('INVALID_ARGUMENT', explain(name, min, max));
  }
  return d;
}

interface Parser {
  _dataMode?: boolean;
  write(chunk: Buffer, encoding?: unknown, callback?: unknown): boolean;
}

interface Connection {
  id: string;
  name: string;
  _parser: Parser | false;
  _dataStream: (NodeJS.ReadableStream & { writableEnded?: boolean; destroyed?: boolean; destroy(e?: Error): void; listenerCount(e: string): number }) | false | null;
  _handlerPending: boolean;
  _nextHandler: unknown;
  _upgrading: boolean;
  _closing: boolean;
  _closed: boolean;
  _onCommand(command: Buffer, callback?: () => void): void;
  _createParser(): Parser;
  _onClose(): void;
  send(code: number, text: string, context?: string | false): void;
}

const VERBS = ['AUTH', 'STARTTLS', 'DATA'] as const;

/**
 * The command's verb when the deadlines treat it apart (AUTH, STARTTLS, DATA), compared as
 * bytes, case-insensitively, up to a space or the line's end: no string is made per line.
 */
function verbOf(line: Buffer): (typeof VERBS)[number] | undefined {
  for (const verb of VERBS) {
    const n = verb.length;
    if (line.length < n || (line.length > n && line[n] !== 0x20)) continue;
    let i = 0;
    // & 0xdf: an ASCII letter in upper case (every verb is letters only).
    while (i < n && (line[i]! & 0xdf) === verb.charCodeAt(i)) i++;
    if (i === n) return verb;
  }
  return undefined;
}

const REPLY: Record<Exclude<DeadlineKind, 'handshake'>, (d: ClientDeadlines) => string> = {
  command: (d) => `Timeout: a command line must arrive within ${d.commandMs / 1000} s - closing connection`,
  data: (d) => `Timeout: the message arrived at less than ${d.minDataRate} bytes/s - closing connection`,
  session: (d) => `Timeout: a session may last ${d.sessionMs / 1000} s - closing connection`,
};

/**
 * Enforces `deadlines()` (read per connection, so a reload applies to new ones) on
 * every connection `server` accepts; `onDrop` is told of each connection closed for it.
 */
export function enforceClientDeadlines(server: SMTPServer, deadlines: () => ClientDeadlines, onDrop: (kind: DeadlineKind, session: string, detail: { ms: number; bytes?: number }) => void): void {
  const s = server as unknown as { connect(socket: unknown, options: unknown): void; connections: Set<Connection>; _acceptSocket(socket: Socket, handshake: boolean): (() => void) | false; _pendingSockets: Map<Socket, Socket> };
  // Implicit TLS: until its handshake is done a socket is not a connection yet, and smtp-server
  // bounds it by the idle timeout alone (every byte restarts it): the handshake gets commandMs.
  const accept = s._acceptSocket;
  s._acceptSocket = function (this: unknown, socket: Socket, handshake: boolean) {
    const release = accept.call(server, socket, handshake);
    if (!release || !handshake) return release;
    const opened = performance.now();
    const timer = setTimeout(() => {
      if (socket.destroyed) return;
      onDrop('handshake', '-', { ms: Math.round(performance.now() - opened) });
      // The topmost socket (smtp-server's record of it: the TLS socket once the handshake began), as smtp-server's close does:
      // destroying the TCP socket under a TLS socket in its handshake crashed Node (SIGSEGV, Node 24).
      (s._pendingSockets.get(socket) ?? socket).destroy();
    }, deadlines().commandMs).unref();
    return () => {
      clearTimeout(timer);
      release();
    };
  };
  const connect = s.connect;
  s.connect = function (this: unknown, socket: unknown, options: unknown) {
    connect.call(server, socket, options);
    let newest: Connection | undefined;
    for (const c of s.connections) newest = c;
    if (newest && !newest._closing) watch(newest, deadlines(), onDrop);
  };
}

/**
 * One timer per connection, ticking every quarter of the shortest limit: the client's
 * commands and bytes only write timestamps and counts, so a message costs no timer of
 * its own (bench/smtp-deadlines.ts: no difference per message within its noise); a
 * deadline is noticed up to a quarter of it late.
 */
function watch(c: Connection, d: ClientDeadlines, onDrop: (kind: DeadlineKind, session: string, detail: { ms: number; bytes?: number }) => void): void {
  const opened = performance.now();
  /** When the command line (or AUTH exchange) being read started: its first byte. */
  let commandSince: number | undefined;
  let data: { since: number; bytes: number } | undefined;
  let sessionExpired = false;
  /** The exchange in progress that counts as one command (its continuation lines, or the TLS handshake, under its deadline). */
  let exchange: 'AUTH' | 'STARTTLS' | undefined;

  /** The client owes us input (not a handler's turn, not an accepted message being decided on). */
  const clientsTurn = () => !c._handlerPending && !(c._dataStream && c._parser && !c._parser._dataMode);
  const inData = () => !!(c._dataStream && c._parser && c._parser._dataMode);

  const drop = (kind: DeadlineKind, bytes?: number) => {
    if (c._closing || c._closed) return;
    clearInterval(tick);
    onDrop(kind, c.id, { ms: Math.round(performance.now() - opened), ...(bytes !== undefined ? { bytes } : {}) });
    const stream = c._dataStream;
    // The enhanced code written here (context false): smtp-server adds none unless ENHANCEDSTATUSCODES is advertised.
    c.send(421, `4.4.2 ${c.name} ${REPLY[kind as Exclude<DeadlineKind, 'handshake'>](d)}`, false);
    // A message cut short fails now: its onData handler's stream errors (not ends), so nothing answers 250 for part of it.
    if (stream && !stream.writableEnded && !stream.destroyed) {
      const e = Object.assign(new Error(`The client was too slow (${kind} deadline)`), { code: 'ESLOWCLIENT' });
      stream.destroy(stream.listenerCount('error') ? e : undefined);
    }
  };

  const check = () => {
    if (c._closing || c._closed) return clearInterval(tick);
    const now = performance.now();
    if (data) {
      if (!inData()) data = undefined;
      // Owed by now: (elapsed - grace) × rate.
      else if (now - data.since >= d.dataGraceMs + (data.bytes / d.minDataRate) * 1000) return drop('data', data.bytes);
    }
    if (commandSince !== undefined && now - commandSince >= d.commandMs) {
      // The server's own turn (an AUTH lookup, the admission queue) does not count: the deadline starts again after it.
      if (!clientsTurn() || inData()) commandSince = now;
      else return drop('command');
    }
    if (!sessionExpired && now - opened >= d.sessionMs) sessionExpired = true;
    // Between commands with nothing owed: now. Otherwise at the next command line (itself under commandMs).
    if (sessionExpired && clientsTurn() && !inData() && commandSince === undefined && exchange === undefined) drop('session');
  };
  const tick = setInterval(check, Math.max(25, Math.min(d.commandMs, d.sessionMs, Math.max(d.dataGraceMs, 1000)) / 4)).unref();

  const observe = (parser: Parser) => {
    const write = parser.write;
    parser.write = function (this: Parser, chunk: Buffer, encoding?: unknown, callback?: unknown) {
      if (data && inData()) data.bytes += chunk.length;
      else if (commandSince === undefined && !inData()) commandSince = performance.now();
      return write.call(this, chunk, encoding, callback);
    };
    return parser;
  };
  if (c._parser) observe(c._parser);
  const createParser = c._createParser;
  c._createParser = function (this: Connection) {
    return observe(createParser.call(this));
  };

  const onCommand = c._onCommand;
  c._onCommand = function (this: Connection, line: Buffer, callback?: () => void) {
    // Plaintext the retired parser drains during STARTTLS's handshake: smtp-server drops it, and so does the clock.
    if (c._upgrading) return onCommand.call(this, line, callback);
    const continuation = !!c._nextHandler;
    const verb = continuation ? undefined : verbOf(line);
    // An AUTH exchange is one command: its deadline runs on through the continuation lines. So is
    // STARTTLS: from its first byte through the TLS handshake to the end of the next command line.
    if (!continuation) exchange = verb === 'AUTH' || verb === 'STARTTLS' ? verb : undefined;
    if (exchange === undefined) commandSince = undefined;
    data = undefined;
    if (sessionExpired && !continuation) return drop('session');
    if (exchange !== 'AUTH' && verb !== 'DATA') return onCommand.call(this, line, callback);
    return onCommand.call(this, line, () => {
      // The AUTH exchange ends once its handler awaits no further line (the last continuation line's too).
      if (exchange === 'AUTH' && !c._nextHandler) {
        exchange = undefined;
        commandSince = undefined;
      }
      if (verb === 'DATA' && inData()) data = { since: performance.now(), bytes: 0 };
      callback?.();
    });
  };

  // The socket closed (whoever closed it): the timer does not outlive the connection.
  const onClose = c._onClose;
  c._onClose = function (this: Connection) {
    clearInterval(tick);
    return onClose.call(this);
  };
}
