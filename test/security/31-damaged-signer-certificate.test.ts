/**
 * docs/security.md section 28 ("Robustness: a damaged signer certificate"): a signer
 * whose own certificate carries an extension the verifier reads that cannot be
 * decoded (a subjectAltName whose SmtpUTF8Mailbox is not a UTF8String, a keyUsage
 * that is no BIT STRING, an unreadable cRLDistributionPoints) gets a verdict that
 * names the problem, MALFORMED in the signer's trust report, in every reader:
 * verifyMessage, verifyMessageStream, `kakitome verify --json`, POST /api/v1/verify
 * and the gateway's Authentication-Results (smime=fail, the message delivered).
 * Before, verification threw MALFORMED and gave no verdict at all (the gateway,
 * seeing a thrown MALFORMED, labelled the message permerror without naming the
 * signer). The messages are signed by `openssl smime`, which signs with such certificates.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { TestPki, rsaKeyPair } from '../helpers/pki.ts';
import { OPENSSL, requireOpenssl } from '../peers/openssl.ts';
import { runPeerOk } from '../peers/run-peer.ts';
import { runCli } from '../cli/run-cli.ts';
import { chunks } from './security-kit.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { Certificate } from '../../src/x509/certificate.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { sequence, oid, octetString, tlv, boolean, integer } from '../../src/asn1/der.ts';
import { OID } from '../../src/asn1/oids.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { verifyMessageStream } from '../../src/smime/verify-message-stream.ts';
import { viewVerdict } from '../../src/smime/verdict-view.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { smimeResultOfVerdict } from '../../src/gateway/smime-result.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { startServer } from '../../src/server/start-server.ts';
import { createWorld, openWorldStore, sendTo, Sink } from '../gateway/gateway-fixture.ts';
import { startGateway } from '../../src/gateway/start-gateway.ts';

const pki = new TestPki('Damaged Signer Root');
after(() => pki.cleanup());
const validateSigner = createSignerValidator({ anchors: [pki.caCert], revocation: { mode: 'off' }, fetchCaIssuers: false });

const extension = (id: string, value: Uint8Array) => sequence(oid(id), octetString(value));
const ADDRESS = 'damaged@example.com';
/** SmtpUTF8Mailbox (RFC 9598) as an IA5String, where it must be a UTF8String. */
const badSan = extension(OID.subjectAltName, sequence(
  tlv(0xa0, oid(OID.smtpUtf8Mailbox), tlv(0xa0, tlv(0x16, Buffer.from(ADDRESS)))),
  tlv(0x81, Buffer.from(ADDRESS)),
));
/** keyUsage as a BOOLEAN. */
const badKeyUsage = extension(OID.keyUsage, boolean(true));
/** cRLDistributionPoints whose DistributionPoint holds an INTEGER. */
const badCrlDp = extension(OID.crlDistributionPoints, sequence(sequence(integer(7))));

const CASES: Array<{ name: string; extension: Uint8Array; names: RegExp; emails?: boolean }> = [
  { name: 'subjectAltName', extension: badSan, names: /subjectAltName extension cannot be read \(SmtpUTF8Mailbox is not a UTF8String\)/ },
  { name: 'keyUsage', extension: badKeyUsage, names: /keyUsage extension cannot be read/, emails: true },
  { name: 'cRLDistributionPoints', extension: badCrlDp, names: /cRLDistributionPoints extension cannot be read/, emails: true },
];

/** A signing certificate under `ca` with `broken` among its extensions; its key and PEM paths. */
function damagedSigner(ca: { caCert: Certificate; caKey: TestPki['caKey']; dir: string }, name: string, broken: Uint8Array): { certPath: string; keyPath: string } {
  const { publicKey, privateKey } = rsaKeyPair(2048);
  const usual = broken === badSan ? {} : { emails: [ADDRESS] };
  const cert = issueCertificate({
    subject: { commonName: `Damaged ${name}`, emailAddress: ADDRESS }, publicKey, issuer: ca.caCert, signingKey: ca.caKey,
    ...(broken === badKeyUsage ? {} : { keyUsage: ['digitalSignature'] }), extKeyUsage: [OID.emailProtection], ...usual, extraExtensions: [broken],
  });
  const certPath = join(ca.dir, `damaged-${name}.pem`);
  const keyPath = join(ca.dir, `damaged-${name}.key`);
  writeFileSync(certPath, encodePem('CERTIFICATE', cert.der));
  writeFileSync(keyPath, privateKey.export({ format: 'pem', type: 'pkcs8' }));
  return { certPath, keyPath };
}

