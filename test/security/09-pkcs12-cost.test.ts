/**
 * Issue 9, item 9: a PKCS#12 file names its own key-derivation work. The attack
 * files here are built byte by byte: many encrypted blocks, blocks of 2,000,000
 * iterations each with their own salt, shrouded key bags that only show their cost
 * once decrypted, all behind a valid MAC of one iteration (which passes at once).
 * The import must refuse them with LIMIT having done a bounded amount of work,
 * counted in derivations and iterations (never wall time), derive a repeated
 * (salt, iterations, PRF) once, and still import ordinary files.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { TestPki } from '../helpers/pki.ts';
import { sequence, oid, octetString, integer, explicit, implicit, NULL } from '../../src/asn1/der.ts';
import { OID } from '../../src/asn1/oids.ts';
import { exportPkcs12 } from '../../src/keys/export-pkcs12.ts';
import { importPkcs12 } from '../../src/keys/import-pkcs12.ts';
import { derivePkcs12Key, pkcs12PasswordBytes } from '../../src/keys/pkcs12-kdf.ts';
import { PBE_OID } from '../../src/keys/pkcs12-pbe.ts';
import { PKCS12_OID } from '../../src/keys/pkcs12-bags.ts';
import { DEFAULT_LIMITS } from '../../src/limits.ts';
import type { KeyDerivation } from '../../src/keys/pkcs12-key-deriver.ts';
import { isKakitomeError } from '../../src/errors.ts';

const pki = new TestPki('PKCS12 Cost Root');
const id = pki.identity('p256', 'p12cost');
after(() => pki.cleanup());
const PW = 'attacker-chosen';

/** PBES2 / PBKDF2-HMAC-SHA1 / AES-128-CBC over `plain`; `valid: false` leaves the ciphertext random (no key derived here). */
function pbes2(plain: Uint8Array, salt: Uint8Array, iterations: number, valid = true): { alg: Buffer; ct: Buffer } {
  const iv = randomBytes(16);
  const alg = sequence(oid(PBE_OID.pbes2), sequence(sequence(oid(PBE_OID.pbkdf2), sequence(octetString(salt), integer(iterations), sequence(oid(PBE_OID.hmacWithSHA1), NULL))), sequence(oid(OID.aes128_CBC), octetString(iv))));
  if (!valid) return { alg, ct: randomBytes(64) };
  const c = createCipheriv('aes-128-cbc', pbkdf2Sync(PW, salt, iterations, 16, 'sha1'), iv);
  return { alg, ct: Buffer.concat([c.update(plain), c.final()]) };
}

const certBag = sequence(oid(PKCS12_OID.certBag), explicit(0, sequence(oid(PKCS12_OID.x509Certificate), explicit(0, octetString(id.cert.der)))));
const shroudedBag = (e: { alg: Buffer; ct: Buffer }) => sequence(oid(PKCS12_OID.pkcs8ShroudedKeyBag), explicit(0, sequence(e.alg, octetString(e.ct))));
const dataPart = (safeContents: Buffer) => sequence(oid(OID.data), explicit(0, octetString(safeContents)));
const encryptedPart = (e: { alg: Buffer; ct: Buffer }) => sequence(oid(OID.encryptedData), explicit(0, sequence(integer(0), sequence(oid(OID.data), e.alg, implicit(0, false, e.ct)))));

/** A PFX over `parts` with a correct HMAC-SHA256 MAC of `macIterations` (1: passes at once). */
function pfx(parts: Buffer[], macIterations = 1): Buffer {
  const authSafe = sequence(...parts);
  const salt = randomBytes(8);
  const mac = createHmac('sha256', derivePkcs12Key('sha256', pkcs12PasswordBytes(PW), salt, 3, macIterations, 32)).update(authSafe).digest();
  return sequence(integer(3), dataPart(authSafe), sequence(sequence(sequence(oid(OID.sha256), NULL), octetString(mac)), octetString(salt), integer(macIterations)));
}

function importCounting(file: Buffer, password = PW) {
  const done: KeyDerivation[] = [];
  let error: unknown;
  let result;
  try {
    result = importPkcs12(file, password, { onKeyDerivation: (d) => done.push(d) });
  } catch (e) {
    error = e;
  }
  return { done, error, result, cost: done.reduce((n, d) => n + d.cost, 0) };
}

const pkcs8 = () => id.key.export({ format: 'der', type: 'pkcs8' }) as Buffer;

