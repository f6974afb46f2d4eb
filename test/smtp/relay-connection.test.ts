/**
 * The relay's own SMTP client (src/smtp/relay-connection.ts, behind RelayPool) and
 * its wire encoding (src/smtp/encode-message-data.ts): pipelining really pipelines
 * (a next hop that answers nothing before it has the whole group still gets the
 * message), BDAT carries the exact bytes, replies decide per recipient, and a next
 * hop that misbehaves costs a temporary outcome, never a crash or a lost message.
 * Next hops: scripted ones on node:net for what a real server will not do on
 * demand, and smtp-server (SMTP without PIPELINING, LMTP) as a real peer; Postfix
 * (CHUNKING) is the next hop of test/gateway/gateway-postfix.test.ts and
 * test/server/serve-submission-postfix.test.ts. The dot-stuffing is checked
 * against nodemailer's DataStream, the encoder the relay used before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { SMTPServer } from 'smtp-server';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream';
import { dataTerminator, encodeChunk, encodeDataBody, START_OF_MESSAGE } from '../../src/smtp/encode-message-data.ts';
import { RelayPool } from '../../src/smtp/relay-message.ts';
import { draft, Sink, waitFor } from '../gateway/gateway-fixture.ts';

function nodemailerEncoding(message: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = new DataStream();
    const out: Buffer[] = [];
    s.on('data', (c: Buffer) => out.push(c));
    s.on('end', () => resolve(Buffer.concat(out)));
    s.on('error', reject);
    s.end(message);
  });
}

/** A seeded generator of hostile line structure: dots, bare CR and LF, CRLF, ".\r\n" lines, "\r.\r" (smuggling shapes). */
function hostileMessages(count: number): Buffer[] {
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  const atoms = ['.', '..', '\r\n', '\n', '\r', 'a', 'text ', '\r\n.\r\n', '\r.\r', '\n.\n', '\r\n.', '.\r\n', 'é'];
  return Array.from({ length: count }, () => Buffer.from(Array.from({ length: next() % 40 }, () => atoms[next() % atoms.length]).join(''), 'utf8'));
}

test('the DATA encoding is nodemailer DataStream\'s, whole and in pieces, on hostile line structure', async () => {
  // An empty message is the terminator alone (nodemailer sent an empty line before it).
  assert.deepEqual(encodeDataBody(Buffer.alloc(0)), Buffer.from('.\r\n'));
  for (const m of [...hostileMessages(400).filter((m) => m.length > 0), Buffer.from('.'), Buffer.from('a\r\n')]) {
    const expected = await nodemailerEncoding(m);
    assert.deepEqual(encodeDataBody(m), expected, JSON.stringify(m.toString('latin1')));
    // Streamed: any cut gives the same bytes.
    for (const cut of [1, 2, 3, 5]) {
      const pieces: Uint8Array[] = [];
      let prev = START_OF_MESSAGE;
      for (let p = 0; p < m.length; p += cut) {
        const e = encodeChunk(m.subarray(p, p + cut), prev, true);
        if (e.length) prev = e[e.length - 1]!;
        pieces.push(e);
      }
      pieces.push(dataTerminator(prev));
      assert.deepEqual(Buffer.concat(pieces), expected, `${JSON.stringify(m.toString('latin1'))} in pieces of ${cut}`);
    }
  }
  const clean = Buffer.from('Subject: x\r\n\r\nline\r\n');
  assert.equal(encodeChunk(clean, START_OF_MESSAGE, true), clean, 'a clean message is not copied');
});

/**
 * A scripted next hop: greets, answers EHLO with `features`, then hands each
 * connection's input to `script`, which answers with socket.write when it likes.
 */
async function scripted(features: string[], script: (socket: Socket, input: () => string) => void): Promise<{ server: Server; port: number; received: string[] }> {
  const received: string[] = [];
  const server = createServer((socket) => {
    let buf = '';
    let greeted = false;
    socket.write('220 scripted ESMTP\r\n');
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (!greeted) {
        if (!buf.includes('\r\n')) return;
        greeted = true;
        buf = buf.slice(buf.indexOf('\r\n') + 2);
        socket.write(['250-scripted', ...features.map((f, i) => `250${i === features.length - 1 ? ' ' : '-'}${f}`)].join('\r\n') + '\r\n');
        if (!features.length) socket.write('250 scripted\r\n');
      }
      received.push(buf);
      script(socket, () => buf);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as AddressInfo).port, received };
}

