/**
 * enforceClientDeadlines (src/smtp/client-deadlines.ts) over a real smtp-server
 * listener and real TCP clients: clients trickling one byte every 50-200 ms fill a
 * listener of few places and starve a normal client unless the deadlines drop them
 * (421 4.4.2); a message cut by the DATA rate never reaches the handler whole; the
 * server's own time (a slow handler) does not count; a client slow but within the
 * limits is served.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { enforceClientDeadlines, type ClientDeadlines, type DeadlineKind } from '../../src/smtp/client-deadlines.ts';
import { readSmtpData } from '../../src/smtp/read-smtp-data.ts';
import { greetAtOnce } from '../../src/smtp/greet-at-once.ts';
import { listenSmtp } from '../../src/smtp/smtp-listener.ts';
import { rawPeer as client, trickle } from '../helpers/slow-smtp-client.ts';

const SHORT: ClientDeadlines = { commandMs: 1000, dataGraceMs: 500, minDataRate: 200, sessionMs: 4000 };

interface Listener {
  port: number;
  drops: { kind: DeadlineKind; ms: number; bytes?: number }[];
  messages: { outcome: 'whole' | 'failed'; bytes: number }[];
  close(): Promise<void>;
}

async function listener(deadlines: ClientDeadlines | undefined, options: Partial<SMTPServerOptions> = {}): Promise<Listener> {
  const drops: Listener['drops'] = [];
  const messages: Listener['messages'] = [];
  const server = new SMTPServer({
    authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'], disableReverseLookup: true, logger: false, maxClients: 3,
    closeTimeout: 100,
    onData(stream, _session, callback) {
      readSmtpData(stream, 1 << 20).then(
        (m) => {
          messages.push({ outcome: 'whole', bytes: m?.length ?? -1 });
          callback(null, 'taken');
        },
        (e: Error) => {
          messages.push({ outcome: 'failed', bytes: 0 });
          callback(e);
        },
      );
    },
    ...options,
  });
  greetAtOnce(server);
  // A handshake cut short is reported as the server's 'error' (the listeners log it as smtp-error).
  server.on('error', () => {});
  if (deadlines) enforceClientDeadlines(server, () => deadlines, (kind, _session, detail) => drops.push({ kind, ...detail }));
  const { port } = await listenSmtp(server, { host: '127.0.0.1', port: 0 });
  return {
    port, drops, messages,
    close: () => new Promise<void>((resolve) => {
      for (const c of (server as unknown as { connections: Set<{ close(): void }> }).connections) c.close();
      server.close(() => resolve());
    }),
  };
}

/** A normal client's whole transaction; the reply to DATA's end, or what it got instead. */
async function normalTransaction(port: number): Promise<string> {
  const c = client(port);
  try {
    await c.waitFor(/^(220|421) /m, 3000);
    if (/^421 /m.test(c.text())) return c.text().trim();
    c.socket.write('EHLO normal\r\n');
    await c.waitFor(/^250 /m);
    c.socket.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
    await c.waitFor(/^354 /m);
    c.socket.write('Subject: hi\r\n\r\nhello\r\n.\r\n');
    await c.waitFor(/^250 taken/m);
    return '250 taken';
  } finally {
    c.socket.destroy();
  }
}

async function slowClients(port: number, n: number, everyMs: number) {
  const clients = Array.from({ length: n }, () => client(port));
  await Promise.all(clients.map((c) => c.waitFor(/^220 /m)));
  // EHLO, then a MAIL FROM that never ends: one byte every everyMs.
  for (const c of clients) void trickle(c.socket, `EHLO slow\r\nMAIL FROM:<${'x'.repeat(200)}@example.com>\r\n`, everyMs);
  return clients;
}

test('without deadlines, three clients trickling a byte every 200 ms hold a 3-place listener: a normal client is refused 421', async () => {
  const l = await listener(undefined, { socketTimeout: 60_000 });
  const slow = await slowClients(l.port, 3, 200);
  try {
    await new Promise((r) => setTimeout(r, 1500));
    const reply = await normalTransaction(l.port);
    assert.match(reply, /^421 .*Too many connected clients/);
    // After 1.5 s of trickling (and far past any per-command deadline) every slow client is still connected.
    assert.ok(slow.every((c) => !c.socket.destroyed && !/^421 /m.test(c.text())));
  } finally {
    for (const c of slow) c.socket.destroy();
    await l.close();
  }
});

