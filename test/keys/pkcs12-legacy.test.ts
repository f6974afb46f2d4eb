/**
 * Legacy PKCS#12 (RC2 and RC4, RFC 7292 appendix C) as Windows, macOS, OpenSSL's
 * -legacy and NSS pk12util write it: imported through the legacy-provider child
 * process (src/keys/pkcs12-legacy-cipher.ts), with the MAC checked first, and the
 * child's failures (hang, death, flood, no provider) reported, never trusted.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHmac, randomBytes } from 'node:crypto';
import { TestPki } from '../helpers/pki.ts';
import { decode, readOctetString, readOctets } from '../../src/asn1/ber.ts';
import { sequence, oid, octetString, integer, explicit, implicit, NULL } from '../../src/asn1/der.ts';
import { OID } from '../../src/asn1/oids.ts';
import { exportPkcs12 } from '../../src/keys/export-pkcs12.ts';
import { importPkcs12 } from '../../src/keys/import-pkcs12.ts';
import { derivePkcs12Key, pkcs12PasswordBytes } from '../../src/keys/pkcs12-kdf.ts';
import { createLegacyDecipher, LEGACY_CIPHER_CHILD, type LegacyDecipher, type LegacyDecryption } from '../../src/keys/pkcs12-legacy-cipher.ts';
import { isKakitomeError } from '../../src/errors.ts';

const pki = new TestPki('PKCS12 Legacy Root');
const rsa = pki.identity('rsa2048', 'legrsa');
const ec = pki.identity('p256', 'legec');
after(() => pki.cleanup());
const PASS = 'pässwörd 1';
const WRONG_PASSWORD = 'The PKCS#12 file could not be opened: wrong password or damaged file.';
const pkcs8 = (k: { export: Function }) => (k.export({ format: 'der', type: 'pkcs8' }) as Buffer).toString('hex');
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] }).toString();

let fileNo = 0;
function opensslP12(id: typeof rsa, extra: string[], password = PASS): Buffer {
  const file = join(pki.dir, `openssl-legacy-${++fileNo}.p12`);
  sh('openssl', ['pkcs12', '-export', '-in', id.certPath, '-inkey', id.keyPath, '-certfile', pki.caPath, '-name', 'old key', '-out', file, '-passout', `pass:${password}`, ...extra]);
  return readFileSync(file);
}

/** What `openssl pkcs12 -info` says protects the certificates and the key. */
function opensslInfo(p12: Buffer, password = PASS): string {
  const file = join(pki.dir, `info-${++fileNo}.p12`);
  writeFileSync(file, p12);
  // -info writes the algorithms on stderr.
  const r = spawnSync('openssl', ['pkcs12', '-info', '-noout', '-legacy', '-in', file, '-passin', `pass:${password}`]);
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout.toString() + r.stderr.toString();
}

/** Records each batch and passes it to the real child. */
function spy(): { decipher: LegacyDecipher; batches: LegacyDecryption[][] } {
  const real = createLegacyDecipher();
  const batches: LegacyDecryption[][] = [];
  return { batches, decipher: (b) => (batches.push([...b]), real(b)) };
}

function assertImported(got: ReturnType<typeof importPkcs12>, id: typeof rsa, what: string): void {
  assert.equal(pkcs8(got.key!), pkcs8(id.key), what);
  assert.equal(got.certificate?.fingerprint256, id.cert.fingerprint256, what);
  assert.deepEqual(got.chain.map((c) => c.fingerprint256), [pki.caCert.fingerprint256], what);
}

test('openssl pkcs12 -export -legacy (RC2-40 certificates, 3DES key, the classic Windows/macOS form) imports, RSA and EC; one child for the certificates', () => {
  for (const id of [rsa, ec]) {
    const p12 = opensslP12(id, ['-legacy']);
    assert.match(opensslInfo(p12), /Encrypted data: pbeWithSHA1And40BitRC2-CBC[\s\S]*Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC/);
    const s = spy();
    const got = importPkcs12(p12, PASS, { legacyDecipher: s.decipher });
    assertImported(got, id, id.kind);
    assert.equal(got.friendlyName, 'old key');
    assert.deepEqual(s.batches.map((b) => b.map((d) => d.cipher)), [['rc2-40-cbc']]);
  }
});

