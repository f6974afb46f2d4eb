/**
 * The two ends of the SMTP submission bench (bench/serve-sign.ts), each run as a
 * child process (child_process.fork) so that its CPU time is its own:
 *
 * - `sink`: the MTA the service relays to, on loopback, no AUTH or TLS; counts the
 *   messages it accepts and keeps every `--keep-every`-th in `--dir` for openssl to
 *   verify. Sends {port} when listening; answers 'count'.
 * - `client`: `--connections` persistent connections with AUTH PLAIN (tenant name
 *   and API key), each sending the message in `--message` as fast as the service
 *   accepts it for `--seconds`; sends {sent, failed, seconds, cpuMicros, errors}.
 *
 * Both are written by hand on node:net, with no SMTP library: the bench measures the
 * service, and on two cores its load generators share the machine with it.
 * nodemailer's pooled transport (the client until session 7) cost 368 µs of CPU per
 * message and smtp-server as the sink 129 µs (quiet run, docs/performance.md),
 * more than half the service's own 937 µs. Here the client writes two things per
 * message (MAIL, RCPT and DATA pipelined, RFC 2920; then the message with its
 * terminator) and the sink answers each read with one write (PIPELINING, and
 * CHUNKING as Postfix offers it, so the service relays with BDAT as it would to
 * Postfix). They speak just enough SMTP for this: not a general client or server.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { encodeDataBody } from '../src/smtp/encode-message-data.ts';

const args = process.argv.slice(3);
const arg = (name: string): string => {
  const v = args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  if (v === undefined) throw new Error(`smtp-load: --${name}= is missing`);
  return v;
};
const send = (m: unknown) => process.send!(m);

/** Splits what a peer sent into CRLF lines, keeping the rest for the next read. */
class LineReader {
  #rest: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): void {
    this.#rest = this.#rest.length ? Buffer.concat([this.#rest, chunk]) : chunk;
  }
  /** The next line (without CRLF), or undefined until one is complete. */
  line(): string | undefined {
    const nl = this.#rest.indexOf(0x0a);
    if (nl < 0) return undefined;
    const line = this.#rest.toString('latin1', 0, nl > 0 && this.#rest[nl - 1] === 0x0d ? nl - 1 : nl);
    this.#rest = this.#rest.subarray(nl + 1);
    return line;
  }
  /** Up to `n` raw bytes. */
  take(n: number): Buffer {
    const b = this.#rest.subarray(0, n);
    this.#rest = this.#rest.subarray(b.length);
    return b;
  }
  /** The bytes up to and including `marker`, or undefined. */
  until(marker: Buffer): Buffer | undefined {
    const at = this.#rest.indexOf(marker);
    if (at < 0) return undefined;
    return this.take(at + marker.length);
  }
  startsWith(b: Buffer): boolean {
    return this.#rest.subarray(0, b.length).equals(b);
  }
  get size(): number {
    return this.#rest.length;
  }
}

// ------------------------------------------------------------------- sink

