/**
 * Issue 9, item 10: repeated recipients.
 *
 * The attack: an envelope whose 200 RecipientInfos all name the victim's
 * certificate, 199 of them with a garbage encrypted key in front of the real one.
 * Each certificate match was opened (one private-key operation) and, the key
 * layer's failure being hidden behind a random key (RFC 3218), each was followed by
 * a decryption of the whole content: 200 RSA decryptions and 200 content
 * decryptions per message, which a gateway pays for every copy an attacker sends.
 *
 * Safe behaviour: RecipientInfos that resolve to the same private key are opened
 * once (the first one), certificate matches count against limits.maxKeyAttempts
 * like keys offered without certificates, and the content is decrypted once.
 *
 * Cost is counted, never timed: node:crypto's privateDecrypt, diffieHellman and
 * createDecipheriv are wrapped (module.syncBuiltinESMExports makes the wrappers
 * what every `import { ... } from 'node:crypto'` sees) and each call counted.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto, { randomBytes } from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import { Writable } from 'node:stream';
import { TestPki } from '../helpers/pki.ts';
import { encryptData } from '../../src/cms/enveloped-data/encrypt.ts';
import { decryptData } from '../../src/cms/enveloped-data/decrypt.ts';
import { decryptStream } from '../../src/cms/stream/decrypt-stream.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { decryptMessageStream } from '../../src/smime/decrypt-message-stream.ts';
import { encodeContentInfo, parseContentInfo } from '../../src/cms/content-info.ts';
import { Tag, type Tlv } from '../../src/asn1/ber.ts';
import { sequence, set } from '../../src/asn1/der.ts';
import type { ContentEncryptionName } from '../../src/cms/enveloped-data/encrypt.ts';
import { KakitomeError } from '../../src/errors.ts';

const pki = new TestPki('Repeated Recipients Root');
after(() => pki.cleanup());
const bob = pki.identity('rsa2048', 'bob');
const dave = pki.identity('p256', 'dave');
const carol = pki.identity('rsa2048', 'carol');
const erin = pki.identity('rsa2048', 'erin');

// ------------------------------------------------------------- counting

const counts = { privateKey: 0, contentDecipher: 0 };
type Fn = (...a: never[]) => unknown;
function countCalls(name: 'privateDecrypt' | 'diffieHellman' | 'createDecipheriv', field: keyof typeof counts, when: (...args: never[]) => boolean = () => true): void {
  const lib = crypto as unknown as Record<string, Fn>;
  const original = lib[name]!;
  lib[name] = ((...args: never[]) => {
    if (when(...args)) counts[field]++;
    return original(...args);
  }) as Fn;
}
countCalls('privateDecrypt', 'privateKey');
countCalls('diffieHellman', 'privateKey');
// The AES key wrap of an ECDH recipient is a decipher too, but part of the key operation.
countCalls('createDecipheriv', 'contentDecipher', (algorithm: string) => !/wrap/i.test(algorithm));
syncBuiltinESMExports();

async function measure(run: () => Promise<unknown>): Promise<{ privateKey: number; contentDecipher: number; outcome: string }> {
  counts.privateKey = 0;
  counts.contentDecipher = 0;
  let outcome = 'ok';
  try {
    await run();
  } catch (e) {
    if (!(e instanceof KakitomeError)) throw e;
    outcome = e.code;
  }
  return { ...counts, outcome };
}

// ------------------------------------------------------------- the envelopes

/** The encryptedKey OCTET STRING of a RecipientInfo: its last field (ktri), or the last field of its last RecipientEncryptedKey (kari). */
function encryptedKeyOf(t: Tlv): Tlv {
  let x = t;
  while (x.tag !== Tag.OCTET_STRING) x = x.children().at(-1)!;
  return x;
}

/** The same RecipientInfo with its encrypted key replaced by random bytes of the same length (the structure stays valid). */
function garbageCopy(ri: Tlv): Buffer {
  const copy = Buffer.from(ri.bytes);
  const ek = encryptedKeyOf(ri);
  const from = ek.valueStart - ri.start;
  randomBytes(ek.valueEnd - ek.valueStart).copy(copy, from);
  return copy;
}

/** An envelope for `id` whose RecipientInfos are `garbage` broken copies of its own, then the real one (SET order as written). */
function repeated(id: typeof bob, cipher: ContentEncryptionName, garbage: number, content: Buffer, valid = false): Buffer {
  const der = encryptData(content, { recipients: [{ certificate: id.cert }], contentEncryption: cipher });
  const ci = parseContentInfo(der);
  const fields = ci.content.children();
  const risIndex = fields.findIndex((f) => f.tag === Tag.SET);
  const real = fields[risIndex]!.children()[0]!;
  const ris = set(...Array.from({ length: garbage }, () => (valid ? Buffer.from(real.bytes) : garbageCopy(real))), real.bytes);
  return encodeContentInfo(ci.contentType, sequence(...fields.map((f, i) => (i === risIndex ? ris : f.bytes))));
}

function asMessage(der: Buffer, cipher: ContentEncryptionName): Buffer {
  const type = cipher.endsWith('-cbc') ? 'enveloped-data' : 'authEnveloped-data';
  return Buffer.from(`From: alice@example.com\r\nTo: bob@example.com\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=${type}; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n${der.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`);
}