/** `openssl smime -sign` (multipart/signed) of a plain message from ADDRESS. */
async function signWith(dir: string, signer: { certPath: string; keyPath: string }, tag: string, to = 'reader@example.org'): Promise<{ path: string; bytes: Buffer }> {
  requireOpenssl();
  const input = join(dir, `${tag}.txt`);
  const path = join(dir, `${tag}.eml`);
  writeFileSync(input, 'Content-Type: text/plain\r\n\r\nThe quarterly figures are attached.\r\n');
  await runPeerOk(OPENSSL, ['smime', '-sign', '-md', 'sha256', '-in', input, '-signer', signer.certPath, '-inkey', signer.keyPath, '-from', ADDRESS, '-to', to, '-subject', 'Figures', '-out', path]);
  const { readFileSync } = await import('node:fs');
  return { path, bytes: readFileSync(path) };
}

for (const c of CASES) {
  test(`a signer certificate with an unreadable ${c.name}: verifyMessage and the stream give a verdict that names it`, async () => {
    const signed = await signWith(pki.dir, damagedSigner(pki, c.name, c.extension), c.name);
    for (const [reader, run] of [
      ['verifyMessage', () => verifyMessage(signed.bytes, { validateSigner })],
      ['verifyMessageStream', () => verifyMessageStream(chunks(signed.bytes, 97), { validateSigner, output: new PassThrough().resume() })],
    ] as const) {
      const v = await run();
      assert.equal(v.status, 'valid-untrusted', `${reader}: ${v.summary}`);
      assert.equal(v.code, 'MALFORMED', reader);
      const s = v.signers[0]!;
      assert.equal(s.trust?.status, 'untrusted');
      assert.equal(s.trust?.code, 'MALFORMED');
      assert.match(s.trust!.message, c.names, reader);
      assert.match(v.summary, /certificate is damaged/);
      assert.match(v.summary, c.names);
      assert.equal(smimeResultOfVerdict(v).result, 'fail', `${reader}: the gateway's smime result`);
      const view = viewVerdict(v);
      assert.equal(view.signers[0]!.status, 'untrusted');
      assert.deepEqual(view.signers[0]!.email, c.emails ? [ADDRESS] : [], 'an unreadable subjectAltName shows no address');
    }
  });
}

test('an intermediate CA with an unreadable subjectAltName: that path fails, named, and no throw', async () => {
  const { publicKey, privateKey } = rsaKeyPair(2048);
  const sub = issueCertificate({ subject: { commonName: 'Damaged Sub CA' }, publicKey, issuer: pki.caCert, signingKey: pki.caKey, ca: true, keyUsage: ['keyCertSign', 'cRLSign'], extraExtensions: [badSan] });
  const leafKeys = rsaKeyPair(2048);
  const leaf = issueCertificate({ subject: { commonName: 'Under damaged' }, publicKey: leafKeys.publicKey, issuer: sub, signingKey: privateKey, keyUsage: ['digitalSignature'], extKeyUsage: [OID.emailProtection], emails: [ADDRESS] });
  const r = await validateSigner({ certificate: leaf, carried: [sub], usage: 'signing', from: [ADDRESS] });
  assert.equal(r.status, 'untrusted');
  assert.equal(r.code, 'MALFORMED');
  assert.match(r.message, /intermediate CA "CN=Damaged Sub CA" cannot be judged: its subjectAltName extension cannot be read/);
});

