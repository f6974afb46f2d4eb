/**
 * Mutation fuzzing of decryptData with the right key, over our envelopes (RSA
 * PKCS#1 v1.5 and OAEP, ECDH P-256, X25519, ML-KEM-768; AES-GCM, ChaCha20-Poly1305,
 * AES-CBC) and `openssl cms -encrypt -stream` indefinite-length BER.
 *
 * Oracle:
 * - every failure is a typed KakitomeError; a DECRYPT_FAILED is always the one
 *   DecryptionError (same class, code and message);
 * - a success is the original plaintext and content type, unless the envelope is
 *   unauthenticated (CBC), where altered plaintext is the known, reported weakness;
 * - a change to the encrypted key, the originator key, the KEM ciphertext, the IV,
 *   the ciphertext or the tag (same length, so the structure still parses) fails
 *   with exactly that DecryptionError: nothing tells the attacker where it landed.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki, type Identity } from '../helpers/pki.ts';
import { encryptData, type ContentEncryptionName } from '../../src/cms/enveloped-data/encrypt.ts';
import { decryptData, type DecryptKey } from '../../src/cms/enveloped-data/decrypt.ts';
import { DecryptionError } from '../../src/errors.ts';
import { OID } from '../../src/asn1/oids.ts';
import { fuzz, iterations, seed, timeoutFor, Prng, caseSeed, assertTypedError, DECRYPTION_MESSAGE, BOUNDARY, type Seed, type TlvSpan, REPLAYING, reportCases } from './fuzz-kit.ts';

const pki = new TestPki('Kakitome Fuzz Envelope Root');
after(() => pki.cleanup());

const rsa = pki.identity('rsa2048');
const ec = pki.identity('p256');
const x = pki.identity('x25519');
const kem = pki.identity('mlkem768');
const plaintext = Buffer.from('Content-Type: text/plain\r\n\r\nThe vault code is 4711. Tell nobody.\r\n');

interface EnvelopeSeed extends Seed {
  keys: DecryptKey[];
  /** Ranges whose same-length alteration must give exactly the DecryptionError (AEAD) or an unauthenticated result (CBC). */
  secretRanges: { what: string; from: number; to: number }[];
}

const childrenOf = (spans: TlvSpan[], parent: number): number[] => spans.flatMap((s, i) => (s.parent === parent ? [i] : []));

/** Finds the key, IV, ciphertext and tag ranges from the TLV layout (RFC 5652 6.1, RFC 5083 2.1). */
function envelopeSeed(name: string, der: Uint8Array, id: Identity): EnvelopeSeed {
  const s = seed(name, der);
  const spans = s.spans;
  const ranges: EnvelopeSeed['secretRanges'] = [];
  const bodyIndex = spans.findIndex((t) => t.depth === 2);
  const fields = childrenOf(spans, bodyIndex);
  const ris = fields.find((i) => s.bytes[spans[i]!.start] === 0x31)!;
  const eci = fields[fields.indexOf(ris) + 1]!;
  // Every OCTET STRING of 16+ octets under our RecipientInfo is key material (encryptedKey, kemct); BIT STRINGs are originator keys.
  const under = (i: number, root: number): boolean => {
    for (let p = spans[i]!.parent; p >= 0; p = spans[p]!.parent) if (p === root) return true;
    return false;
  };
  // Only our RecipientInfo (the one naming our serial; DER sorts the SET): the others' keys are not ours to notice.
  const ours = childrenOf(spans, ris).find((i) => s.bytes.subarray(spans[i]!.start, spans[i]!.end).includes(Buffer.from(id.cert.serial)))!;
  spans.forEach((t, i) => {
    if (!under(i, ours) || t.constructed) return;
    const tag = s.bytes[t.start]!;
    if (tag === 0x04 && t.valueEnd - t.valueStart >= 16) ranges.push({ what: 'encrypted key', from: t.valueStart, to: t.valueEnd });
    if (tag === 0x03) ranges.push({ what: 'originator key', from: t.valueStart + 1, to: t.valueEnd });
  });
  const [, alg, content] = childrenOf(spans, eci);
  const iv = spans.findIndex((t, i) => s.bytes[t.start] === 0x04 && under(i, alg!));
  ranges.push({ what: 'IV', from: spans[iv]!.valueStart, to: spans[iv]!.valueEnd });
  const segments = (i: number): void => {
    const t = spans[i]!;
    if (t.constructed) for (const c of childrenOf(spans, i)) segments(c);
    else if (t.valueEnd > t.valueStart) ranges.push({ what: 'ciphertext', from: t.valueStart, to: t.valueEnd });
  };
  segments(content!);
  const last = spans[fields[fields.length - 1]!]!;
  if (s.bytes[last.start] === 0x04) ranges.push({ what: 'tag', from: last.valueStart, to: last.valueEnd });
  return { ...s, keys: [{ key: id.key, certificate: id.cert }], secretRanges: ranges };
}

