/**
 * What the gateway tests share: a key store made with the real `kakitome` launcher
 * (our CA "Corp" issuing for corp.test), an outside PKI (test/helpers/pki.ts, its
 * people at example.com), a real SMTP sink as next hop (smtp-server, with
 * behaviours: accept, temporary or permanent refusal, dropping the connection,
 * refusing chosen recipients), a real SMTP client (nodemailer), and `openssl cms`
 * on S/MIME files for checking what was delivered.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import assert from 'node:assert/strict';
import { SMTPServer, type SMTPServerAddress, type SMTPServerSession } from 'smtp-server';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { runCli, USER_COMPILE_CACHE } from '../cli/run-cli.ts';
import { TestPki } from '../helpers/pki.ts';
import { runPeer } from '../peers/run-peer.ts';
import { OPENSSL, requireOpenssl } from '../peers/openssl.ts';
import { openStore } from '../../src/store/open-store.ts';
import type { Store } from '../../src/store/store.ts';

export interface GatewayWorld {
  dir: string;
  home: string;
  env: NodeJS.ProcessEnv;
  /** The Corp root certificate (PEM file). */
  corpRoot: string;
  pki: TestPki;
  cleanup(): void;
}

export async function cliOk(world: { dir: string; env: NodeJS.ProcessEnv }, ...args: string[]): Promise<string> {
  const r = await runCli(args, { env: world.env, cwd: world.dir });
  assert.equal(r.status, 0, `kakitome ${args.join(' ')}\n${r.stderr}`);
  return r.stdout.toString();
}

/** A store with Corp's CA and alice@corp.test's key; the outside PKI's root trusted and carol@example.com's certificate imported. */
export async function createWorld(databaseUrl = ''): Promise<GatewayWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-gw-'));
  mkdirSync(join(dir, 'user-home'));
  const home = join(dir, 'home');
  const env: NodeJS.ProcessEnv = { ...process.env, ...USER_COMPILE_CACHE, HOME: join(dir, 'user-home'), KAKITOME_HOME: home, KAKITOME_DATABASE_URL: databaseUrl };
  delete env.KAKITOME_MASTER_KEY;
  delete env.KAKITOME_MASTER_KEY_FILE;
  const pki = new TestPki('Partner Root');
  const world = { dir, home, env, corpRoot: join(dir, 'corp-root.pem'), pki, cleanup: () => { pki.cleanup(); rmSync(dir, { recursive: true, force: true }); } };
  await cliOk(world, 'init');
  await cliOk(world, 'ca', 'init', '--name', 'Corp', '-o', world.corpRoot);
  await cliOk(world, 'ca', 'issue', '--email', 'alice@corp.test');
  await cliOk(world, 'certs', 'import', pki.caPath, '--trust', 'trusted');
  await cliOk(world, 'certs', 'import', pki.identity('rsa2048', 'carol').certPath);
  return world;
}

export function openWorldStore(world: GatewayWorld): Promise<Store> {
  return openStore({ home: world.home, ...(world.env.KAKITOME_DATABASE_URL ? { databaseUrl: world.env.KAKITOME_DATABASE_URL } : {}), actor: 'test', env: world.env });
}

export type SinkMode = 'accept' | 'tempfail' | 'reject' | 'drop' | 'slow';

export interface Delivery {
  from: string;
  to: string[];
  message: Buffer;
  /** RET and ENVID as the sink received them (it advertises DSN); null when not given. */
  dsn: { ret: string | null; envid: string | null };
  /** NOTIFY and ORCPT per recipient, in the order of `to` (undefined: none given). */
  rcptDsn: Array<{ notify?: string[] | undefined; orcpt?: string | undefined } | undefined>;
}

