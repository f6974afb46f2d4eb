/**
 * What the large-message test (gateway-large.test.ts) and its 1 GiB bench
 * (bench/gateway-large.ts) share: a message of any size written to a file as it is
 * generated (never whole in memory), a next hop that writes each delivery to a file,
 * a client that sends a file, the real `kakitome gateway` process, its peak RSS
 * (VmHWM from /proc), and openssl cms making (inbound: signed, then encrypted,
 * -stream) and checking (outbound: -verify) the S/MIME around it. The messages are
 * 7-bit (a text part and a base64 attachment), so the signed and the decrypted
 * content's body is the original body byte for byte: compared by SHA-256.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, createWriteStream, readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { finished } from 'node:stream/promises';
import { SMTPServer } from 'smtp-server';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { BIN } from '../cli/run-cli.ts';
import { runPeer } from '../peers/run-peer.ts';
import { OPENSSL, requireOpenssl } from '../peers/openssl.ts';
import { waitForPort } from './postfix-instance.ts';

const ATTACHMENT_CHUNK = 3 * 1024 * 1024;

/**
 * Writes a MIME entity of about `bytes` bytes to `path`: `head` (header fields, CRLF-terminated; the
 * Content-Type is added), a text part and a base64 attachment of random bytes, generated a few MiB at a time.
 */
export async function writeLargeEntity(path: string, head: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  const write = (b: Buffer | string) => (out.write(b) ? Promise.resolve() : new Promise<void>((r) => out.once('drain', () => r())));
  await write(`${head}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="large-boundary"\r\n\r\n--large-boundary\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThe archive is attached.\r\n--large-boundary\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="archive.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n`);
  // 57 raw bytes make a 76-character base64 line; chunks are whole lines.
  const raw = Math.ceil((bytes * 57) / 78 / 57) * 57;
  for (let done = 0; done < raw; done += ATTACHMENT_CHUNK) {
    const n = Math.min(ATTACHMENT_CHUNK, raw - done);
    await write(randomBytes(n).toString('base64').replace(/.{76}/g, '$&\r\n'));
  }
  await write('\r\n--large-boundary--\r\n');
  out.end();
  await finished(out);
}

/** SHA-256 (hex) of a file's bytes after its first empty line (the body), read as a stream. */
export async function bodyDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  let tail = Buffer.alloc(0);
  let inBody = false;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    if (inBody) {
      hash.update(chunk);
      continue;
    }
    const b = Buffer.concat([tail, chunk]);
    const at = b.indexOf('\r\n\r\n');
    if (at < 0) {
      tail = b.subarray(Math.max(0, b.length - 3));
      continue;
    }
    inBody = true;
    hash.update(b.subarray(at + 4));
  }
  return hash.digest('hex');
}

/** The header section of a file (up to the first empty line), as text. */
export async function fileHeader(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(256 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead).toString('latin1').split('\r\n\r\n')[0]!;
  } finally {
    await fh.close();
  }
}

export interface FileDelivery {
  from: string;
  to: string[];
  path: string;
}

/** The next hop: writes each message it accepts to a file in `dir`, as it arrives. */
export class FileSink {
  readonly deliveries: FileDelivery[] = [];
  readonly server: SMTPServer;
  port = 0;
  #n = 0;

