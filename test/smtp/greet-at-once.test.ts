/**
 * greetAtOnce (src/smtp/greet-at-once.ts): the gateway's listener sends its 220
 * without smtp-server's 100 ms hold. setTimeout is mocked and never advanced, so
 * the hold's timer can only fire when the test ticks it: with greetAtOnce the
 * greeting and a whole session arrive without a tick; smtp-server as it is waits
 * for the tick; the maxClients refusal (421) still applies.
 */
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { greetAtOnce } from '../../src/smtp/greet-at-once.ts';
import { listenSmtp } from '../../src/smtp/smtp-listener.ts';

function reader(client: Socket): (re: RegExp) => Promise<string> {
  let received = '';
  client.on('data', (d: Buffer) => { received += d.toString(); });
  return (re) => new Promise((resolve) => {
    const check = () => (re.test(received) ? resolve(received) : setImmediate(check));
    check();
  });
}

async function server(o: { atOnce: boolean; maxClients?: number }): Promise<{ server: SMTPServer; port: number }> {
  const s = new SMTPServer({ authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'], disableReverseLookup: true, logger: false, ...(o.maxClients ? { maxClients: o.maxClients } : {}), onData(stream, _session, callback) {
    stream.resume();
    stream.on('end', () => callback(null, 'kept'));
  } });
  if (o.atOnce) greetAtOnce(s);
  const { port } = await listenSmtp(s, { host: '127.0.0.1', port: 0 });
  return { server: s, port };
}

const close = (s: SMTPServer) => new Promise<void>((r) => s.close(() => r()));

test('greetAtOnce: the greeting and a whole transaction without the 100 ms timer; smtp-server as it is waits for it', { timeout: 10_000 }, async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const plain = await server({ atOnce: false });
    const held = connect({ host: '127.0.0.1', port: plain.port });
    const heldRead = reader(held);
    const atOnce = await server({ atOnce: true });
    const client = connect({ host: '127.0.0.1', port: atOnce.port });
    const read = reader(client);
    await read(/^220 /m);
    client.write('EHLO postfix\r\nMAIL FROM:<a@corp.test>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
    await read(/^354 /m);
    client.write('Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n');
    assert.match(await read(/^221 /m), /^250 kept\r$/m);
    // The session above took many turns of the event loop; the other server has not greeted yet.
    let early = '';
    held.on('data', (d: Buffer) => { early += d.toString(); });
    await new Promise((r) => setImmediate(r));
    assert.equal(early, '', 'smtp-server holds its greeting until its timer fires');
    mock.timers.tick(100);
    await heldRead(/^220 /m);
    held.destroy();
    client.destroy();
    await close(plain.server);
    await close(atOnce.server);
  } finally {
    mock.timers.reset();
  }
});

test('greetAtOnce: beyond maxClients a connection is still refused with 421', async () => {
  const s = await server({ atOnce: true, maxClients: 1 });
  const first = connect({ host: '127.0.0.1', port: s.port });
  await reader(first)(/^220 /m);
  const second = connect({ host: '127.0.0.1', port: s.port });
  assert.match(await reader(second)(/^421 /m), /Too many connected clients/);
  first.destroy();
  second.destroy();
  await close(s.server);
});