const ours = (name: string, id: Identity, contentEncryption: ContentEncryptionName, extra: Partial<{ rsaPadding: 'pkcs1' | 'oaep' }> = {}, more: Identity[] = []): EnvelopeSeed =>
  envelopeSeed(name, encryptData(plaintext, { recipients: [{ certificate: id.cert, ...extra }, ...more.map((m) => ({ certificate: m.cert }))], contentEncryption }), id);

writeFileSync(join(pki.dir, 'plain.txt'), plaintext);
function opensslEncrypt(out: string, cipher: string, id: Identity): Buffer {
  execFileSync('openssl', ['cms', '-encrypt', '-binary', '-stream', '-outform', 'DER', '-in', 'plain.txt', `-${cipher}`, '-recip', id.certPath, '-out', out], { cwd: pki.dir, stdio: 'ignore' });
  return readFileSync(join(pki.dir, out));
}

const seeds: EnvelopeSeed[] = [
  ours('rsa-pkcs1-gcm', rsa, 'aes-256-gcm'),
  ours('rsa-oaep-cbc', rsa, 'aes-128-cbc', { rsaPadding: 'oaep' }),
  ours('rsa-pkcs1-cbc', rsa, 'aes-256-cbc'),
  ours('ecdh-gcm', ec, 'aes-128-gcm'),
  ours('x25519-cbc', x, 'aes-256-cbc'),
  ours('x25519-chacha', x, 'chacha20-poly1305'),
  ours('mlkem-gcm', kem, 'aes-256-gcm'),
  ours('mlkem-cbc', kem, 'aes-192-cbc'),
  ours('two-recipients', ec, 'aes-256-gcm', {}, [rsa]),
  envelopeSeed('openssl-stream-cbc', opensslEncrypt('o1.der', 'aes-256-cbc', rsa), rsa),
  envelopeSeed('openssl-stream-gcm', opensslEncrypt('o2.der', 'aes-256-gcm', rsa), rsa),
];

test('every seed decrypts, and its secret ranges were found', () => {
  for (const s of seeds) {
    const r = decryptData(s.bytes, { keys: s.keys });
    assert.deepEqual(r.content, plaintext, s.name);
    const kinds = new Set(s.secretRanges.map((x) => x.what));
    for (const k of ['encrypted key', 'IV', 'ciphertext']) assert.ok(kinds.has(k), `${s.name}: no ${k} range`);
    assert.equal(kinds.has('tag'), r.authenticated, `${s.name}: tag range iff AEAD`);
  }
});

function checkDecryptionError(e: unknown, context: string): void {
  assertTypedError(e, context);
  if (e.code === 'DECRYPT_FAILED') {
    assert.ok(e instanceof DecryptionError, `${context}: DECRYPT_FAILED that is not a DecryptionError`);
    assert.equal(e.message, DECRYPTION_MESSAGE, `${context}: a different decryption message`);
  }
}

