/**
 * Large messages through the gateway (issue 13, "large messages stream"): above the
 * policy's streamAboveBytes a message is spooled and its copies are made with the
 * library's streaming APIs. Two gateways on one store and one sink: `streamed`
 * (streamAboveBytes 64 KiB) and `inMemory` (the same policy, everything in memory),
 * so the same messages show that the streamed path labels and delivers what the
 * in-memory one does (the decrypted and the labelled messages byte for byte), and
 * where it cannot (forms only read in memory) what it does instead. Outbound copies
 * are checked with openssl cms; the spool directory is empty after every message,
 * also after failures.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { startGateway, type RunningGateway } from '../../src/gateway/start-gateway.ts';
import type { Store } from '../../src/store/store.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import type { Certificate } from '../../src/x509/certificate.ts';
import { Workdir } from '../peers/run-peer.ts';
import { cliOk, createWorld, openWorldStore, opensslDecryptMime, opensslVerifyMime, sendTo, Sink, type Delivery, type GatewayWorld } from './gateway-fixture.ts';

let world: GatewayWorld;
let store: Store;
let sink: Sink;
let w: Workdir;
let streamed: RunningGateway;
let inMemory: RunningGateway;
let spoolDir: string;
let alice: Certificate;
const lines: Array<Record<string, unknown>> = [];
const log = (event: string, fields: Record<string, unknown> = {}) => lines.push({ event, ...fields });

/** About `size` bytes: a UTF-8 text part (8-bit, re-encoded when signed) and a base64 attachment of random bytes. */
function bigMessage(from: string, to: string, subject: string, size: number, extra = ''): { message: Buffer; attachment: string } {
  const attachment = randomBytes(Math.ceil((size * 3) / 4)).toString('base64').replace(/.{76}/g, '$&\r\n');
  const message = Buffer.from(
    `From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nDate: Sun, 06 Dec 2026 12:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@corp.test>\r\n${extra}MIME-Version: 1.0\r\n` +
      'Content-Type: multipart/mixed; boundary="big"\r\n\r\n--big\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n大きな添付ファイルを送ります。\r\n' +
      `--big\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="data.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n${attachment}\r\n--big--\r\n`,
  );
  return { message, attachment };
}

const AR = /^Authentication-Results: mx\.corp\.test; smime=(\w+)/m;

function header(m: Buffer): string {
  return m.toString('latin1').split('\r\n\r\n')[0]!;
}

function spoolEmpty(): void {
  assert.deepEqual(readdirSync(spoolDir), [], 'nothing left in the spool directory');
}

before(async () => {
  world = await createWorld();
  await cliOk(world, 'ca', 'issue', '--email', 'bob@corp.test');
  store = await openWorldStore(world);
  sink = await new Sink().start();
  w = new Workdir('gw-stream');
  spoolDir = mkdtempSync(join(tmpdir(), 'kakitome-gw-spool-'));
  alice = (await store.findRecipientCertificates('alice@corp.test'))[0]!.certificate;
  const policy = {
    global: { revocation: 'allow-unknown', maxMessageBytes: 64 * 1024 * 1024, opaqueSignDomains: ['opaque.example'], subjectTriggers: ['[secure]'] },
    addresses: { 'alice@corp.test': { missingCertificate: 'hold' }, 'bob@corp.test': { unauthenticatedEncryption: 'hold' } },
  };
  const file = (name: string, streamAboveBytes: number) => {
    const p = join(world.dir, name);
    writeFileSync(p, JSON.stringify({ ...policy, global: { ...policy.global, streamAboveBytes } }));
    return p;
  };
  const base = { listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: sink.port }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', lmtp: false };
  // The two gateways share the store: each imports its file, and each keeps the policy it read at start.
  inMemory = await startGateway({ ...base, policyPath: file('memory.json', 64 * 1024 * 1024), policyRefreshMs: 3_600_000 }, store, log);
  streamed = await startGateway({ ...base, policyPath: file('stream.json', 64 * 1024), spoolDir, policyRefreshMs: 3_600_000 }, store, log);
});

after(async () => {
  await streamed?.stop();
  await inMemory?.stop();
  await sink?.stop();
  await store?.close();
  w?.cleanup();
  world?.cleanup();
});