test('more encrypted blocks than maxPkcs12EncryptedBlocks: LIMIT before the first derivation', () => {
  const n = DEFAULT_LIMITS.maxPkcs12EncryptedBlocks + 1;
  const parts = Array.from({ length: n }, () => encryptedPart(pbes2(sequence(certBag), randomBytes(8), 2048, false)));
  const r = importCounting(pfx(parts));
  assert.ok(isKakitomeError(r.error, 'LIMIT'), String(r.error));
  assert.match((r.error as Error).message, /encrypted blocks/);
  assert.equal(r.done.length, 0, 'no key derived');
});

test('top-level blocks of 2,000,000 iterations each with their own salt, behind a 1-iteration MAC: LIMIT before the first derivation', () => {
  const parts = Array.from({ length: 3 }, () => encryptedPart(pbes2(sequence(certBag), randomBytes(8), 2_000_000, false)));
  const r = importCounting(pfx(parts));
  assert.ok(isKakitomeError(r.error, 'LIMIT'), String(r.error));
  assert.match((r.error as Error).message, /maxPkcs12TotalIterations/);
  assert.equal(r.done.length, 0, 'no key derived');
  // One block above the per-derivation bound is refused as well, before any work.
  const huge = importCounting(pfx([encryptedPart(pbes2(sequence(certBag), randomBytes(8), DEFAULT_LIMITS.maxPkcs12Iterations + 1, false))]));
  assert.ok(isKakitomeError(huge.error, 'LIMIT'), String(huge.error));
  assert.equal(huge.done.length, 0);
});

test('shrouded key bags that show their cost only once decrypted: the work stops at the file budget', () => {
  // Each bag: 1,000,000 iterations and its own salt, so nothing can be shared. The
  // budget, less the MAC's one iteration, buys three; the rest are never derived
  // (their ciphertext is not even valid).
  // Changed (issue 12 item 3): 24 bags, within maxPkcs12EncryptedBlocks. Shrouded bags are
  // now all counted before the first is decrypted (they are decrypted together, so that
  // RC2/RC4 bags need one child process), so 40 bags stop at the block count, with only
  // the MAC derived.
  const perBag = 1_000_000;
  const affordable = Math.floor((DEFAULT_LIMITS.maxPkcs12TotalIterations - 1) / perBag);
  const bags = Array.from({ length: 40 }, (_, i) => shroudedBag(pbes2(pkcs8(), randomBytes(8), perBag, i < affordable)));
  const r = importCounting(pfx([dataPart(sequence(certBag, ...bags.slice(0, 24)))]));
  assert.ok(isKakitomeError(r.error, 'LIMIT'), String(r.error));
  assert.ok(r.cost <= DEFAULT_LIMITS.maxPkcs12TotalIterations, `work ${r.cost}`);
  assert.equal(r.done.length, 1 + affordable, 'the MAC and the affordable bags, no more');
  const many = importCounting(pfx([dataPart(sequence(certBag, ...bags))]));
  assert.ok(isKakitomeError(many.error, 'LIMIT') && /maxPkcs12EncryptedBlocks/.test(many.error.message), String(many.error));
  assert.equal(many.done.length, 1, 'the MAC only');
});

test('blocks repeating one (salt, iterations, PRF) are derived once', () => {
  const salt = randomBytes(8);
  const parts = [encryptedPart(pbes2(sequence(certBag), salt, 10_000)), ...Array.from({ length: 20 }, () => encryptedPart(pbes2(sequence(), salt, 10_000)))];
  parts.push(dataPart(sequence(shroudedBag(pbes2(pkcs8(), salt, 10_000)))));
  const r = importCounting(pfx(parts));
  assert.equal(r.error, undefined);
  assert.equal(r.result?.certificate?.fingerprint256, id.cert.fingerprint256);
  assert.deepEqual(r.done.map((d) => `${d.kdf}/${d.iterations}`), ['pkcs12/1', 'pbkdf2/10000'], 'the MAC and one PBKDF2, for 22 blocks');
});

test('ordinary files still import: our modern export at its default cost, and the legacy profile', () => {
  const modern = importCounting(exportPkcs12({ key: id.key, certificate: id.cert, chain: [pki.caCert], password: PW }));
  assert.equal(modern.error, undefined);
  assert.equal(modern.result?.certificate?.fingerprint256, id.cert.fingerprint256);
  assert.equal(modern.cost, 3 * 600_000);
  const legacy = importCounting(exportPkcs12({ key: id.key, certificate: id.cert, password: PW, profile: 'legacy' }));
  assert.equal(legacy.error, undefined);
  assert.equal(legacy.result?.certificate?.fingerprint256, id.cert.fingerprint256);
  // An export our own import would refuse is refused when it is asked for.
  assert.throws(() => exportPkcs12({ key: id.key, certificate: id.cert, password: PW, profile: 'legacy', iterations: 1_000_000 }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
});