/** Unsigned CBC content is refused by default (item 3); these tests count its cost, so they accept it. */
const ALLOW = { allowUnauthenticated: true };
const entity = Buffer.from(`Content-Type: text/plain\r\n\r\n${'The quarterly figures, again and again.\r\n'.repeat(2000)}`);
const discard = () => new Writable({ write: (_c, _e, cb) => cb() });
async function* once(b: Buffer) {
  yield b;
}

// ------------------------------------------------------------------ tests

test('200 RecipientInfos naming our certificate, the real one last: one private-key operation and one content decryption', async () => {
  for (const [id, cipher] of [[bob, 'aes-256-gcm'], [bob, 'aes-128-cbc'], [dave, 'aes-256-gcm']] as const) {
    const keys = [{ key: id.key, certificate: id.cert }];
    const der = repeated(id, cipher, 199, entity);
    const what = `${id.kind} ${cipher}`;
    const cms = await measure(async () => decryptData(der, { keys }));
    assert.equal(cms.privateKey, 1, `${what} decryptData: private-key operations`);
    assert.equal(cms.contentDecipher, 1, `${what} decryptData: content decryptions`);
    // Only the first of the RecipientInfos for our key is opened, and it is garbage: the one decryption failure.
    assert.equal(cms.outcome, 'DECRYPT_FAILED', what);

    const stream = await measure(() => decryptStream(once(der), discard(), { keys }));
    assert.equal(stream.privateKey, 1, `${what} decryptStream: private-key operations`);
    assert.equal(stream.contentDecipher, 1, `${what} decryptStream: content decryptions`);

    const message = asMessage(der, cipher);
    const mem = await measure(() => decryptMessage(message, { keys, ...ALLOW }));
    assert.deepEqual([mem.privateKey, mem.contentDecipher], [1, 1], `${what} decryptMessage`);
    const st = await measure(() => decryptMessageStream(once(message), { keys, ...ALLOW, output: discard() }));
    assert.deepEqual([st.privateKey, st.contentDecipher], [1, 1], `${what} decryptMessageStream`);
  }
});

test('200 valid copies cost what one recipient costs', async () => {
  for (const cipher of ['aes-256-gcm', 'aes-256-cbc'] as const) {
    const keys = [{ key: bob.key, certificate: bob.cert }];
    const one = asMessage(repeated(bob, cipher, 0, entity), cipher);
    const many = asMessage(repeated(bob, cipher, 199, entity, true), cipher);
    for (const [name, run] of [
      ['decryptMessage', (m: Buffer) => decryptMessage(m, { keys, ...ALLOW })],
      ['decryptMessageStream', (m: Buffer) => decryptMessageStream(once(m), { keys, ...ALLOW, output: discard() })],
    ] as const) {
      const a = await measure(() => run(one));
      const b = await measure(() => run(many));
      assert.equal(a.outcome, 'ok', `${cipher} ${name}: one recipient decrypts`);
      assert.deepEqual(b, a, `${cipher} ${name}: 200 copies cost the same as one`);
      assert.equal(b.privateKey, 1);
    }
  }
});

test('the same key offered twice (a renewed certificate on the same key) is opened once', async () => {
  // Two DecryptKey entries for one key, as a key store returns a key under each of its certificates.
  const der = repeated(bob, 'aes-256-gcm', 50, entity);
  const keys = [{ key: bob.key, certificate: bob.cert }, { key: crypto.createPrivateKey(bob.key.export({ format: 'pem', type: 'pkcs8' })), certificate: bob.cert }];
  const r = await measure(async () => decryptData(der, { keys }));
  assert.deepEqual([r.privateKey, r.contentDecipher], [1, 1]);
});

test('keys without a certificate: a repeated identifier is tried once', async () => {
  const der = repeated(bob, 'aes-256-gcm', 199, entity);
  const r = await measure(async () => decryptData(der, { keys: [{ key: bob.key }] }));
  assert.equal(r.outcome, 'DECRYPT_FAILED', 'the first RecipientInfo with that identifier is the one opened');
  assert.equal(r.privateKey, 1, 'one identifier, one attempt');
  assert.ok(r.contentDecipher <= 1);
  const valid = await measure(async () => decryptData(repeated(bob, 'aes-256-gcm', 199, entity, true), { keys: [{ key: bob.key }] }));
  assert.deepEqual(valid, { privateKey: 1, contentDecipher: 1, outcome: 'ok' });
});

test('certificate matches count against limits.maxKeyAttempts', async () => {
  const der = encryptData(entity, { recipients: [bob, carol, erin].map((id) => ({ certificate: id.cert })) });
  const keys = [carol, erin, bob].map((id) => ({ key: id.key, certificate: id.cert }));
  const limited = await measure(async () => decryptData(der, { keys, limits: { maxKeyAttempts: 2 } }));
  assert.equal(limited.outcome, 'LIMIT', 'three distinct certified keys exceed a limit of two attempts');
  assert.equal(limited.privateKey, 0, 'refused before any private-key operation');
  const enough = await measure(async () => decryptData(der, { keys, limits: { maxKeyAttempts: 3 } }));
  assert.equal(enough.outcome, 'ok');
  assert.equal(enough.contentDecipher, 1, 'the first key that opens its recipient decrypts the content, once');
});