const envelope = { from: 'alice@corp.test', to: ['carol@example.com', 'dave@example.com'] };

/** The rule byte by byte, as the reference: bare CR and LF become CRLF, and (dotStuff) a dot starting a line is doubled. */
function referenceEncoding(m: Uint8Array, prev: number, dotStuff: boolean): Buffer {
  const out: number[] = [];
  let p = prev;
  for (const b of m) {
    if (p === 0x0d && b !== 0x0a) out.push((p = 0x0a));
    if (b === 0x0a && p !== 0x0d) out.push(0x0d);
    if (dotStuff && b === 0x2e && p === 0x0a) out.push(0x2e);
    out.push((p = b));
  }
  return Buffer.from(out);
}

test('the line-end check looks at every byte of a large message, across its 64 KiB windows, for BDAT and DATA alike', () => {
  // A clean body of CRLF lines just over two windows (the check reads 64 KiB at a time).
  const clean = Buffer.from('x'.repeat(76).concat('\r\n').repeat(Math.ceil((2 * 65536 + 300) / 78)));
  for (const dotStuff of [false, true]) {
    assert.equal(encodeChunk(clean, START_OF_MESSAGE, dotStuff), clean, 'a clean message is not copied');
    for (const at of [0, 1, 65534, 65535, 65536, 65537, 131071, 131072, clean.length - 2, clean.length - 1]) {
      for (const defect of ['\n', '\r', '\r\n.', '\n.', '.', 'x\r', '\rx']) {
        const m = Buffer.concat([clean.subarray(0, at), Buffer.from(defect), clean.subarray(at)]);
        const expected = referenceEncoding(m, START_OF_MESSAGE, dotStuff);
        const got = Buffer.from(encodeChunk(m, START_OF_MESSAGE, dotStuff));
        assert.ok(got.equals(expected), `${JSON.stringify(defect)} at ${at}, dotStuff ${dotStuff}`);
        // In pieces cut at and around the defect, each piece after the byte before it.
        for (const cut of [at - 1, at, at + 1, at + defect.length]) {
          if (cut <= 0 || cut >= m.length) continue;
          const first = encodeChunk(m.subarray(0, cut), START_OF_MESSAGE, dotStuff);
          const second = encodeChunk(m.subarray(cut), m[cut - 1]!, dotStuff);
          assert.ok(Buffer.concat([first, second]).equals(expected), `${JSON.stringify(defect)} at ${at} cut at ${cut}, dotStuff ${dotStuff}`);
        }
      }
    }
  }
});

test('PIPELINING: MAIL, both RCPTs and DATA arrive before any reply; the message goes dot-stuffed with its terminator', async () => {
  let answered = 0;
  const hop = await scripted(['PIPELINING', '8BITMIME', 'SIZE 1000000'], (socket, input) => {
    const text = input();
    // Nothing is answered until the whole group is there: a client that waits for the MAIL reply would time out.
    if (answered === 0 && text.includes('DATA\r\n')) {
      assert.match(text, /^MAIL FROM:<alice@corp\.test> BODY=8BITMIME SIZE=\d+\r\nRCPT TO:<carol@example\.com>\r\nRCPT TO:<dave@example\.com>\r\nDATA\r\n$/);
      answered = 1;
      socket.write('250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n354 go\r\n');
    } else if (answered === 1 && text.endsWith('\r\n.\r\n')) {
      answered = 2;
      socket.write('250 2.0.0 queued\r\n');
    }
  });
  const pool = new RelayPool({ nextHop: { host: '127.0.0.1', port: hop.port }, name: 'test' });
  const outcomes = await pool.relay(envelope, Buffer.from('Subject: x\r\n\r\n.dot\r\nend'), 5_000);
  assert.deepEqual(outcomes.map((o) => [o.status, o.code]), [['accepted', 250], ['permanent', 550]]);
  assert.ok(hop.received.at(-1)!.endsWith('DATA\r\nSubject: x\r\n\r\n..dot\r\nend\r\n.\r\n'), 'dot-stuffed, CRLF added, terminated');
  pool.close();
  hop.server.close();
});

