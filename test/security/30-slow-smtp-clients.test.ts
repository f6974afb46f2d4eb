/**
 * Attack (docs/security.md section 21, "SMTP clients that trickle"): clients sending
 * one byte every 200 ms against `kakitome serve --smtp` (a real process, through the
 * launcher). smtp-server's idle timeout restarts with every byte, so before the
 * deadlines they kept their connections as long as they liked. Now each is answered
 * 421 4.4.2 within the command deadline (1 s here) and logged; an authenticated
 * client trickling its message is cut by the DATA rate, and nothing of it reaches
 * the relay; a normal client is then served. Out-of-range deadlines stop serve at
 * start, naming the option.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { runCli } from '../cli/run-cli.ts';
import { Sink } from '../gateway/gateway-fixture.ts';
import { rawPeer, trickle } from '../helpers/slow-smtp-client.ts';
import { acmeStore, kakitomeOk, startServe, type ServeProcess } from '../server/serve-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-slow-smtp-'));
let env: NodeJS.ProcessEnv;
let serve: ServeProcess;
let port = 0;
let key = '';
let sink: Sink;

before(async () => {
  env = await acmeStore(dir, 'Slow Clients CA');
  key = (JSON.parse(await kakitomeOk(env, 'tenant', 'key', 'acme', '--scope', 'sign', '--json')) as { key: string }).key;
  sink = await new Sink().start();
  serve = await startServe(['--smtp', '127.0.0.1:0', '--relay', `127.0.0.1:${sink.port}`, '--workers', '1', '--smtp-command-timeout', '1', '--smtp-min-data-rate', '200', '--smtp-session-timeout', '20'], env, ['smtp']);
  port = Number(String(serve.listening.smtp!.address).split(':').pop());
});

after(async () => {
  await serve?.stop();
  await sink?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('twenty clients trickling a byte every 200 ms are each told 421 4.4.2 within the command deadline, and logged', async () => {
  const slow = Array.from({ length: 20 }, () => rawPeer(port));
  await Promise.all(slow.map((s) => s.waitFor(/^220 /m)));
  for (const s of slow) void trickle(s.socket, `EHLO slow\r\nMAIL FROM:<${'x'.repeat(200)}@acme.example>\r\n`, 200);
  const kept = await Promise.all(slow.map((s) => s.closed));
  for (const s of slow) assert.match(s.text(), /^421 4\.4\.2 [^\r]*Timeout: a command line must arrive within 1 s/m);
  // EHLO (11 bytes, 2.2 s) or else MAIL FROM passes its 1 s deadline: at most two lines' deadlines, with the load's slack.
  for (const ms of kept) assert.ok(ms < 2 * 1000 + 2500, `kept ${Math.round(ms)} ms`);
  await new Promise((r) => setTimeout(r, 200));
  const drops = serve.lines.filter((l) => l.msg === 'slow-client');
  assert.equal(drops.length, 20);
  for (const d of drops) assert.deepEqual(Object.keys(d).sort(), ['level', 'limit', 'listener', 'ms', 'msg', 'session', 'time']);
});

test('an authenticated client trickling its message is cut by the DATA rate: 421, nothing relayed; a normal client is then served', async () => {
  const s = rawPeer(port);
  await s.waitFor(/^220 /m);
  s.socket.write(`EHLO slow\r\nAUTH PLAIN ${Buffer.from(`\0acme\0${key}`).toString('base64')}\r\n`);
  await s.waitFor(/^235 /m);
  s.socket.write('MAIL FROM:<news@acme.example>\r\nRCPT TO:<reader@example.net>\r\nDATA\r\n');
  await s.waitFor(/^354 /m);
  void trickle(s.socket, `From: news@acme.example\r\nTo: reader@example.net\r\nSubject: slow\r\n\r\n${'y'.repeat(300)}\r\n.\r\n`, 50);
  await s.closed;
  assert.match(s.text(), /^421 4\.4\.2 [^\r]*less than 200 bytes\/s/m);
  assert.doesNotMatch(s.text(), /^250 [^\r]*\r\n$/);
  assert.equal(sink.deliveries.length, 0);
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(serve.lines.some((l) => l.msg === 'slow-client' && l.limit === 'data'));
  assert.ok(!serve.lines.some((l) => l.msg === 'message' && l.reply === 250));
  assert.ok(serve.lines.some((l) => l.msg === 'message' && l.code === 'TIMEOUT' && l.outcome === 'deferred'));
  assert.ok(!serve.lines.some((l) => l.msg === 'internal error'));

  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, auth: { user: 'acme', pass: key } });
  const info = await transport.sendMail({ envelope: { from: 'news@acme.example', to: ['reader@example.net'] }, raw: 'From: news@acme.example\r\nTo: reader@example.net\r\nSubject: normal\r\n\r\nHello.\r\n' });
  assert.match(info.response, /^250 /);
  assert.equal(sink.deliveries.length, 1);
});

test('deadlines out of range stop serve at start, naming the option', async () => {
  for (const [option, value] of [['--smtp-command-timeout', '0'], ['--smtp-min-data-rate', 'fast'], ['--smtp-session-timeout', '999999']] as const) {
    const r = await runCli(['serve', '--smtp', '127.0.0.1:0', '--relay', '127.0.0.1:25', option, value], { env });
    assert.equal(r.status, 2, `${option} ${value}: ${r.stderr}`);
    assert.match(r.stderr.toString(), new RegExp(option));
  }
});
