/**
 * "My certificate" beyond the first one, over a real socket: renewal (a new key,
 * the old one kept), a certificate from a PKCS#10 request made by openssl (the
 * CA's own checks: the person's address only, proof of possession), the keys for
 * old mail in one PKCS#12 file (openssl reads every key), and the lost device
 * (keyCompromise in the store and in the CRL, keys retired, a new certificate),
 * each handed over once to its owner only, and in the audit log.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { MAX_PKCS12_IDENTITIES } from '../../src/keys/export-pkcs12.ts';
import { importPkcs12 } from '../../src/keys/import-pkcs12.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { publishCrl } from '../../src/ca/publish-crl.ts';
import { listCertificateAuthorities } from '../../src/ca/certificate-authority.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { OrganisationSettings } from '../../src/store/organisation-settings.ts';
import { startServer, type RunningServer } from '../../src/server/start-server.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { ja } from '../../src/server/console/messages/ja.ts';
import { readPlist } from './read-plist.ts';
import { ConsoleClient, TEST_PASSWORD } from './console-client.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-console-keys-'));
let server: RunningServer;
let store: Store;
let origin: string;

class Browser extends ConsoleClient {
  constructor(headers: Record<string, string> = {}) {
    super(() => ({ url: server.url, origin }), headers);
  }
}

function openssl(args: string[], input?: Buffer): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(input ? { input } : {}) });
}

before(async () => {
  store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'test' });
  await initCertificateAuthority(store, { name: 'Keys Corp', keyType: 'p256', crlUrl: 'http://pki.example.co.jp/smime.crl', rootCrlUrl: 'http://pki.example.co.jp/root.crl' });
  const org = new OrganisationSettings(store);
  await org.setName('Keys KK');
  await org.setDomains(['example.co.jp']);
  server = await startServer(store, { host: '127.0.0.1', port: 0, maxMessageBytes: 1024 * 1024, shutdownGraceMs: 2000, revocation: 'allow-unknown' }, {
    log: () => {}, version: 'test',
    console: { passwordHash: { memoryKiB: 1024, passes: 1, parallelism: 1 }, rates: { issuePerPerson: 100 } },
  });
  origin = server.console.origin.baseUrl;
  for (const name of ['taro', 'hanako', 'jiro']) await server.console.people.addPerson({ email: `${name}@example.co.jp`, password: TEST_PASSWORD });
  await server.console.people.addPerson({ email: 'admin@example.co.jp', password: TEST_PASSWORD, roles: ['administrator'] });
});

after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Handed { html: string; password: string; download: string; profile?: string }

function handed(html: string): Handed {
  const password = /data-handover-password>([A-Z0-9-]+)</.exec(html)?.[1];
  const download = /href="(\/me\/certificate\/download\/[A-Za-z0-9_-]+)" download>/.exec(html)?.[1];
  assert.ok(password && download, html);
  const profile = /href="(\/me\/certificate\/download\/[A-Za-z0-9_-]+)" download data-mobileconfig/.exec(html)?.[1];
  return { html, password, download, ...(profile ? { profile } : {}) };
}

async function take(b: Browser, path: string): Promise<Buffer> {
  const r = await b.request(path);
  assert.equal(r.status, 200, path);
  const bytes = Buffer.from(await r.arrayBuffer());
  assert.equal((await b.request(path)).status, 404, 'a download works once');
  return bytes;
}

/** What openssl reads from a PKCS#12 file: its certificates' subjects and its keys (PEM). */
function opensslReads(p12: Buffer, password: string): { keys: string[]; certs: string[] } {
  const file = join(dir, `read-${randomBytes(4).toString('hex')}.p12`);
  writeFileSync(file, p12);
  const out = openssl(['pkcs12', '-in', file, '-passin', `pass:${password}`, '-nodes']);
  return { keys: out.match(/-----BEGIN PRIVATE KEY-----[^-]+-----END PRIVATE KEY-----/g) ?? [], certs: out.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [] };
}

function publicOf(pem: string): string {
  return openssl(['pkey', '-pubout'], Buffer.from(pem));
}

function certPublicOf(pem: string): string {
  return openssl(['x509', '-noout', '-pubkey'], Buffer.from(pem));
}