test('CHUNKING with PIPELINING: the envelope in one group, then, once it is answered, BDAT LAST with the exact bytes (no dot-stuffing); the reply to BDAT decides', async () => {
  // The message waits for the envelope's replies: in the envelope's write, a next hop that answers
  // the envelope at once and BDAT later (Postfix) wrote two small replies in a row, and Nagle's
  // algorithm held the second for our delayed ACK (40 ms). See relay-connection.ts.
  const message = Buffer.from('Subject: x\r\n\r\n.dot\r\n.\r\nend\r\n');
  const envelopeGroup = 'MAIL FROM:<alice@corp.test>\r\nRCPT TO:<carol@example.com>\r\nRCPT TO:<dave@example.com>\r\n';
  let stage = 0;
  let got = '';
  const hop = await scripted(['PIPELINING', 'CHUNKING'], (socket, input) => {
    const text = input();
    if (stage === 0 && text.endsWith(envelopeGroup)) {
      assert.equal(text, envelopeGroup, 'nothing of the message before the envelope is answered');
      stage = 1;
      socket.write('250 ok\r\n250 ok\r\n250 ok\r\n');
      return;
    }
    const m = /BDAT (\d+) LAST\r\n/.exec(text);
    if (stage === 1 && m && text.length >= m.index + m[0].length + Number(m[1])) {
      stage = 2;
      got = text;
      socket.write('250 2.0.0 queued as C\r\n');
    }
  });
  const pool = new RelayPool({ nextHop: { host: '127.0.0.1', port: hop.port }, name: 'test' });
  const outcomes = await pool.relay(envelope, message, 5_000);
  assert.deepEqual(outcomes.map((o) => o.status), ['accepted', 'accepted']);
  assert.equal(outcomes[0]!.response, '250 2.0.0 queued as C');
  assert.equal(got, `${envelopeGroup}BDAT ${message.length} LAST\r\n${message.toString('latin1')}`);
  assert.equal(pool.idle, 1, 'kept for the next message');
  pool.close();
  hop.server.close();
});

test('CHUNKING: every recipient refused: no BDAT is sent, each keeps its RCPT reply, the session is not reused', async () => {
  let sawBdat = false;
  const hop = await scripted(['PIPELINING', 'CHUNKING'], (socket, input) => {
    const text = input();
    if (text.includes('BDAT')) sawBdat = true;
    if (text.endsWith('RCPT TO:<dave@example.com>\r\n')) socket.write('250 ok\r\n550 5.1.1 no carol\r\n450 4.2.1 dave busy\r\n');
  });
  const pool = new RelayPool({ nextHop: { host: '127.0.0.1', port: hop.port }, name: 'test' });
  const outcomes = await pool.relay(envelope, Buffer.from('Subject: x\r\n\r\nbody\r\n'), 5_000);
  assert.deepEqual(outcomes.map((o) => [o.status, o.code]), [['permanent', 550], ['temporary', 450]]);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(sawBdat, false, 'no message after an envelope with no recipient');
  assert.equal(pool.idle, 0);
  pool.close();
  hop.server.close();
});

test('MAIL refused: every recipient gets its reply (not the 503s that follow); the connection is not reused', async () => {
  const hop = await scripted(['PIPELINING'], (socket, input) => {
    if (input().endsWith('DATA\r\n')) socket.write('550 5.7.1 sender refused\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no valid recipients\r\n');
  });
  const pool = new RelayPool({ nextHop: { host: '127.0.0.1', port: hop.port }, name: 'test' });
  const outcomes = await pool.relay(envelope, Buffer.from('x\r\n'), 5_000);
  assert.deepEqual(outcomes.map((o) => [o.status, o.code, o.response]), [['permanent', 550, '550 5.7.1 sender refused'], ['permanent', 550, '550 5.7.1 sender refused']]);
  assert.equal(pool.idle, 0);
  hop.server.close();
});