test('decryptData: typed errors only, one DecryptionError, and only the original plaintext is authenticated', { timeout: timeoutFor(3000, 10) }, async () => {
  const outcomes = await fuzz('decrypt-data', seeds, iterations(3000), (m, base) => {
    const s = base as EnvelopeSeed;
    const r = decryptData(m.bytes, { keys: s.keys });
    if (r.authenticated) {
      assert.deepEqual(r.content, plaintext, `${s.name}: ${m.what} authenticated altered plaintext`);
      assert.equal(r.contentType, OID.data, `${s.name}: ${m.what} changed the content type`);
    }
  }, (e, m, s) => checkDecryptionError(e, `${s.name}: ${m.what}`));
  assert.ok(REPLAYING || (outcomes.get('DECRYPT_FAILED') ?? 0) > 0 && (outcomes.get('MALFORMED') ?? 0) > 0, `explores: ${[...outcomes]}`);
});

test('alterations of key, originator key, IV, ciphertext or tag all give the same DecryptionError', { timeout: timeoutFor(1500, 10) }, () => {
  const seen = new Map<string, number>();
  const started = performance.now();
  for (let i = 0; i < iterations(1500); i++) {
    const r = new Prng(caseSeed('decrypt-secret', i));
    const s = seeds[i % seeds.length]!;
    const range = r.pick(s.secretRanges);
    const at = range.from + r.int(range.to - range.from);
    const bytes = Buffer.from(s.bytes);
    if (r.chance(0.5)) bytes[at]! ^= 1 << r.int(8);
    else bytes[at] = r.pick(BOUNDARY.filter((b) => b !== s.bytes[at]));
    const context = `${s.name}: ${range.what} byte ${at} (case ${i})`;
    let result;
    try {
      result = decryptData(bytes, { keys: s.keys });
    } catch (e) {
      checkDecryptionError(e, context);
      assert.equal((e as DecryptionError).code, 'DECRYPT_FAILED', `${context}: ${(e as Error).message}`);
      seen.set(range.what, (seen.get(range.what) ?? 0) + 1);
      continue;
    }
    // RFC 7748 5: X25519 ignores the top bit of the u-coordinate, so that flip means the same key.
    if (range.what === 'originator key' && at === range.to - 1 && (bytes[at]! ^ s.bytes[at]!) === 0x80 && s.name.startsWith('x25519')) continue;
    // Only CBC can "succeed" on altered input (unauthenticated; the verdict says UNAUTH_ENC).
    assert.equal(result.authenticated, false, `${context}: AEAD accepted an alteration`);
  }
  reportCases('decrypt-secret', iterations(1500), performance.now() - started);
  assert.ok(REPLAYING || (seen.get('tag') ?? 0) > 0 && (seen.get('encrypted key') ?? 0) > 0, `covers the ranges: ${[...seen]}`);
});

test('an ECDH originator key in the X9.62 hybrid form (same point) is the one DecryptionError (RFC 5480 2.2)', () => {
  for (const s of seeds.filter((x) => x.name.startsWith('ecdh') || x.name === 'two-recipients')) {
    const range = s.secretRanges.find((x) => x.what === 'originator key')!;
    for (const form of [0x06, 0x07]) {
      const bytes = Buffer.from(s.bytes);
      bytes[range.from] = form;
      assert.throws(() => decryptData(bytes, { keys: s.keys }), (e) => e instanceof DecryptionError && e.message === DECRYPTION_MESSAGE, `${s.name} form ${form}`);
    }
  }
});

test('trial decryption (keys offered without certificates): the same oracle', { timeout: timeoutFor(1500, 10) }, async () => {
  const bare = seeds.map((s) => ({ ...s, keys: s.keys.map((k) => ({ key: k.key })) }));
  await fuzz('decrypt-data-trial', bare, iterations(1500), (m, base) => {
    const s = base as EnvelopeSeed;
    const r = decryptData(m.bytes, { keys: s.keys });
    if (r.authenticated) assert.deepEqual(r.content, plaintext, `${s.name}: ${m.what} authenticated altered plaintext`);
  }, (e, m, s) => checkDecryptionError(e, `${s.name}: ${m.what}`));
});
