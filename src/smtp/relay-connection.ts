/**
 * One SMTP (or LMTP) client session to the next hop, for relay-message.ts's pool:
 * greeting, EHLO (HELO when EHLO is refused; LHLO for LMTP), then transactions, one
 * at a time, each answered with an outcome per recipient.
 *
 * Why our own client and not nodemailer's SMTPConnection (which relayed until
 * session 7): nodemailer already pipelines MAIL, RCPT and DATA, but writes the
 * message through a Transform stream piped into the socket (the message, then the
 * terminator: separate writes), looks at every byte in JavaScript for dot-stuffing,
 * and has no BDAT. Here a transaction is two writes when the next hop offers
 * PIPELINING: the envelope (MAIL and every RCPT, with DATA when there is no
 * CHUNKING), then, once the envelope is answered, the message (`BDAT n LAST` and the
 * message, or the dot-stuffed message and its terminator), prepared by
 * encode-message-data.ts's native scan. The figures are in docs/performance.md
 * ("SMTP submission").
 *
 * Why not the whole transaction in one write (envelope and `BDAT n LAST` with the
 * message), which the protocol allows: Postfix's smtpd answers MAIL and RCPT as soon
 * as it has read them (a 4 KiB read) and BDAT only after the message is queued, so a
 * message over about 4 KiB got two small replies in a row. Postfix writes with
 * Nagle's algorithm on, so the second waited for our ACK of the first, and Linux
 * delays that ACK up to 40 ms when it has nothing to send back: measured through
 * Postfix (bench/gateway.ts, signed 2 KB messages, about 5 KB on the wire), the
 * gateway's time per message went from p50 4.2 ms to 44 ms. Sending the message
 * only after the envelope's replies carries that ACK with it.
 *
 * What it answers, per recipient (relay-message.ts's RecipientOutcome): the RCPT
 * reply when it was not 2xx; otherwise the final reply (SMTP: the one reply to the
 * data; LMTP: that recipient's own). MAIL refused: every recipient gets MAIL's reply
 * (the replies to commands pipelined after it are the server's 503s, not reasons).
 * No answer at all (refused connection, a greeting other than 220, a timeout, the
 * next hop closing, a reply over the bounds below) is temporary, code 0: the sender
 * keeps the message. A session is reusable only after a transaction whose every
 * final reply was 2xx; anything else closes it.
 *
 * Bounds on what the next hop sends: a reply line 4,096 bytes at most (RFC 5321
 * asks 512), a reply 32 lines; past either the session is dropped.
 */
import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { mailDsnParameters, mailDsnProblem, rcptDsnParameters, rcptDsnProblem, type MailDsn, type RcptDsn } from './dsn-parameters.ts';
import { dataTerminator, encodeChunk, encodeChunkedBody, encodeDataBody, START_OF_MESSAGE } from './encode-message-data.ts';

/**
 * One transaction's envelope. The DSN parameters (RFC 3461, dsn-parameters.ts) are
 * written only when the next hop advertises DSN; without it they are left out and
 * the message relayed all the same (docs/gateway.md: the supported next hop,
 * Postfix, advertises it).
 */
export interface RelayEnvelope {
  from: string;
  to: readonly string[];
  /** RET and ENVID for MAIL FROM. */
  dsn?: MailDsn;
  /** NOTIFY and ORCPT per recipient, in the order of `to`. */
  recipientDsn?: ReadonlyArray<RcptDsn | undefined>;
}

export interface SmtpReply {
  code: number;
  /** The whole reply, lines joined by LF, as received (without the final CRLF). */
  text: string;
}

export interface RelaySessionOptions {
  host: string;
  port: number;
  /** EHLO (LHLO) name. */
  name: string;
  lmtp: boolean;
  /** Connect, greeting and EHLO together. */
  setupTimeoutMs: number;
}

/** The body as relay-message.ts hands it over: in memory, or a stream read once (size announced with MAIL). */
export type SessionBody = Buffer | { size: number; stream(): Readable };

export interface TransactionResult {
  /** Per recipient, in envelope order: the reply that decides its outcome, or the failure when there was none (code 0). */
  replies: SmtpReply[];
  reusable: boolean;
}

const MAX_LINE = 4096;
const MAX_LINES = 32;
const ASCII_PRINTABLE = /^[\x21-\x7e\x80-\uffff]*$/;

/** The session failed as a whole: no reply decides the outcome (code 0, temporary). */
export class SessionFailure extends Error {}

