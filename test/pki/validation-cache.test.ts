/**
 * Warm caches: once a sender's chain and revocation answers are known, validating
 * further messages from that sender does no network I/O and gives the same verdict,
 * whether the certificate object is reused or parsed afresh from each message.
 * (How fast that is gets measured in bench/trust-validation.ts, not here: timing
 * assertions in tests only measure how busy the machine is.)
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { createHttpFetcher } from '../../src/pki/create-http-fetcher.ts';
import { Certificate } from '../../src/x509/certificate.ts';
import { rootCa, subCa, endEntity, buildCrl, StaticHttpServer } from './pki-builder.ts';

const http = new StaticHttpServer();
after(() => http.stop());

test('warm caches answer repeat senders without network traffic', { timeout: 60_000 }, async () => {
  await http.start();
  const root = rootCa('Cache Root');
  const ca = subCa(root, 'Cache CA', { crlDistributionPoints: [http.url('/root.crl')] });
  http.files.set('/root.crl', buildCrl({ issuer: root }));
  http.files.set('/ca.crl', buildCrl({ issuer: ca }));
  const senders = Array.from({ length: 20 }, (_, i) => endEntity(ca, `user${i}@example.com`, { crlDistributionPoints: [http.url('/ca.crl')] }, 'p256', 'cache'));
  const v = createSignerValidator({ anchors: [root.cert], revocation: { mode: 'hard-fail' }, fetcher: createHttpFetcher({ allowedHosts: ['127.0.0.1'] }) });
  for (const s of senders) {
    const r = await v({ certificate: s.cert, carried: [ca.cert], usage: 'signing', from: [s.cert.emailAddresses[0]!] });
    assert.equal(r.status, 'trusted', r.message);
  }
  const requests = http.requests;
  for (let i = 0; i < 400; i++) {
    const s = senders[i % senders.length]!;
    // Every other round the certificate is parsed again, as it is from each incoming message.
    const cert = i % 2 ? Certificate.fromDer(s.cert.der) : s.cert;
    const r = await v({ certificate: cert, carried: [ca.cert], usage: 'signing', from: [`user${i % senders.length}@example.com`] });
    assert.equal(r.status, 'trusted', r.message);
    assert.equal(r.revocation.status, 'good');
  }
  assert.equal(http.requests, requests, 'no network traffic once warm');
  // A different From on a cached chain is still judged afresh.
  const r = await v({ certificate: senders[0]!.cert, carried: [ca.cert], usage: 'signing', from: ['mallory@example.com'] });
  assert.equal(r.code, 'IDENTITY_MISMATCH');
});