test('renewal: a new certificate and key for the current one, handed over once, the old ones kept', async () => {
  const b = new Browser();
  await b.signIn('taro@example.co.jp');
  const nothing = await b.request('/me/certificate/renew', { form: { profile: 'modern' } });
  assert.equal(nothing.status, 409, 'nothing to renew yet');
  assert.match(await nothing.text(), /no current certificate made here to renew/);
  const first = handed(await (await b.request('/me/certificate', { form: { profile: 'modern' } })).text());
  const firstP12 = await take(b, first.download);
  const me = await (await b.request('/me')).text();
  assert.match(me, /action="\/me\/certificate\/renew"/);
  const r = await b.request('/me/certificate/renew', { form: { profile: 'legacy' } });
  const renewed = handed(await r.text());
  assert.equal(r.status, 200);
  assert.match(renewed.html, /data-guide="thunderbird"/, 'the install guides follow the download');
  assert.ok(renewed.profile, 'the iPhone profile too');
  const other = new Browser();
  await other.signIn('hanako@example.co.jp');
  assert.equal((await other.request(renewed.download)).status, 404, 'another person cannot take it');
  const p12 = await take(b, renewed.download);
  const read = opensslReads(p12, renewed.password);
  assert.equal(read.keys.length, 1);
  assert.equal(publicOf(read.keys[0]!), certPublicOf(read.certs[0]!), 'the key is the certificate\'s');
  const oldCert = importPkcs12(firstP12, first.password).certificate!;
  const newCert = importPkcs12(p12, renewed.password).certificate!;
  assert.notEqual(newCert.fingerprint256, oldCert.fingerprint256);
  assert.notEqual(publicOf(read.keys[0]!), certPublicOf(`-----BEGIN CERTIFICATE-----\n${Buffer.from(oldCert.der).toString('base64')}\n-----END CERTIFICATE-----\n`), 'a new key');
  assert.deepEqual(newCert.emailAddresses, ['taro@example.co.jp']);
  const rows = await store.engine.all('SELECT i.renewed_from FROM issued_certificates i JOIN certificates c ON c.id = i.certificate_id WHERE c.fingerprint = ?', [newCert.fingerprint256]);
  assert.equal(String(rows[0]!.renewed_from), oldCert.fingerprint256);
  const old = await store.findCertificateByFingerprint(oldCert.fingerprint256);
  assert.equal(old!.revokedAt, undefined, 'renewal does not revoke');
  assert.equal(old!.hasPrivateKey, true, 'the old key stays for old mail');
  // The legacy profile: 3DES and a SHA-1 MAC.
  const info = spawnSync('openssl', ['pkcs12', '-in', writeTemp(p12), '-info', '-noout', '-passin', `pass:${renewed.password}`], { encoding: 'utf8' });
  assert.match(info.stderr, /pbeWithSHA1And3-KeyTripleDES-CBC/);
  assert.match(info.stderr, /MAC: sha1/);
});

function writeTemp(bytes: Buffer): string {
  const file = join(dir, `tmp-${randomBytes(4).toString('hex')}`);
  writeFileSync(file, bytes);
  return file;
}

function request(name: string, subject: string, ...extra: string[]): Buffer {
  const keyPath = join(dir, `${name}.key`);
  openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-subj', subject, ...extra, '-out', join(dir, `${name}.csr`)]);
  return readFileSync(join(dir, `${name}.csr`));
}

function csrForm(csr: Buffer | string, asFile = true): FormData {
  const f = new FormData();
  if (asFile) f.set('csr-file', new Blob([csr]), 'request.csr');
  else f.set('csr-text', String(csr));
  return f;
}

