/**
 * docs/gateway.md's LMTP lines keep one connection to the gateway at a light load.
 * Postfix's LMTP client caches connections only while mail waits for the destination
 * unless `lmtp_connection_cache_destinations` names it; without it each message opens
 * a new connection, and smtp-server (the gateway's listener) holds every new
 * session's greeting for 100 ms. A private Postfix (the fixture's main.cf and
 * master.cf, as the docs give them) delivers messages one at a time, each only once
 * the one before was delivered (so no mail ever waits), to an LMTP listener built on
 * smtp-server that counts its connections.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { Sink, draft, sendTo } from './gateway-fixture.ts';
import { PostfixInstance, freePort } from './postfix-instance.ts';

let filter: SMTPServer;
let filterPort: number;
let connections = 0;
let sink: Sink;
let pf: PostfixInstance;

before(async () => {
  filter = new SMTPServer({
    lmtp: true,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    logger: false,
    onConnect(_session, callback) {
      connections++;
      callback();
    },
    onData(stream, session, callback) {
      stream.resume();
      stream.on('end', () => callback(null, session.envelope.rcptTo.map(() => 'accepted') as never));
    },
  });
  await new Promise<void>((r) => filter.listen(0, '127.0.0.1', () => r()));
  filterPort = (filter.server.address() as AddressInfo).port;
  sink = await new Sink().start();
  // Idle connections kept 30 s rather than 2 s: on a loaded machine the next message can come later than 2 s.
  pf = new PostfixInstance({ smtpPort: await freePort(), reinjectPort: await freePort(), relayPort: sink.port, filterPort, lmtp: true, connectionCacheSeconds: 30 });
  await pf.start();
});

after(async () => {
  await pf?.stop();
  await sink?.stop();
  await new Promise<void>((r) => (filter ? filter.close(() => r()) : r()));
});

/** Postfix's log lines of deliveries to the filter. */
const deliveries = () => pf.log().split('\n').filter((l) => l.includes(`:${filterPort},`) && l.includes('status=sent'));

test('through Postfix with LMTP: messages one at a time share one cached connection to the filter (lmtp_connection_cache_destinations)', async () => {
  const count = 5;
  for (let i = 1; i <= count; i++) {
    const r = await sendTo(pf.options.smtpPort, 'alice@corp.test', ['erin@example.com'], draft('alice@corp.test', 'erin@example.com', `One at a time ${i}`, 'Light load.'));
    assert.equal(r.code, 250);
    const deadline = Date.now() + 20_000;
    while (deliveries().length < i) {
      assert.ok(Date.now() < deadline, `message ${i} did not reach the filter:\n${pf.log().split('\n').slice(-20).join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  assert.equal(connections, 1, `${connections} connections for ${count} messages:\n${deliveries().join('\n')}`);
  assert.match(deliveries().at(-1)!, new RegExp(`conn_use=${count},`));
});