/** The next hop: a real SMTP server that keeps what it accepted. */
export class Sink {
  mode: SinkMode = 'accept';
  /** Recipients refused at RCPT, with the reply code to use. */
  refuse = new Map<string, number>();
  /** A message for one of these recipients larger than its bytes is refused at the end of DATA, as Postfix's message_size_limit does (552 5.3.4). */
  sizeLimits = new Map<string, number>();
  delayMs = 0;
  readonly deliveries: Delivery[] = [];
  /** SMTP connections accepted so far. */
  connections = 0;
  /** Messages received in full whose reply has not been sent yet. */
  pending = 0;
  /** While set, every accepted message's reply (and its entry in deliveries) waits for it, then delayMs: see holdReplies. */
  private hold: Promise<void> | undefined;
  private releaseHold: (() => void) | undefined;
  readonly server: SMTPServer;
  port = 0;
  /**
   * Every RCPT accepted in the session's transaction, as sent: smtp-server keeps one entry per
   * lower-cased address in envelope.rcptTo (a RCPT differing only in case replaces the earlier
   * one), and what the relay sent is what the tests check.
   */
  private readonly rcpts = new WeakMap<SMTPServerSession, SMTPServerAddress[]>();

  /** `dsn: false`: a next hop that does not advertise DSN (RFC 3461). `size`: one that advertises SIZE (RFC 1870) and refuses larger messages at MAIL FROM (552 5.3.4), as Postfix does. */
  constructor(o: { dsn?: boolean; size?: number } = {}) {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      disableReverseLookup: true,
      // Advertised, so that what the relay passes on of RFC 3461 is seen (Delivery.dsn, rcptDsn).
      hideDSN: o.dsn === false,
      ...(o.size ? { size: o.size } : {}),
      logger: false,
      onConnect: (_session, callback) => {
        this.connections++;
        callback();
      },
      onMailFrom: (_address, session, callback) => {
        this.rcpts.set(session, []);
        callback();
      },
      onRcptTo: (address, session, callback) => {
        const code = this.refuse.get(address.address);
        if (code) return callback(Object.assign(new Error(`${code === 450 ? '4.2.0 mailbox busy' : '5.1.1 no such user'} ${address.address}`), { responseCode: code }));
        this.rcpts.get(session)?.push(address);
        callback();
      },
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const mode = this.mode;
          if (mode === 'drop') {
            // The connection dies after the whole message arrived, before any reply.
            for (const c of (this.server as unknown as { connections: Set<{ _socket: { destroy(): void } }> }).connections) c._socket.destroy();
            return;
          }
          if (mode === 'tempfail') return callback(Object.assign(new Error('4.3.0 try later'), { responseCode: 451 }));
          if (mode === 'reject') return callback(Object.assign(new Error('5.7.1 content refused'), { responseCode: 554 }));
          const rcpts = this.rcpts.get(session) ?? session.envelope.rcptTo;
          const bytes = chunks.reduce((n, c) => n + c.length, 0);
          if (rcpts.some((r) => bytes > (this.sizeLimits.get(r.address) ?? Infinity))) return callback(Object.assign(new Error('5.3.4 Message size exceeds fixed limit'), { responseCode: 552 }));
          this.pending++;
          void (this.hold ?? Promise.resolve()).then(() => setTimeout(() => {
            this.pending--;
            this.deliveries.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: rcpts.map((r) => r.address), message: Buffer.concat(chunks), dsn: { ...session.envelope.dsn! }, rcptDsn: rcpts.map((r) => r.dsn) });
            callback(null, 'Ok: queued as SINK');
          }, mode === 'slow' ? this.delayMs : 0));
        });
      },
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.server.address() as AddressInfo).port;
    return this;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /**
   * Holds the reply to every message received from now on until the returned function is called:
   * a next hop as slow as the test needs, whatever the machine's load (a fixed delay is not).
   */
  holdReplies(): () => void {
    let release!: () => void;
    this.hold = new Promise((resolve) => (release = resolve));
    this.releaseHold = () => {
      this.hold = undefined;
      release();
    };
    return this.releaseHold;
  }

  /** Resolves once `n` messages wait for their reply (holdReplies, or a slow mode's delay). */
  whenPending(n: number, timeoutMs = 30_000): Promise<void> {
    return waitFor(() => `${n} messages at the sink (${this.pending} there)`, () => this.pending >= n, timeoutMs);
  }

  /** Forgets what was delivered and accepts everything again (held replies go). */
  reset(): void {
    this.releaseHold?.();
    this.deliveries.length = 0;
    this.mode = 'accept';
    this.refuse.clear();
    this.sizeLimits.clear();
  }

  /** The one delivery that went to `recipient`. */
  deliveryTo(recipient: string): Delivery {
    const found = this.deliveries.filter((d) => d.to.includes(recipient));
    assert.equal(found.length, 1, `exactly one copy for ${recipient}, got ${found.length}`);
    return found[0]!;
  }
}