test('a certificate from a certification request: the CA\'s own checks, the person\'s address only, the key never sent', async () => {
  const b = new Browser();
  await b.signIn('hanako@example.co.jp');
  const before = (await store.listCertificates({ email: 'hanako@example.co.jp' })).length;
  const csr = request('hanako', '/CN=hanako@example.co.jp/emailAddress=hanako@example.co.jp/O=Ignored KK');
  const r = await b.request('/me/certificate/request', { form: csrForm(csr) });
  const html = await r.text();
  assert.equal(r.status, 200, html);
  assert.match(html, /subject attribute/, 'what the profile left out is said');
  const link = /href="(\/me\/certificate\/download\/[A-Za-z0-9_-]+)" download data-certificate-download/.exec(html)![1]!;
  const pem = (await take(b, link)).toString('utf8');
  const certs = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n/g)!;
  assert.equal(certs.length, 3, 'the certificate, the issuing CA and the root');
  writeFileSync(join(dir, 'hanako-leaf.pem'), certs[0]!);
  writeFileSync(join(dir, 'hanako-issuing.pem'), certs[1]!);
  writeFileSync(join(dir, 'hanako-root.pem'), certs[2]!);
  openssl(['verify', '-CAfile', join(dir, 'hanako-root.pem'), '-untrusted', join(dir, 'hanako-issuing.pem'), '-purpose', 'smimesign', join(dir, 'hanako-leaf.pem')]);
  assert.equal(certPublicOf(certs[0]!), openssl(['pkey', '-in', join(dir, 'hanako.key'), '-pubout']), 'for the key of the request');
  assert.match(openssl(['x509', '-in', join(dir, 'hanako-leaf.pem'), '-noout', '-subject']), /hanako@example\.co\.jp/);
  assert.doesNotMatch(openssl(['x509', '-in', join(dir, 'hanako-leaf.pem'), '-noout', '-subject']), /Ignored KK/);
  // Pasted PEM works the same.
  const pasted = await b.request('/me/certificate/request', { form: csrForm(request('hanako2', '/emailAddress=hanako@example.co.jp').toString('utf8'), false) });
  assert.equal(pasted.status, 200);
  // Refused by the CA's code, nothing issued: another person's address, a broken proof of possession, a CA request, garbage, nothing, too large.
  const count = async () => (await store.listCertificates({ email: 'hanako@example.co.jp' })).length + (await store.listCertificates({ email: 'ceo@example.co.jp' })).length;
  const issuedSoFar = await count();
  assert.equal(issuedSoFar, before + 2);
  const theirs = await b.request('/me/certificate/request', { form: csrForm(request('ceo', '/emailAddress=ceo@example.co.jp')) });
  assert.equal(theirs.status, 422);
  assert.match(await theirs.text(), /IDENTITY_MISMATCH/);
  const broken = execFileSync('openssl', ['req', '-in', join(dir, 'hanako.csr'), '-outform', 'DER']);
  broken[broken.length - 5]! ^= 0xff;
  const bad = await b.request('/me/certificate/request', { form: csrForm(broken) });
  assert.equal(bad.status, 422);
  assert.match(await bad.text(), /BAD_SIG/);
  const ca = await b.request('/me/certificate/request', { form: csrForm(request('ca', '/emailAddress=hanako@example.co.jp', '-addext', 'basicConstraints=critical,CA:TRUE')) });
  assert.equal(ca.status, 422);
  assert.match(await ca.text(), /CERT_USAGE/);
  const garbage = await b.request('/me/certificate/request', { form: csrForm(Buffer.from('<script>alert(1)</script>')) });
  assert.equal(garbage.status, 422);
  assert.doesNotMatch(await garbage.text(), /<script>alert/);
  assert.equal((await b.request('/me/certificate/request', { form: csrForm('', false) })).status, 400);
  assert.equal((await b.request('/me/certificate/request', { form: csrForm(Buffer.alloc(33 * 1024, 0x41)) })).status, 413);
  assert.equal(await count(), issuedSoFar, 'nothing issued by a refused request');
  // Outside the organisation's domains nothing is issued either.
  await server.console.people.addPerson({ email: 'guest@elsewhere.example', password: TEST_PASSWORD });
  const guest = new Browser();
  await guest.signIn('guest@elsewhere.example');
  assert.equal((await guest.request('/me/certificate/request', { form: csrForm(request('guest', '/emailAddress=guest@elsewhere.example')) })).status, 403);
});