test('openssl -legacy variants: RC2-128 certificates with an RC2-40 key, RC4-128 with RC4-40, 2-key 3DES key, and the empty password', () => {
  const cases: [string, string[], string, string[][]][] = [
    ['rc2', ['-certpbe', 'PBE-SHA1-RC2-128', '-keypbe', 'PBE-SHA1-RC2-40'], PASS, [['rc2-cbc'], ['rc2-40-cbc']]],
    ['rc4', ['-certpbe', 'PBE-SHA1-RC4-128', '-keypbe', 'PBE-SHA1-RC4-40'], PASS, [['rc4'], ['rc4-40']]],
    ['2des', ['-keypbe', 'PBE-SHA1-2DES'], PASS, [['rc2-40-cbc']]],
    // Windows "no password" exports: the empty password, RC2-40 certificates.
    ['empty', [], '', [['rc2-40-cbc']]],
  ];
  for (const [name, extra, password, expected] of cases) {
    const p12 = opensslP12(rsa, ['-legacy', ...extra], password);
    const s = spy();
    assertImported(importPkcs12(p12, password, { legacyDecipher: s.decipher }), rsa, name);
    assert.deepEqual(s.batches.map((b) => b.map((d) => d.cipher)), expected, name);
  }
  // PKCS#5 v1.5 PBES1 (PBKDF1) is no PKCS#12 scheme: refused, and named.
  const pbes1 = opensslP12(rsa, ['-legacy', '-certpbe', 'PBE-SHA1-RC2-64']);
  assert.throws(() => importPkcs12(pbes1, PASS), (e) => isKakitomeError(e, 'UNSUPPORTED_ALG') && /PKCS#5 v1\.5/.test(e.message));
});

test('NSS pk12util -o with RC2 (-C 40-bit for the certificates, -c 128-bit for the key) imports', () => {
  const db = join(pki.dir, 'nss-legacy');
  mkdirSync(db);
  sh('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
  const src = join(pki.dir, 'to-nss-legacy.p12');
  writeFileSync(src, exportPkcs12({ key: ec.key, certificate: ec.cert, chain: [pki.caCert], password: PASS, friendlyName: 'nssold', iterations: 2048 }));
  sh('pk12util', ['-i', src, '-d', `sql:${db}`, '-W', PASS, '-K', '']);
  // One file: NSS writes 600,000 iterations whatever the cipher, seconds of KDF per file
  // (RC4 and the other RC2 strengths come from OpenSSL above).
  const variants: [string, string, string[][]][] = [
    ['PKCS #12 V2 PBE With SHA-1 And 40 Bit RC2 CBC', 'PKCS #12 V2 PBE With SHA-1 And 128 Bit RC2 CBC', [['rc2-40-cbc'], ['rc2-cbc']]],
  ];
  for (const [certCipher, keyCipher, expected] of variants) {
    const out = join(pki.dir, `from-nss-${++fileNo}.p12`);
    sh('pk12util', ['-o', out, '-n', 'nssold', '-d', `sql:${db}`, '-W', 'nss pass', '-K', '', '-C', certCipher, '-c', keyCipher]);
    const s = spy();
    const got = importPkcs12(readFileSync(out), 'nss pass', { legacyDecipher: s.decipher });
    assert.equal(pkcs8(got.key!), pkcs8(ec.key), certCipher);
    assert.equal(got.certificate?.fingerprint256, ec.cert.fingerprint256, certCipher);
    assert.deepEqual(s.batches.map((b) => b.map((d) => d.cipher)), expected, certCipher);
  }
});

test('a wrong password fails at the MAC with the same error as for a modern file, before any child starts; modern files never start one', () => {
  const legacy = opensslP12(ec, ['-legacy']);
  const modern = exportPkcs12({ key: ec.key, certificate: ec.cert, password: PASS, iterations: 2048 });
  const s = spy();
  for (const p12 of [legacy, modern]) {
    assert.throws(() => importPkcs12(p12, 'wrong', { legacyDecipher: s.decipher }), (e) => isKakitomeError(e, 'KEY_INVALID') && e.message === WRONG_PASSWORD);
  }
  assert.equal(importPkcs12(modern, PASS, { legacyDecipher: s.decipher }).certificate?.fingerprint256, ec.cert.fingerprint256);
  importPkcs12(exportPkcs12({ key: ec.key, certificate: ec.cert, password: PASS, iterations: 2048, profile: 'legacy' }), PASS, { legacyDecipher: s.decipher });
  assert.equal(s.batches.length, 0);
});

/**
 * Replaces the ciphertext of the file's EncryptedData (the RC2 certificate block)
 * and, when `remac`, recomputes the MAC with the password, so that decryption
 * itself meets the damage.
 */
function withCertCiphertext(p12: Buffer, change: (ct: Buffer) => Buffer, remac: boolean): Buffer {
  const [, authSafeCi, macData] = decode(p12).children();
  const authSafe = decode(readOctetString(authSafeCi!.children()[1]!.children()[0]!)).children();
  const parts = authSafe.map((ci) => {
    const [type, content] = ci.children();
    if (Buffer.from(type!.bytes).equals(oid(OID.data))) return Buffer.from(ci.bytes);
    const [, eci] = content!.children()[0]!.children();
    const [, alg, enc] = eci!.children();
    const eciNew = sequence(oid(OID.data), Buffer.from(alg!.bytes), implicit(0, false, change(Buffer.from(readOctets(enc!)))));
    return sequence(oid(OID.encryptedData), explicit(0, sequence(integer(0), eciNew)));
  });
  const authSafeNew = sequence(...parts);
  let mac: Buffer = Buffer.from(macData!.bytes);
  if (remac) {
    const salt = randomBytes(8);
    const key = derivePkcs12Key('sha1', pkcs12PasswordBytes(PASS), salt, 3, 2048, 20);
    const digest = createHmac('sha1', key).update(authSafeNew).digest();
    mac = sequence(sequence(sequence(oid(OID.sha1), NULL), octetString(digest)), octetString(salt), integer(2048));
  }
  return sequence(integer(3), sequence(oid(OID.data), explicit(0, octetString(authSafeNew))), mac);
}

test('a truncated or garbled RC2 block: the MAC refuses it; with a MAC made over the damage, decryption refuses it (KEY_INVALID or MALFORMED, never a certificate)', () => {
  const p12 = opensslP12(rsa, ['-legacy']);
  assertImported(importPkcs12(withCertCiphertext(p12, (ct) => ct, true), PASS), rsa, 'rebuilt unchanged');
  const truncate = (ct: Buffer) => ct.subarray(0, ct.length - 3);
  const garble = (ct: Buffer) => {
    const g = Buffer.from(ct);
    g[g.length - 1]! ^= 0x5a;
    g[10]! ^= 0xff;
    return g;
  };
  const s = spy();
  for (const change of [truncate, garble]) {
    assert.throws(() => importPkcs12(withCertCiphertext(p12, change, false), PASS, { legacyDecipher: s.decipher }), (e) => isKakitomeError(e, 'KEY_INVALID') && e.message === WRONG_PASSWORD);
  }
  assert.equal(s.batches.length, 0, 'no child before the MAC passes');
  assert.throws(() => importPkcs12(withCertCiphertext(p12, truncate, true), PASS), (e) => isKakitomeError(e, 'KEY_INVALID') && /could not be decrypted/.test(e.message));
  assert.throws(() => importPkcs12(withCertCiphertext(p12, garble, true), PASS), (e) => isKakitomeError(e, 'KEY_INVALID') || isKakitomeError(e, 'MALFORMED'));
});

test('an oversized RC2 block is LIMIT before any child starts', () => {
  const p12 = opensslP12(rsa, ['-legacy']);
  const hang = createLegacyDecipher({ maxBytes: 512, args: ['-e', 'setInterval(() => {}, 1000)'] });
  const t0 = Date.now();
  assert.throws(() => importPkcs12(p12, PASS, { legacyDecipher: hang }), (e) => isKakitomeError(e, 'LIMIT') && /RC2\/RC4-encrypted content/.test(e.message));
  assert.ok(Date.now() - t0 < 10_000);
  // A file over the import's bound never gets that far; the default child bound is the same number.
  assert.throws(() => importPkcs12(p12, PASS, { maxBytes: 1024 }), (e) => isKakitomeError(e, 'LIMIT'));
});

test('a child that hangs, dies, floods, lies, lacks the legacy provider or may not start: UNSUPPORTED_ALG saying so, never data', () => {
  const p12 = opensslP12(ec, ['-legacy']);
  const cases: [string, Parameters<typeof createLegacyDecipher>[0], RegExp][] = [
    ['hangs', { timeoutMs: 1500, args: ['-e', 'setInterval(() => {}, 1000)'] }, /did not answer within 1500 ms/],
    ['is killed', { args: ['-e', 'process.kill(process.pid, "SIGKILL")'] }, /ended by SIGKILL/],
    ['exits 3', { args: ['-e', 'process.exit(3)'] }, /exit status 3/],
    ['floods', { args: ['-e', 'process.stdout.write(Buffer.alloc(8 << 20))'] }, /answered more than it was asked/],
    ['says nothing', { args: ['-e', ''] }, /short answer/],
    ['adds bytes', { args: ['-e', 'process.stdout.write(Buffer.from([0, 0, 0, 0, 1, 48, 99]))'] }, /malformed answer/],
    ['claims more plaintext than ciphertext', { args: ['-e', 'process.stdout.write(Buffer.from([0, 0, 1, 0, 0]))'] }, /malformed answer/],
    ['runs without --openssl-legacy-provider', { args: [LEGACY_CIPHER_CHILD] }, /could not load OpenSSL's legacy provider/],
  ];
  for (const [name, options, message] of cases) {
    const t0 = Date.now();
    assert.throws(() => importPkcs12(p12, PASS, { legacyDecipher: createLegacyDecipher(options) }), (e) => isKakitomeError(e, 'UNSUPPORTED_ALG') && message.test(e.message) && /Re-export/.test(e.message), name);
    assert.ok(Date.now() - t0 < 14_000, `${name}: bounded by the timeout`);
  }
  // Node's permission model without --allow-child-process: refused, and said so.
  const file = join(pki.dir, 'permission.p12');
  writeFileSync(file, p12);
  const script = `import { readFileSync } from 'node:fs'; import { importPkcs12 } from ${JSON.stringify(new URL('../../src/keys/import-pkcs12.ts', import.meta.url).href)};
try { importPkcs12(readFileSync(${JSON.stringify(file)}), ${JSON.stringify(PASS)}); console.log('imported'); } catch (e) { console.log(e.code, e.message); }`;
  const denied = spawnSync(process.execPath, ['--permission', '--allow-fs-read=*', '--input-type=module', '-e', script]);
  assert.match(denied.stdout.toString(), /^UNSUPPORTED_ALG .*could not be started \(ERR_ACCESS_DENIED\)/, denied.stderr.toString());
  // The child refuses a cipher outside its list instead of running it.
  assert.throws(() => createLegacyDecipher()([{ cipher: 'aes-128-cbc' as 'rc4', key: Buffer.alloc(16), iv: Buffer.alloc(16), data: Buffer.alloc(16) }]), (e) => isKakitomeError(e, 'UNSUPPORTED_ALG') && /exit status 2/.test(e.message));
});

test('the child gets derived keys on stdin: the password is in none of its arguments, environment or input', () => {
  const dump = join(pki.dir, 'child-dump.json');
  const script = `const c=[];process.stdin.on('data',(d)=>c.push(d)).on('end',()=>require('fs').writeFileSync(${JSON.stringify(dump)},JSON.stringify({argv:process.argv,env:process.env,stdin:Buffer.concat(c).toString('latin1')})))`;
  const password = 'Sekrit-Passw0rd-Ünique';
  const p12 = opensslP12(ec, ['-legacy'], password);
  process.env.KAKITOME_TEST_CANARY = password;
  try {
    assert.throws(() => importPkcs12(p12, password, { legacyDecipher: createLegacyDecipher({ args: ['-e', script] }) }), (e) => isKakitomeError(e, 'UNSUPPORTED_ALG'));
  } finally {
    delete process.env.KAKITOME_TEST_CANARY;
  }
  const seen = readFileSync(dump, 'latin1');
  rmSync(dump);
  for (const form of [password, Buffer.from(password, 'utf8').toString('latin1'), pkcs12PasswordBytes(password).toString('latin1')]) assert.ok(!seen.includes(form));
  const { env, stdin } = JSON.parse(seen) as { env: Record<string, string>; stdin: string };
  assert.deepEqual(Object.keys(env).filter((k) => k !== 'OPENSSL_MODULES'), []);
  assert.match(stdin, /^\x0arc2-40-cbc\x05/);
});
