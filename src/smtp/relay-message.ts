/**
 * Hands one message to the next hop (the gateway: Postfix's reinjection listener;
 * the signing service's submission port: its --relay) on a pooled session of
 * relay-connection.ts, and says per recipient what the next hop answered:
 * accepted (2xx to the final dot), temporary (4xx, or no answer at all: refused
 * connection, timeout, dropped connection) or permanent (5xx). Nothing here retries:
 * the gateway's answer to Postfix (reply-for-outcomes.ts) leaves retrying to
 * Postfix's queue.
 */
import type { Readable } from 'node:stream';
import type { HostPort } from './parse-host-port.ts';
import { RelaySession, type RelayEnvelope, type SmtpReply } from './relay-connection.ts';

export type { RelayEnvelope } from './relay-connection.ts';

/**
 * What is relayed: a message in memory, or one that streams from elsewhere (the
 * gateway's large messages, from their spool files): `stream()` is called once, when
 * the next hop is ready for DATA, and `size` is announced with MAIL FROM (RFC 1870).
 * A stream that fails ends the transaction without the final dot: the next hop
 * discards what it got, and the outcome is temporary.
 */
export type RelayBody = Buffer | { size: number; stream(): Readable };

export type OutcomeStatus = 'accepted' | 'temporary' | 'permanent';

export interface RecipientOutcome {
  recipient: string;
  status: OutcomeStatus;
  /** The next hop's reply code; 0 when there was none (connection refused, timeout, dropped). */
  code: number;
  /** The next hop's reply, or what went wrong, for the reply to Postfix (one line, no secrets). */
  response: string;
  /** Set when the outcome is the gateway's own (a policy bounce, a hold), not the next hop's: the reply carries `response` as it is, with this enhanced status code (RFC 3463). */
  own?: { enhanced: string };
  /** Accepted by a next hop that does not advertise DSN: the recipient's NOTIFY and ORCPT did not go on, so no DSN will come from beyond it (RFC 3461 4.1: a NOTIFY=SUCCESS is answered with a "relayed" DSN by the relaying side). */
  withoutDsn?: true;
  /** Deferred only because another copy of the message was (the gateway's SMTP mode): never named as the cause in the one reply (reply-for-outcomes.ts). */
  heldBack?: true;
}

export interface RelayOptions {
  nextHop: HostPort;
  /** EHLO name. */
  name: string;
  timeoutMs: number;
  lmtp?: boolean;
}

function statusOf(code: number): OutcomeStatus {
  return code >= 200 && code < 300 ? 'accepted' : code >= 500 && code < 600 ? 'permanent' : 'temporary';
}

/** One line of printable ASCII, at most 300 characters: what may go into an SMTP reply or a log. */
export function oneLine(text: string | undefined): string {
  return (text ?? '').replace(/[\r\n]+/g, ' ').replace(/[^\x20-\x7e]/g, '?').slice(0, 300);
}

function outcomeOf(recipient: string, reply: SmtpReply): RecipientOutcome {
  return { recipient, status: reply.code ? statusOf(reply.code) : 'temporary', code: reply.code, response: oneLine(reply.text) };
}

/**
 * Connections to one next hop, kept open between messages: connecting, the
 * greeting and EHLO cost the next hop (Postfix starts an smtpd for each
 * connection) more than a small message's transaction, and under load they were
 * most of the time a message spent in the gateway. A connection goes back to the
 * pool only after a transaction whose final replies were all 2xx (the session is
 * then ready for the next MAIL FROM, RFC 5321 4.1.4); one that failed in any way is
 * closed (relay-connection.ts). An idle connection is used again only within
 * `idleMs` (5 s), far inside any server's idle timeout (Postfix: 300 s), and is
 * closed at most a quarter of that later, unused (it holds one of the next hop's smtpd
 * processes, of which Postfix's reinjection listener has 10); one the next hop
 * closed while idle leaves the pool at once; so a reused connection does not fail
 * for being stale, and if it fails anyway the message gets a temporary outcome
 * (4xx: the sender's queue retries), never a second attempt here that could
 * deliver it twice. `close()` ends the idle connections (at shutdown).
 */
export class RelayPool {
  readonly #options: RelayPoolOptions;
  readonly #idle: Pooled[] = [];
  /** While connections are idle: closes those unused for idleMs (#sweep). */
  #sweeper: NodeJS.Timeout | undefined;
  #closed = false;
  #maxSize: number | undefined;

  constructor(options: RelayPoolOptions) {
    this.#options = options;
  }

  /** The SIZE the next hop advertised at the latest EHLO (RFC 1870): undefined before any connection, or when it gave no fixed maximum. */
  get maxSize(): number | undefined {
    return this.#maxSize;
  }