test('keys for my old mail: every decryption key of the person in one file, once, audited; none of anyone else\'s', async () => {
  const b = new Browser();
  await b.signIn('taro@example.co.jp');
  const r = await b.request('/me/keys', { form: { profile: 'modern' } });
  const x = handed(await r.text());
  assert.equal(r.status, 200);
  assert.equal(x.profile, undefined, 'no iPhone profile for a bundle of keys');
  assert.match(x.html, /The file holds 2 keys/);
  const p12 = await take(b, x.download);
  const read = opensslReads(p12, x.password);
  assert.equal(read.keys.length, 2, 'openssl reads both keys');
  const own = new Set((await store.listCertificates({ email: 'taro@example.co.jp' })).filter((c) => !c.isCa).map((c) => certPublicOf(`-----BEGIN CERTIFICATE-----\n${Buffer.from(c.certificate.der).toString('base64')}\n-----END CERTIFICATE-----\n`)));
  assert.equal(own.size, 2);
  for (const k of read.keys) assert.ok(own.has(publicOf(k)), 'each key is one of taro\'s');
  const contents = importPkcs12(p12, x.password);
  assert.equal(contents.keys.length, 2);
  const audit = await store.auditLog({ limit: 50 });
  const mine = audit.filter((e) => e.actor === 'console:taro@example.co.jp');
  assert.ok(mine.some((e) => e.action === 'console.keys.old-mail' && /^2 keys/.test(e.detail ?? '')));
  assert.ok(mine.filter((e) => e.action === 'key.export' && /keys for old mail/.test(e.detail ?? '')).length >= 2);
  // Someone with no key kept here (hanako's came from her own requests) gets none, and no form.
  const h = new Browser();
  await h.signIn('hanako@example.co.jp');
  assert.doesNotMatch(await (await h.request('/me')).text(), /action="\/me\/keys"/);
  const none = await h.request('/me/keys', { form: { profile: 'modern' } });
  assert.equal(none.status, 404);
});

