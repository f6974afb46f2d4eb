/**
 * Policy `unauthenticatedEncryption: hold` (issue 13): CBC content nobody trusted
 * vouches for is held for an administrator as received (still encrypted), and the
 * recipient gets the gateway's own short notice that quotes nothing of it; the
 * administrator releases it decrypted (neutralised, under the warning) or
 * encrypted (attached under the notice), or bounces it. The messages are encrypted
 * by openssl as Outlook's AES-CBC mail is; the attacked one carries a live EFAIL
 * gadget made without a key.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { startGateway, type RunningGateway } from '../../src/gateway/start-gateway.ts';
import type { Store } from '../../src/store/store.ts';
import { HeldMessages } from '../../src/store/held-messages.ts';
import { bounceHeldMessage, releaseHeldMessage } from '../../src/gateway/release-held-message.ts';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { walkEntities } from '../../src/mime/entity.ts';
import { decodeText } from '../../src/mime/decode-text.ts';
import { findEnvelopeKeys } from '../../src/store/find-envelope-keys.ts';
import { findMessageEnvelope } from '../../src/smime/find-message-envelope.ts';
import { Workdir } from '../peers/run-peer.ts';
import { opensslEncrypt } from '../peers/openssl.ts';
import { KNOWN_FIRST_BLOCK, cbcGadget, openEnvelope } from '../helpers/cbc-gadget.ts';
import { cliOk, createWorld, openWorldStore, opensslDecryptMime, sendTo, Sink, type GatewayWorld } from './gateway-fixture.ts';

let world: GatewayWorld;
let store: Store;
let sink: Sink;
let gateway: RunningGateway;
let w: Workdir;
const certs: Record<string, string> = {};

const pem = (der: Uint8Array) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`;

before(async () => {
  world = await createWorld();
  await cliOk(world, 'ca', 'issue', '--email', 'bob@corp.test');
  store = await openWorldStore(world);
  sink = await new Sink().start();
  w = new Workdir('gw-held-unauth');
  const policyPath = join(world.dir, 'policy.json');
  writeFileSync(policyPath, JSON.stringify({
    global: { revocation: 'allow-unknown', unauthenticatedEncryption: 'hold', noticeLanguage: 'en' },
    addresses: { 'bob@corp.test': { noticeLanguage: 'ja' }, 'dave@corp.test': { unauthenticatedEncryption: 'deliver-encrypted' } },
  }));
  gateway = await startGateway({ listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: sink.port }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', lmtp: false, policyPath }, store, () => {});
  for (const who of ['alice', 'bob']) certs[who] = w.write(`${who}.pem`, pem((await store.findRecipientCertificates(`${who}@corp.test`))[0]!.certificate.der));
});

after(async () => {
  await gateway?.stop();
  await sink?.stop();
  await store?.close();
  w?.cleanup();
  world?.cleanup();
});

const SECRET = 'The wire goes to account 4711-KAKITOME on Friday.';

async function cbcMessage(to: string, entity: string, from = 'Erin <erin@example.com>', cipher: 'aes-256-cbc' | 'aes-256-gcm' = 'aes-256-cbc'): Promise<Buffer> {
  const der = await opensslEncrypt(w, Buffer.from(entity.replace(/\n/g, '\r\n')), { recipients: [{ id: { certPath: certs[to.split('@')[0]!]! } as never }], cipher });
  const type = cipher.endsWith('gcm') ? 'authEnveloped-data' : 'enveloped-data';
  return Buffer.from(`From: ${from}\r\nTo: ${to}\r\nSubject: Payment due\r\nDate: Sat, 05 Dec 2026 09:30:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=${type}; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n` + der.toString('base64').replace(/.{1,76}/g, '$&\r\n'));
}

const HTML = `Content-Type: text/html; charset=utf-8\n\n<html><body><p>Dear Alice,</p>\n<p>${SECRET}</p>\n<p>Regards, Erin</p></body></html>\n`;

/** The held row of a message just sent to `recipient`, and the notice that went to them. */
async function heldFor(recipient: string, message: Buffer, notify = ['SUCCESS']): Promise<{ id: string; notice: string; from: string }> {
  sink.reset();
  // The sender asks for a success DSN: the notice, the gateway's own message, asks for none.
  const r = await sendTo(gateway.listening.port, 'erin@example.com', [recipient], message, { dsn: { notify, envid: 'E-1' } });
  assert.equal(r.code, 250, r.response);
  const held = (await new HeldMessages(store).list()).filter((h) => h.recipients.includes(recipient) && h.reasonCode === 'UNAUTH_ENC');
  const row = held.find((h) => r.response.includes(h.id));
  assert.ok(row, `the reply names a held UNAUTH_ENC entry: ${r.response}`);
  const d = sink.deliveryTo(recipient);
  assert.deepEqual([d.dsn, d.rcptDsn], [{ ret: null, envid: null }, [{ notify: ['NEVER'] }]], 'the notice carries NOTIFY=NEVER and nothing of the original\'s DSN requests');
  return { id: row.id, notice: d.message.toString('utf8'), from: d.from };
}

