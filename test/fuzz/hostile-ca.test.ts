/**
 * A hostile or careless CA: certificates whose TBSCertificate is mutated and then
 * signed again by the real issuer key, so path validation (src/pki) and every
 * extension reader face damaged certificates behind valid signatures.
 *
 * Oracle: the validator resolves or fails with a typed error; a 'trusted' report
 * only ever holds RFC 5280 invariants: every intermediate is a CA (basicConstraints
 * cA TRUE, keyCertSign when keyUsage is present), the leaf is within its validity
 * period and allowed to sign (digitalSignature or nonRepudiation when keyUsage is present).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sequence, bitString } from '../../src/asn1/der.ts';
import { decode } from '../../src/asn1/ber.ts';
import { Certificate } from '../../src/x509/certificate.ts';
import { x509Sign, x509SignatureAlgorithm } from '../../src/x509/algorithms.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { readBasicConstraints } from '../../src/pki/read-certificate-extensions.ts';
import { rootCa, subCa, endEntity, nameConstraints, type Party } from '../pki/pki-builder.ts';
import { encodeName } from '../../src/x509/issue.ts';
import { fuzz, iterations, seed, timeoutFor, type Seed, REPLAYING } from './fuzz-kit.ts';

const root = rootCa('Fuzz Root');
const inter = subCa(root, 'Fuzz Intermediate');
const leaf = endEntity(inter, 'alice@example.com');
// A constrained intermediate (RFC 5280 4.2.1.10): permitted e-mail domain, an excluded directory name.
const constrained = subCa(root, 'Fuzz Constrained', { extraExtensions: [nameConstraints({ permittedEmail: ['example.com'], excludedDn: [encodeName({ organization: 'Evil Corp', country: 'XX' })] })] });
const carol = endEntity(constrained, 'carol@example.com');
const validate = createSignerValidator({ anchors: [root.cert], revocation: { mode: 'off' }, fetchCaIssuers: false });
const now = new Date();

/** The TBSCertificate of `c` as a seed of its own. */
const tbsSeed = (name: string, c: Certificate): Seed => seed(name, Buffer.from(c.tbs));

/** Signs `tbs` with the issuer's key (whatever the bytes are), as a Certificate DER. */
function reissue(tbs: Buffer, issuer: Party): Buffer {
  return sequence(tbs, x509SignatureAlgorithm(issuer.key), bitString(x509Sign(issuer.key, tbs)));
}

function checkTrusted(path: Certificate[], what: string): void {
  const [first, ...rest] = path;
  assert.ok(first, `${what}: trusted with an empty path`);
  assert.ok(first.notBefore <= now && now <= first.notAfter, `${what}: trusted outside the validity period`);
  const ku = first.keyUsage;
  if (ku) assert.ok(ku.has('digitalSignature') || ku.has('nonRepudiation'), `${what}: trusted leaf without a signing key usage`);
  for (const ca of rest) {
    assert.equal(readBasicConstraints(ca)?.ca, true, `${what}: trusted through a non-CA ${ca.subjectText}`);
    const cku = ca.keyUsage;
    if (cku) assert.ok(cku.has('keyCertSign'), `${what}: trusted through a CA without keyCertSign`);
  }
}

test('the harness re-issues valid certificates', async () => {
  const l = Certificate.fromDer(reissue(Buffer.from(leaf.cert.tbs), inter));
  const r = await validate({ certificate: l, carried: [inter.cert], usage: 'signing', from: ['alice@example.com'] });
  assert.equal(r.status, 'trusted', r.message);
  const c = await validate({ certificate: carol.cert, carried: [constrained.cert], usage: 'signing', from: ['carol@example.com'] });
  assert.equal(c.status, 'trusted', c.message);
  decode(l.der, { der: true });
});

test('mutated leaf TBSCertificate re-signed by the issuer: typed errors, trusted only within RFC 5280', { timeout: timeoutFor(1500, 10) }, async () => {
  let trusted = 0;
  await fuzz('hostile-ca-leaf', [tbsSeed('leaf', leaf.cert)], iterations(1500), async (m) => {
    const cert = Certificate.fromDer(reissue(m.bytes, inter));
    const r = await validate({ certificate: cert, carried: [inter.cert], usage: 'signing', from: ['alice@example.com'] });
    if (r.status === 'trusted') {
      trusted++;
      checkTrusted(r.path, m.what);
    } else assert.ok(r.code, `${m.what}: untrusted without a code`);
  });
  assert.ok(REPLAYING || trusted > 0);
});

test('mutated intermediate TBSCertificate re-signed by the root: typed errors, trusted only through a real CA', { timeout: timeoutFor(1500, 10) }, async () => {
  const seeds = [tbsSeed('intermediate', inter.cert), tbsSeed('constrained', constrained.cert)];
  await fuzz('hostile-ca-intermediate', seeds, iterations(1500), async (m, s) => {
    const ca = Certificate.fromDer(reissue(m.bytes, root));
    const ee = s === seeds[0] ? leaf : carol;
    const r = await validate({ certificate: ee.cert, carried: [ca], usage: 'signing', from: [ee.cert.emailAddresses[0]!] });
    if (r.status === 'trusted') checkTrusted(r.path, m.what);
    else assert.ok(r.code, `${m.what}: untrusted without a code`);
  });
});