/** Sends `message` through one gateway; the deliveries it made. */
async function through(gw: RunningGateway, from: string, to: string[], message: Buffer): Promise<{ code: number; response: string; deliveries: Delivery[] }> {
  sink.reset();
  const r = await sendTo(gw.listening.port, from, to, message);
  return { code: r.code, response: r.response, deliveries: [...sink.deliveries] };
}

test('outbound, over streamAboveBytes: signed, signed and encrypted, opaque-signed, streaming; openssl verifies and opens each; logged as streamed; the spool is empty', async () => {
  const { message, attachment } = bigMessage('Alice <alice@corp.test>', 'carol@example.com, erin@example.com, olga@opaque.example', 'Big figures', 600_000);
  const r = await through(streamed, 'alice@corp.test', ['carol@example.com', 'erin@example.com', 'olga@opaque.example'], message);
  assert.equal(r.code, 250, r.response);
  assert.equal(r.deliveries.length, 3);
  const to = (rcpt: string) => r.deliveries.find((d) => d.to.includes(rcpt))!.message;
  const carol = world.pki.identity('rsa2048', 'carol');
  const opened = await opensslDecryptMime(w.dir, to('carol@example.com'), carol.certPath, carol.keyPath);
  assert.ok(opened.ok, opened.detail);
  const inner = await opensslVerifyMime(w.dir, opened.content, world.corpRoot);
  assert.ok(inner.ok, inner.detail);
  assert.ok(inner.content.includes(attachment.slice(0, 10_000)), 'the attachment inside, unchanged');
  const erin = await opensslVerifyMime(w.dir, to('erin@example.com'), world.corpRoot);
  assert.ok(erin.ok, erin.detail);
  assert.match(header(to('erin@example.com')), /multipart\/signed/);
  assert.ok(erin.content.includes(attachment.slice(-10_000)));
  assert.match(header(to('olga@opaque.example')), /application\/pkcs7-mime; smime-type=signed-data/);
  const olga = await opensslVerifyMime(w.dir, to('olga@opaque.example'), world.corpRoot);
  assert.ok(olga.ok, olga.detail);
  assert.ok(olga.content.includes(attachment.slice(200_000, 210_000)));
  const line = lines.findLast((l) => l.event === 'message')!;
  assert.equal(line.streamed, true);
  assert.ok((line.bytes as number) > 600_000);
  spoolEmpty();
});

test('outbound, over streamAboveBytes: a subject trigger requires encryption and leaves neither Subject; a recipient without a certificate is held (policy hold), sealed segment by segment from the spool', async () => {
  const { HeldMessages, SEGMENT_BYTES } = await import('../../src/store/held-messages.ts');
  const { message } = bigMessage('alice@corp.test', 'carol@example.com, erin@example.com', '[secure] Big plans', 2 * 1024 * 1024 + 300_000, 'X-Kakitome-Verdict: forged\r\n');
  const r = await through(streamed, 'alice@corp.test', ['carol@example.com', 'erin@example.com'], message);
  assert.equal(r.code, 250, r.response);
  const toCarol = r.deliveries.find((d) => d.to.includes('carol@example.com'))!.message;
  assert.match(header(toCarol), /^Subject: Big plans\r?$/m, 'the trigger text is gone from the outer Subject');
  const carol = world.pki.identity('rsa2048', 'carol');
  const opened = await opensslDecryptMime(w.dir, toCarol, carol.certPath, carol.keyPath);
  assert.ok(opened.ok, opened.detail);
  assert.doesNotMatch(opened.content.toString('latin1'), /\[secure\]/, 'nor the encrypted one');
  assert.equal(r.deliveries.filter((d) => d.to.includes('erin@example.com')).length, 0, 'nothing unencrypted left for Erin');
  assert.equal(r.deliveries.filter((d) => d.from === '').length, 0, 'no DSN: held, not bounced');
  const held = (await new HeldMessages(store).list()).filter((h) => h.recipients.includes('erin@example.com'));
  assert.equal(held.length, 1);
  assert.equal(held[0]!.size, message.length);
  assert.equal(Number((await store.engine.all('SELECT COUNT(*) AS n FROM held_message_segments WHERE id = ?', [held[0]!.id]))[0]!.n), Math.ceil(message.length / SEGMENT_BYTES));
  assert.deepEqual(await (await new HeldMessages(store).find(held[0]!.id)).message(), message, 'held as received');
  assert.ok(lines.some((l) => l.event === 'message' && l.streamed === true && JSON.stringify(l.groups).includes('"action":"held"')), 'logged as a streamed hold');
  spoolEmpty();
});

