/**
 * Mutation fuzzing of PKCS#10 requests (`ca issue --csr`, issue 12 item 5), seeded
 * with requests from `openssl req -new`. Oracle: parsing and the proof-of-possession
 * check fail only with typed errors, and a request that passes the check carries a
 * certificationRequestInfo some seed's key signed, byte for byte: no mutation can get
 * a name or a key certified that the key's holder did not sign.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCertificationRequest, verifyProofOfPossession } from '../../src/x509/parse-certification-request.ts';
import { fuzz, iterations, mutateText, seed, timeoutFor, REPLAYING, type Seed } from './fuzz-kit.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-fuzz-csr-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function opensslRequest(name: string, newkey: string[], ...extra: string[]): Buffer {
  const out = join(dir, `${name}.csr`);
  execFileSync('openssl', ['req', '-new', ...newkey, '-nodes', '-keyout', join(dir, `${name}.key`), '-subj', `/CN=${name}@example.com/emailAddress=${name}@example.com`, ...extra, '-outform', 'DER', '-out', out], { stdio: 'ignore' });
  return readFileSync(out);
}

const seeds: Seed[] = [
  seed('rsa', opensslRequest('rsa', ['-newkey', 'rsa:2048'])),
  seed('p256', opensslRequest('p256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], '-addext', 'subjectAltName=email:p256@example.com', '-addext', 'extendedKeyUsage=emailProtection,clientAuth')),
  seed('ed25519', opensslRequest('ed25519', ['-newkey', 'ed25519'], '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,digitalSignature')),
];
const signedInfos = new Set(seeds.map((s) => Buffer.from(parseCertificationRequest(s.bytes).info).toString('hex')));

function check(bytes: Uint8Array): void {
  const r = parseCertificationRequest(bytes);
  void r.publicKey.asymmetricKeyType;
  verifyProofOfPossession(r);
  assert.ok(signedInfos.has(Buffer.from(r.info).toString('hex')), 'a request that proves possession carries exactly what its key signed');
}

test('seeds are valid requests that prove possession', () => {
  for (const s of seeds) check(s.bytes);
});

test('parseCertificationRequest and verifyProofOfPossession: typed errors only; nothing unsigned passes', { timeout: timeoutFor(3000) }, async () => {
  const outcomes = await fuzz('certification-request', seeds, iterations(3000), (m) => check(m.bytes));
  assert.ok(REPLAYING || ((outcomes.get('MALFORMED') ?? 0) > 0 && (outcomes.get('BAD_SIG') ?? 0) > 0), `reaches the parser and the signature check: ${[...outcomes]}`);
});

test('PEM requests: damaged armour and text fail only with typed errors', { timeout: timeoutFor(600) }, async () => {
  const pem = seeds.map((s) => seed(`${s.name}-pem`, Buffer.from(`-----BEGIN CERTIFICATE REQUEST-----\n${s.bytes.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE REQUEST-----\n`)));
  await fuzz('certification-request-pem', pem, iterations(600), (m) => check(m.bytes), undefined, mutateText);
});