  constructor(dir: string) {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      disableReverseLookup: true,
      logger: false,
      size: 16 * 1024 ** 3,
      onData: (stream, session, callback) => {
        const path = join(dir, `delivered-${++this.#n}.eml`);
        const out = createWriteStream(path);
        stream.pipe(out);
        out.on('finish', () => {
          this.deliveries.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), path });
          callback(null, 'Ok: written');
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
}

/** Sends the message in `path` to `port` (SMTP), read as a stream; the reply code and text. */
export function sendFile(port: number, from: string, to: string[], path: string): Promise<{ code: number; response: string }> {
  return new Promise((resolve, reject) => {
    const c = new SMTPConnection({ host: '127.0.0.1', port, ignoreTLS: true, logger: false, socketTimeout: 600_000 });
    c.on('error', reject);
    c.connect((err?: Error | null) => {
      if (err) return reject(err);
      c.send({ from, to, size: statSync(path).size } as never, createReadStream(path, { highWaterMark: 1 << 20 }), ((e: (Error & { responseCode?: number; response?: string }) | null, info?: { response: string }) => {
        c.quit();
        if (e) return resolve({ code: e.responseCode ?? 0, response: e.response ?? e.message });
        resolve({ code: Number(info!.response.slice(0, 3)), response: info!.response });
      }) as never);
    });
  });
}

/** Peak resident set size of a process so far (VmHWM), in MiB. */
export function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmHWM for process ${pid}`);
  return Number(m[1]) / 1024;
}

export interface GatewayChild {
  child: ChildProcess;
  lines: string[];
  stop(): Promise<number | null>;
}

/** `kakitome gateway` as deployed, with `args` after the subcommand; resolves once it listens on `listen`. */
export async function startGatewayChild(env: NodeJS.ProcessEnv, cwd: string, listen: number, args: string[]): Promise<GatewayChild> {
  const child = spawn(process.execPath, [BIN, 'gateway', '--listen', `127.0.0.1:${listen}`, ...args], { env, cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  const lines: string[] = [];
  let rest = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    const parts = (rest + d).split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await Promise.race([waitForPort(listen, 60_000), exited.then((code) => Promise.reject(new Error(`the gateway exited with ${code}: ${lines.join('\n')}${rest}`)))]);
  return {
    child,
    lines,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** openssl cms -sign -stream: `entity` (a MIME entity file) signed, multipart/signed, to `out`. */
export async function opensslSignFile(entity: string, out: string, signer: { certPath: string; keyPath: string }): Promise<void> {
  requireOpenssl();
  const r = await runPeer(OPENSSL, ['cms', '-sign', '-stream', '-in', entity, '-signer', signer.certPath, '-inkey', signer.keyPath, '-out', out], { timeoutMs: 600_000 });
  if (r.status !== 0) throw new Error(`openssl cms -sign: ${r.stderr}`);
}

/** openssl cms -encrypt -stream (AES-256-CBC) of the entity in `input` for `recipientPem`, with From, To and Subject outside. */
export async function opensslEncryptFile(input: string, out: string, recipientPem: string, headers: { from: string; to: string; subject: string }): Promise<void> {
  requireOpenssl();
  const r = await runPeer(OPENSSL, ['cms', '-encrypt', '-stream', '-aes-256-cbc', '-in', input, '-out', out, '-from', headers.from, '-to', headers.to, '-subject', headers.subject, recipientPem], { timeoutMs: 600_000 });
  if (r.status !== 0) throw new Error(`openssl cms -encrypt: ${r.stderr}`);
}

/** openssl cms -verify of the S/MIME message in `path` against `caFile`; the signed content written to `out`. */
export async function opensslVerifyFile(path: string, caFile: string, out: string): Promise<{ ok: boolean; detail: string }> {
  requireOpenssl();
  const r = await runPeer(OPENSSL, ['cms', '-verify', '-in', path, '-CAfile', caFile, '-purpose', 'smimesign', '-out', out], { timeoutMs: 600_000 });
  return { ok: r.status === 0 && /Verification successful/.test(r.stderr), detail: r.stderr.slice(0, 2000) };
}


export interface LargeRound {
  mib: number;
  /** Outbound: Alice to Erin, signed by the gateway. */
  outbound: { path: string; reply: { code: number; response: string }; delivered?: string; ms: number; rssMiB: number };
  /** Inbound: Dave's openssl-signed and -encrypted message to Alice, opened by the gateway. */
  inbound: { path: string; entity: string; reply: { code: number; response: string }; delivered?: string; ms: number; rssMiB: number };
}

/**
 * One large message each way through a running gateway (its SMTP `port`, its process
 * `pid`), the next hop `sink` writing what it accepts to `dir`: the files, replies,
 * delivered files, times from sending to the reply, and the gateway's peak RSS after each.
 */
export async function largeRound(world: { pki: { identity(kind: 'rsa2048', name: string): { certPath: string; keyPath: string } } }, alicePem: string, port: number, pid: number, sink: FileSink, dir: string, mib: number): Promise<LargeRound> {
  const outbound = join(dir, 'outbound.eml');
  await writeLargeEntity(outbound, 'From: Alice <alice@corp.test>\r\nTo: erin@example.com\r\nSubject: The archive\r\nDate: Sun, 06 Dec 2026 12:00:00 +0000\r\nMessage-ID: <archive@corp.test>\r\n', mib * 1024 * 1024);
  let t = Date.now();
  const outReply = await sendFile(port, 'alice@corp.test', ['erin@example.com'], outbound);
  const outMs = Date.now() - t;
  const outRss = peakRssMiB(pid);

  const entity = join(dir, 'entity.eml');
  await writeLargeEntity(entity, '', mib * 1024 * 1024);
  const signed = join(dir, 'dave-signed.eml');
  await opensslSignFile(entity, signed, world.pki.identity('rsa2048', 'dave'));
  const sealed = join(dir, 'sealed.eml');
  await opensslEncryptFile(signed, sealed, alicePem, { from: 'dave@example.com', to: 'alice@corp.test', subject: 'The archive, sealed' });
  t = Date.now();
  const inReply = await sendFile(port, 'dave@example.com', ['alice@corp.test'], sealed);
  const inMs = Date.now() - t;
  const delivered = (rcpt: string) => sink.deliveries.find((d) => d.to.includes(rcpt))?.path;
  return {
    mib,
    outbound: { path: outbound, reply: outReply, ...(delivered('erin@example.com') ? { delivered: delivered('erin@example.com') } : {}), ms: outMs, rssMiB: outRss },
    inbound: { path: sealed, entity, reply: inReply, ...(delivered('alice@corp.test') ? { delivered: delivered('alice@corp.test') } : {}), ms: inMs, rssMiB: peakRssMiB(pid) },
  };
}
