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

async function writesForOneGroup(coalesce: boolean): Promise<{ writes: number; replies: string }> {
  const server = new SMTPServer({
    authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'], disableReverseLookup: true, logger: false,
    onMailFrom(_a, _s, callback) {
      setImmediate(() => callback());
    },
  });
  if (coalesce) coalesceReplies(server);
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
  const coalesced = await writesForOneGroup(true);
  assert.equal(coalesced.writes, 1);
  assert.match(coalesced.replies, /^250 [^\r]*\r\n250 [^\r]*\r\n354 [^\r]*\r\n$/);
});
