/**
 * LDAP as a certificate source against a real OpenLDAP server on loopback.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Attribute } from 'ldapts';
import { TestPki } from '../helpers/pki.ts';
import { startSlapd, type LdapServer } from './ldap-server.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { lookupLdapCertificates, findRecipientCertificateWithLdap } from '../../src/store/lookup-ldap-certificates.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { isKakitomeError } from '../../src/errors.ts';

const pki = new TestPki('LDAP Root');
const frank = pki.identity('rsa2048', 'frank');
const grace = pki.identity('p256', 'grace');
const other = new TestPki('Untrusted Root');
const mallory = other.identity('rsa2048', 'mallory');
const heidi = pki.identity('p256', 'heidi');
/** Values heidi's entry holds before her real one: junk a damaged directory (or a hostile one) could serve. */
const JUNK = Array.from({ length: 12 }, () => randomBytes(1000));
let ldap: LdapServer;
let store: Store;

before(async () => {
  ldap = await startSlapd();
  const c = new Client({ url: ldap.url });
  await c.bind(ldap.rootDn, ldap.password);
  await c.add(ldap.baseDn, { objectClass: ['dcObject', 'organization'], dc: 'example', o: 'Example' });
  await c.add(`ou=people,${ldap.baseDn}`, { objectClass: 'organizationalUnit', ou: 'people' });
  const p7 = join(pki.dir, 'grace.p7b');
  execFileSync('openssl', ['crl2pkcs7', '-nocrl', '-certfile', grace.certPath, '-outform', 'DER', '-out', p7]);
  const person = (cn: string, mail: string, type: string, value: Buffer) => [
    new Attribute({ type: 'objectClass', values: ['inetOrgPerson'] }),
    new Attribute({ type: 'cn', values: [cn] }),
    new Attribute({ type: 'sn', values: [cn.toUpperCase()] }),
    new Attribute({ type: 'mail', values: [mail] }),
    new Attribute({ type, values: [value] }),
  ];
  await c.add(`cn=frank,ou=people,${ldap.baseDn}`, person('frank', 'frank@example.com', 'userCertificate;binary', frank.cert.der));
  await c.add(`cn=grace,ou=people,${ldap.baseDn}`, person('grace', 'grace@example.com', 'userSMIMECertificate', readFileSync(p7)));
  // An entry claiming frank's address with a certificate for someone else, and one from an untrusted CA.
  await c.add(`cn=impostor,ou=people,${ldap.baseDn}`, person('impostor', 'frank@example.com', 'userCertificate;binary', grace.cert.der));
  const heidiP7 = join(pki.dir, 'heidi.p7b');
  execFileSync('openssl', ['crl2pkcs7', '-nocrl', '-certfile', heidi.certPath, '-outform', 'DER', '-out', heidiP7]);
  await c.add(`cn=heidi,ou=people,${ldap.baseDn}`, [...person('heidi', 'heidi@example.com', 'userSMIMECertificate', JUNK[0]!).slice(0, 4), new Attribute({ type: 'userSMIMECertificate', values: [...JUNK, readFileSync(heidiP7)] })]);
  await c.add(`cn=mallory,ou=people,${ldap.baseDn}`, person('mallory', 'mallory@example.com', 'userCertificate;binary', mallory.cert.der));
  await c.unbind();
  store = await Store.open(openSqliteEngine(':memory:'), { masterKey: masterKeyFromBytes(randomBytes(32)) });
  await store.importCertificate(pki.caCert, { trust: 'trusted' });
});
after(async () => {
  await store?.close();
  await ldap?.stop();
  pki.cleanup();
  other.cleanup();
});