test('a hostile next hop: an endless reply line, a reply that is no reply, silence after the data: temporary, code 0', async () => {
  const cases: Array<[string, (socket: Socket) => void, RegExp]> = [
    ['a line over 4 KiB', (s) => s.write(`250-${'x'.repeat(10_000)}`), /over 4096 bytes/],
    ['too many lines', (s) => s.write('250-x\r\n'.repeat(40)), /more than 32 lines/],
    ['not a reply', (s) => s.write('hello there\r\n'), /not an SMTP reply/],
    ['silence', () => undefined, /did not answer within 300 ms/],
  ];
  for (const [name, misbehave, expected] of cases) {
    const hop = await scripted(['PIPELINING'], (socket, input) => {
      if (input().endsWith('DATA\r\n')) misbehave(socket);
    });
    const pool = new RelayPool({ nextHop: { host: '127.0.0.1', port: hop.port }, name: 'test' });
    const outcomes = await pool.relay(envelope, Buffer.from('x\r\n'), 300);
    for (const o of outcomes) {
      assert.equal(o.status, 'temporary', name);
      assert.equal(o.code, 0, name);
      assert.match(o.response, expected, name);
    }
    assert.equal(pool.idle, 0, name);
    hop.server.close();
  }
});

test('a 421 while idle takes the connection out of the pool; a greeting other than 220 is temporary', async () => {
  let sockets: Socket[] = [];
  const hop = await scripted(['PIPELINING'], (socket, input) => {
    sockets.push(socket);
    const text = input();
    if (text.endsWith('DATA\r\n')) socket.write('250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n');
    else if (text.endsWith('\r\n.\r\n')) socket.write('250 queued\r\n');
  });
  const pool = new RelayPool({ nextHop: { host: '127.0.0.1', port: hop.port }, name: 'test' });
  assert.equal((await pool.relay(envelope, Buffer.from('x\r\n'), 5_000))[0]!.status, 'accepted');
  assert.equal(pool.idle, 1);
  sockets[0]!.write('421 4.4.2 idle too long\r\n');
  await waitFor('the pool to drop the connection that said 421', () => pool.idle === 0);
  pool.close();
  hop.server.close();
  sockets = [];

  const busy = createServer((s) => s.end('554 5.3.2 no service\r\n'));
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
  const refused = new RelayPool({ nextHop: { host: '127.0.0.1', port: (busy.address() as AddressInfo).port }, name: 'test' });
  const outcomes = await refused.relay(envelope, Buffer.from('x\r\n'), 5_000);
  assert.deepEqual(outcomes.map((o) => [o.status, o.code]), [['temporary', 0], ['temporary', 0]]);
  assert.match(outcomes[0]!.response, /greeted with 554/);
  busy.close();
});

test('without PIPELINING (smtp-server): one command at a time; a refused recipient is its own outcome, the others are delivered', async () => {
  const sink = await new Sink().start();
  (sink.server.options as { hidePIPELINING?: boolean }).hidePIPELINING = true;
  sink.refuse.set('dave@example.com', 550);
  const pool = new RelayPool({ nextHop: { host: '127.0.0.1', port: sink.port }, name: 'test' });
  const message = draft('alice@corp.test', 'carol@example.com', 'Hi', '.starts with a dot\r\n.\r\nand a lone dot line');
  const outcomes = await pool.relay(envelope, message, 5_000);
  assert.deepEqual(outcomes.map((o) => [o.status, o.code]), [['accepted', 250], ['permanent', 550]]);
  assert.deepEqual(sink.deliveries[0]!.to, ['carol@example.com']);
  assert.deepEqual(sink.deliveries[0]!.message, message, 'dot-stuffing undone by the receiver: the same bytes');
  const streamed = await pool.relay({ from: envelope.from, to: ['carol@example.com'] }, { size: message.length, stream: () => Readable.from([message.subarray(0, 7), message.subarray(7)]) }, 5_000);
  assert.equal(streamed[0]!.status, 'accepted');
  assert.deepEqual(sink.deliveries[1]!.message, message);
  pool.close();
  await sink.stop();
});