test('keys for my old mail, more than one file holds: the page says, in the reader\'s language, what can be done in the console (a key recovery), names no command line, and hands nothing over', async () => {
  await server.console.people.addPerson({ email: 'shiro@example.co.jp', password: TEST_PASSWORD });
  for (let i = 0; i <= MAX_PKCS12_IDENTITIES; i++) await issueMailboxCertificate(store, { email: 'shiro@example.co.jp', keyType: 'p256' });
  for (const [lang, t] of [['en', en], ['ja', ja]] as const) {
    const b = new Browser({ 'accept-language': lang });
    await b.signIn('shiro@example.co.jp');
    const r = await b.request('/me/keys', { form: { profile: 'modern' } });
    const html = await r.text();
    assert.equal(r.status, 422, html);
    assert.ok(html.includes(t.mine.oldMailTooMany(MAX_PKCS12_IDENTITIES).replace(/"/g, '&quot;')), `${lang}: ${html}`);
    assert.match(html, lang === 'en' ? /key recovery/ : /鍵の回復/);
    assert.doesNotMatch(html, /kakitome (keys|ca)|data-handover-password/);
  }
  assert.ok(!(await store.auditLog({ limit: 500 })).some((e) => e.actor === 'console:shiro@example.co.jp' && (e.action === 'key.export' || e.action === 'console.keys.old-mail')), 'nothing handed over');
});

test('lost device: a confirmation, then revoke (keyCompromise, in the CRL) and re-issue in one step; old mail stays readable', async () => {
  const b = new Browser({ 'accept-language': 'ja' });
  await b.signIn('taro@example.co.jp');
  const current = (await store.listCertificates({ email: 'taro@example.co.jp' })).filter((c) => !c.isCa && !c.revokedAt);
  assert.equal(current.length, 2);
  const confirm = await b.request('/me/lost');
  const page = await confirm.text();
  assert.equal(confirm.status, 200);
  assert.match(page, new RegExp(ja.mine.lostConfirm));
  for (const c of current) assert.ok(page.includes(c.certificate.serialHex), 'the page names what will be revoked');
  // Without the confirmation field, or from another site: nothing happens.
  assert.equal((await b.request('/me/lost', { form: { profile: 'modern' } })).status, 400);
  assert.equal((await b.request('/me/lost', { form: { confirm: 'revoke-and-reissue' }, origin: 'http://evil.example' })).status, 403);
  assert.equal((await store.listCertificates({ email: 'taro@example.co.jp' })).filter((c) => c.revokedAt).length, 0);
  const done = await b.request('/me/lost', { form: { confirm: 'revoke-and-reissue', profile: 'modern' } });
  const x = handed(await done.text());
  assert.equal(done.status, 200);
  assert.match(x.html, /2件の証明書を失効させました/);
  const all = (await store.listCertificates({ email: 'taro@example.co.jp' })).filter((c) => !c.isCa);
  assert.equal(all.length, 3);
  for (const c of current) {
    const now = all.find((a) => a.id === c.id)!;
    assert.ok(now.revokedAt);
    assert.equal(now.revocationReason, 1, 'keyCompromise');
    assert.equal((await store.findKeyForCertificate(c.certificate))!.status, 'retired');
  }
  const fresh = all.find((a) => !a.revokedAt)!;
  const p12 = await take(b, x.download);
  assert.equal(importPkcs12(p12, x.password).certificate!.fingerprint256, fresh.certificate.fingerprint256);
  // The CRL lists both with their reason (openssl checks its signature against the issuing CA).
  const { der: crl } = await publishCrl(store);
  const crlFile = writeTemp(crl);
  const text = openssl(['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text']);
  for (const c of current) assert.match(text, new RegExp(c.certificate.serialHex.replace(/^0+/, '').toUpperCase().slice(0, 12)));
  assert.equal(text.match(/Key Compromise/g)?.length, 2);
  // The old keys still open old mail: the keys for old mail now hold all three.
  const keys = await b.request('/me/keys', { form: { profile: 'modern' } });
  assert.match(await keys.text(), /3個の鍵/);
  // Nothing current left to lose but the new one.
  assert.ok((await (await b.request('/me/lost')).text()).includes(fresh.certificate.serialHex));
  assert.ok(mineAudit(await store.auditLog({ limit: 100 })).some((e) => e.action === 'console.lost-device'));
});

function mineAudit<T extends { actor: string }>(entries: T[]): T[] {
  return entries.filter((e) => e.actor === 'console:taro@example.co.jp');
}

test('install guides: every program, in both languages, for signed-in people', async () => {
  const guest = new Browser();
  assert.equal((await guest.request('/me/guides')).headers.get('location'), '/sign-in?next=%2Fme%2Fguides');
  for (const [lang, t] of [['en', en], ['ja', ja]] as const) {
    const b = new Browser({ 'accept-language': lang });
    await b.signIn('jiro@example.co.jp');
    const html = await (await b.request('/me/guides')).text();
    for (const p of Object.values(t.mine.guides.programs)) assert.ok(html.includes(p.name.replace(/&/g, '&amp;')), `${lang} ${p.name}`);
    assert.equal(html.match(/data-guide=/g)?.length, 6);
  }
});

test('the iPhone/iPad profile: signed by the console (openssl cms -verify against the root), with a Mail account whose S/MIME UUIDs name the PKCS#12 payload', async () => {
  const admin = new Browser();
  await admin.signIn('admin@example.co.jp');
  const form = (o: Record<string, string> = {}) => ({ 'imap-host': 'imap.example.co.jp', 'imap-port': '993', 'imap-tls': 'implicit', 'smtp-host': 'smtp.example.co.jp', 'smtp-port': '587', 'smtp-tls': 'starttls', username: 'local-part', action: 'save', ...o });
  // Refused: not a host name, a port out of range, no TLS; nothing saved.
  for (const bad of [{ 'imap-host': 'imap example<script>' }, { 'smtp-port': '0' }, { 'smtp-port': '70000' }, { 'imap-tls': 'none' }, { username: 'root' }] as Array<Record<string, string>>) {
    const r = await admin.request('/admin/mail-server', { form: form(bad) });
    assert.equal(r.status, 400, JSON.stringify(bad));
    assert.doesNotMatch(await r.text(), /<script>/);
  }
  assert.equal((await store.engine.all("SELECT 1 FROM settings WHERE name = 'mail.server'")).length, 0);
  const user = new Browser();
  await user.signIn('jiro@example.co.jp');
  assert.equal((await user.request('/admin/mail-server', { form: form() })).status, 403, 'administrators only');
  const saved = await admin.request('/admin/mail-server', { form: form() });
  assert.equal(saved.status, 200);
  assert.match(await (await admin.request('/admin/mail-server')).text(), /value="imap\.example\.co\.jp"/);

  const ready = handed(await (await user.request('/me/certificate', { form: { profile: 'modern' } })).text());
  const signed = await take(user, ready.profile!);
  const root = (await listCertificateAuthorities(store)).find((c) => c.role === 'root')!;
  const rootFile = writeTemp(Buffer.from(encodePem('CERTIFICATE', root.certificate.der)));
  const signedFile = writeTemp(signed);
  const plistFile = join(dir, 'jiro.plist');
  const signerFile = join(dir, 'profile-signer.pem');
  openssl(['cms', '-verify', '-inform', 'DER', '-in', signedFile, '-CAfile', rootFile, '-out', plistFile, '-signer', signerFile]);
  openssl(['smime', '-verify', '-inform', 'DER', '-in', signedFile, '-CAfile', rootFile, '-out', join(dir, 'jiro-smime.plist')]);
  assert.deepEqual(readFileSync(join(dir, 'jiro-smime.plist')), readFileSync(plistFile));
  // The signer: the console's own certificate from the organisation's CA, able to sign only (no mail use, no CA).
  const signer = openssl(['x509', '-in', signerFile, '-noout', '-text']);
  assert.match(signer, /Subject: CN ?= ?Keys Corp S\/MIME CA configuration profiles|configuration profiles/);
  assert.match(signer, /Key Usage: critical\s+Digital Signature\n/);
  assert.doesNotMatch(signer, /Extended Key Usage|E-mail Protection|CA:TRUE/);
  // Changed after signing: openssl refuses it.
  const tampered = Buffer.from(signed);
  const at = tampered.indexOf('imap.example.co.jp');
  tampered[at] = 'j'.charCodeAt(0);
  assert.notEqual(spawnSync('openssl', ['cms', '-verify', '-inform', 'DER', '-in', writeTemp(tampered), '-CAfile', rootFile, '-out', '/dev/null']).status, 0);
  const parsed = readPlist(plistFile);
  assert.deepEqual(parsed.PayloadContent.map((p) => p.PayloadType), ['com.apple.security.pkcs12', 'com.apple.security.root', 'com.apple.mail.managed']);
  const [identity, , mail] = parsed.PayloadContent as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>];
  assert.equal(mail.SMIMESigningCertificateUUID, identity.PayloadUUID);
  assert.equal(mail.SMIMEEncryptionCertificateUUID, identity.PayloadUUID);
  assert.deepEqual(
    Object.fromEntries(['EmailAccountType', 'EmailAddress', 'IncomingMailServerHostName', 'IncomingMailServerPortNumber', 'IncomingMailServerUseSSL', 'IncomingMailServerUsername', 'OutgoingMailServerHostName', 'OutgoingMailServerPortNumber', 'OutgoingMailServerUseSSL', 'OutgoingMailServerUsername', 'SMIMESigningEnabled', 'SMIMEEncryptionEnabled', 'SMIMESigningUserOverrideable', 'SMIMEEncryptByDefault', 'SMIMEEncryptByDefaultUserOverrideable', 'SMIMEEnableEncryptionPerMessageSwitch'].map((k) => [k, mail[k]])),
    {
      EmailAccountType: 'EmailTypeIMAP', EmailAddress: 'jiro@example.co.jp',
      IncomingMailServerHostName: 'imap.example.co.jp', IncomingMailServerPortNumber: 993, IncomingMailServerUseSSL: true, IncomingMailServerUsername: 'jiro',
      OutgoingMailServerHostName: 'smtp.example.co.jp', OutgoingMailServerPortNumber: 587, OutgoingMailServerUseSSL: true, OutgoingMailServerUsername: 'jiro',
      SMIMESigningEnabled: true, SMIMEEncryptionEnabled: true, SMIMESigningUserOverrideable: true, SMIMEEncryptByDefault: false, SMIMEEncryptByDefaultUserOverrideable: true, SMIMEEnableEncryptionPerMessageSwitch: true,
    },
  );
  assert.ok(!Object.keys(mail).some((k) => /^(Incoming|Outgoing)Password$/.test(k)), 'no password in the profile');
  // openssl reads the PKCS#12 payload with the password shown once.
  const inProfile = Buffer.from((identity.PayloadContent as { data: string }).data, 'base64');
  const read = opensslReads(inProfile, ready.password);
  assert.equal(read.keys.length, 1);
  assert.equal(publicOf(read.keys[0]!), certPublicOf(read.certs[0]!));
  // The signing key's every use is in the audit log; removing the servers drops the Mail payload again.
  assert.ok((await store.auditLog({ limit: 200 })).some((e) => e.action === 'key.use.profile-signing'));
  assert.equal((await admin.request('/admin/mail-server', { form: { action: 'remove' } })).status, 200);
  const again = handed(await (await user.request('/me/certificate', { form: { profile: 'modern' } })).text());
  const plain = join(dir, 'jiro2.plist');
  openssl(['cms', '-verify', '-inform', 'DER', '-in', writeTemp(await take(user, again.profile!)), '-CAfile', rootFile, '-out', plain]);
  assert.doesNotMatch(readFileSync(plain, 'utf8'), /com\.apple\.mail\.managed/);
});

/** A mail encrypted by openssl cms to `recipientPem`, with the cipher given, its content a MIME entity. */
function encryptedMail(recipientPem: string, cipher: string, entity: string): Buffer {
  const inFile = writeTemp(Buffer.from(entity));
  const out = execFileSync('openssl', ['cms', '-encrypt', cipher, '-in', inFile, writeTemp(Buffer.from(recipientPem))]);
  return Buffer.concat([Buffer.from('From: Someone <someone@partner.example>\r\nTo: saburo@example.co.jp\r\nSubject: secret\r\n'), out]);
}

async function check(b: Browser, mail: Buffer): Promise<{ status: number; html: string }> {
  const f = new FormData();
  f.set('message-file', new Blob([mail]), 'mail.eml');
  const r = await b.request('/check', { form: f });
  return { status: r.status, html: await r.text() };
}

test('the check page shows what it decrypted for its recipient as plain text only, and nothing unauthenticated', async () => {
  await server.console.people.addPerson({ email: 'saburo@example.co.jp', password: TEST_PASSWORD });
  const [issued] = await issueMailboxCertificate(store, { email: 'saburo@example.co.jp', keyType: 'rsa2048' });
  const pem = encodePem('CERTIFICATE', issued!.certificate.der);
  const saburo = new Browser({ 'accept-language': 'ja' });
  await saburo.signIn('saburo@example.co.jp');
  // AES-256-GCM (authenticated): the text, markup in it escaped, Japanese decoded from ISO-2022-JP.
  const iso2022 = execFileSync('iconv', ['-f', 'UTF-8', '-t', 'ISO-2022-JP'], { input: '会議は木曜日です。' });
  const gcm = encryptedMail(pem, '-aes-256-gcm', `Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n${iso2022.toString('latin1')}\r\n<script>alert(1)</script> <img src=x onerror=alert(2)>\r\n--b1\r\nContent-Type: application/pdf; name="plan.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b1--\r\n`);
  const a = await check(saburo, gcm);
  assert.equal(a.status, 200, a.html);
  const shown = /<pre class="mail-text" tabindex="0" data-decrypted-text>([^]*?)<\/pre>/.exec(a.html)?.[1] ?? '';
  assert.match(shown, /会議は木曜日です。/);
  assert.match(shown, /&lt;script&gt;alert\(1\)&lt;\/script&gt; &lt;img src=x onerror=alert\(2\)&gt;/);
  assert.doesNotMatch(a.html, /<script>alert|<img src=x/);
  assert.match(a.html, new RegExp(ja.mine.content.attachments(1)));
  assert.match(a.html, new RegExp(ja.mine.content.notConfirmed), 'unsigned: not confirmed as the sender\'s');
  // HTML only: its source, as text; nothing loads.
  const htmlOnly = await check(saburo, encryptedMail(pem, '-aes-128-gcm', 'Content-Type: text/html; charset=utf-8\r\n\r\n<p>Hello <img src="http://evil.example/track.png"></p>\r\n'));
  assert.match(htmlOnly.html, /data-decrypted-text>&lt;p&gt;Hello &lt;img src=&quot;http:\/\/evil\.example\/track\.png&quot;&gt;&lt;\/p&gt;/);
  assert.match(htmlOnly.html, new RegExp(ja.mine.content.fromHtml.slice(0, 20)));
  // AES-CBC without a signature inside (EFAIL): refused, nothing of the content on the page.
  const cbc = await check(saburo, encryptedMail(pem, '-aes-256-cbc', 'Content-Type: text/plain\r\n\r\nTransfer 1,000,000 yen to account 1234 today.\r\n'));
  assert.doesNotMatch(cbc.html, /data-decrypted-text|1,000,000 yen/);
  assert.match(cbc.html, new RegExp(ja.verdict.unauthEnc.slice(0, 15)));
  // Someone else, signed in: not a recipient, nothing decrypted.
  const other = new Browser();
  await other.signIn('hanako@example.co.jp');
  const notMine = await check(other, gcm);
  assert.doesNotMatch(notMine.html, /data-decrypted-text|木曜日/);
  assert.match(notMine.html, new RegExp(en.verdict.encryptedNotForYou.slice(0, 20)));
});