/** Polls `check` until it holds; fails after `timeoutMs` saying what it waited for. */
export async function waitFor(what: string | (() => string), check: () => boolean | Promise<boolean>, timeoutMs = 10_000, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface SendResult {
  code: number;
  response: string;
  /** LMTP: per recipient. */
  accepted: string[];
  rejected: Array<{ recipient: string; code: number }>;
}

/** Sends one message to the gateway with a real SMTP (or LMTP) client and reports the reply. */
/** `dsn`: RFC 3461 parameters as nodemailer sends them (NOTIFY and ORCPT alike for every recipient). */
export function sendTo(port: number, from: string, to: string[], message: Buffer | string, o: { lmtp?: boolean; dsn?: { ret?: string; envid?: string; notify?: string[]; orcpt?: string } } = {}): Promise<SendResult> {
  return new Promise((resolve, reject) => {
    const c = new SMTPConnection({ host: '127.0.0.1', port, ignoreTLS: true, lmtp: o.lmtp === true, logger: false, socketTimeout: 60_000 });
    let connected = false;
    c.on('error', (e: Error) => {
      if (!connected) reject(e);
    });
    c.connect((err?: Error | null) => {
      if (err) return reject(err);
      connected = true;
      c.send({ from, to, ...(o.dsn ? { dsn: o.dsn } : {}) } as never, typeof message === 'string' ? Buffer.from(message) : message, ((e: (Error & { responseCode?: number; response?: string; rejectedErrors?: Array<{ recipient: string; responseCode: number }> }) | null, info?: { response: string; accepted: string[]; rejectedErrors?: Array<{ recipient: string; responseCode: number }> }) => {
        c.quit();
        if (e) return resolve({ code: e.responseCode ?? 0, response: e.response ?? e.message, accepted: [], rejected: (e.rejectedErrors ?? []).map((r) => ({ recipient: r.recipient, code: r.responseCode })) });
        resolve({ code: Number(info!.response.slice(0, 3)), response: info!.response, accepted: info!.accepted, rejected: (info!.rejectedErrors ?? []).map((r) => ({ recipient: r.recipient, code: r.responseCode })) });
      }) as never);
    });
  });
}

export function draft(from: string, to: string, subject: string, body: string, extraHeaders = ''): Buffer {
  return Buffer.from(`From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nDate: Sun, 06 Dec 2026 12:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@corp.test>\r\n${extraHeaders}Content-Type: text/plain; charset=us-ascii\r\n\r\n${body}\r\n`);
}

/** `openssl cms -verify` of an S/MIME message file (multipart/signed or opaque), chain to `caFile`. */
export async function opensslVerifyMime(dir: string, message: Buffer, caFile: string): Promise<{ ok: boolean; content: Buffer; detail: string }> {
  requireOpenssl();
  const inPath = join(dir, `v-${Math.random().toString(36).slice(2)}.eml`);
  const outPath = `${inPath}.out`;
  writeFileSync(inPath, message);
  const r = await runPeer(OPENSSL, ['cms', '-verify', '-in', inPath, '-CAfile', caFile, '-purpose', 'smimesign', '-out', outPath]);
  let content = Buffer.alloc(0);
  try { content = (await import('node:fs')).readFileSync(outPath); } catch { /* nothing on failure */ }
  return { ok: r.status === 0 && /Verification successful/.test(r.stderr), content, detail: r.stderr };
}

/** `openssl cms -decrypt` of an S/MIME message file with one recipient's certificate and key. */
export async function opensslDecryptMime(dir: string, message: Buffer, certPath: string, keyPath: string): Promise<{ ok: boolean; content: Buffer; detail: string }> {
  requireOpenssl();
  const inPath = join(dir, `d-${Math.random().toString(36).slice(2)}.eml`);
  const outPath = `${inPath}.out`;
  writeFileSync(inPath, message);
  const r = await runPeer(OPENSSL, ['cms', '-decrypt', '-in', inPath, '-recip', certPath, '-inkey', keyPath, '-out', outPath]);
  let content = Buffer.alloc(0);
  try { content = (await import('node:fs')).readFileSync(outPath); } catch { /* nothing on failure */ }
  return { ok: r.status === 0, content, detail: r.stderr };
}