function assertNothingQuoted(notice: string, original: Buffer): void {
  assert.ok(!notice.includes(SECRET), 'no plaintext');
  assert.ok(!notice.includes('Payment due'), 'not even the unauthenticated Subject');
  assert.ok(!notice.includes('e.x'), 'nothing injected');
  const b64 = original.toString('latin1').split('\r\n\r\n')[1]!.split('\r\n')[2]!;
  assert.ok(!notice.includes(b64), 'no ciphertext');
  assert.doesNotMatch(notice, /application\/pkcs7-mime|message\/rfc822/, 'one text part, nothing attached');
}

test('a CBC gadget message is held as received, and the recipient gets a notice that quotes none of it (English)', async () => {
  const attacked = cbcGadget(openEnvelope(await cbcMessage('alice@corp.test', HTML)), KNOWN_FIRST_BLOCK, Buffer.from('<img src="//e.x/', 'latin1'));
  const { id, notice, from } = await heldFor('alice@corp.test', attacked);
  assert.equal(from, '', 'the notice goes with the null sender');
  const stored = await new HeldMessages(store).find(id);
  assert.deepEqual(await stored.message(), attacked, 'stored byte for byte as received, still encrypted');
  assert.equal(stored.sender, 'erin@example.com');
  assert.match(notice, /^Authentication-Results: mx\.corp\.test; smime=neutral/m);
  assert.match(notice, /smime\.verdict-code=UNAUTH_ENC/);
  assert.match(notice, /Claims to be from: erin@example\.com \(not verified\)/);
  assert.match(notice, /Claims to be dated: 2026-12-05 09:30:00 UTC/);
  assert.ok(notice.includes(`Held message id:   ${id}`), 'the id to quote to the administrator');
  assert.match(notice, /ask your administrator to\r\nrelease it/);
  assert.doesNotMatch(notice, /保留/, 'English only, as the policy says');
  assertNothingQuoted(notice, attacked);
  // Held again on a retry (the answer lost): one entry.
  const again = await sendTo(gateway.listening.port, 'erin@example.com', ['alice@corp.test'], attacked);
  assert.equal(again.code, 250);
  assert.equal((await new HeldMessages(store).find(id)).generation, 1);
});

test('the notice names only an address a display name cannot dress up, in Japanese by the recipient\'s policy', async () => {
  const original = await cbcMessage('bob@corp.test', HTML, '"Your bank: call +1 555 0100 now" <erin@example.com>');
  const { notice } = await heldFor('bob@corp.test', original);
  assert.match(notice, /送信者（自称・未確認）: erin@example\.com/);
  // Nothing of the display name: its words and its number as written. Not a bare /555/: the notice's Message-ID
  // and held id are random hex, which held "555" about once in a hundred runs (CI failed on it).
  assert.doesNotMatch(notice, /bank|call|555 0100/);
  assert.doesNotMatch(notice, /Claims to be from/, 'Japanese only');
  assertNothingQuoted(notice, original);
  const garbled = await cbcMessage('bob@corp.test', HTML, 'Call now <not an address>');
  assert.match((await heldFor('bob@corp.test', garbled)).notice, /（読み取れる送信者アドレスがありません）/);
});

test('content the sender authenticated is not held: AES-GCM is delivered decrypted', async () => {
  sink.reset();
  const gcm = await cbcMessage('alice@corp.test', `Content-Type: text/plain\n\n${SECRET}\n`, undefined, 'aes-256-gcm');
  const r = await sendTo(gateway.listening.port, 'erin@example.com', ['alice@corp.test'], gcm);
  assert.equal(r.code, 250);
  assert.ok(sink.deliveryTo('alice@corp.test').message.toString().includes(SECRET));
  assert.doesNotMatch(r.response, /Held/);
});