test('a trust anchor with an unreadable subjectAltName still anchors: validation never reads it there', async () => {
  const { publicKey, privateKey } = rsaKeyPair(2048);
  const anchor = issueCertificate({ subject: { commonName: 'Odd Root' }, publicKey, signingKey: privateKey, ca: true, keyUsage: ['keyCertSign', 'cRLSign'], extraExtensions: [badSan] });
  const leafKeys = rsaKeyPair(2048);
  const leaf = issueCertificate({ subject: { commonName: 'Under odd root' }, publicKey: leafKeys.publicKey, issuer: anchor, signingKey: privateKey, keyUsage: ['digitalSignature'], extKeyUsage: [OID.emailProtection], emails: [ADDRESS] });
  const r = await createSignerValidator({ anchors: [anchor], revocation: { mode: 'off' }, fetchCaIssuers: false })({ certificate: leaf, carried: [], usage: 'signing', from: [ADDRESS] });
  assert.equal(r.status, 'trusted', r.message);
});

test('kakitome verify --json: the verdict, exit 2 (a verdict whose code is MALFORMED, docs/cli.md)', async () => {
  const signed = await signWith(pki.dir, damagedSigner(pki, 'cli', badSan), 'cli');
  const r = await runCli(['verify', '--ca', pki.caPath, '--revocation', 'off', '--json', '-i', signed.path]);
  assert.equal(r.status, 2, r.stderr);
  const v = JSON.parse(r.stdout.toString());
  assert.equal(v.status, 'valid-untrusted');
  assert.equal(v.code, 'MALFORMED');
  assert.match(v.signers[0].trust.message, /subjectAltName extension cannot be read/);
});

test('POST /api/v1/verify: 200 with the verdict, not a 400 problem', async () => {
  const store = await Store.open(openSqliteEngine(join(pki.dir, 'store.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'tester' });
  await store.importCertificate(pki.caCert, { trust: 'trusted' });
  const tenants = new TenantDirectory(store);
  await tenants.addTenant('acme', ['acme.example']);
  const key = (await tenants.createApiKey('acme', { scopes: ['verify'] })).token;
  const server = await startServer(store, { host: '127.0.0.1', port: 0, maxMessageBytes: 1024 * 1024, shutdownGraceMs: 1000, revocation: 'allow-unknown' }, { log: () => {}, version: 'test' });
  try {
    const signed = await signWith(pki.dir, damagedSigner(pki, 'api', badSan), 'api');
    const r = await fetch(new URL('/api/v1/verify', server.url), { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'message/rfc822' }, body: signed.bytes });
    const text = await r.text();
    assert.equal(r.status, 200, text);
    const v = JSON.parse(text);
    assert.equal(v.status, 'valid-untrusted');
    assert.equal(v.code, 'MALFORMED');
    assert.match(v.signers[0].trust.message, /subjectAltName extension cannot be read/);
  } finally {
    await server.close(); // and the store
  }
});

test('the gateway delivers the message with smime=fail (MALFORMED), not a temporary failure', async () => {
  const world = await createWorld();
  const store = await openWorldStore(world);
  const sink = await new Sink().start();
  const gateway = await startGateway({ listen: { host: '127.0.0.1', port: 0 }, nextHop: { host: '127.0.0.1', port: sink.port }, domains: new Set(['corp.test']), authservId: 'mx.corp.test', lmtp: false }, store, () => {});
  try {
    // The world's partner PKI is trusted by the gateway's store: the damaged signer chains to it.
    const signed = await signWith(world.dir, damagedSigner(world.pki, 'gateway', badSan), 'gateway', 'alice@corp.test');
    const r = await sendTo(gateway.listening.port, ADDRESS, ['alice@corp.test'], signed.bytes);
    assert.equal(r.code, 250, r.response);
    const got = sink.deliveryTo('alice@corp.test').message.toString('latin1');
    const ar = got.split('\r\n\r\n')[0]!.replace(/\r\n[ \t]/g, ' ').split('\r\n').find((l) => l.startsWith('Authentication-Results: mx.corp.test'))!;
    assert.match(ar, /smime=fail/, ar);
    assert.match(ar, /MALFORMED/, ar);
  } finally {
    await gateway.stop();
    await sink.stop();
    await store.close();
    world.cleanup();
  }
});