test('inbound, over streamAboveBytes: CBC content nobody vouches for, policy hold: held still encrypted from the spool, the recipient notified', async () => {
  const { HeldMessages } = await import('../../src/store/held-messages.ts');
  const bob = (await store.findRecipientCertificates('bob@corp.test'))[0]!.certificate;
  const cbc = encryptMessage(bigMessage('dave@example.com', 'bob@corp.test', 'Big CBC', 1_500_000).message, { recipients: [{ certificate: bob }], contentEncryption: 'aes-256-cbc' });
  const r = await through(streamed, 'dave@example.com', ['bob@corp.test'], cbc);
  assert.equal(r.code, 250, r.response);
  assert.match(r.response, /Held for an administrator/);
  assert.equal(r.deliveries.length, 1);
  const notice = r.deliveries[0]!;
  assert.equal(notice.from, '');
  assert.ok(notice.message.length < 10_000, 'the notice only');
  assert.match(notice.message.toString('utf8'), /Claims to be from: dave@example\.com/);
  const held = (await new HeldMessages(store).list()).filter((h) => h.recipients.includes('bob@corp.test'));
  assert.equal(held.length, 1);
  assert.equal(held[0]!.reasonCode, 'UNAUTH_ENC');
  assert.deepEqual(await (await new HeldMessages(store).find(held[0]!.id)).message(), cbc, 'held byte for byte, still encrypted');
  spoolEmpty();
});