test('release --as decrypted: the neutralised form under its warning; --as encrypted: as received under the notice (openssl opens the attachment); bounce: a DSN without the body', async () => {
  const via = { host: '127.0.0.1', port: sink.port };
  const attacked = cbcGadget(openEnvelope(await cbcMessage('alice@corp.test', HTML, 'erin@example.com')), KNOWN_FIRST_BLOCK, Buffer.from('<img src="//e.x/', 'latin1'));
  const first = await heldFor('alice@corp.test', attacked);
  await assert.rejects(releaseHeldMessage(store, first.id, { via }), (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT' && /--as encrypted .* --as decrypted/.test(e.message));
  assert.ok(await new HeldMessages(store).find(first.id), 'still held');

  sink.reset();
  assert.equal(await releaseHeldMessage(store, first.id, { via, as: 'decrypted', authservId: 'mx.corp.test' }), 'released');
  const opened = sink.deliveryTo('alice@corp.test');
  assert.equal(opened.from, 'erin@example.com');
  assert.deepEqual([opened.dsn, opened.rcptDsn], [{ ret: null, envid: 'E-1' }, [{ notify: ['SUCCESS'] }]], 'released with the sender\'s DSN requests, as held');
  const raw = opened.message.toString('utf8');
  assert.match(raw, /^Authentication-Results: mx\.corp\.test; smime=neutral/m);
  assert.match(raw, /smime\.verdict-code=UNAUTH_ENC/);
  assert.match(raw, /WARNING: this message was encrypted in a way that cannot show whether it was altered/);
  const html = [...walkEntities(parseEntity(opened.message))].filter((p) => p.contentType.mediaType === 'text/html').map((p) => decodeText(p));
  assert.equal(html.length, 1);
  assert.ok(html[0]!.includes(SECRET), 'the administrator chose to let the recipient read it');
  assert.doesNotMatch(html[0]!, /<img|src=|e\.x/, 'the gadget has no way out');
  await assert.rejects(new HeldMessages(store).find(first.id), /No held message/);

  const plain = await cbcMessage('alice@corp.test', HTML, 'erin@example.com');
  const second = await heldFor('alice@corp.test', plain);
  sink.reset();
  assert.equal(await releaseHeldMessage(store, second.id, { via, as: 'encrypted', authservId: 'mx.corp.test' }), 'released');
  const wrapped = sink.deliveryTo('alice@corp.test').message;
  assert.ok(wrapped.includes(plain), 'the original, byte for byte');
  assert.match(wrapped.toString(), /The mail gateway did not open it/);
  const attached = [...walkEntities(parseEntity(wrapped))].find((p) => p.contentType.mediaType === 'message/rfc822')!;
  const keys = await findEnvelopeKeys(store, findMessageEnvelope(plain)!);
  const keyPath = w.write('alice.key', keys[0]!.key.export({ format: 'pem', type: 'pkcs8' }) as string);
  const viaOpenssl = await opensslDecryptMime(w.dir, Buffer.from(attached.body), certs.alice!, keyPath);
  assert.ok(viaOpenssl.ok, viaOpenssl.detail);
  assert.ok(viaOpenssl.content.toString().includes(SECRET), 'openssl opens the delivered attachment');

  // Held with NOTIFY=SUCCESS: bounced, it is removed with no DSN (RFC 3461: no failure DSN asked for).
  const quiet = await heldFor('alice@corp.test', await cbcMessage('alice@corp.test', `Content-Type: text/plain\n\n${SECRET} (4)\n`, 'erin@example.com'));
  sink.reset();
  assert.equal(await bounceHeldMessage(store, quiet.id, { via, name: 'mx.corp.test' }), 'suppressed');
  assert.equal(sink.deliveries.length, 0);
  await assert.rejects(new HeldMessages(store).find(quiet.id), /No held message/);
  const third = await heldFor('alice@corp.test', await cbcMessage('alice@corp.test', `Content-Type: text/plain\n\n${SECRET} (3)\n`, 'erin@example.com'), ['FAILURE']);
  await assert.rejects(releaseHeldMessage(store, third.id, { via: { host: '127.0.0.1', port: 1 }, as: 'encrypted' }), /not accepted|ECONNREFUSED|connect/i);
  assert.ok(await new HeldMessages(store).find(third.id), 'a failed release leaves it held');
  sink.reset();
  assert.equal(await bounceHeldMessage(store, third.id, { via, name: 'mx.corp.test' }), 'sent');
  const dsn = sink.deliveryTo('erin@example.com');
  assert.equal(dsn.from, '');
  assert.match(dsn.message.toString(), /encrypted in a way that cannot show whether it was altered/);
  assert.match(dsn.message.toString(), /Status: 5\.7\.5/);
  assert.ok(!dsn.message.toString().includes(SECRET) && !dsn.message.includes(openEnvelope(plain).ciphertext.subarray(0, 32).toString('base64')), 'no body');
  await assert.rejects(new HeldMessages(store).find(third.id), /No held message/);
});

test('--as is refused for a message held for a missing certificate; explain shows the hold', async () => {
  const out = await cliOk(world, 'gateway', 'explain', '--from', 'erin@example.com', '--to', 'alice@corp.test', '--to', 'dave@corp.test', '--domain', 'corp.test');
  assert.match(out, /alice@corp\.test: inbound: .*unauthenticated \(CBC\) encryption: hold \(held for an administrator, still encrypted; the recipient gets a notice in en\) \(global\)/);
  assert.match(out, /dave@corp\.test: inbound: .*unauthenticated \(CBC\) encryption: deliver-encrypted \(address dave@corp\.test\)/);
  const id = await new HeldMessages(store).hold({ sender: 'alice@corp.test', recipients: ['carol@example.com'], message: Buffer.from('Subject: x\r\n\r\nx\r\n'), reasonCode: 'ENCRYPTION_REQUIRED', reason: 'Encryption is required.' });
  await assert.rejects(releaseHeldMessage(store, id, { via: { host: '127.0.0.1', port: sink.port }, as: 'decrypted' }), /--as applies to messages held for unauthenticated encryption/);
});
