/**
 * The two ends of the SMTP submission bench (bench/serve-sign.ts), each run as a
 * child process (child_process.fork) so that its CPU time is its own:
 *
 * - `sink`: the MTA the service relays to (smtp-server on loopback, no AUTH or
 *   TLS); counts the messages it accepts and keeps every `--keep-every`-th in
 *   `--dir` for openssl to verify. Sends {port} when listening; answers 'count'.
 * - `client`: nodemailer's pooled SMTP transport, `--connections` connections
 *   with AUTH (tenant name and API key), sending the message in `--message` as
 *   fast as the service accepts it for `--seconds`; sends {sent, failed, seconds,
 *   cpuMicros, errors} when done.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import nodemailer from 'nodemailer';

const args = process.argv.slice(3);
const arg = (name: string): string => {
  const v = args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  if (v === undefined) throw new Error(`smtp-load: --${name}= is missing`);
  return v;
};
const send = (m: unknown) => process.send!(m);

async function sink(): Promise<void> {
  const dir = arg('dir');
  const keepEvery = Number(arg('keep-every'));
  let received = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    logger: false,
    maxClients: 1000,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received++;
        if (received % keepEvery === 1) writeFileSync(join(dir, `relayed-${received}.eml`), Buffer.concat(chunks));
        callback(null, 'Ok');
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  process.on('message', (m) => {
    if (m === 'count') send({ received });
    if (m === 'stop') server.close(() => process.exit(0));
  });
  send({ port: (server.server.address() as AddressInfo).port });
}

async function client(): Promise<void> {
  const message = readFileSync(arg('message'));
  const connections = Number(arg('connections'));
  const seconds = Number(arg('seconds'));
  const transport = nodemailer.createTransport({
    host: '127.0.0.1', port: Number(arg('port')), secure: false, ignoreTLS: true,
    auth: { user: arg('user'), pass: arg('pass') },
    pool: true, maxConnections: connections, maxMessages: Infinity,
  });
  const envelope = { from: arg('from'), to: ['reader@example.org'] };
  let sent = 0;
  let failed = 0;
  const errors = new Map<string, number>();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  // Twice as many messages in flight as connections: the pool always has the next one ready.
  await Promise.all(Array.from({ length: connections * 2 }, async () => {
    while (performance.now() < end) {
      try {
        await transport.sendMail({ envelope, raw: message });
        sent++;
      } catch (e) {
        failed++;
        const text = String((e as Error).message).slice(0, 120);
        errors.set(text, (errors.get(text) ?? 0) + 1);
      }
    }
  }));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  transport.close();
  send({ sent, failed, seconds: elapsed, cpuMicros: cpu.user + cpu.system, errors: Object.fromEntries(errors) });
}

const mode = process.argv[2];
if (mode === 'sink') await sink();
else if (mode === 'client') await client();
else throw new Error('smtp-load: sink or client');
