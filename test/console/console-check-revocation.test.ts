/**
 * The check page and the revocation of the organisation's own certificates: the
 * internal CA's status comes from its records in the store (ca/internal-ca-revocation.ts),
 * so "Withdrawn?" is answered yes or no even when its CRL and OCSP locations cannot be
 * reached (it used to say "unknown" then), with no request to them at all. Every check
 * is judged by the validator the service keeps (service-cache.ts); a revocation made
 * in the store is seen at the next check: it moves the store's cache revision, and the
 * next check gets a new validator.
 *
 * The organisation's CA names CRL and OCSP locations on a loopback HTTP server
 * that counts requests; the service's fetcher is allowed loopback (the default
 * refuses internal addresses), so they could be asked if anything asked them.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { publishCrl } from '../../src/ca/publish-crl.ts';
import { revokeIssuedCertificate } from '../../src/ca/revoke-issued-certificate.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { createHttpFetcher } from '../../src/pki/create-http-fetcher.ts';
import { ServiceCache } from '../../src/server/service-cache.ts';
import { startServer, type RunningServer } from '../../src/server/start-server.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { OrganisationSettings } from '../../src/store/organisation-settings.ts';
import { PeopleDirectory } from '../../src/store/people-directory.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { Store } from '../../src/store/store.ts';
import { TenantDirectory } from '../../src/store/tenant-directory.ts';
import { StaticHttpServer } from '../pki/pki-builder.ts';
import { ConsoleClient, TEST_PASSWORD } from './console-client.ts';
import { en } from '../../src/server/console/messages/en.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-console-check-'));
const pki = new StaticHttpServer();
let store: Store;
let server: RunningServer;
let signed: Buffer;
let fingerprint: string;

before(async () => {
  await pki.start();
  store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'test' });
  // The OCSP location answers 404 (no responder runs there): the CRLs decide.
  await initCertificateAuthority(store, { name: 'Check KK', organization: 'Check KK', keyType: 'p256', crlUrl: pki.url('/smime.crl'), rootCrlUrl: pki.url('/root.crl'), ocspUrl: pki.url('/ocsp') });
  await new OrganisationSettings(store).setDomains(['check.example']);
  await new PeopleDirectory(store).addPerson({ email: 'admin@check.example', displayName: 'Admin', roles: ['administrator'], password: TEST_PASSWORD });
  const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const [mine] = await issueMailboxCertificate(store, { email: 'tanaka@check.example', keyType: 'p256', publicKey: key.publicKey });
  fingerprint = mine!.certificate.fingerprint256;
  await publishCrls();
  const body = 'The figures for the quarter are below.\r\n'.repeat(4000);
  signed = signMessage(Buffer.from(`From: Tanaka <tanaka@check.example>\r\nTo: someone@check.example\r\nSubject: Figures\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}`), { signers: [{ certificate: mine!.certificate, key: key.privateKey }] });
  const tenants = new TenantDirectory(store);
  server = await startServer(store, { host: '127.0.0.1', port: 0, maxMessageBytes: 1024 * 1024, shutdownGraceMs: 2000, revocation: 'allow-unknown' }, {
    log: () => undefined, version: 'test',
    console: { rates: { checkPerAddress: 1000 } },
    cache: new ServiceCache(store, tenants, { fetcher: createHttpFetcher({ allowInternal: ['127.0.0.1'] }) }),
  });
});

after(async () => {
  await server?.close();
  await store?.close();
  await pki.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function publishCrls(): Promise<void> {
  pki.files.set('/smime.crl', (await publishCrl(store)).der);
  pki.files.set('/root.crl', (await publishCrl(store, { caName: 'Check KK Root CA' })).der);
}

async function check(message = signed): Promise<{ status: number; verdict: string | undefined; page: string }> {
  const form = new FormData();
  form.set('message-file', new Blob([message], { type: 'message/rfc822' }), 'message.eml');
  const res = await new ConsoleClient(() => ({ url: server.url, origin: server.console.origin.baseUrl })).request('/check', { form, headers: { 'hx-request': 'true' } });
  const page = await res.text();
  return { status: res.status, verdict: /data-verdict="([^"]+)"/.exec(page)?.[1], page };
}

test('20 uploads at once are judged "not withdrawn" from the internal CA\'s records, without one request to its CRL or OCSP locations', async () => {
  const before = pki.requests;
  const results = await Promise.all(Array.from({ length: 20 }, check));
  for (const r of results) {
    assert.equal(r.status, 200);
    assert.equal(r.verdict, 'trusted');
    assert.ok(r.page.includes(en.verdict.revocationGood), 'not "could not be asked"');
  }
  // (Before, the leaf's OCSP location, its CA's CRL and the root's CRL: 3 requests.)
  assert.equal(pki.requests - before, 0);
});

test('the CA\'s CRL and OCSP locations unreachable: a good certificate of the internal CA is "not withdrawn", a revoked one "withdrawn" (before: "unknown" for both)', async () => {
  const served = new Map(pki.files);
  pki.files.clear();
  try {
    const messages: Record<string, Buffer> = {};
    for (const who of ['suzuki', 'sato']) {
      const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const [c] = await issueMailboxCertificate(store, { email: `${who}@check.example`, keyType: 'p256', publicKey: key.publicKey });
      messages[who] = signMessage(Buffer.from(`From: ${who} <${who}@check.example>\r\nTo: someone@check.example\r\nSubject: Hello\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n`), { signers: [{ certificate: c!.certificate, key: key.privateKey }] });
      if (who === 'sato') await revokeIssuedCertificate(store, c!.certificate.fingerprint256, 'affiliationChanged');
    }
    const good = await check(messages.suzuki);
    assert.equal(good.verdict, 'trusted');
    assert.ok(good.page.includes(en.verdict.revocationGood), 'not withdrawn');
    assert.ok(!good.page.includes(en.verdict.revocationUnknownText));
    const revoked = await check(messages.sato);
    assert.equal(revoked.verdict, 'valid-untrusted');
    assert.ok(revoked.page.includes(en.verdict.revocationRevoked), 'withdrawn');
    assert.ok(revoked.page.includes('CERT_REVOKED'));
  } finally {
    for (const [k, v] of served) pki.files.set(k, v);
  }
});

test('a certificate revoked in the store is revoked at the next check: the kept validator goes with the store revision', async () => {
  assert.equal((await check()).verdict, 'trusted');
  await revokeIssuedCertificate(store, fingerprint, 'keyCompromise');
  await publishCrls();
  const after = await check();
  assert.equal(after.status, 200);
  assert.equal(after.verdict, 'valid-untrusted');
  assert.ok(after.page.includes('CERT_REVOKED'), 'the verdict names the revocation');
});
