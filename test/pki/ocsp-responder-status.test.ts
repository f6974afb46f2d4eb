/**
 * The revocation status of a delegated OCSP responder (RFC 6960 4.2.2.2.1), against
 * real `openssl ocsp` responders on loopback: a responder certificate with
 * id-pkix-ocsp-nocheck is not checked; one without is checked by its CA's CRL or
 * by OCSP to a responder the CA signs for itself, and its answers are refused when
 * it is revoked or its status cannot be told. A responder that would vouch for
 * itself is not believed, and the check does not recurse.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { createHttpFetcher } from '../../src/pki/create-http-fetcher.ts';
import { buildOcspRequest } from '../../src/pki/check-ocsp.ts';
import type { SignerValidationInput } from '../../src/pki/types.ts';
import { rootCa, subCa, endEntity, buildCrl, ocspNoCheck, StaticHttpServer, OpensslOcspResponder, freePort, type Party } from './pki-builder.ts';

const OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';
let http: StaticHttpServer;
let root: Party;
let ca: Party;
const responders: OpensslOcspResponder[] = [];
const leaves: Record<string, Party> = {};
let carriedOnly: Party;
let carriedFromRevoked: Uint8Array;

const loopback = createHttpFetcher({ allowInternal: ['127.0.0.1'] });

function responderCert(name: string, extra: Parameters<typeof endEntity>[2] = {}): Party {
  return endEntity(ca, `${name}@ocsp.example.com`, { keyUsage: ['digitalSignature'], extKeyUsage: [OCSP_SIGNING], emails: [], ...extra });
}

async function responder(): Promise<OpensslOcspResponder> {
  const r = new OpensslOcspResponder(await freePort());
  responders.push(r);
  return r;
}

before(async () => {
  http = new StaticHttpServer();
  await http.start();
  root = rootCa('Responder Status Root');
  http.files.set('/root.crl', buildCrl({ issuer: root }));
  ca = subCa(root, 'Responder Status CA', { crlDistributionPoints: [http.url('/root.crl')] });

  // The CA answers for its responders itself (a responder the CA key signs).
  const byCa = await responder();
  const kinds = ['nocheck', 'good', 'revoked', 'none', 'via-ocsp', 'self'] as const;
  const servers = Object.fromEntries(await Promise.all(kinds.map(async (k) => [k, await responder()] as const)));
  const certs: Record<string, Party> = {
    nocheck: responderCert('nocheck', { extraExtensions: [ocspNoCheck()] }),
    good: responderCert('good', { crlDistributionPoints: [http.url('/ca.crl')] }),
    revoked: responderCert('revoked', { crlDistributionPoints: [http.url('/ca.crl')] }),
    none: responderCert('none'),
    'via-ocsp': responderCert('via-ocsp', { ocspUrls: [byCa.url] }),
    // Names the responder it signs for as its own source of status.
    self: responderCert('self', { ocspUrls: [servers.self!.url] }),
  };
  http.files.set('/ca.crl', buildCrl({ issuer: ca, revoked: [{ cert: certs.revoked!.cert, reason: 1 }] }));
  for (const k of kinds) leaves[k] = endEntity(ca, `leaf-${k}@example.com`, { ocspUrls: [servers[k]!.url] });
  carriedOnly = endEntity(ca, 'carried-only@example.com');

  await byCa.start(ca, ca, [{ cert: certs['via-ocsp']!.cert }, { cert: certs.self!.cert }]);
  await Promise.all(
    kinds.map((k) => servers[k]!.start(ca, certs[k]!, [{ cert: leaves[k]!.cert }, { cert: carriedOnly.cert }, ...(k === 'self' ? [{ cert: certs.self!.cert }] : [])])),
  );
  const res = await fetch(servers.revoked!.url, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: buildOcspRequest(carriedOnly.cert, ca.cert) });
  carriedFromRevoked = new Uint8Array(await res.arrayBuffer());
});

after(async () => {
  await Promise.all([...responders.map((r) => r.stop()), http?.stop()]);
});

function validate(name: string, mode: 'require' | 'allow-unknown' = 'require', more: Partial<SignerValidationInput> = {}) {
  const p = leaves[name] ?? carriedOnly;
  const v = createSignerValidator({ anchors: [root.cert], fetcher: loopback, revocation: { mode, timeoutMs: 3000 } });
  return v({ certificate: p.cert, carried: [ca.cert], usage: 'signing', from: [p.cert.emailAddresses[0]!], ...more });
}

test('a delegated responder with id-pkix-ocsp-nocheck is believed without checking it', async () => {
  const before = http.requests;
  const r = await validate('nocheck');
  assert.equal(r.status, 'trusted', r.message);
  assert.equal(r.revocation.certificates[0]!.source, 'ocsp');
  // Only the root's CRL (for the CA certificate) was fetched, nothing for the responder.
  assert.equal(http.requests - before, 1);
});

test('a delegated responder without nocheck, not revoked by its CA\'s CRL: the answer counts', async () => {
  const r = await validate('good');
  assert.equal(r.status, 'trusted', r.message);
  assert.equal(r.revocation.certificates[0]!.status, 'good');
  assert.equal(r.revocation.certificates[0]!.source, 'ocsp');
});

test('a delegated responder without nocheck, revoked on its CA\'s CRL: its answers are refused', async () => {
  const r = await validate('revoked');
  assert.equal(r.status, 'untrusted');
  assert.equal(r.code, 'REVOCATION_UNKNOWN');
  assert.match(r.revocation.message, /the responder's certificate ".*" was revoked .*\(keyCompromise\)/);
  // Allowing unknown status does not make the revoked responder's "good" count.
  const soft = await validate('revoked', 'allow-unknown');
  assert.equal(soft.revocation.status, 'unknown');
  assert.match(soft.message, /revocation unknown/);
});

test('a response from the revoked responder carried in the message is refused too', async () => {
  const r = await validate('carried', 'require', { carriedOcsp: [carriedFromRevoked] });
  assert.equal(r.code, 'REVOCATION_UNKNOWN');
  assert.match(r.revocation.message, /carried OCSP response: OCSP response rejected: the responder's certificate .* was revoked/);
});

test('a delegated responder without nocheck and without any revocation source: refused', async () => {
  const r = await validate('none');
  assert.equal(r.code, 'REVOCATION_UNKNOWN');
  assert.match(r.revocation.message, /lacks id-pkix-ocsp-nocheck and its own revocation status is unknown/);
});

test('a delegated responder checked by OCSP to its CA (a responder the CA signs for itself)', async () => {
  const r = await validate('via-ocsp');
  assert.equal(r.status, 'trusted', r.message);
  assert.equal(r.revocation.certificates[0]!.status, 'good');
});

test('a responder whose own status comes from itself is not believed, and the check ends', async () => {
  const t0 = Date.now();
  const r = await validate('self');
  assert.equal(r.code, 'REVOCATION_UNKNOWN');
  assert.match(r.revocation.message, /answered for itself without id-pkix-ocsp-nocheck|nested deeper than allowed/);
  assert.ok(Date.now() - t0 < 10_000);
});
