/**
 * The gateway's crypto on worker threads, and backpressure (issue 13, Operations):
 * with `workers`, every copy is made in a worker that opened the store itself (its
 * key uses audited there under the gateway's name, not the main thread's), policy
 * edits and reloads reach the workers, and the admission gate bounds what is in
 * flight: a transaction beyond `workers + maxQueuedMessages` waits at MAIL FROM
 * (nothing of it read), and is answered 451 4.3.2 when no place frees within
 * `queueWaitMs` (Postfix retries it). A real SMTP client in front, a real SMTP sink
 * behind, openssl on what arrives.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startGateway, type RunningGateway } from '../../src/gateway/start-gateway.ts';
import { PolicyDirectory } from '../../src/store/policy-directory.ts';
import { levelRef } from '../../src/policy/policy-levels.ts';
import { resolveMasterKey } from '../../src/store/open-store.ts';
import type { Store } from '../../src/store/store.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { Workdir } from '../peers/run-peer.ts';
import { createWorld, draft, openWorldStore, opensslDecryptMime, opensslVerifyMime, sendTo, Sink, type GatewayWorld } from './gateway-fixture.ts';

let world: GatewayWorld;
let store: Store;
let sink: Sink;
let w: Workdir;
const logLines: string[] = [];
const log = (event: string, fields: Record<string, unknown> = {}) => logLines.push(JSON.stringify({ event, ...fields }));

before(async () => {
  world = await createWorld();
  store = await openWorldStore(world);
  sink = await new Sink().start();
  w = new Workdir('gw-workers');
});

after(async () => {
  await sink?.stop();
  await store?.close();
  w?.cleanup();
  world?.cleanup();
});

async function start(workers: number, policy: Record<string, unknown>): Promise<RunningGateway> {
  const policyPath = join(world.dir, `policy-${workers}-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(policyPath, JSON.stringify({ revocation: 'allow-unknown', ...policy }));
  const masterKey = await resolveMasterKey({ home: world.home, env: world.env });
  return startGateway(
    { listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: sink.port }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', lmtp: false, policyPath, workers },
    store,
    log,
    { home: world.home, masterKey },
  );
}

const keyUses = async (actor: string, action: string) => Number((await store.engine.all('SELECT COUNT(*) AS n FROM audit_log WHERE actor = ? AND action = ?', [actor, action]))[0]!.n);

test('workers: outbound signed and encrypted, inbound decrypted, in worker threads that open and audit the keys themselves; a policy edit reaches them', async () => {
  sink.reset();
  const gw = await start(2, {});
  try {
    const signsBefore = await keyUses('gateway', 'key.use.sign');
    const r = await sendTo(gw.listening.port, 'alice@corp.test', ['carol@example.com', 'erin@example.com'], draft('Alice <alice@corp.test>', 'carol@example.com, erin@example.com', 'Via workers', 'Signed in a worker thread.'));
    assert.equal(r.code, 250, r.response);
    const carol = world.pki.identity('rsa2048', 'carol');
    const opened = await opensslDecryptMime(w.dir, sink.deliveryTo('carol@example.com').message, carol.certPath, carol.keyPath);
    assert.ok(opened.ok, opened.detail);
    assert.ok((await opensslVerifyMime(w.dir, opened.content, world.corpRoot)).ok);
    const erin = await opensslVerifyMime(w.dir, sink.deliveryTo('erin@example.com').message, world.corpRoot);
    assert.ok(erin.ok, erin.detail);
    assert.match(erin.content.toString('latin1'), /Signed in a worker thread/);
    // The main thread's store acts as "test": the key was opened, and its use recorded, by a worker's own store.
    assert.ok((await keyUses('gateway', 'key.use.sign')) > signsBefore, 'the worker opened the signing key through the store, audited');

    // Inbound: decrypted with Alice's key, found and opened by the worker, audited as a decryption.
    sink.reset();
    const dave = world.pki.identity('rsa2048', 'dave');
    const alice = (await store.findRecipientCertificates('alice@corp.test'))[0]!.certificate;
    const decryptsBefore = await keyUses('gateway', 'key.use.decrypt');
    const sealed = () => encryptMessage(draft('dave@example.com', 'alice@corp.test', 'Sealed', 'The vault code is 4711.'), { recipients: [{ certificate: alice }], sign: { signers: [{ certificate: dave.cert, key: dave.key }] } });
    assert.equal((await sendTo(gw.listening.port, 'dave@example.com', ['alice@corp.test'], sealed())).code, 250);
    const got = sink.deliveryTo('alice@corp.test').message.toString('latin1');
    assert.match(got, /^Authentication-Results: mx\.corp\.test; smime=pass/m);
    assert.match(got, /vault code is 4711/);
    assert.match(got, /^Subject: Sealed\r$/m);
    assert.ok((await keyUses('gateway', 'key.use.decrypt')) > decryptsBefore);

    // A policy edit in the store: the main thread reads it, and the workers follow its revision.
    const policies = new PolicyDirectory(store);
    await policies.set(levelRef('global'), { subjectTags: 'en' });
    try {
      assert.equal(await gw.refreshPolicy(), true);
      sink.reset();
      // Two at once: both workers get one, each must have read the new revision.
      const [a, b] = await Promise.all([sendTo(gw.listening.port, 'dave@example.com', ['alice@corp.test'], sealed()), sendTo(gw.listening.port, 'dave@example.com', ['alice@corp.test'], sealed())]);
      assert.equal(a.code, 250, a.response);
      assert.equal(b.code, 250, b.response);
      assert.equal(sink.deliveries.length, 2);
      for (const d of sink.deliveries) assert.match(d.message.toString('latin1'), /^Subject: \[signed OK\] Sealed\r$/m);
    } finally {
      await policies.unset(levelRef('global'), ['subjectTags']);
    }
  } finally {
    await gw.stop();
  }
});

test('backpressure: beyond workers + maxQueuedMessages a transaction waits at MAIL FROM; with no wait allowed it is answered 451 4.3.2 and nothing of it is relayed', async () => {
  sink.reset();
  // The next hop holds its reply to the first message until the others were answered: the first transaction keeps its place that long.
  const release = sink.holdReplies();
  const gw = await start(1, { maxQueuedMessages: 0, queueWaitMs: 0 });
  try {
    const send = (i: number) => sendTo(gw.listening.port, 'alice@corp.test', ['erin@example.com'], draft('alice@corp.test', 'erin@example.com', `Busy ${i}`, 'One at a time.'));
    const first = send(0);
    // The first one is admitted and being relayed (its place held) before the others arrive.
    await sink.whenPending(1);
    const others = await Promise.all([send(1), send(2), send(3)]);
    for (const r of others) {
      assert.equal(r.code, 451, r.response);
      assert.match(r.response, /4\.3\.2 The gateway is busy/);
    }
    release();
    assert.equal((await first).code, 250);
    assert.equal(sink.deliveries.length, 1, 'only the admitted message was relayed');
    assert.equal(await gw.metrics.value('kakitome_gateway_busy_total'), 3);
  } finally {
    release();
    await gw.stop();
  }

  // With waiting allowed, the same burst is served one after the other: all delivered, three waited.
  sink.reset();
  sink.mode = 'slow';
  sink.delayMs = 300;
  const patient = await start(1, { maxQueuedMessages: 0, queueWaitMs: 30_000 });
  try {
    const rs = await Promise.all([0, 1, 2, 3].map((i) => sendTo(patient.listening.port, 'alice@corp.test', ['erin@example.com'], draft('alice@corp.test', 'erin@example.com', `Patient ${i}`, 'Wait your turn.'))));
    for (const r of rs) assert.equal(r.code, 250, r.response);
    assert.equal(sink.deliveries.length, 4);
    assert.equal(await patient.metrics.value('kakitome_gateway_queue_waits_total'), 3);
    assert.equal(await patient.metrics.value('kakitome_gateway_busy_total'), 0);
  } finally {
    await patient.stop();
    sink.reset();
  }
});
