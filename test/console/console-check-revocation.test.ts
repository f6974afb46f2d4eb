/**
 * The check page under concurrent uploads: every check is judged by the validator
 * the service keeps (service-cache.ts), so a burst of uploads of mail from one
 * signer downloads the CA's CRLs once and asks an OCSP responder that does not
 * answer once, instead of once per upload (50 uploads at once waited 22 s for
 * 150 name lookups queued on libuv's four threads). A revocation made in the
 * store is seen at the next check all the same: it moves the store's cache
 * revision, and the next check gets a new validator.
 *
 * The organisation's CA names CRL and OCSP locations on a loopback HTTP server
 * that counts requests; the service's fetcher is allowed loopback (the default
 * refuses internal addresses), so the revocation answer comes from the real CRLs.
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

async function check(): Promise<{ status: number; verdict: string | undefined; page: string }> {
  const form = new FormData();
  form.set('message-file', new Blob([signed], { type: 'message/rfc822' }), 'message.eml');
  const res = await new ConsoleClient(() => ({ url: server.url, origin: server.console.origin.baseUrl })).request('/check', { form, headers: { 'hx-request': 'true' } });
  const page = await res.text();
  return { status: res.status, verdict: /data-verdict="([^"]+)"/.exec(page)?.[1], page };
}

test('20 uploads at once are judged with one download of each CRL and one request to the silent OCSP responder', async () => {
  const before = pki.requests;
  const results = await Promise.all(Array.from({ length: 20 }, check));
  for (const r of results) {
    assert.equal(r.status, 200);
    assert.equal(r.verdict, 'trusted');
    // The CRLs answered: not "could not be asked".
    assert.ok(r.page.includes(en.verdict.revocationGood), 'the revocation answer comes from the CRL');
  }
  // The leaf's OCSP (404, then remembered as down for both certificates), its CA's CRL, the root's CRL for the issuing CA.
  assert.equal(pki.requests - before, 3);
  // Later checks are answered from what the validator keeps.
  await check();
  assert.equal(pki.requests - before, 3);
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
