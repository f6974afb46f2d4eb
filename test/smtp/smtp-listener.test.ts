/**
 * coalesceReplies (src/smtp/smtp-listener.ts): smtp-server's replies to a pipelined
 * group (MAIL, RCPT, DATA, with MAIL answered asynchronously as the gateway and the
 * submission port answer it) leave the server in one socket write instead of three;
 * the greeting is not held back. Counted at the sockets' write path in this
 * process; a real pipelining client (nodemailer) still gets every reply.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, Socket } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { coalesceReplies, listenSmtp } from '../../src/smtp/smtp-listener.ts';

type Writer = { _writeGeneric(writev: boolean, data: unknown, ...rest: unknown[]): unknown };

/**
 * `answer`: MAIL answered on a later turn (setImmediate, after I/O), or in a microtask
 * and RCPT at once (the gateway: its open admission gate, its synchronous onRcptTo).
 */
async function writesForOneGroup(coalesce: false | 1 | 2, answer: 'immediate' | 'microtask' = 'immediate'): Promise<{ writes: number; replies: string }> {
  const server = new SMTPServer({
    authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'], disableReverseLookup: true, logger: false,
    onMailFrom(_a, _s, callback) {
      if (answer === 'immediate') setImmediate(() => callback());
      else void Promise.resolve(true).then(() => callback());
    },
    // Without it smtp-server answers RCPT a turn later (its default handler's setImmediate).
    ...(answer === 'microtask' ? { onRcptTo(_a: unknown, _s: unknown, callback: () => void) { callback(); } } : {}),
  });
  if (coalesce) coalesceReplies(server, coalesce);
  const { port } = await listenSmtp(server, { host: '127.0.0.1', port: 0 });
  const client = connect({ host: '127.0.0.1', port });
  let received = '';
  const waitFor = (re: RegExp) => new Promise<void>((resolve) => {
    const check = () => (re.test(received) ? resolve() : client.once('data', (d: Buffer) => ((received += d.toString()), check())));
    check();
  });
  await waitFor(/^220 /m);
  client.write('EHLO test\r\n');
  await waitFor(/^250 /m);
  received = '';
  const proto = Socket.prototype as unknown as Writer;
  const original = proto._writeGeneric;
  let writes = 0;
  proto._writeGeneric = function (this: Socket, ...args: Parameters<Writer['_writeGeneric']>) {
    if (this.localPort === port) writes++;
    return original.apply(this, args);
  };
  try {
    client.write('MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
    await waitFor(/^354 /m);
  } finally {
    proto._writeGeneric = original;
  }
  client.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  return { writes, replies: received };
}

test('the replies to MAIL, RCPT and DATA leave in one write (three without)', async () => {
  const plain = await writesForOneGroup(false);
  assert.equal(plain.writes, 3);
  const coalesced = await writesForOneGroup(2);
  assert.equal(coalesced.writes, 1);
  assert.match(coalesced.replies, /^250 [^\r]*\r\n250 [^\r]*\r\n354 [^\r]*\r\n$/);
});

test('one turn holds the group when the handlers answer in the same turn (the gateway), not when RCPT is answered a turn later', async () => {
  const sameTurn = await writesForOneGroup(1, 'microtask');
  assert.equal(sameTurn.writes, 1);
  assert.match(sameTurn.replies, /^250 [^\r]*\r\n250 [^\r]*\r\n354 [^\r]*\r\n$/);
  // smtp-server's own onRcptTo answers a turn later: one turn leaves MAIL's reply alone.
  assert.ok((await writesForOneGroup(1, 'immediate')).writes > 1);
});
