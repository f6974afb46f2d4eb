/**
 * `kakitome serve --smtp ... --relay ...` through the real launcher, without
 * --http, with implicit TLS: nodemailer submits with AUTH, the service signs and
 * relays to a private Postfix (test/gateway/postfix-instance.ts, no content
 * filter), which delivers to an SMTP sink; `openssl cms -verify` checks what
 * arrived. A refused message reaches neither Postfix nor the sink. Needs root
 * (Postfix), as the gateway's Postfix tests do.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { Sink, opensslVerifyMime } from '../gateway/gateway-fixture.ts';
import { PostfixInstance, freePort } from '../gateway/postfix-instance.ts';
import { until } from '../gateway/gateway-process.ts';
import { acmeStore, kakitomeOk, startServe, type ServeProcess } from './serve-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-submit-pf-'));
let env: NodeJS.ProcessEnv;
let sink: Sink;
let postfix: PostfixInstance;
let serve: ServeProcess;
let key = '';

const kk = (...args: string[]) => kakitomeOk(env, ...args);

before(async () => {
  env = await acmeStore(dir, 'Submission CA');
  key = JSON.parse(await kk('tenant', 'key', 'acme', '--scope', 'sign', '--json')).key;
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'smtp.key'), '-out', join(dir, 'smtp.pem'), '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'pipe' });
  sink = await new Sink().start();
  postfix = new PostfixInstance({ smtpPort: await freePort(), reinjectPort: await freePort(), relayPort: sink.port });
  await postfix.start();
  serve = await startServe(['--smtp', '127.0.0.1:0', '--relay', `127.0.0.1:${postfix.options.smtpPort}`, '--smtp-tls-cert', join(dir, 'smtp.pem'), '--smtp-tls-key', join(dir, 'smtp.key'), '--smtp-implicit-tls'], env, ['smtp']);
});

after(async () => {
  await serve?.stop();
  await postfix?.stop();
  await sink?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** `n` messages at the sink; Postfix flushes its queue at each poll (a deferred attempt is not waited out); its log in the failure. */
const delivered = (n: number) => until(`${n} message(s) at the sink`, async () => sink.deliveries.length === n || (await postfix.flush(), false), postfix);

test('nodemailer → kakitome serve --smtp (implicit TLS, AUTH) → Postfix → sink: signed, verified by openssl; a refused message goes nowhere', async () => {
  assert.equal(serve.listening.http, undefined, 'without --http no HTTP listener');
  assert.equal(serve.listening.smtp!.tls, 'implicit');
  const port = Number(String(serve.listening.smtp!.address).split(':').pop());
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: true, auth: { user: 'acme', pass: key }, tls: { ca: [readFileSync(join(dir, 'smtp.pem'))], servername: 'localhost' } });
  try {
    const raw = 'From: Acme News <news@acme.example>\r\nTo: reader@example.net\r\nSubject: Through Postfix\r\nMessage-ID: <pf1@acme.example>\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\n\r\nSigned at submission, delivered by Postfix.\r\n';
    const info = await transport.sendMail({ envelope: { from: 'bounces@acme.example', to: ['reader@example.net'] }, raw });
    assert.match(info.response, /^250 /);
    await delivered(1);
    const d = sink.deliveries[0]!;
    assert.equal(d.from, 'bounces@acme.example');
    assert.deepEqual(d.to, ['reader@example.net']);
    const v = await opensslVerifyMime(dir, d.message, join(dir, 'root.pem'));
    assert.ok(v.ok, v.detail);
    assert.match(v.content.toString(), /delivered by Postfix/);

    await assert.rejects(transport.sendMail({ envelope: { from: 'bounces@acme.example', to: ['reader@example.net'] }, raw: raw.replace('news@acme.example', 'ceo@bank.example') }), (e: { responseCode?: number; response?: string }) => e.responseCode === 550 && /outside the domains/.test(e.response ?? ''));
    // The same connection goes on; a wrong key is refused before anything is sent.
    assert.match((await transport.sendMail({ envelope: { from: 'bounces@acme.example', to: ['reader@example.net'] }, raw })).response, /^250 /);
    const wrong = nodemailer.createTransport({ host: '127.0.0.1', port, secure: true, auth: { user: 'acme', pass: `${key.slice(0, -4)}AAAA` }, tls: { ca: [readFileSync(join(dir, 'smtp.pem'))], servername: 'localhost' } });
    await assert.rejects(wrong.sendMail({ envelope: { from: 'bounces@acme.example', to: ['reader@example.net'] }, raw }), (e: { responseCode?: number }) => e.responseCode === 535);
    wrong.close();
    await delivered(2);
    // Had the refused message been relayed (serve answers after Postfix took a copy), it would be in Postfix's
    // queue until delivered: once the queue is empty, everything relayed has arrived.
    await until("Postfix's queue to empty", async () => (await postfix.queued()) === 0, postfix);
    assert.equal(sink.deliveries.length, 2, 'the refused message reached neither Postfix nor the sink');
  } finally {
    transport.close();
  }
  const messages = serve.lines.filter((l) => l.msg === 'message');
  assert.deepEqual(messages.map((l) => l.reply), [250, 550, 250]);
  assert.ok(!JSON.stringify(serve.lines).includes(key.slice(20)), 'no key secret in the log');
  assert.equal(await serve.stop(), 0, serve.stderr());
});