test('inbound, over streamAboveBytes: held CBC content released --as decrypted is rebuilt as it streams (a CBC gadget finds no way out, the warning on top, the attachment intact; an HTML part too large for memory is removed), --as encrypted attaches the original (openssl opens it); the spool is empty', async () => {
  const { HeldMessages } = await import('../../src/store/held-messages.ts');
  const { releaseHeldMessage } = await import('../../src/gateway/release-held-message.ts');
  const { opensslEncrypt } = await import('../peers/openssl.ts');
  const { cbcGadget, openEnvelope } = await import('../helpers/cbc-gadget.ts');
  const { parseEntity } = await import('../../src/mime/parse-entity.ts');
  const { walkEntities } = await import('../../src/mime/entity.ts');
  const { decodeBody } = await import('../../src/mime/decode-body.ts');
  const { decodeText } = await import('../../src/mime/decode-text.ts');
  const { decryptMessage } = await import('../../src/smime/decrypt-message.ts');
  const { findEnvelopeKeys } = await import('../../src/store/find-envelope-keys.ts');
  const { findMessageEnvelope } = await import('../../src/smime/find-message-envelope.ts');
  const bob = (await store.findRecipientCertificates('bob@corp.test'))[0]!.certificate;
  const bobPem = w.write('bob.pem', `-----BEGIN CERTIFICATE-----\n${Buffer.from(bob.der).toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`);
  const SECRET = 'The wire goes to account 4711-KAKITOME on Friday.';
  const chart = randomBytes(150_000);
  const cbcFromOutside = async (entity: string) => {
    const der = await opensslEncrypt(w, Buffer.from(entity.replace(/\r?\n/g, '\r\n')), { recipients: [{ id: { certPath: bobPem } as never }], cipher: 'aes-256-cbc' });
    return Buffer.from('From: erin@example.com\r\nTo: bob@corp.test\r\nSubject: Payment\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n' + der.toString('base64').replace(/.{1,76}/g, '$&\r\n'));
  };
  const hold = async (message: Buffer) => {
    const r = await through(streamed, 'erin@example.com', ['bob@corp.test'], message);
    assert.equal(r.code, 250, r.response);
    const row = (await new HeldMessages(store).list()).find((h) => r.response.includes(h.id));
    assert.ok(row && row.reasonCode === 'UNAUTH_ENC' && row.size > 64 * 1024, `held, larger than streamAboveBytes: ${r.response}`);
    return row.id;
  };
  const release = async (id: string, as: 'decrypted' | 'encrypted') => {
    sink.reset();
    assert.equal(await releaseHeldMessage(store, id, { via: { host: '127.0.0.1', port: sink.port }, as, authservId: 'mx.corp.test', spoolDir }), 'released');
    await assert.rejects(new HeldMessages(store).find(id), /No held message/);
    spoolEmpty();
    return sink.deliveryTo('bob@corp.test').message;
  };
  // 1. A chart and a short HTML part, a gadget spliced into the HTML (the last blocks) by someone on the path.
  const entity = `Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: image/png; name="chart.png"\nContent-Transfer-Encoding: base64\n\n${chart.toString('base64').replace(/.{76}/g, '$&\n')}\n--b\nContent-Type: text/html; charset=utf-8\n\n<html><body><p>${SECRET}</p><p>Regards, Erin</p><p>${'filler '.repeat(20)}</p></body></html>\n--b--\n`;
  const chosen = Buffer.from('<img src="//e.x/', 'latin1');
  const attacked = cbcGadget(openEnvelope(await cbcFromOutside(entity)), Buffer.from('Content-Type: mu', 'latin1'), chosen);
  const keys = (await findEnvelopeKeys(store, findMessageEnvelope(attacked)!)).map(({ key, certificate }) => ({ key, certificate }));
  assert.ok((await decryptMessage(attacked, { keys, allowUnauthenticated: true })).message.includes(chosen), 'control: the gadget is live');
  const opened = await release(await hold(attacked), 'decrypted');
  const raw = opened.toString('utf8');
  assert.match(raw, /^Authentication-Results: mx\.corp\.test; smime=neutral/m);
  assert.match(raw, /smime\.verdict-code=UNAUTH_ENC/);
  assert.match(raw, /WARNING: this message was encrypted in a way that cannot show whether it was altered/);
  assert.ok(!raw.includes('e.x/'), 'the injected URL is nowhere in the delivered message');
  const parts = [...walkEntities(parseEntity(opened))];
  const html = parts.filter((p) => p.contentType.mediaType === 'text/html').map((p) => decodeText(p));
  assert.equal(html.length, 1);
  assert.ok(html[0]!.includes(SECRET), 'the administrator chose to let the recipient read it');
  assert.doesNotMatch(html[0]!, /<img|src=|href=/, 'the gadget has no way out');
  const attachment = parts.find((p) => p.contentType.mediaType === 'application/octet-stream')!;
  assert.equal(attachment.contentType.params.name, 'chart.png');
  assert.deepEqual(decodeBody(attachment), chart, 'the attachment, byte for byte');

  // 2. One HTML part larger than streamAboveBytes: too large to make harmless in memory, so it is removed, and a note says so.
  const big = await release(await hold(await cbcFromOutside(`Content-Type: text/html; charset=utf-8\n\n<p>${SECRET}</p>${'<p><img src="http://tracker.example/p.gif">more</p>\n'.repeat(2000)}`)), 'decrypted');
  assert.ok(!big.toString('latin1').includes('tracker.example') && !big.toString('utf8').includes(SECRET), 'none of the HTML');
  const bigParts = [...walkEntities(parseEntity(big))].filter((p) => p.contentType.type !== 'multipart');
  assert.match(decodeText(bigParts.at(-1)!), /An HTML part of \d+ bytes or more was removed here/);

  // 3. --as encrypted: the original, byte for byte, attached under the notice; openssl opens it.
  const original = await cbcFromOutside(entity);
  const wrapped = await release(await hold(original), 'encrypted');
  assert.ok(wrapped.includes(original.subarray(original.indexOf('\r\n\r\n'))), 'the original, still encrypted');
  assert.match(wrapped.toString('utf8'), /The mail gateway did not open it/);
  const attached = [...walkEntities(parseEntity(wrapped))].find((p) => p.contentType.mediaType === 'message/rfc822')!;
  const keyPath = w.write('bob.key', keys[0]!.key.export({ format: 'pem', type: 'pkcs8' }) as string);
  const viaOpenssl = await opensslDecryptMime(w.dir, Buffer.from(attached.body), bobPem, keyPath);
  assert.ok(viaOpenssl.ok, viaOpenssl.detail);
  assert.ok(viaOpenssl.content.toString().includes(SECRET));
});

