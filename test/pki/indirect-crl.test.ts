/**
 * Indirect CRLs (RFC 5280 5.2.5 indirectCRL, 5.3.3 certificateIssuer, 4.2.1.13
 * cRLIssuer, 6.3.3) and reason-partitioned CRLs (onlySomeReasons, DistributionPoint
 * reasons), served over HTTP on loopback and carried in the message. Hostile cases:
 * a CRL issuer claiming indirectness for a CA that did not name it, entries for
 * another issuer's certificate with the same serial, a forged or unanchored CRL
 * issuer, a revoked CRL issuer, reasons left uncovered.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodePem } from '../../src/asn1/pem.ts';
import { createSignerValidator, type SignerValidatorOptions } from '../../src/pki/create-signer-validator.ts';
import { createHttpFetcher } from '../../src/pki/create-http-fetcher.ts';
import type { SignerValidationInput } from '../../src/pki/types.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { rootCa, subCa, endEntity, buildCrl, distributionPoints, StaticHttpServer, type Party } from './pki-builder.ts';

const KEY_COMPROMISE = 1;
const CA_COMPROMISE = 2;
const REST = [3, 4, 5, 6, 7, 8];

let http: StaticHttpServer;
let root: Party;
let delegating: Party; // names an indirect CRL issuer in its certificates
let crlIssuer: Party; // the indirect CRL issuer, certified by the root
let other: Party; // another CA, for entries of "another issuer"
let plain: Party; // a CA that did not delegate
let partitioned: Party; // publishes reason-partitioned CRLs
const L: Record<string, Party> = {};

before(async () => {
  http = new StaticHttpServer();
  await http.start();
  root = rootCa('Indirect CRL Root');
  const rootCrl = { crlDistributionPoints: [http.url('/root.crl')] };
  delegating = subCa(root, 'Delegating CA', rootCrl);
  other = subCa(root, 'Other CA', rootCrl);
  plain = subCa(root, 'Plain CA', rootCrl);
  partitioned = subCa(root, 'Partitioned CA', rootCrl);
  crlIssuer = endEntity(root, 'crl-issuer@example.com', { keyUsage: ['cRLSign'], extKeyUsage: [], emails: [], ...rootCrl }, 'p256', 'crl-issuer');
  const revokedIssuer = endEntity(root, 'revoked-crl-issuer@example.com', { keyUsage: ['cRLSign'], extKeyUsage: [], emails: [], ...rootCrl }, 'p256', 'revoked-crl-issuer');
  const unanchoredRoot = rootCa('Unrelated Root');
  // Same name as the real CRL issuer, certified by a root nobody trusts.
  const impostor = { cert: issueCertificate({ subject: { commonName: 'crl-issuer', organization: 'Kakitome Trust Tests' }, publicKey: crlIssuer.cert.publicKey, issuer: unanchoredRoot.cert, signingKey: unanchoredRoot.key, keyUsage: ['cRLSign'] }), key: crlIssuer.key };
  assert.equal(Buffer.compare(impostor.cert.subject, crlIssuer.cert.subject), 0);
  L.impostor = impostor;
  http.files.set('/root.crl', buildCrl({ issuer: root, revoked: [{ cert: revokedIssuer.cert, reason: KEY_COMPROMISE }] }));

  const indirect = (name: string, path: string, issuerName: Uint8Array = crlIssuer.cert.subject, serial?: Uint8Array) =>
    (L[name] = endEntity(delegating, `${name}@example.com`, { extraExtensions: [distributionPoints([{ uris: [http.url(path)], crlIssuer: issuerName }])], ...(serial ? { serial } : {}) }));
  indirect('good', '/indirect.crl', crlIssuer.cert.subject, Buffer.from('4a000000000000000000000000000001', 'hex'));
  indirect('revoked', '/indirect.crl');
  indirect('not-marked', '/not-marked.crl');
  indirect('forged', '/forged.crl');
  indirect('revoked-issuer', '/by-revoked-issuer.crl', revokedIssuer.cert.subject);
  indirect('unanchored', '/unanchored.crl');
  L.sameSerialElsewhere = endEntity(other, 'same-serial@example.com', { serial: Buffer.from('4a000000000000000000000000000001', 'hex') });
  const idp = (path: string) => ({ uris: [http.url(path)], indirectCRL: true });
  http.files.set('/indirect.crl', buildCrl({
    issuer: crlIssuer,
    idp: idp('/indirect.crl'),
    revoked: [
      // Another CA's certificate with the same serial as 'good': it must not revoke 'good'.
      { cert: L.sameSerialElsewhere.cert, reason: KEY_COMPROMISE, certificateIssuer: other.cert.subject },
      { cert: L.revoked!.cert, reason: KEY_COMPROMISE, certificateIssuer: delegating.cert.subject },
    ],
  }));
  http.files.set('/not-marked.crl', buildCrl({ issuer: crlIssuer, idp: { uris: [http.url('/not-marked.crl')] } }));
  http.files.set('/forged.crl', buildCrl({ issuer: { cert: crlIssuer.cert, key: other.key }, idp: idp('/forged.crl') }));
  http.files.set('/by-revoked-issuer.crl', buildCrl({ issuer: revokedIssuer, idp: idp('/by-revoked-issuer.crl') }));
  http.files.set('/unanchored.crl', buildCrl({ issuer: impostor, idp: idp('/unanchored.crl') }));
  L.revokedIssuer = revokedIssuer;

  // A CA that did not delegate: its certificates point at its own CRL location.
  L.plain = endEntity(plain, 'plain@example.com', { crlDistributionPoints: [http.url('/plain.crl')] });
  L.plainRevoked = endEntity(plain, 'plain-revoked@example.com', { crlDistributionPoints: [http.url('/plain.crl')] });
  // Served there: the CRL issuer's indirect CRL speaking for the plain CA.
  http.files.set('/plain.crl', buildCrl({ issuer: crlIssuer, idp: idp('/plain.crl'), revoked: [{ cert: L.plainRevoked.cert, reason: KEY_COMPROMISE, certificateIssuer: plain.cert.subject }] }));
  // A direct CRL that lists other issuers' certificates without saying it is indirect.
  L.plainMixed = endEntity(plain, 'plain-mixed@example.com', { crlDistributionPoints: [http.url('/mixed.crl')] });
  http.files.set('/mixed.crl', buildCrl({ issuer: plain, revoked: [{ cert: L.sameSerialElsewhere.cert, certificateIssuer: other.cert.subject }] }));

  // Reason-partitioned CRLs of one CA.
  const parts = (name: string, dps: Array<{ uris: string[]; reasons?: number[] }>) =>
    (L[name] = endEntity(partitioned, `${name}@example.com`, { extraExtensions: [distributionPoints(dps.map((d) => ({ ...d, uris: d.uris.map((u) => http.url(u)) })))] }));
  parts('p-good', [{ uris: ['/p-key.crl'] }, { uris: ['/p-rest.crl'] }]);
  parts('p-revoked', [{ uris: ['/p-key.crl'] }, { uris: ['/p-rest.crl'] }]);
  parts('p-partial', [{ uris: ['/p-key.crl'] }, { uris: ['/p-missing.crl'] }]);
  parts('p-dp-reasons', [{ uris: ['/p-full.crl'], reasons: [KEY_COMPROMISE] }]);
  parts('p-dp-reasons-all', [{ uris: ['/p-full.crl'], reasons: [KEY_COMPROMISE, CA_COMPROMISE] }, { uris: ['/p-full-2.crl'], reasons: REST }]);
  http.files.set('/p-key.crl', buildCrl({ issuer: partitioned, idp: { uris: [http.url('/p-key.crl')], onlySomeReasons: [KEY_COMPROMISE, CA_COMPROMISE] } }));
  http.files.set('/p-rest.crl', buildCrl({ issuer: partitioned, idp: { uris: [http.url('/p-rest.crl')], onlySomeReasons: REST }, revoked: [{ cert: L['p-revoked']!.cert, reason: 4 }] }));
  http.files.set('/p-full.crl', buildCrl({ issuer: partitioned }));
  http.files.set('/p-full-2.crl', buildCrl({ issuer: partitioned }));
});

after(async () => {
  await http?.stop();
});

const loopback = createHttpFetcher({ allowInternal: ['127.0.0.1'] });

function validate(name: string, more: Partial<SignerValidationInput> = {}, extra: SignerValidatorOptions = {}) {
  const p = L[name]!;
  const v = createSignerValidator({ anchors: [root.cert], fetcher: loopback, ...extra, revocation: { mode: 'require', prefer: 'crl', timeoutMs: 3000, ...extra.revocation } });
  return v({ certificate: p.cert, carried: [delegating.cert, plain.cert, partitioned.cert, crlIssuer.cert], usage: 'signing', from: [p.cert.emailAddresses[0]!], ...more });
}

test('indirect CRL: a certificate not listed is good, by the CRL issuer its CA named', async () => {
  const r = await validate('good');
  assert.equal(r.status, 'trusted', r.message);
  assert.deepEqual(r.revocation.certificates.map((c) => [c.status, c.source]), [['good', 'crl'], ['good', 'crl']]);
});

test('indirect CRL: a certificate listed under its issuer (certificateIssuer) is revoked', async () => {
  const r = await validate('revoked');
  assert.equal(r.code, 'CERT_REVOKED');
  assert.equal(r.revocation.reason, 'keyCompromise');
});

test('indirect CRL: an entry for another issuer\'s certificate with the same serial does not revoke ours', async () => {
  assert.equal(Buffer.compare(L.good!.cert.serial, L.sameSerialElsewhere!.cert.serial), 0);
  const r = await validate('good');
  assert.equal(r.revocation.status, 'good');
});

test('indirect CRL: the CRL issuer\'s certificate must be found and chain to the same anchor', async () => {
  const r = await validate('good', { carried: [delegating.cert] });
  assert.equal(r.code, 'REVOCATION_UNKNOWN');
  assert.match(r.revocation.message, /no certificate of the indirect CRL issuer .* chains to the trust anchor/);
  // An impostor with the CRL issuer's name and key, certified by a root nobody trusts.
  const u = await validate('unanchored', { carried: [delegating.cert, L.impostor!.cert] });
  assert.equal(u.code, 'REVOCATION_UNKNOWN');
  assert.match(u.revocation.message, /chains to the trust anchor/);
});

test('indirect CRL: not marked indirect, signed by another key, or by a revoked CRL issuer: refused', async () => {
  const notMarked = await validate('not-marked');
  assert.equal(notMarked.code, 'REVOCATION_UNKNOWN');
  assert.match(notMarked.revocation.message, /not marked indirect/);
  const forged = await validate('forged');
  assert.equal(forged.code, 'REVOCATION_UNKNOWN');
  assert.match(forged.revocation.message, /bad signature/);
  const byRevoked = await validate('revoked-issuer', { carried: [delegating.cert, L.revokedIssuer!.cert] });
  assert.equal(byRevoked.code, 'REVOCATION_UNKNOWN');
  assert.match(byRevoked.revocation.message, /the indirect CRL issuer .* was revoked/);
});

test('hostile: a CRL claiming indirectness for a CA that did not name its issuer speaks for nothing', async () => {
  const good = await validate('plain');
  assert.equal(good.code, 'REVOCATION_UNKNOWN', 'its "good" is not believed');
  assert.match(good.revocation.message, /claims to be an indirect CRL issuer although the certificate's CA did not name it/);
  const revoked = await validate('plainRevoked');
  assert.equal(revoked.code, 'REVOCATION_UNKNOWN', 'nor its "revoked"');
});

test('hostile: a CRL not marked indirect that lists another issuer\'s certificates is unusable', async () => {
  const r = await validate('plainMixed');
  assert.equal(r.code, 'REVOCATION_UNKNOWN');
  assert.match(r.revocation.message, /not marked indirect lists certificates of another issuer/);
});

test('reason-partitioned CRLs: good when together they cover every reason, revoked when one lists it', async () => {
  const r = await validate('p-good');
  assert.equal(r.status, 'trusted', r.message);
  assert.equal(r.revocation.certificates[0]!.source, 'crl');
  const rev = await validate('p-revoked');
  assert.equal(rev.code, 'CERT_REVOKED');
  assert.equal(rev.revocation.reason, 'superseded');
});

test('reason-partitioned CRLs: a reason no CRL covers leaves the status unknown', async () => {
  const r = await validate('p-partial');
  assert.equal(r.code, 'REVOCATION_UNKNOWN');
  assert.match(r.revocation.message, /cover only some revocation reasons \(keyCompromise, cACompromise\); none covers affiliationChanged, superseded/);
  const soft = await validate('p-partial', {}, { revocation: { mode: 'allow-unknown' } });
  assert.equal(soft.status, 'trusted');
  assert.equal(soft.revocation.status, 'unknown');
});

test('distribution point reasons: a point for some reasons covers only those', async () => {
  const r = await validate('p-dp-reasons');
  assert.equal(r.code, 'REVOCATION_UNKNOWN');
  assert.match(r.revocation.message, /cover only some revocation reasons \(keyCompromise\)/);
  const all = await validate('p-dp-reasons-all');
  assert.equal(all.status, 'trusted', all.message);
});

test('reason-partitioned CRLs carried in the message add up the same way', async () => {
  const offline = async (): Promise<never> => {
    throw new Error('offline');
  };
  const both = [http.files.get('/p-key.crl')!, http.files.get('/p-rest.crl')!, http.files.get('/root.crl')!];
  const r = await validate('p-good', { carriedCrls: both }, { fetcher: offline });
  assert.equal(r.status, 'trusted', r.message);
  assert.equal(r.revocation.certificates[0]!.source, 'embedded-crl');
  const one = await validate('p-good', { carriedCrls: [both[0]!, both[2]!] }, { fetcher: offline });
  assert.equal(one.code, 'REVOCATION_UNKNOWN');
  assert.match(one.revocation.message, /carried CRLs cover only some revocation reasons/);
});

test('an indirect CRL carried in the message is used for the certificate whose CA named its issuer', async () => {
  const offline = async (): Promise<never> => {
    throw new Error('offline');
  };
  const carriedCrls = [http.files.get('/indirect.crl')!, http.files.get('/root.crl')!];
  const good = await validate('good', { carriedCrls }, { fetcher: offline });
  assert.equal(good.status, 'trusted', good.message);
  const revoked = await validate('revoked', { carriedCrls }, { fetcher: offline });
  assert.equal(revoked.code, 'CERT_REVOKED');
});

test('openssl verify -crl_check -extended_crl decides the same on the same certificates and CRLs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-indirect-'));
  try {
    const pem = (certs: Party[]) => certs.map((p) => encodePem('CERTIFICATE', p.cert.der)).join('');
    writeFileSync(join(dir, 'root.pem'), pem([root]));
    writeFileSync(join(dir, 'untrusted.pem'), pem([delegating, plain, partitioned, crlIssuer]));
    // OpenSSL takes CRLs from the file by issuer and scope, not from the certificate's
    // distribution points: a complete CRL of the partitioned CA would answer for every
    // certificate, so the file holds only the partitions (as a message would carry them).
    const crls = ['/indirect.crl', '/plain.crl', '/p-key.crl', '/p-rest.crl', '/root.crl'].map((p) => encodePem('X509 CRL', http.files.get(p)!)).join('');
    writeFileSync(join(dir, 'crls.pem'), crls);
    const cases: Array<[string, boolean]> = [['good', true], ['revoked', false], ['plain', false], ['plainRevoked', false], ['p-good', true], ['p-revoked', false], ['p-partial', false]];
    for (const [name, accept] of cases) {
      writeFileSync(join(dir, 'leaf.pem'), pem([L[name]!]));
      const o = spawnSync('openssl', ['verify', '-crl_check', '-extended_crl', '-CRLfile', 'crls.pem', '-CAfile', 'root.pem', '-untrusted', 'untrusted.pem', 'leaf.pem'], { cwd: dir, encoding: 'utf8' });
      assert.equal(o.status === 0, accept, `openssl on ${name}: ${o.stdout}${o.stderr}`);
      const ours = await validate(name);
      assert.equal(ours.status === 'trusted', accept, `ours on ${name}: ${ours.message}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