  /** Connections open and idle now (for tests and metrics). */
  get idle(): number {
    return this.#idle.length;
  }

  async relay(envelope: RelayEnvelope, message: RelayBody, timeoutMs: number): Promise<RecipientOutcome[]> {
    const o = this.#options;
    const started = performance.now();
    let p = this.#take();
    if (!p) {
      try {
        const session = await RelaySession.open({ host: o.nextHop.host, port: o.nextHop.port, name: o.name, lmtp: o.lmtp === true, setupTimeoutMs: Math.min(timeoutMs, 30_000) });
        p = { session, idleSince: 0 };
        this.#maxSize = session.maxSize;
      } catch (e) {
        return envelope.to.map((recipient) => ({ recipient, status: 'temporary', code: 0, response: oneLine((e as Error).message) }));
      }
    }
    const { replies, reusable } = await p.session.transaction(envelope, message, o.lmtp === true, { ms: Math.max(1, timeoutMs - (performance.now() - started)), stated: timeoutMs });
    const withoutDsn = !p.session.advertisesDsn;
    const outcomes = envelope.to.map((recipient, i) => {
      const o = outcomeOf(recipient, replies[i]!);
      return withoutDsn && o.status === 'accepted' ? { ...o, withoutDsn: true as const } : o;
    });
    this.#release(p, reusable, outcomes.some((o) => o.status === 'accepted'));
    return outcomes;
  }

  #release(p: Pooled, reusable: boolean, accepted: boolean): void {
    if (!reusable || !p.session.open || this.#closed || this.#idle.length >= (this.#options.maxIdle ?? 16)) {
      // QUIT after a delivery; a hard close after a failure (the next hop may be stuck).
      if (accepted) p.session.quit();
      else p.session.close();
      return;
    }
    p.idleSince = performance.now();
    // While idle, the next hop closing it (or saying anything: 421) only takes it out of the pool.
    p.session.onGone((p.gone ??= () => this.#remove(p)));
    this.#idle.push(p);
    // Closed once too old to be used, so that an idle connection does not hold one of the next hop's processes:
    // one sweep for the pool, not a timer set and cleared per message (with the transaction's own timer, the
    // relay's timers were 1.1% of the submission port's serving threads' samples: docs/performance.md, session 16).
    this.#sweeper ??= setInterval(() => this.#sweep(), Math.max(10, (this.#options.idleMs ?? 5_000) / 4)).unref();
  }

  /** Quits the idle connections unused for idleMs; stops sweeping once none is idle. */
  #sweep(): void {
    const staleBefore = performance.now() - (this.#options.idleMs ?? 5_000);
    for (const p of this.#idle.filter((q) => q.idleSince < staleBefore)) {
      this.#remove(p);
      p.session.onGone(ignoreGone);
      p.session.quit();
    }
    if (this.#idle.length === 0) this.#stopSweeping();
  }

  #stopSweeping(): void {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }

  #remove(p: Pooled): void {
    const i = this.#idle.indexOf(p);
    if (i >= 0) this.#idle.splice(i, 1);
  }

  /** Closes the idle connections; connections in use close when their transaction ends. */
  close(): void {
    this.#closed = true;
    this.#stopSweeping();
    for (const p of this.#idle.splice(0)) {
      p.session.onGone(ignoreGone);
      p.session.quit();
    }
  }

  /** The most recently used idle connection still fresh; older ones are closed. */
  #take(): Pooled | undefined {
    const freshSince = performance.now() - (this.#options.idleMs ?? 5_000);
    while (this.#idle.length > 0) {
      const p = this.#idle.pop()!;
      p.session.onGone(ignoreGone);
      if (p.session.open && p.idleSince >= freshSince) return p;
      p.session.quit();
    }
    return undefined;
  }
}

export interface RelayPoolOptions {
  nextHop: HostPort;
  /** EHLO name. */
  name: string;
  lmtp?: boolean;
  /** Idle connections kept (default 16; 0 closes each after its message). */
  maxIdle?: number;
  /** How long an idle connection may wait to be used again (default 5,000 ms). */
  idleMs?: number;
}

interface Pooled {
  session: RelaySession;
  idleSince: number;
  /** Takes it out of the pool when the next hop closes it while idle (made once per connection). */
  gone?: () => void;
}

/** A connection in use: its closing is its transaction's failure, nothing for the pool to do. */
function ignoreGone(): void {}

/** One message on a connection of its own, closed afterwards (for one-off sends: releasing a held message, a DSN). */
export function relayMessage(options: RelayOptions, envelope: RelayEnvelope, message: RelayBody): Promise<RecipientOutcome[]> {
  return new RelayPool({ nextHop: options.nextHop, name: options.name, ...(options.lmtp ? { lmtp: true } : {}), maxIdle: 0 }).relay(envelope, message, options.timeoutMs);
}