test('inbound, over streamAboveBytes: decrypted and verified (pass), signed (pass), tampered (fail), unsigned (none), a signed part inside (neutral), for keys we do not hold (neutral): the same label and the same delivered bytes as in memory', async () => {
  const dave = world.pki.identity('rsa2048', 'dave');
  const signer = { signers: [{ certificate: dave.cert, key: dave.key }] };
  const forged = 'Authentication-Results: mx.corp.test; smime=pass (forged)\r\n';
  const big = (subject: string) => bigMessage('dave@example.com', 'alice@corp.test', subject, 300_000, forged).message;
  const signed = signMessage(big('Signed'), signer);
  // One character of the attachment changed, deep inside the signed content.
  const tampered = Buffer.from(signed);
  const at = tampered.indexOf('\r\n\r\n', tampered.indexOf('filename="data.bin"')) + 4 + 100_000;
  tampered[at] = tampered[at] === 0x41 ? 0x42 : 0x41;
  const partSigned = Buffer.concat([
    Buffer.from(`From: dave@example.com\r\nTo: alice@corp.test\r\nSubject: Forwarded\r\n${forged}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="outer"\r\n\r\n--outer\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n--outer\r\n`),
    signMessage(bigMessage('dave@example.com', 'alice@corp.test', 'Inner', 200_000).message, signer),
    Buffer.from('\r\n--outer--\r\n'),
  ]);
  const stranger = world.pki.identity('rsa2048', 'stranger');
  const cases: Array<[string, Buffer, string, string | undefined]> = [
    ['signed and encrypted (AES-GCM)', encryptMessage(big('Sealed'), { recipients: [{ certificate: alice }], sign: signer }), 'pass', undefined],
    ['signed', signed, 'pass', undefined],
    ['tampered', tampered, 'fail', undefined],
    ['unsigned', big('Plain'), 'none', undefined],
    ['a signed part inside', partSigned, 'neutral', 'PARTIAL_SIGNED'],
    ['encrypted for a key we do not hold', encryptMessage(big('Not ours'), { recipients: [{ certificate: stranger.cert }] }), 'neutral', 'NOT_RECIPIENT'],
  ];
  for (const [what, message, result, code] of cases) {
    assert.ok(message.length > 64 * 1024, what);
    const viaStream = await through(streamed, 'dave@example.com', ['alice@corp.test'], message);
    assert.equal(lines.findLast((l) => l.event === 'message')!.streamed, true, what);
    const viaMemory = await through(inMemory, 'dave@example.com', ['alice@corp.test'], message);
    assert.equal(viaStream.code, 250, `${what}: ${viaStream.response}`);
    assert.equal(viaMemory.code, 250, `${what}: ${viaMemory.response}`);
    const s = viaStream.deliveries[0]!.message;
    const m = viaMemory.deliveries[0]!.message;
    assert.equal(AR.exec(header(s))?.[1], result, `${what}: ${header(s).slice(0, 600)}`);
    assert.equal(AR.exec(header(m))?.[1], result, what);
    if (code) assert.match(header(s), new RegExp(`smime\\.verdict-code=${code}`), what);
    assert.doesNotMatch(header(s), /forged/, `${what}: the forged field is removed`);
    if (what === 'a signed part inside') {
      // In memory the part is verified (its signer named); streamed, it is only found.
      assert.equal(s.subarray(s.indexOf('\r\n\r\n')).equals(m.subarray(m.indexOf('\r\n\r\n'))), true, `${what}: the same body`);
    } else assert.deepEqual(s, m, `${what}: the same message, byte for byte`);
    spoolEmpty();
  }
});

test('inbound, over streamAboveBytes: CBC content nobody vouches for is not opened, the original attached to a notice; opaque signing, read only in memory, is labelled permerror (LIMIT) and delivered as received', async () => {
  const cbc = encryptMessage(bigMessage('dave@example.com', 'alice@corp.test', 'CBC', 200_000).message, { recipients: [{ certificate: alice }], contentEncryption: 'aes-256-cbc' });
  const r = await through(streamed, 'dave@example.com', ['alice@corp.test'], cbc);
  assert.equal(r.code, 250, r.response);
  const got = r.deliveries[0]!.message;
  assert.equal(AR.exec(header(got))?.[1], 'neutral');
  assert.match(header(got), /smime\.verdict-code=UNAUTH_ENC/);
  assert.match(header(got), /multipart\/mixed/);
  assert.ok(got.includes(cbc.subarray(cbc.indexOf('\r\n\r\n'))), 'the original, still encrypted, attached byte for byte');
  assert.match(got.toString('utf8'), /did not open it/);

  const dave = world.pki.identity('rsa2048', 'dave');
  const opaque = signMessage(bigMessage('dave@example.com', 'alice@corp.test', 'Opaque', 200_000).message, { signers: [{ certificate: dave.cert, key: dave.key }], opaque: true });
  const o = await through(streamed, 'dave@example.com', ['alice@corp.test'], opaque);
  assert.equal(o.code, 250, o.response);
  const label = header(o.deliveries[0]!.message).replace(/\r\n[ \t]+/g, ' ');
  assert.equal(AR.exec(label)?.[1], 'permerror');
  assert.match(label, /smime\.verdict-code=LIMIT/);
  assert.match(label, /larger than the gateway reads into memory/);
  assert.deepEqual(o.deliveries[0]!.message.subarray(o.deliveries[0]!.message.indexOf('\r\n\r\n')), opaque.subarray(opaque.indexOf('\r\n\r\n')), 'delivered as received');
  spoolEmpty();
});