test('LMTP: one final reply per accepted recipient, in order', async () => {
  const server = new SMTPServer({
    lmtp: true, authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'], disableReverseLookup: true, logger: false,
    onData(stream, session, callback) {
      stream.resume();
      stream.on('end', () => callback(null, session.envelope.rcptTo.map((r) => (r.address.startsWith('carol') ? 'delivered' : Object.assign(new Error('4.2.2 mailbox full'), { responseCode: 452 })))));
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const pool = new RelayPool({ nextHop: { host: '127.0.0.1', port: (server.server.address() as AddressInfo).port }, name: 'test', lmtp: true });
  const outcomes = await pool.relay(envelope, Buffer.from('Subject: x\r\n\r\nbody\r\n'), 5_000);
  assert.deepEqual(outcomes.map((o) => [o.status, o.code]), [['accepted', 250], ['temporary', 452]]);
  assert.equal(pool.idle, 0, 'not reused after a failed final reply');
  pool.close();
  await new Promise<void>((r) => server.close(() => r()));
});

test('an address that would break the command line is never written', async () => {
  const sink = await new Sink().start();
  const pool = new RelayPool({ nextHop: { host: '127.0.0.1', port: sink.port }, name: 'test' });
  const outcomes = await pool.relay({ from: 'alice@corp.test', to: ['carol@example.com>\r\nRCPT TO:<eve@evil.test'] }, Buffer.from('x\r\n'), 5_000);
  assert.equal(outcomes[0]!.status, 'permanent');
  assert.equal(sink.deliveries.length, 0);
  pool.close();
  await sink.stop();
});

const dsnEnvelope = {
  ...envelope,
  dsn: { ret: 'HDRS' as const, envid: 'Q+1 x=y' },
  recipientDsn: [{ notify: ['SUCCESS', 'DELAY'] as const, orcpt: 'rfc822;Old=Carol+x@example.com' }, undefined],
};

test('DSN (RFC 3461): RET and ENVID on MAIL FROM, each recipient\'s own NOTIFY and ORCPT on its RCPT TO, xtext-encoded; left out when the next hop does not advertise DSN', async () => {
  for (const features of [['PIPELINING', 'DSN'], ['PIPELINING']]) {
    const hop = await scripted(features, (socket, input) => {
      if (input().endsWith('DATA\r\n')) socket.write('250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n');
      else if (input().endsWith('\r\n.\r\n')) socket.write('250 queued\r\n');
    });
    const pool = new RelayPool({ nextHop: { host: '127.0.0.1', port: hop.port }, name: 'test' });
    const outcomes = await pool.relay(dsnEnvelope, Buffer.from('Subject: x\r\n\r\nx\r\n'), 5_000);
    assert.deepEqual(outcomes.map((o) => o.status), ['accepted', 'accepted']);
    const sent = hop.received.join('');
    const expected = features.includes('DSN')
      ? 'MAIL FROM:<alice@corp.test> RET=HDRS ENVID=Q+2B1+20x+3Dy\r\nRCPT TO:<carol@example.com> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Old+3DCarol+2Bx@example.com\r\nRCPT TO:<dave@example.com>\r\nDATA\r\n'
      : 'MAIL FROM:<alice@corp.test>\r\nRCPT TO:<carol@example.com>\r\nRCPT TO:<dave@example.com>\r\nDATA\r\n';
    assert.ok(sent.includes(expected), `${features.join(' ')}: ${JSON.stringify(sent)}`);
    pool.close();
    hop.server.close();
  }
});

test('DSN: malformed or oversized parameters are refused (501 5.5.4 for every recipient) before anything is written', async () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['ENVID with a control character', { dsn: { envid: 'a\r\nRCPT TO:<x@y>' } }],
    ['ENVID not ASCII', { dsn: { envid: 'caf\u00e9' } }],
    ['ENVID over 100 encoded', { dsn: { envid: '+'.repeat(34) } }],
    ['RET unknown', { dsn: { ret: 'BODY' } }],
    ['ORCPT without addr-type', { recipientDsn: [{ orcpt: 'carol@example.com' }, undefined] }],
    ['ORCPT with a bad addr-type', { recipientDsn: [{ orcpt: 'rfc 822;carol@example.com' }, undefined] }],
    ['ORCPT address with CRLF', { recipientDsn: [{ orcpt: 'rfc822;a\r\nDATA' }, undefined] }],
    ['ORCPT over 500 encoded', { recipientDsn: [{ orcpt: `rfc822;${'='.repeat(170)}` }, undefined] }],
    ['NOTIFY NEVER with another', { recipientDsn: [{ notify: ['NEVER', 'SUCCESS'] }, undefined] }],
    ['NOTIFY twice', { recipientDsn: [{ notify: ['SUCCESS', 'SUCCESS'] }, undefined] }],
    ['NOTIFY unknown', { recipientDsn: [{ notify: ['ALWAYS'] }, undefined] }],
    ['NOTIFY empty', { recipientDsn: [{ notify: [] }, undefined] }],
    ['one set for two recipients', { recipientDsn: [{ notify: ['NEVER'] }] }],
  ];
  const hop = await scripted(['PIPELINING', 'DSN'], () => undefined);
  const pool = new RelayPool({ nextHop: { host: '127.0.0.1', port: hop.port }, name: 'test' });
  for (const [name, extra] of cases) {
    const outcomes = await pool.relay({ ...envelope, ...extra } as never, Buffer.from('x\r\n'), 2_000);
    assert.deepEqual(outcomes.map((o) => [o.status, o.code]), [['permanent', 501], ['permanent', 501]], name);
    assert.match(outcomes[0]!.response, /^501 5\.5\.4 The DSN parameters cannot be relayed/, name);
  }
  assert.ok(!hop.received.join('').includes('MAIL'), 'nothing was written');
  pool.close();
  hop.server.close();
});

test('many recipients: a next hop that answers 40 pipelined RCPTs in one write (as Postfix\'s smtpd does), and an LMTP next hop that sends 40 final replies in one write, deliver every copy', async () => {
  const to = Array.from({ length: 40 }, (_, i) => `user${i}@corp.test`);
  let step = 0;
  const smtp = await scripted(['PIPELINING'], (socket, input) => {
    const text = input();
    if (step === 0 && text.includes('DATA\r\n')) {
      step = 1;
      socket.write(`250 ok\r\n${'250 ok\r\n'.repeat(to.length)}354 go\r\n`);
    } else if (step === 1 && text.endsWith('\r\n.\r\n')) {
      step = 2;
      socket.write('250 queued\r\n');
    }
  });
  const pool = new RelayPool({ nextHop: { host: '127.0.0.1', port: smtp.port }, name: 'test' });
  try {
    assert.deepEqual(new Set((await pool.relay({ from: 'alice@corp.test', to }, Buffer.from('Subject: x\r\n\r\nbody\r\n'), 5_000)).map((o) => o.status)), new Set(['accepted']));
  } finally {
    pool.close();
    smtp.server.close();
  }

  let seen = 0;
  const lmtp = await scripted([], (socket, input) => {
    const text = input();
    // One command at a time (no PIPELINING), the final replies together.
    for (const line of text.slice(seen).split('\r\n').slice(0, -1)) {
      seen += line.length + 2;
      if (/^(MAIL|RCPT) /.test(line)) socket.write('250 ok\r\n');
      else if (line === 'DATA') socket.write('354 go\r\n');
      else if (line === '.') socket.write('250 delivered\r\n'.repeat(to.length));
    }
  });
  const lmtpPool = new RelayPool({ nextHop: { host: '127.0.0.1', port: lmtp.port }, name: 'test', lmtp: true });
  try {
    assert.deepEqual(new Set((await lmtpPool.relay({ from: 'alice@corp.test', to }, Buffer.from('Subject: x\r\n\r\nbody\r\n'), 5_000)).map((o) => o.status)), new Set(['accepted']));
  } finally {
    lmtpPool.close();
    lmtp.server.close();
  }
});
