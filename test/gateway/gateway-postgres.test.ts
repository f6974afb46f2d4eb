/**
 * Scale-out (issue 13): two gateway nodes share one PostgreSQL store and nothing
 * else. A certificate harvested by one node from a verified message is used by the
 * other to encrypt; while PostgreSQL is down every message is deferred (4xx) and
 * nothing is relayed, and once it is back the same message goes through.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type RunningGateway } from '../../src/gateway/start-gateway.ts';
import type { Store } from '../../src/store/store.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { startPostgres, type PostgresServer } from '../store/postgres-server.ts';
import { PolicyDirectory } from '../../src/store/policy-directory.ts';
import { HeldMessages } from '../../src/store/held-messages.ts';
import { levelRef } from '../../src/policy/policy-levels.ts';
import { createWorld, draft, openWorldStore, opensslDecryptMime, sendTo, Sink, type GatewayWorld } from './gateway-fixture.ts';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

let pg: PostgresServer;
let world: GatewayWorld;
let sink: Sink;
const stores: Store[] = [];
const nodes: RunningGateway[] = [];

before(async () => {
  pg = await startPostgres();
  world = await createWorld(pg.url);
  sink = await new Sink().start();
  const policyPath = join(world.dir, 'policy.json');
  writeFileSync(policyPath, JSON.stringify({ revocation: 'allow-unknown' }));
  for (let i = 0; i < 2; i++) {
    const store = await openWorldStore(world);
    stores.push(store);
    nodes.push(await startGateway({ listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: sink.port }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', policyPath, lmtp: false }, store, () => {}));
  }
});

after(async () => {
  for (const n of nodes) await n.stop();
  for (const s of stores) await s.close().catch(() => {});
  await sink?.stop();
  world?.cleanup();
  pg?.stop();
});

test('two nodes on one PostgreSQL: a certificate harvested by node A is used by node B to encrypt', async () => {
  const dave = world.pki.identity('rsa2048', 'dave');
  const signed = signMessage(draft('dave@example.com', 'alice@corp.test', 'Hello', 'From Dave.'), { signers: [{ certificate: dave.cert, key: dave.key }] });
  assert.equal((await sendTo(nodes[0]!.listening.port, 'dave@example.com', ['alice@corp.test'], signed)).code, 250);
  assert.match(sink.deliveryTo('alice@corp.test').message.toString('latin1'), /smime=pass/);
  sink.deliveries.length = 0;
  const r = await sendTo(nodes[1]!.listening.port, 'alice@corp.test', ['dave@example.com'], draft('alice@corp.test', 'dave@example.com', 'Reply', 'Sealed for Dave.'));
  assert.equal(r.code, 250, r.response);
  const copy = sink.deliveryTo('dave@example.com').message;
  const opened = await opensslDecryptMime(world.dir, copy, dave.certPath, dave.keyPath);
  assert.ok(opened.ok, `node B encrypted to the certificate node A harvested: ${opened.detail}`);
  assert.match(opened.content.toString('latin1'), /Sealed for Dave/);
});

test('two nodes on one PostgreSQL: a policy edit made through one store reaches both running nodes (policy refresh), no restart', async () => {
  const policies = new PolicyDirectory(stores[0]!);
  await policies.set(levelRef('domain', 'corp.test'), { encrypt: 'required', missingCertificate: 'hold' });
  try {
    // The refresh each node runs every 10 s, made now.
    for (const node of nodes) assert.equal(await node.refreshPolicy(), true);
    sink.deliveries.length = 0;
    for (const node of nodes) {
      const r = await sendTo(node.listening.port, 'alice@corp.test', ['nobody@example.com'], draft('alice@corp.test', 'nobody@example.com', `Required ${node.listening.port}`, 'x'));
      assert.equal(r.code, 250, r.response);
      assert.match(r.response, /Held for an administrator/);
    }
    assert.equal(sink.deliveries.length, 0, 'both nodes applied the edit: nothing sent without encryption');
    assert.equal((await new HeldMessages(stores[1]!).list()).length, 2, 'held in the one shared store');
  } finally {
    await policies.unset(levelRef('domain', 'corp.test'), ['encrypt', 'missingCertificate']);
    for (const node of nodes) await node.refreshPolicy();
  }
});

test('two nodes on one PostgreSQL: a message over streamAboveBytes held by node A (sealed segments in PostgreSQL) is opened through node B\'s store', async () => {
  const policies = new PolicyDirectory(stores[0]!);
  await policies.set(levelRef('global', ''), { streamAboveBytes: 64 * 1024 });
  await policies.set(levelRef('domain', 'corp.test'), { encrypt: 'required', missingCertificate: 'hold' });
  try {
    for (const node of nodes) assert.equal(await node.refreshPolicy(), true);
    sink.deliveries.length = 0;
    const big = draft('alice@corp.test', 'nobody@example.com', 'Large and held', `${'Large held body line.\r\n'.repeat(120_000)}`);
    const r = await sendTo(nodes[0]!.listening.port, 'alice@corp.test', ['nobody@example.com'], big);
    assert.equal(r.code, 250, r.response);
    assert.match(r.response, /Held for an administrator \(([0-9a-f]{32})\)/);
    const id = /\(([0-9a-f]{32})\)/.exec(r.response)![1]!;
    assert.equal(sink.deliveries.length, 0);
    const held = await new HeldMessages(stores[1]!).find(id);
    assert.equal(held.size, big.length);
    assert.deepEqual(await held.message(), big, 'node B\'s store opens what node A held');
    assert.equal(await new HeldMessages(stores[1]!).remove(id, held.generation, 'bounce', 'test'), true);
  } finally {
    await policies.unset(levelRef('domain', 'corp.test'), ['encrypt', 'missingCertificate']);
    await policies.unset(levelRef('global', ''), ['streamAboveBytes']);
    for (const node of nodes) await node.refreshPolicy();
  }
});

test('PostgreSQL stopped: messages are deferred (4xx) and nothing is relayed; restarted: the same message goes through', async () => {
  sink.deliveries.length = 0;
  const msg = draft('alice@corp.test', 'dave@example.com', 'Outage', 'Keep me until the database is back.');
  const alice = (await stores[0]!.findRecipientCertificates('alice@corp.test'))[0]!.certificate;
  const sealed = encryptMessage(draft('erin@example.com', 'alice@corp.test', 'In', 'Only the store has the key.'), { recipients: [{ certificate: alice }] });
  pg.pause();
  try {
    for (const node of nodes) {
      const r = await sendTo(node.listening.port, 'alice@corp.test', ['dave@example.com'], msg);
      assert.equal(Math.floor(r.code / 100), 4, r.response);
      assert.match(r.response, /4\.3\.0 Not every copy was relayed: 1 of 1 recipients deferred \(0 accepted, 0 refused\); the first cause, for <dave@example\.com>: The gateway could not process the message/, 'the gateway\'s own failure, not the next hop\'s');
    }
    // Inbound encrypted mail needs the store's keys: deferred too, never delivered unopened as if nothing were wrong.
    const inbound = await sendTo(nodes[0]!.listening.port, 'erin@example.com', ['alice@corp.test'], sealed);
    assert.equal(Math.floor(inbound.code / 100), 4, `inbound too: ${inbound.response}`);
    assert.equal(sink.deliveries.length, 0, 'nothing passed on unprocessed');
  } finally {
    pg.resume();
  }
  const r = await sendTo(nodes[1]!.listening.port, 'alice@corp.test', ['dave@example.com'], msg);
  assert.equal(r.code, 250, r.response);
  assert.match(sink.deliveryTo('dave@example.com').message.toString('latin1'), /application\/pkcs7-mime/);
});