export class RelaySession {
  readonly #socket: Socket;
  readonly #features = new Set<string>();
  #maxSize: number | undefined;
  #buffered = '';
  #lines: string[] = [];
  readonly #waiting: Array<{ resolve(reply: SmtpReply): void; reject(e: Error): void }> = [];
  /** Replies read before anyone asked for them (pipelined commands' replies arrive together). */
  readonly #replies: SmtpReply[] = [];
  /**
   * How many replies may wait in #replies: the commands written in one go (MAIL, each
   * RCPT, DATA when pipelined; LMTP's reply per recipient after the message), at least MAX_LINES. A next hop that answers pipelined
   * commands in one write (Postfix's smtpd does) sends that many at once; more than
   * that is a next hop out of step.
   */
  #repliesExpected = MAX_LINES;
  /** In a transaction (or opening): replies are expected. */
  #busy = true;
  #failure: SessionFailure | undefined;
  #goneListener: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    socket.on('error', (e: Error) => this.#fail(new SessionFailure(e.message)));
    socket.on('close', () => this.#fail(new SessionFailure('the next hop closed the connection')));
  }

  /** Connects, reads the greeting and says EHLO (LHLO); throws SessionFailure when the next hop cannot be used now. */
  static async open(o: RelaySessionOptions): Promise<RelaySession> {
    const socket = connect({ host: o.host, port: o.port });
    const session = new RelaySession(socket);
    const timer = setTimeout(() => session.#fail(new SessionFailure(`the next hop did not greet within ${o.setupTimeoutMs} ms`)), o.setupTimeoutMs);
    try {
      const greeting = await session.#reply();
      if (greeting.code !== 220) throw new SessionFailure(`the next hop greeted with ${oneLineOf(greeting.text)}`);
      session.#write(`${o.lmtp ? 'LHLO' : 'EHLO'} ${o.name}\r\n`);
      let hello = await session.#reply();
      if (hello.code !== 250 && !o.lmtp) {
        session.#write(`HELO ${o.name}\r\n`);
        hello = await session.#reply();
      } else if (hello.code === 250) {
        for (const line of hello.text.split('\n').slice(1)) {
          const [keyword, value] = line.slice(4).split(' ');
          session.#features.add(keyword!.toUpperCase());
          // RFC 1870 4: "SIZE n", the fixed maximum; 0 or none: no fixed maximum.
          if (keyword!.toUpperCase() === 'SIZE' && Number(value) > 0) session.#maxSize = Number(value);
        }
      }
      if (hello.code !== 250) throw new SessionFailure(`the next hop refused ${o.lmtp ? 'LHLO' : 'EHLO and HELO'}: ${oneLineOf(hello.text)}`);
      session.#busy = false;
      return session;
    } catch (e) {
      session.close();
      throw e instanceof SessionFailure ? e : new SessionFailure(String((e as Error)?.message ?? e));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Whether the next hop advertised DSN (RFC 3461): the DSN parameters go with the message only then. */
  get advertisesDsn(): boolean {
    return this.#features.has('DSN');
  }

  /** The largest message the next hop said it takes (EHLO SIZE, RFC 1870); undefined when it gave no fixed maximum. */
  get maxSize(): number | undefined {
    return this.#maxSize;
  }

  /** True until the session failed or was closed. */
  get open(): boolean {
    return this.#failure === undefined;
  }

  /** Called once when the session fails or closes (while idle in a pool: it leaves the pool). */
  onGone(listener: () => void): void {
    this.#goneListener = listener;
  }

  /**
   * One transaction. Never throws: a session failure becomes a code-0 reply for every
   * recipient whose outcome was not known yet. `timeout.ms` bounds the whole transaction
   * (what is left of the relay's `timeout.stated`, which the failure names).
   */
  async transaction(envelope: RelayEnvelope, body: SessionBody, lmtp: boolean, timeout: { ms: number; stated: number }): Promise<TransactionResult> {
    const addresses = [envelope.from, ...envelope.to];
    const bad = addresses.find((a) => !ASCII_PRINTABLE.test(a) || /[<>]/.test(a));
    if (bad !== undefined) {
      return { replies: envelope.to.map(() => ({ code: 501, text: `501 5.1.7 The address ${JSON.stringify(bad.slice(0, 100))} cannot be relayed` })), reusable: this.open };
    }
    // The listeners refused these already; checked again so that nothing unchecked reaches the wire.
    const dsnProblem = mailDsnProblem(envelope.dsn) ?? (envelope.recipientDsn && envelope.recipientDsn.length !== envelope.to.length ? 'one set of DSN parameters per recipient' : envelope.recipientDsn?.map(rcptDsnProblem).find((p) => p !== undefined));
    if (dsnProblem !== undefined) {
      return { replies: envelope.to.map(() => ({ code: 501, text: `501 5.5.4 The DSN parameters cannot be relayed: ${dsnProblem}` })), reusable: this.open };
    }
    this.#busy = true;
    const timer = setTimeout(() => this.#fail(new SessionFailure(`the next hop did not answer within ${timeout.stated} ms`)), timeout.ms);
    const decided: Array<SmtpReply | undefined> = envelope.to.map(() => undefined);
    try {
      return await this.#transact(envelope, body, lmtp, decided);
    } catch (e) {
      const failure = e instanceof SessionFailure ? e : new SessionFailure(String((e as Error)?.message ?? e));
      this.close();
      return { replies: decided.map((r) => r ?? { code: 0, text: failure.message }), reusable: false };
    } finally {
      clearTimeout(timer);
      this.#busy = false;
      this.#repliesExpected = MAX_LINES;
      // Anything read beyond the transaction's replies: out of step; not used again.
      if (this.#replies.length) this.#fail(new SessionFailure('the next hop sent more replies than commands'));
    }
  }

  async #transact(envelope: RelayEnvelope, body: SessionBody, lmtp: boolean, decided: Array<SmtpReply | undefined>): Promise<TransactionResult> {
    const inMemory = Buffer.isBuffer(body);
    const size = inMemory ? body.length : body.size;
    const params: string[] = [];
    if (this.#features.has('8BITMIME')) params.push('BODY=8BITMIME');
    if (this.#features.has('SIZE')) params.push(`SIZE=${size}`);
    if (this.#features.has('SMTPUTF8') && /[^\x00-\x7f]/.test(envelope.from + envelope.to.join(''))) params.push('SMTPUTF8');
    const dsn = this.#features.has('DSN');
    if (dsn) params.push(...mailDsnParameters(envelope.dsn));
    const rcptCommand = (i: number) => {
      const extra = dsn ? rcptDsnParameters(envelope.recipientDsn?.[i]) : [];
      return `RCPT TO:<${envelope.to[i]}>${extra.length ? ` ${extra.join(' ')}` : ''}\r\n`;
    };
    let commands = `MAIL FROM:<${envelope.from}>${params.length ? ` ${params.join(' ')}` : ''}\r\n`;
    const pipelining = this.#features.has('PIPELINING');
    // BDAT carries the message after the envelope's replies (see the header: not in the envelope's write);
    // only SMTP (LMTP's per-recipient replies come after DATA here).
    const chunked = pipelining && inMemory && !lmtp && this.#features.has('CHUNKING');
    // Pipelined: MAIL, each RCPT and DATA answered at once; LMTP: each recipient's reply after the message, at once too.
    this.#repliesExpected = Math.max(MAX_LINES, envelope.to.length + 2);
    if (pipelining) {
      for (let i = 0; i < envelope.to.length; i++) commands += rcptCommand(i);
      this.#write(chunked ? commands : `${commands}DATA\r\n`);
    } else this.#write(commands);

    const mail = await this.#reply();
    if (mail.code < 200 || mail.code >= 300) {
      // The replies to what was pipelined after MAIL are read, so that nothing is left unread; the session is closed anyway.
      decided.fill(mail);
      return { replies: decided as SmtpReply[], reusable: false };
    }
    const accepted: number[] = [];
    for (let i = 0; i < envelope.to.length; i++) {
      if (!pipelining) this.#write(rcptCommand(i));
      const rcpt = await this.#reply();
      if (rcpt.code >= 200 && rcpt.code < 300) accepted.push(i);
      else decided[i] = rcpt;
    }
    if ((!pipelining || chunked) && accepted.length === 0) {
      // Nothing to send: end the transaction, as a pipelining client's DATA would have been refused.
      return { replies: decided as SmtpReply[], reusable: false };
    }
    if (chunked) {
      // The command and the message in one writev, without copying the message behind the command.
      const chunk = encodeChunkedBody(body as Buffer);
      this.#socket.cork();
      try {
        this.#write(`BDAT ${chunk.length} LAST\r\n`);
        this.#writeBytes(chunk);
      } finally {
        this.#socket.uncork();
      }
    } else if (!pipelining) this.#write('DATA\r\n');
    const data = await this.#reply();
    if (chunked) {
      // SMTP: the one reply to BDAT LAST is every accepted recipient's.
      for (const i of accepted) decided[i] = data;
      return { replies: decided as SmtpReply[], reusable: accepted.length > 0 && data.code >= 200 && data.code < 300 };
    }
    if (data.code !== 354) {
      for (const i of accepted) decided[i] = data;
      return { replies: decided as SmtpReply[], reusable: false };
    }
    if (accepted.length === 0) {
      // A server that took DATA with no recipient: end the empty message and drop the session.
      this.#write('.\r\n');
      await this.#reply();
      return { replies: decided as SmtpReply[], reusable: false };
    }
    if (inMemory) this.#writeBytes(encodeDataBody(body));
    else await this.#writeStream(body.stream());
    let reusable = true;
    if (lmtp) {
      for (const i of accepted) {
        const r = await this.#reply();
        decided[i] = r;
        if (r.code < 200 || r.code >= 300) reusable = false;
      }
    } else {
      const r = await this.#reply();
      for (const i of accepted) decided[i] = r;
      reusable = r.code >= 200 && r.code < 300;
    }
    return { replies: decided as SmtpReply[], reusable };
  }

  /** A streamed message after DATA, dot-stuffed piece by piece, with backpressure; a stream that fails leaves the transaction without its final dot. */
  async #writeStream(stream: Readable): Promise<void> {
    let prev = START_OF_MESSAGE;
    try {
      for await (const piece of stream) {
        if (this.#failure) throw this.#failure;
        const bytes = encodeChunk(piece as Buffer, prev, true);
        if (bytes.length === 0) continue;
        prev = bytes[bytes.length - 1]!;
        if (!this.#socket.write(bytes)) await this.#drained();
      }
    } catch (e) {
      stream.destroy();
      throw e instanceof SessionFailure ? e : new SessionFailure(`the message could not be read (${String((e as Error)?.message ?? e)})`);
    }
    this.#writeBytes(dataTerminator(prev));
  }

  #drained(): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = () => {
        this.#socket.off('drain', done);
        this.#socket.off('close', done);
        if (this.#failure) reject(this.#failure);
        else resolve();
      };
      this.#socket.on('drain', done);
      this.#socket.on('close', done);
    });
  }

  /** Ends the session politely (QUIT, then the next hop closes; dropped after 5 s if it does not). */
  quit(): void {
    if (!this.open) return void this.#socket.destroy();
    this.#socket.end('QUIT\r\n');
    this.#fail(new SessionFailure('the session was closed'), false);
    setTimeout(() => this.#socket.destroy(), 5_000).unref();
  }

  /** Drops the session at once. */
  close(): void {
    this.#fail(new SessionFailure('the session was closed'));
  }

  #write(text: string): void {
    this.#writeBytes(Buffer.from(text, 'utf8'));
  }

  #writeBytes(bytes: Uint8Array): void {
    if (this.#failure) throw this.#failure;
    this.#socket.write(bytes);
  }

  #reply(): Promise<SmtpReply> {
    const ready = this.#replies.shift();
    if (ready) return Promise.resolve(ready);
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  #read(chunk: Buffer): void {
    this.#buffered += chunk.toString('latin1');
    let nl: number;
    while ((nl = this.#buffered.indexOf('\n')) >= 0) {
      const line = this.#buffered.slice(0, nl).replace(/\r$/, '');
      this.#buffered = this.#buffered.slice(nl + 1);
      this.#lines.push(line);
      if (this.#lines.length > MAX_LINES) return this.#fail(new SessionFailure(`the next hop sent a reply of more than ${MAX_LINES} lines`));
      if (line.length > 3 && line[3] === '-') continue;
      const text = this.#lines.join('\n');
      this.#lines = [];
      const code = /^[2-5]\d\d$/.test(line.slice(0, 3)) ? Number(line.slice(0, 3)) : 0;
      if (code === 0) return this.#fail(new SessionFailure(`the next hop sent something that is not an SMTP reply: ${oneLineOf(line)}`));
      const waiter = this.#waiting.shift();
      if (waiter) waiter.resolve({ code, text });
      // A reply between transactions: the next hop is closing the session (421), or is out of step.
      else if (!this.#busy) return this.#fail(new SessionFailure(`the next hop said ${oneLineOf(text)}`));
      else if (this.#replies.push({ code, text }) > this.#repliesExpected) return this.#fail(new SessionFailure('the next hop sent more replies than commands'));
    }
    if (this.#buffered.length > MAX_LINE) this.#fail(new SessionFailure(`the next hop sent a reply line over ${MAX_LINE} bytes`));
  }

  #fail(failure: SessionFailure, destroy = true): void {
    if (this.#failure) {
      if (destroy) this.#socket.destroy();
      return;
    }
    this.#failure = failure;
    if (destroy) this.#socket.destroy();
    for (const w of this.#waiting.splice(0)) w.reject(failure);
    this.#goneListener?.();
  }
}

function oneLineOf(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}