async function sink(): Promise<void> {
  const dir = arg('dir');
  const keepEvery = Number(arg('keep-every'));
  let received = 0;
  const END_OF_DATA = Buffer.from('\r\n.\r\n');
  const EMPTY_DATA = Buffer.from('.\r\n');
  /** Counts a message; every keepEvery-th is kept (its dots unstuffed when it came by DATA). */
  const accept = (parts: Buffer[], stuffed: boolean) => {
    received++;
    if (received % keepEvery !== 1) return;
    const message = Buffer.concat(parts);
    writeFileSync(join(dir, `relayed-${received}.eml`), stuffed ? Buffer.from(message.toString('latin1').replace(/\r\n\.\./g, '\r\n.').replace(/^\.\./, '.'), 'latin1') : message);
  };
  const server = createServer((socket: Socket) => {
    socket.setNoDelay(true);
    const reader = new LineReader();
    /** 'command', or reading DATA, or `bdat` bytes still to read. */
    let mode: 'command' | 'data' = 'command';
    let dataStart = false;
    let bdat = 0;
    let bdatLast = false;
    let parts: Buffer[] = [];
    socket.on('error', () => undefined);
    socket.write('220 sink ESMTP\r\n');
    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      let out = '';
      for (;;) {
        if (bdat > 0) {
          const b = reader.take(bdat);
          if (!b.length) break;
          parts.push(b);
          bdat -= b.length;
          if (bdat > 0) break;
          out += '250 2.0.0 chunk accepted\r\n';
          if (bdatLast) {
            accept(parts, false);
            parts = [];
          }
          continue;
        }
        if (mode === 'data') {
          if (dataStart) {
            // An empty message: the terminator's CRLF was the one ending DATA's line.
            if (reader.size < 3) break;
            dataStart = false;
            if (reader.startsWith(EMPTY_DATA)) {
              reader.take(3);
              mode = 'command';
              accept([], true);
              out += '250 2.0.0 Ok: queued\r\n';
              continue;
            }
          }
          const body = reader.until(END_OF_DATA);
          if (!body) break;
          mode = 'command';
          accept([body.subarray(0, body.length - 3)], true);
          out += '250 2.0.0 Ok: queued\r\n';
          continue;
        }
        const line = reader.line();
        if (line === undefined) break;
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') out += '250-sink\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n';
        else if (verb === 'HELO' || verb === 'RSET' || verb === 'NOOP') out += '250 2.0.0 Ok\r\n';
        else if (verb === 'MAIL') out += '250 2.1.0 Ok\r\n';
        else if (verb === 'RCPT') out += '250 2.1.5 Ok\r\n';
        else if (verb === 'DATA') {
          out += '354 End data with <CR><LF>.<CR><LF>\r\n';
          mode = 'data';
          dataStart = true;
          parts = [];
        } else if (verb === 'BDAT') {
          const [, size, last] = line.split(' ');
          bdat = Number(size);
          bdatLast = (last ?? '').toUpperCase() === 'LAST';
          if (bdat === 0) {
            out += '250 2.0.0 chunk accepted\r\n';
            if (bdatLast) {
              accept(parts, false);
              parts = [];
            }
          }
        } else if (verb === 'QUIT') {
          socket.end(`${out}221 2.0.0 Bye\r\n`);
          return;
        } else out += '502 5.5.2 Error: command not recognized\r\n';
      }
      if (out) socket.write(out);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  process.on('message', (m) => {
    if (m === 'count') send({ received });
    if (m === 'stop') {
      server.close(() => process.exit(0));
      setTimeout(() => process.exit(0), 2000).unref();
    }
  });
  send({ port: (server.address() as AddressInfo).port });
}

// ----------------------------------------------------------------- client

/** One persistent, authenticated connection; `next()` resolves with each complete reply's first line and code. */
class ClientConnection {
  readonly socket: Socket;
  readonly #reader = new LineReader();
  readonly #waiting: Array<(reply: { code: number; text: string }) => void> = [];
  readonly #ready: Array<{ code: number; text: string }> = [];

  constructor(port: number) {
    this.socket = connect({ host: '127.0.0.1', port });
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => {
      this.#reader.push(chunk);
      for (let line = this.#reader.line(); line !== undefined; line = this.#reader.line()) {
        if (line[3] === '-') continue;
        const reply = { code: Number(line.slice(0, 3)), text: line };
        const w = this.#waiting.shift();
        if (w) w(reply);
        else this.#ready.push(reply);
      }
    });
  }

  next(): Promise<{ code: number; text: string }> {
    const r = this.#ready.shift();
    return r ? Promise.resolve(r) : new Promise((resolve) => this.#waiting.push(resolve));
  }
}

async function client(): Promise<void> {
  const message = encodeDataBody(readFileSync(arg('message')));
  const connections = Number(arg('connections'));
  const seconds = Number(arg('seconds'));
  const port = Number(arg('port'));
  const plain = Buffer.from(`\0${arg('user')}\0${arg('pass')}`).toString('base64');
  const envelope = Buffer.from(`MAIL FROM:<${arg('from')}>\r\nRCPT TO:<reader@example.org>\r\nDATA\r\n`);
  let sent = 0;
  let failed = 0;
  const errors = new Map<string, number>();
  const fail = (text: string) => {
    failed++;
    errors.set(text.slice(0, 120), (errors.get(text.slice(0, 120)) ?? 0) + 1);
  };
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: connections }, async () => {
    const c = new ClientConnection(port);
    const expect = async (code: number, what: string) => {
      const r = await c.next();
      if (r.code !== code) throw new Error(`${what}: ${r.text}`);
    };
    await expect(220, 'greeting');
    c.socket.write('EHLO bench\r\n');
    await expect(250, 'EHLO');
    c.socket.write(`AUTH PLAIN ${plain}\r\n`);
    await expect(235, 'AUTH');
    while (performance.now() < end) {
      c.socket.write(envelope);
      const [mail, rcpt, data] = [await c.next(), await c.next(), await c.next()];
      if (data.code !== 354) {
        fail(mail.code !== 250 ? mail.text : rcpt.code !== 250 ? rcpt.text : data.text);
        continue;
      }
      c.socket.write(message);
      const done = await c.next();
      if (done.code === 250) sent++;
      else fail(done.text);
    }
    c.socket.end('QUIT\r\n');
  }));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  send({ sent, failed, seconds: elapsed, cpuMicros: cpu.user + cpu.system, errors: Object.fromEntries(errors) });
}

const mode = process.argv[2];
if (mode === 'sink') await sink();
else if (mode === 'client') await client();
else throw new Error('smtp-load: sink or client');
