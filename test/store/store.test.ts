/**
 * The store against both engines: SQLite (a file, as in production) and a real
 * PostgreSQL server on loopback. Every behaviour is checked on each.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, generateKeyPairSync } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TestPki } from '../helpers/pki.ts';
import { engineFactories } from './engine-factories.ts';
import { Store } from '../../src/store/store.ts';
import { SCHEMA_VERSION } from '../../src/store/migrations.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { identifierFor } from '../../src/cms/identifier.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { OID } from '../../src/asn1/oids.ts';
import { isKakitomeError } from '../../src/errors.ts';

const pki = new TestPki('Store Test Root');
const alice = pki.identity('rsa2048', 'alice');
const bob = pki.identity('p256', 'bob');
const master = masterKeyFromBytes(randomBytes(32));
const day = 86_400_000;
after(() => pki.cleanup());

function renew(email: string, kind: 'rsa' | 'ec', notBefore: Date, notAfter: Date) {
  const kp = kind === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const cert = issueCertificate({
    subject: { commonName: email, emailAddress: email },
    publicKey: kp.publicKey, issuer: pki.caCert, signingKey: pki.caKey,
    keyUsage: kind === 'rsa' ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature', 'keyAgreement'],
    extKeyUsage: [OID.emailProtection], emails: [email], notBefore, notAfter,
  });
  return { cert, key: kp.privateKey };
}

const factories = engineFactories('kakitome-store-');

for (const f of factories) {
  describe(`store on ${f.name}`, () => {
    let store: Store;
    before(async () => {
      await f.setup();
      store = await Store.open(f.make(), { masterKey: master, actor: 'tester' });
    });
    after(async () => {
      await store.close();
      await f.teardown();
    });

    test('migrations are idempotent and a second connection opens the same store', async () => {
      const again = await Store.open(f.make(), { masterKey: master });
      const rows = await again.engine.all('SELECT version FROM schema_migrations ORDER BY version');
      assert.deepEqual(rows.map((r) => Number(r.version)), Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
      assert.ok(SCHEMA_VERSION >= 21, 'migration 21 (held messages\' DSN requests) is among them');
      await again.close();
    });

    test('a private key is sealed at rest, exported only on request, and every use is audited', async () => {
      const rec = await store.importPrivateKey(alice.key, { certificates: [alice.cert], label: 'alice' });
      assert.equal(rec.status, 'active');
      assert.deepEqual(rec.certificates, [alice.cert.fingerprint256]);
      const raw = await store.engine.all('SELECT sealed FROM private_keys WHERE id = ?', [rec.id]);
      const sealed = Buffer.from(raw[0]!.sealed as Uint8Array);
      const pkcs8 = alice.key.export({ format: 'der', type: 'pkcs8' });
      assert.equal(sealed.includes(pkcs8.subarray(pkcs8.length - 64)), false, 'key material must not appear in the clear');
      const out = await store.exportPrivateKey(rec.id, 'backup to user');
      assert.deepEqual(out.export({ format: 'der', type: 'pkcs8' }), pkcs8);
      const log = await store.auditLog({ object: rec.id });
      assert.deepEqual(log.map((e) => e.action).sort(), ['key.export', 'key.import']);
      assert.ok(log.every((e) => e.actor === 'tester'));
      assert.equal(log.find((e) => e.action === 'key.export')!.detail, 'backup to user');
      // Importing the same key again adds nothing.
      const again = await store.importPrivateKey(alice.key, { certificates: [alice.cert] });
      assert.equal(again.id, rec.id);
    });

    test('a key that does not match its certificate is refused', async () => {
      await assert.rejects(store.importPrivateKey(bob.key, { certificates: [alice.cert] }), (e) => isKakitomeError(e, 'KEY_INVALID'));
    });

    test('a wrong master key gives KEY_INVALID and destroys nothing', async () => {
      const wrong = masterKeyFromBytes(randomBytes(32));
      await assert.rejects(Store.open(f.make(), { masterKey: wrong }), (e) => isKakitomeError(e, 'KEY_INVALID') && /Wrong master key/.test(e.message));
      const keys = await store.listKeys();
      assert.ok(keys.length >= 1);
      const k = await store.exportPrivateKey(keys[0]!.id, 'check after wrong key');
      assert.equal(k.type, 'private');
    });

    test('a sealed key moved to another record does not open (record id is AAD)', async () => {
      const tmp = await store.importPrivateKey(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey, { label: 'tamper' });
      const [a] = await store.listKeys({ id: (await store.listKeys()).find((k) => k.label === 'alice')!.id });
      const src = await store.engine.all('SELECT sealed FROM private_keys WHERE id = ?', [a!.id]);
      const orig = await store.engine.all('SELECT sealed FROM private_keys WHERE id = ?', [tmp.id]);
      await store.engine.run('UPDATE private_keys SET sealed = ? WHERE id = ?', [src[0]!.sealed!, tmp.id]);
      await assert.rejects(store.exportPrivateKey(tmp.id, 'tamper test'), (e) => isKakitomeError(e, 'KEY_INVALID'));
      await store.engine.run('UPDATE private_keys SET sealed = ? WHERE id = ?', [orig[0]!.sealed!, tmp.id]);
      await store.purgePrivateKey(tmp.id, { confirmId: tmp.id, reason: 'test cleanup' });
    });

    test('key history: after renewal the old key still decrypts, by issuer/serial and by key id, even expired and retired', async () => {
      const now = new Date();
      const old = renew('carol@example.com', 'rsa', new Date(now.getTime() - 800 * day), new Date(now.getTime() - 400 * day));
      const cur = renew('carol@example.com', 'ec', new Date(now.getTime() - day), new Date(now.getTime() + 365 * day));
      const oldRec = await store.importPrivateKey(old.key, { certificates: [old.cert] });
      await store.importPrivateKey(cur.key, { certificates: [cur.cert] });
      await store.retirePrivateKey(oldRec.id, 'renewed');

      const sign = await store.findSigningIdentity('Carol@Example.com', now);
      assert.equal(sign?.certificate.fingerprint256, cur.cert.fingerprint256, 'signing uses the current certificate');
      assert.deepEqual(sign!.chain.map((c) => c.fingerprint256), [], 'the root is not in the store yet');
      await store.importCertificate(pki.caCert, { trust: 'trusted' });
      assert.deepEqual((await store.findSigningIdentity('carol@example.com', now))!.chain.map((c) => c.fingerprint256), [pki.caCert.fingerprint256]);

      for (const kind of ['issuerAndSerialNumber', 'subjectKeyIdentifier'] as const) {
        const found = await store.findDecryptionKeys([identifierFor(old.cert, kind)]);
        assert.equal(found.length, 1);
        assert.equal(found[0]!.certificate.fingerprint256, old.cert.fingerprint256);
        assert.deepEqual(found[0]!.key.export({ format: 'der', type: 'pkcs8' }), old.key.export({ format: 'der', type: 'pkcs8' }));
      }
      assert.deepEqual(await store.findDecryptionKeys([identifierFor(bob.cert)]), [], 'no key, no result');
      const retired = (await store.findKey(oldRec.id))!;
      assert.equal(retired.status, 'retired');
      assert.ok((await store.auditLog({ object: oldRec.id })).some((e) => e.action === 'key.use.decrypt'));
    });

    test('an envelope naming thousands of recipients costs a few queries and still finds ours', async () => {
      const noise = Array.from({ length: 5000 }, (_, i) => i % 2
        ? { kind: 'subjectKeyIdentifier' as const, keyId: randomBytes(20) }
        : { kind: 'issuerAndSerialNumber' as const, issuer: pki.caCert.subject, serial: randomBytes(16) });
      const t = performance.now();
      const found = await store.findDecryptionKeys([...noise, identifierFor(alice.cert)]);
      assert.ok(performance.now() - t < 5000);
      assert.deepEqual(found.map((f) => f.certificate.fingerprint256), [alice.cert.fingerprint256]);
    });

    test('purge needs confirmation and is audited', async () => {
      const k = await store.importPrivateKey(generateKeyPairSync('ed25519').privateKey, { label: 'purge-me' });
      await assert.rejects(store.purgePrivateKey(k.id, { confirmId: 'nope', reason: 'x' }), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
      assert.ok(await store.findKey(k.id));
      await store.purgePrivateKey(k.id, { confirmId: k.id, reason: 'requested by admin' });
      assert.equal(await store.findKey(k.id), undefined);
      assert.ok((await store.auditLog({ object: k.id })).some((e) => e.action === 'key.purge' && e.detail === 'requested by admin'));
    });

    test('certificate directory: a harvested certificate never replaces a trusted one', async () => {
      await store.importCertificate(bob.cert, { trust: 'trusted' });
      const rogue = renew('bob@example.com', 'ec', new Date(Date.now() - day), new Date(Date.now() + 700 * day));
      const h = await store.harvestCertificate(rogue.cert, { address: 'bob@example.com', preferred: true });
      assert.equal(h.filing, 'pending', 'a new key for a known address waits for an administrator');
      assert.deepEqual(h.knownCertificates, [bob.cert.fingerprint256]);
      assert.equal(h.record.trust, 'harvested');
      assert.equal(h.record.preferred, false, 'a pending certificate is not marked preferred');
      const best = await store.findRecipientCertificate('bob@example.com');
      assert.equal(best?.certificate.fingerprint256, bob.cert.fingerprint256);
      assert.ok((await store.auditLog({ object: rogue.cert.fingerprint256 })).some((e) => e.action === 'certificate.key-change'));
      // A certificate is filed only under an address it names.
      await assert.rejects(store.harvestCertificate(rogue.cert, { address: 'carol@example.com' }), (e) => isKakitomeError(e, 'IDENTITY_MISMATCH'));
      // Harvesting the trusted certificate again does not lower its trust.
      const again = await store.harvestCertificate(bob.cert, { address: 'bob@example.com', capabilities: Buffer.from('3000', 'hex') });
      assert.equal(again.created, false);
      assert.equal(again.record.trust, 'trusted');
      assert.deepEqual(Buffer.from(again.record.capabilities!), Buffer.from('3000', 'hex'));
    });

    test('certificate directory: a new key waits for acceptance even after the known certificate expired', async () => {
      const now = new Date();
      const expired = renew('erin@example.com', 'ec', new Date(now.getTime() - 400 * day), new Date(now.getTime() - day));
      await store.importCertificate(expired.cert);
      const fresh = renew('erin@example.com', 'ec', new Date(now.getTime() - day), new Date(now.getTime() + 300 * day));
      const h = await store.harvestCertificate(fresh.cert, { address: 'Erin@Example.com' });
      assert.equal(h.filing, 'pending');
      assert.deepEqual(h.knownCertificates, [expired.cert.fingerprint256]);
      assert.equal(await store.findRecipientCertificate('erin@example.com', now), undefined, 'never swapped in');
      const accepted = await store.acceptCertificate(fresh.cert.fingerprint256);
      assert.deepEqual(accepted.filings.map((f) => [f.email, f.filing, f.preferred]), [['erin@example.com', 'current', true]]);
      assert.equal((await store.findRecipientCertificate('erin@example.com', now))?.certificate.fingerprint256, fresh.cert.fingerprint256);
      assert.deepEqual((await store.certificateHistory('erin@example.com')).map((x) => [x.record.certificate.fingerprint256, x.filing.filing]), [
        [expired.cert.fingerprint256, 'superseded'],
        [fresh.cert.fingerprint256, 'current'],
      ]);
      assert.ok((await store.auditLog({ object: fresh.cert.fingerprint256 })).some((e) => e.action === 'certificate.accept'));
      await assert.rejects(store.acceptCertificate(fresh.cert.fingerprint256, 'nobody@example.com'), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
    });

    test('recipient lookup skips expired and revoked certificates', async () => {
      const now = new Date();
      const expired = renew('dave@example.com', 'rsa', new Date(now.getTime() - 400 * day), new Date(now.getTime() - day));
      const good = renew('dave@example.com', 'rsa', new Date(now.getTime() - 10 * day), new Date(now.getTime() + 300 * day));
      const newer = renew('dave@example.com', 'rsa', new Date(now.getTime() - day), new Date(now.getTime() + 300 * day));
      for (const c of [expired, good, newer]) await store.importCertificate(c.cert);
      assert.equal((await store.findRecipientCertificate('dave@example.com', now))?.certificate.fingerprint256, newer.cert.fingerprint256);
      await store.revokeCertificate(newer.cert.fingerprint256, 1, now);
      assert.equal((await store.findRecipientCertificate('dave@example.com', now))?.certificate.fingerprint256, good.cert.fingerprint256);
      await assert.rejects(store.revokeCertificate(good.cert.fingerprint256, 7), (e) => isKakitomeError(e, 'INVALID_ARGUMENT'));
      assert.equal(await store.findRecipientCertificate('nobody@example.com', now), undefined);
    });

    test('expiring lists certificates with keys that expire within the window', async () => {
      const now = new Date();
      const soon = renew('erin@example.com', 'ec', new Date(now.getTime() - day), new Date(now.getTime() + 10 * day));
      await store.importPrivateKey(soon.key, { certificates: [soon.cert] });
      const in30 = (await store.findExpiring(30, now)).map((r) => r.certificate.fingerprint256);
      assert.ok(in30.includes(soon.cert.fingerprint256));
      assert.ok(!(await store.findExpiring(5, now)).some((r) => r.certificate.fingerprint256 === soon.cert.fingerprint256));
    });

    test('a failing transaction leaves nothing behind', async () => {
      const before = (await store.auditLog({ limit: 10_000 })).length;
      await assert.rejects(store.engine.transaction(async (tx) => {
        await tx.run("INSERT INTO audit_log (id, at, actor, action) VALUES ('x1', '2020-01-01T00:00:00.000Z', 't', 'probe')");
        throw new Error('crash midway');
      }), /crash midway/);
      assert.equal((await store.auditLog({ limit: 10_000 })).length, before);
    });

    test('master key rotation re-wraps every key; the old master key no longer opens the store', async () => {
      const next = masterKeyFromBytes(randomBytes(32));
      const before = await store.listKeys();
      const rotated = await store.rotateMasterKey(next);
      for (const k of before) assert.equal((await rotated.exportPrivateKey(k.id, 'rotation check')).type, 'private');
      await assert.rejects(Store.open(f.make(), { masterKey: master }), (e) => isKakitomeError(e, 'KEY_INVALID'));
      const back = await rotated.rotateMasterKey(master);
      store = back;
      assert.equal((await store.listKeys()).length, before.length);
    });

    test('concurrent writers (separate processes) all land', async () => {
      const url = f.url();
      const script = `
        import { openSqliteEngine } from ${JSON.stringify(new URL('../../src/store/sqlite-engine.ts', import.meta.url).pathname)};
        import { openPostgresEngine } from ${JSON.stringify(new URL('../../src/store/postgres-engine.ts', import.meta.url).pathname)};
        import { Store } from ${JSON.stringify(new URL('../../src/store/store.ts', import.meta.url).pathname)};
        import { masterKeyFromBytes } from ${JSON.stringify(new URL('../../src/keys/master-key.ts', import.meta.url).pathname)};
        import { generateKeyPairSync } from 'node:crypto';
        const url = process.argv[1];
        const engine = url.startsWith('postgres') ? openPostgresEngine(url) : openSqliteEngine(url);
        const store = await Store.open(engine, { masterKey: masterKeyFromBytes(Buffer.from(process.argv[2], 'hex')), actor: 'proc' });
        for (let i = 0; i < 10; i++) await store.importPrivateKey(generateKeyPairSync('ed25519').privateKey, { label: 'concurrent' });
        await store.close();`;
      const run = () => promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, url, Buffer.from(master.key.export()).toString('hex')]);
      await Promise.all([run(), run(), run()]);
      assert.equal((await store.listKeys()).filter((k) => k.label === 'concurrent').length, 30);
    });
  });
}