test('with deadlines, the same slow clients are told 421 4.4.2 within the command deadline and a normal client is served', async () => {
  const l = await listener(SHORT);
  const slow = await slowClients(l.port, 3, 200);
  try {
    const kept = await Promise.all(slow.map((c) => c.closed));
    for (const c of slow) assert.match(c.text(), /^421 4\.4\.2 .*Timeout: a command line must arrive within 1 s/m);
    // EHLO at a byte every 200 ms takes 2.2 s: its deadline runs from its first byte, so 1 s (plus a timer's and the load's slack).
    for (const ms of kept) assert.ok(ms < SHORT.commandMs + 1500, `a slow client was kept ${Math.round(ms)} ms`);
    assert.deepEqual(l.drops.map((d) => d.kind), ['command', 'command', 'command']);
    assert.equal(await normalTransaction(l.port), '250 taken');
  } finally {
    for (const c of slow) c.socket.destroy();
    await l.close();
  }
});

test('a message trickled below minDataRate is cut with 421 after the grace and the handler sees it fail, never whole', async () => {
  const l = await listener(SHORT);
  const c = client(l.port);
  try {
    await c.waitFor(/^220 /m);
    c.socket.write('EHLO slow\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
    await c.waitFor(/^354 /m);
    const since = performance.now();
    // 20 bytes/s against a least rate of 200: dropped once the grace (0.5 s) is past and the bytes stop covering the time.
    void trickle(c.socket, `Subject: slow\r\n\r\n${'y'.repeat(400)}\r\n.\r\n`, 50);
    await c.closed;
    const took = performance.now() - since;
    assert.match(c.text(), /^421 4\.4\.2 .*less than 200 bytes\/s/m);
    assert.doesNotMatch(c.text(), /^250 taken/m);
    assert.ok(took >= SHORT.dataGraceMs && took < 3000, `cut after ${Math.round(took)} ms`);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(l.messages, [{ outcome: 'failed', bytes: 0 }]);
    assert.equal(l.drops[0]!.kind, 'data');
    assert.ok(l.drops[0]!.bytes! > 0 && l.drops[0]!.bytes! < 400);
  } finally {
    c.socket.destroy();
    await l.close();
  }
});

test('a client within the limits (a message at 1 KB/s, longer than the grace and the command deadline) is served', async () => {
  const l = await listener(SHORT);
  const c = client(l.port);
  try {
    await c.waitFor(/^220 /m);
    c.socket.write('EHLO fine\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
    await c.waitFor(/^354 /m);
    const body = `Subject: fine\r\n\r\n${'z'.repeat(1400)}\r\n.\r\n`;
    for (let i = 0; i < body.length; i += 50) {
      c.socket.write(body.slice(i, i + 50));
      await new Promise((r) => setTimeout(r, 50));
    }
    await c.waitFor(/^250 taken/m);
    assert.deepEqual(l.drops, []);
    assert.equal(l.messages[0]!.outcome, 'whole');
  } finally {
    c.socket.destroy();
    await l.close();
  }
});

test('the server\'s own time does not count: a MAIL FROM handler taking 1.5 s (over commandMs) is answered', async () => {
  const l = await listener(SHORT, { onMailFrom: (_a, _s, callback) => void setTimeout(() => callback(), 1500) });
  const c = client(l.port);
  try {
    await c.waitFor(/^220 /m);
    c.socket.write('EHLO fine\r\nMAIL FROM:<a@example.com>\r\n');
    // RCPT arrives while MAIL's handler works: its deadline starts, and must wait for the server's turn to end.
    await new Promise((r) => setTimeout(r, 200));
    c.socket.write('RCPT TO:<b@example.com>\r\n');
    await c.waitFor(/^250 Accepted\r\n250 Accepted/m, 4000);
    assert.deepEqual(l.drops, []);
  } finally {
    c.socket.destroy();
    await l.close();
  }
});

/** A listener taking AUTH LOGIN, and a client that said EHLO and AUTH LOGIN and got the username prompt. */
async function authLoginStarted(): Promise<{ l: Listener; c: ReturnType<typeof client> }> {
  const l = await listener(SHORT, { disabledCommands: ['STARTTLS'], allowInsecureAuth: true, authMethods: ['LOGIN'], onAuth: (_a, _s, callback) => callback(null, { user: 'u' }) });
  const c = client(l.port);
  await c.waitFor(/^220 /m);
  c.socket.write('EHLO auth\r\n');
  await c.waitFor(/^250 /m);
  c.socket.write('AUTH LOGIN\r\n');
  await c.waitFor(/^334 /m);
  return { l, c };
}

test('an AUTH exchange is one command: AUTH LOGIN whose lines come 600 and 900 ms apart passes commandMs and is dropped', async () => {
  const since = performance.now();
  const { l, c } = await authLoginStarted();
  try {
    await new Promise((r) => setTimeout(r, 600));
    c.socket.write(`${Buffer.from('user').toString('base64')}\r\n`);
    // 900 ms: each line within commandMs (1 s), the exchange past it by more than the
    // deadline's check interval (commandMs / 4): at 600 ms the password raced that check.
    await new Promise((r) => setTimeout(r, 900));
    if (c.socket.writable) c.socket.write(`${Buffer.from('pass').toString('base64')}\r\n`);
    await c.closed;
    assert.match(c.text(), /^421 4\.4\.2 .*a command line must arrive within 1 s/m);
    assert.doesNotMatch(c.text(), /^235 /m);
    assert.ok(performance.now() - since < SHORT.commandMs + 1000);
    assert.deepEqual(l.drops.map((d) => d.kind), ['command']);
  } finally {
    c.socket.destroy();
    await l.close();
  }
});

test('an AUTH LOGIN exchange ends with its last line: the client may then pause between commands longer than commandMs', async () => {
  const { l, c } = await authLoginStarted();
  try {
    c.socket.write(`${Buffer.from('user').toString('base64')}\r\n`);
    await c.waitFor(/334 [^\r]*\r\n334 /);
    c.socket.write(`${Buffer.from('pass').toString('base64')}\r\n`);
    await c.waitFor(/^235 /m);
    // Idle between commands (smtp-server's idle timeout governs that, not the command deadline).
    await new Promise((r) => setTimeout(r, SHORT.commandMs + 600));
    c.socket.write('MAIL FROM:<a@example.com>\r\n');
    await c.waitFor(/^235 [^\r]*\r\n250 /m);
    assert.doesNotMatch(c.text(), /^421 /m);
    assert.deepEqual(l.drops, []);
  } finally {
    c.socket.destroy();
    await l.close();
  }
});

test('a TLS handshake trickled after STARTTLS, or on an implicit TLS port, is cut at commandMs (smtp-server\'s idle timeout alone kept it)', async () => {
  for (const implicit of [false, true]) {
    const l = await listener(SHORT, { disabledCommands: ['AUTH'], secure: implicit, socketTimeout: 60_000 });
    const c = client(l.port);
    try {
      const since = performance.now();
      if (!implicit) {
        await c.waitFor(/^220 /m);
        c.socket.write('EHLO tls\r\n');
        await c.waitFor(/^250 /m);
        c.socket.write('STARTTLS\r\n');
        await c.waitFor(/^220 /m);
      }
      // A ClientHello's first bytes (handshake record, TLS 1.0 framing), one every 200 ms, never finished.
      void trickle(c.socket, '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' + 'r'.repeat(40), 200);
      await c.closed;
      const took = performance.now() - since;
      assert.ok(took < SHORT.commandMs + 1500, `${implicit ? 'implicit' : 'STARTTLS'}: cut after ${Math.round(took)} ms`);
      assert.deepEqual(l.drops.map((d) => d.kind), [implicit ? 'handshake' : 'command']);
    } finally {
      c.socket.destroy();
      await l.close();
    }
  }
});

test('a session that keeps sending valid commands ends at sessionMs, at a pause between commands', async () => {
  const l = await listener(SHORT);
  const c = client(l.port);
  try {
    await c.waitFor(/^220 /m);
    c.socket.write('EHLO chatty\r\n');
    const since = performance.now();
    const timer = setInterval(() => c.socket.writable && c.socket.write('NOOP\r\n'), 300);
    await c.closed;
    clearInterval(timer);
    const took = performance.now() - since;
    assert.match(c.text(), /^421 4\.4\.2 .*a session may last 4 s/m);
    assert.ok(took >= SHORT.sessionMs - 100 && took < SHORT.sessionMs + 1500, `ended after ${Math.round(took)} ms`);
    assert.deepEqual(l.drops.map((d) => d.kind), ['session']);
  } finally {
    c.socket.destroy();
    await l.close();
  }
});
