/**
 * `kakitome verify --validity-clock timestamp` and `--tsa-ca` (issue 12 item 4) on
 * the real clock: a signer certificate that expires a few seconds after signing,
 * a token from a real TSA (`openssl ts -reply`), and the verdict after expiry.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestPki } from '../helpers/pki.ts';
import { issueTsa, opensslTimestamp, signatureValueOf, timestampAttribute, withUnsignedAttributes, replaceDetachedSignature } from '../helpers/timestamp.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { runCli } from './run-cli.ts';

const pki = new TestPki('Kakitome CLI Timestamp Root');
const other = new TestPki('Kakitome CLI Other Root');
after(() => {
  pki.cleanup();
  other.cleanup();
});

test('verify --validity-clock timestamp: trusted after the signer certificate expired; now: CERT_EXPIRED; --tsa-ca elsewhere: TIMESTAMP_INVALID', async () => {
  const tsa = issueTsa(pki.dir, 'CLI TSA', { cert: pki.caCert, key: pki.caKey });
  // The certificate must outlive the key generation, the signature and the token, which a loaded
  // machine can stretch past a few seconds: a setup that overran the window is made again with a wider one.
  // (The key usually comes from TestPki's pool: the first window is short, the wait after it with it.)
  let stamped: { path: string; expires: number } | undefined;
  for (const [attempt, windowMs] of [2000, 15_000, 60_000].entries()) {
    const expires = new Date(Date.now() + windowMs);
    const alice = pki.identity('rsa2048', attempt === 0 ? 'alice' : `alice${attempt}`, { notAfter: expires });
    if (Date.now() >= expires.getTime()) continue;
    const draft = Buffer.from(`From: ${alice.email}\r\nTo: bob@example.com\r\nSubject: before expiry\r\nContent-Type: text/plain\r\n\r\nSigned in time.\r\n`);
    const message = signMessage(draft, { signers: [{ certificate: alice.cert, key: alice.key }] });
    let signature: Buffer = Buffer.alloc(0);
    replaceDetachedSignature(message, (cms) => (signature = signatureValueOf(cms), cms));
    const token = await opensslTimestamp(pki.dir, tsa, signature);
    if (Date.now() >= expires.getTime()) continue;
    const path = join(pki.dir, 'stamped.eml');
    writeFileSync(path, replaceDetachedSignature(message, (cms) => withUnsignedAttributes(cms, [timestampAttribute(token)])));
    stamped = { path, expires: expires.getTime() };
    break;
  }
  assert.ok(stamped, 'the token was obtained before the certificate expired');
  const { path } = stamped;
  await sleep(Math.max(0, stamped.expires + 1000 - Date.now()));

  const base = ['verify', '--ca', pki.caPath, '--revocation', 'off', '-i', path];
  const ok = await runCli([...base, '--validity-clock', 'timestamp']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stderr, /^OK: /);
  assert.match(ok.stderr, /timestamp: verified, used as the validity clock: Timestamped at .* by "O=Kakitome Test TSA, CN=CLI TSA"/);

  const json = JSON.parse((await runCli([...base, '--validity-clock', 'timestamp', '--json'])).stdout.toString());
  assert.equal(json.status, 'trusted');
  assert.equal(json.signers[0].trust.clock.source, 'timestamp');
  assert.equal(json.signers[0].trust.timestamp.status, 'verified');
  assert.equal(json.signers[0].trust.timestamp.used, true);
  assert.equal(json.signers[0].trust.timestamp.tsa, 'O=Kakitome Test TSA, CN=CLI TSA');

  const now = await runCli([...base, '--json']);
  assert.equal(now.status, 1);
  const nv = JSON.parse(now.stdout.toString());
  assert.equal(nv.code, 'CERT_EXPIRED');
  assert.equal(nv.signers[0].trust.timestamp.status, 'not-checked');

  const elsewhere = await runCli([...base, '--validity-clock', 'timestamp', '--tsa-ca', other.caPath]);
  assert.equal(elsewhere.status, 1);
  assert.match(elsewhere.stderr, /^FAILED \(TIMESTAMP_INVALID\)/);
  assert.match(elsewhere.stderr, /timestamp: refused \(CERT_UNTRUSTED\)/);
});