test('failures leave nothing in the spool: the next hop down (451), a message that cannot be signed (554), one over maxMessageBytes (552)', async () => {
  const downHop = await startGateway({ listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: 1 }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', lmtp: false, spoolDir }, store, log);
  try {
    const { message } = bigMessage('alice@corp.test', 'erin@example.com', 'Nowhere', 200_000);
    const r = await sendTo(downHop.listening.port, 'alice@corp.test', ['erin@example.com'], message);
    assert.equal(r.code, 451, r.response);
    spoolEmpty();
  } finally {
    await downHop.stop();
  }
  // MIME nested deeper than the library's limit, padded past streamAboveBytes: signMessageStream refuses it.
  let body = `Content-Type: text/plain\r\n\r\n${'x'.repeat(998)}\r\n`.repeat(1);
  for (let i = 0; i < 40; i++) body = `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n${body}\r\n--b${i}--\r\n`;
  const deep = Buffer.from(`From: alice@corp.test\r\nTo: erin@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n${body}${'\r\n'.repeat(1)}${'y'.repeat(76).concat('\r\n').repeat(1200)}`);
  assert.ok(deep.length > 64 * 1024);
  const refused = await through(streamed, 'alice@corp.test', ['erin@example.com'], deep);
  assert.equal(refused.code, 554, refused.response);
  assert.match(refused.response, /cannot sign or encrypt this message \(LIMIT\)/);
  assert.equal(refused.deliveries.length, 0);
  spoolEmpty();
  const huge = Buffer.alloc(64 * 1024 * 1024 + 1024, 'a\r\n');
  const tooBig = await through(streamed, 'alice@corp.test', ['erin@example.com'], Buffer.concat([Buffer.from('From: alice@corp.test\r\nSubject: huge\r\n\r\n'), huge]));
  assert.equal(tooBig.code, 552, tooBig.response);
  spoolEmpty();
});

test('at most maxStreamedMessages spooled messages are processed at once: beyond, with no wait allowed, one is answered 451 4.3.2 and nothing of it relayed', async () => {
  const policyPath = join(world.dir, 'one-stream.json');
  writeFileSync(policyPath, JSON.stringify({ revocation: 'allow-unknown', streamAboveBytes: 64 * 1024, maxStreamedMessages: 1, queueWaitMs: 0 }));
  const one = await startGateway({ listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: sink.port }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', lmtp: false, policyPath, spoolDir, policyRefreshMs: 3_600_000 }, store, log);
  try {
    sink.reset();
    // The next hop holds its reply until the second was answered: the first large message holds the one place that long.
    const release = sink.holdReplies();
    const big = (i: number) => bigMessage('alice@corp.test', 'erin@example.com', `Large ${i}`, 200_000).message;
    const first = sendTo(one.listening.port, 'alice@corp.test', ['erin@example.com'], big(1));
    await sink.whenPending(1);
    const second = await sendTo(one.listening.port, 'alice@corp.test', ['erin@example.com'], big(2));
    assert.equal(second.code, 451, second.response);
    assert.match(second.response, /4\.3\.2 The gateway is busy with other large messages/);
    release();
    assert.equal((await first).code, 250);
    assert.equal(sink.deliveries.length, 1);
    assert.equal(await one.metrics.value('kakitome_gateway_busy_total'), 1);
    spoolEmpty();
  } finally {
    sink.reset();
    await one.stop();
  }
});