test('finds userCertificate and userSMIMECertificate values for the address only', async () => {
  const src = { url: ldap.url, baseDn: ldap.baseDn };
  assert.deepEqual((await lookupLdapCertificates(src, 'Frank@Example.com')).map((c) => c.fingerprint256), [frank.cert.fingerprint256]);
  assert.deepEqual((await lookupLdapCertificates(src, 'grace@example.com')).map((c) => c.fingerprint256), [grace.cert.fingerprint256]);
  assert.deepEqual(await lookupLdapCertificates(src, 'nobody@example.com'), []);
  // Filter metacharacters are escaped, not interpreted.
  assert.deepEqual(await lookupLdapCertificates(src, '*)(mail=*'), []);
  await assert.rejects(lookupLdapCertificates({ ...src, url: 'ldap://127.0.0.1:1', timeoutMs: 500 }, 'frank@example.com'), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
});

test('the store falls back to LDAP and keeps only certificates whose chain is trusted', async () => {
  const validate = createSignerValidator({ anchors: [pki.caCert], fetchCaIssuers: false, revocation: { mode: 'off' } });
  const src = { url: ldap.url, baseDn: ldap.baseDn, bindDn: ldap.rootDn, password: ldap.password };
  const rec = await findRecipientCertificateWithLdap(store, 'frank@example.com', src, validate);
  assert.equal(rec?.certificate.fingerprint256, frank.cert.fingerprint256);
  assert.equal(rec?.trust, 'harvested');
  assert.match(rec!.source, /^ldap:/);
  assert.equal(await findRecipientCertificateWithLdap(store, 'mallory@example.com', src, validate), undefined);
  assert.equal(await store.findCertificateByFingerprint(mallory.cert.fingerprint256), undefined);
});

test('kakitome certs find --ldap-url falls back to the directory', async () => {
  const { runCli } = await import('../cli/run-cli.ts');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const h = mkdtempSync(join(tmpdir(), 'kakitome-ldap-cli-'));
  try {
    const env = { ...process.env, KAKITOME_HOME: h, KAKITOME_MASTER_KEY: '', KAKITOME_DATABASE_URL: '' };
    assert.equal((await runCli(['init'], { env })).status, 0);
    assert.equal((await runCli(['certs', 'import', '--trust', 'trusted', pki.caPath], { env })).status, 0);
    const r = await runCli(['certs', 'find', 'grace@example.com', '--ldap-url', ldap.url, '--ldap-base', ldap.baseDn, '--json'], { env });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout.toString()).encryption.fingerprint, grace.cert.fingerprint256);
  } finally {
    rmSync(h, { recursive: true, force: true });
  }
});

test('values per entry and bytes per lookup are capped, with a warning naming the limit; within the caps the value is found', async () => {
  const src = { url: ldap.url, baseDn: ldap.baseDn };
  const look = async (caps: { maxValuesPerEntry?: number; maxBytes?: number }) => {
    const warnings: string[] = [];
    const found = await lookupLdapCertificates({ ...src, ...caps, onWarning: (w) => warnings.push(w) }, 'heidi@example.com');
    return { found: found.map((c) => c.fingerprint256), warnings };
  };
  // Heidi's certificate is her 13th value, after 12 KB of junk: found within the defaults, silently.
  assert.deepEqual(await look({}), { found: [heidi.cert.fingerprint256], warnings: [] });
  const fewValues = await look({ maxValuesPerEntry: 12 });
  assert.deepEqual(fewValues.found, []);
  assert.equal(fewValues.warnings.length, 1);
  assert.ok(!fewValues.warnings[0]!.includes('heidi'), 'no address in it: it may be logged');
  assert.match(fewValues.warnings[0]!, /^LDAP lookup at ldap:\/\/127\.0\.0\.1:\d+: an entry has more than 12 certificate values; the others were not examined\.$/);
  const fewBytes = await look({ maxBytes: 5000 });
  assert.deepEqual(fewBytes.found, []);
  assert.equal(fewBytes.warnings.length, 1);
  assert.match(fewBytes.warnings[0]!, /more than 5000 bytes of certificate values; the rest was not examined\.$/);
  assert.deepEqual((await look({ maxValuesPerEntry: 13, maxBytes: 12000 + 2000 })).found, [heidi.cert.fingerprint256]);
});
