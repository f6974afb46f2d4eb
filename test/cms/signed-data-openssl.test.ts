/**
 * Smoke interop with the system `openssl cms` (3.0): it accepts our RSA/ECDSA output,
 * and we verify its output. The full peer matrix lives with the interop tests.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { signData } from '../../src/cms/signed-data/sign.ts';
import { verifySignedData } from '../../src/cms/signed-data/verify.ts';
import { decodePem } from '../../src/asn1/pem.ts';

const pki = new TestPki();
after(() => pki.cleanup());
const content = Buffer.from('Content-Type: text/plain\r\n\r\nInterop with OpenSSL.\r\n');
const contentPath = join(pki.dir, 'content.txt');
writeFileSync(contentPath, content);

function openssl(args: string[]): Buffer {
  return execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

const ours: { name: string; kind: 'rsa2048' | 'p256' | 'p384'; rsaPadding?: 'pss' }[] = [
  { name: 'RSA PKCS#1 v1.5', kind: 'rsa2048' },
  { name: 'RSASSA-PSS', kind: 'rsa2048', rsaPadding: 'pss' },
  { name: 'ECDSA P-256', kind: 'p256' },
  { name: 'ECDSA P-384', kind: 'p384' },
];

for (const o of ours) {
  test(`openssl cms -verify accepts our ${o.name} signature (encapsulated and detached)`, () => {
    const id = pki.identity(o.kind);
    const enc = join(pki.dir, `ours-${o.kind}-${o.rsaPadding ?? 'v15'}.der`);
    writeFileSync(enc, signData(content, { signers: [{ certificate: id.cert, key: id.key, rsaPadding: o.rsaPadding }] }));
    assert.deepEqual(openssl(['cms', '-verify', '-noverify', '-binary', '-inform', 'DER', '-in', enc]), content);
    // With the chain checked too (OpenSSL 3.0 does not check ESS signingCertificateV2, measured).
    assert.deepEqual(openssl(['cms', '-verify', '-CAfile', pki.caPath, '-purpose', 'any', '-binary', '-inform', 'DER', '-in', enc]), content);
    const det = join(pki.dir, `ours-det-${o.kind}-${o.rsaPadding ?? 'v15'}.der`);
    writeFileSync(det, signData(content, { signers: [{ certificate: id.cert, key: id.key, rsaPadding: o.rsaPadding }], detached: true }));
    assert.deepEqual(openssl(['cms', '-verify', '-noverify', '-binary', '-inform', 'DER', '-in', det, '-content', contentPath]), content);
    // And it notices tampering (the test can fail).
    const bad = join(pki.dir, 'tampered.txt');
    writeFileSync(bad, Buffer.concat([content, Buffer.from('x')]));
    assert.throws(() => openssl(['cms', '-verify', '-noverify', '-binary', '-inform', 'DER', '-in', det, '-content', bad]));
  });
}

test('we verify openssl cms -sign output: RSA encapsulated, ECDSA detached, RSA-PSS, streamed indefinite BER, SHA-1', () => {
  const rsa = pki.identity('rsa2048');
  const ec = pki.identity('p256');
  const sign = (name: string, id: typeof rsa, extra: string[], outform = 'DER'): Buffer => {
    const out = join(pki.dir, `openssl-${name}`);
    openssl(['cms', '-sign', '-binary', '-in', contentPath, '-signer', id.certPath, '-inkey', id.keyPath, '-outform', outform, '-out', out, ...extra]);
    const raw = readFileSync(out);
    return outform === 'PEM' ? decodePem(raw.toString('latin1'))[0]!.der : raw;
  };
  const cases: { name: string; der: Buffer; detached?: boolean; sig: string; digest: string }[] = [
    { name: 'rsa', der: sign('rsa', rsa, ['-md', 'sha256', '-nodetach']), sig: 'rsassa-pkcs1-v1_5', digest: 'sha256' },
    { name: 'ec', der: sign('ec', ec, ['-md', 'sha256']), detached: true, sig: 'ecdsa-with-sha256', digest: 'sha256' },
    { name: 'pss', der: sign('pss', rsa, ['-md', 'sha384', '-nodetach', '-keyopt', 'rsa_padding_mode:pss', '-keyopt', 'rsa_pss_saltlen:48']), sig: 'rsassa-pss', digest: 'sha384' },
    // QUIRK (OpenSSL 3.0): -stream with -outform DER fails ("illegal zero content"); PEM carries the indefinite BER.
    { name: 'stream', der: sign('stream', rsa, ['-md', 'sha512', '-nodetach', '-stream'], 'PEM'), sig: 'rsassa-pkcs1-v1_5', digest: 'sha512' },
    { name: 'sha1', der: sign('sha1', rsa, ['-md', 'sha1', '-nodetach']), sig: 'rsassa-pkcs1-v1_5', digest: 'sha1' },
  ];
  for (const c of cases) {
    const v = verifySignedData(c.der, c.detached ? { detachedContent: content } : {});
    assert.equal(v.status, 'valid', `${c.name}: ${v.message}`);
    assert.deepEqual(v.content, content);
    assert.equal(v.signers[0]!.signatureAlgorithm, c.sig);
    assert.equal(v.signers[0]!.digestAlgorithm, c.digest);
    if (c.name === 'stream') assert.equal(c.der[1], 0x80, 'streamed output uses indefinite lengths');
    if (c.name === 'sha1') assert.ok(v.signers[0]!.warnings.some((w) => /sha1/.test(w)));
    // OpenSSL writes no ESS signingCertificateV2; its absence is not worth a warning.
    if (c.name !== 'sha1') assert.deepEqual(v.signers[0]!.warnings, [], `${c.name}: ${v.signers[0]!.warnings.join("; ")}`);
    const tampered = Buffer.from(content);
    tampered.writeUInt8(tampered.readUInt8(0) ^ 0x20, 0);
    if (c.detached) assert.equal(verifySignedData(c.der, { detachedContent: tampered }).code, 'DIGEST_MISMATCH');
  }
});
