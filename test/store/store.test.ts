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
import { dirname, join } from 'node:path';
import { Store } from '../../src/store/store.ts';
import { migrateStore, SCHEMA_VERSION } from '../../src/store/migrations.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { openPostgresEngine } from '../../src/store/postgres-engine.ts';
import { listAuditPage } from '../../src/store/list-audit-page.ts';
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

    test('migration 25 keeps every audit row of an older store and leaves the log with its time index only', async () => {
      // An empty database of its own, brought to the schema before migration 25.
      let engine;
      if (f.name === 'sqlite') engine = openSqliteEngine(join(dirname(f.url()), 'before-25.db'));
      else {
        await store.engine.run('CREATE DATABASE kakitome_before_25');
        engine = openPostgresEngine(f.url().replace(/\/postgres$/, '/kakitome_before_25'));
      }
      try {
        assert.equal(await migrateStore(engine, 24), 24);
        const rows = [
          ['0190a0b0-0000-7000-8000-000000000002', '2026-03-01T10:00:00.000Z', 'api:acme/k1', 'api.sign', 'AB:CD', 'a@example.com, 2048 bytes'],
          ['0190a0b0-0000-7000-8000-000000000001', '2026-03-01T10:00:00.000Z', 'api:acme/k1', 'api.sign', 'AB:CD', 'b@example.com, 2048 bytes'],
          ['0190a0af-0000-7000-8000-000000000003', '2026-02-28T23:59:59.999Z', 'console:ren@example.org', 'key.export', null, null],
        ];
        for (const r of rows) await engine.run('INSERT INTO audit_log (id, at, actor, action, object, detail) VALUES (?, ?, ?, ?, ?, ?)', r);
        assert.equal(await migrateStore(engine), SCHEMA_VERSION);
        const after = await engine.all('SELECT id, at, actor, action, object, detail FROM audit_log ORDER BY at DESC, id DESC');
        assert.deepEqual(after.map((r) => [r.id, r.at, r.actor, r.action, r.object, r.detail]), rows.slice().sort((a, b) => (a[1]! === b[1]! ? (a[0]! < b[0]! ? 1 : -1) : a[1]! < b[1]! ? 1 : -1)));
        const indexes = f.name === 'sqlite'
          ? (await engine.all("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'audit_log'")).map((r) => String(r.name))
          : (await engine.all("SELECT indexname AS name FROM pg_indexes WHERE tablename = 'audit_log'")).map((r) => String(r.name));
        assert.deepEqual(indexes, ['audit_log_at'], 'the time index only: none on the id (primary key) or the object');
        // The pages and counts read the migrated log as before.
        const shadow = await Store.open(engine, {});
        const page = await listAuditPage(shadow, { limit: 2 });
        assert.deepEqual(page.entries.map((e) => e.id), [rows[0]![0], rows[1]![0]]);
        assert.deepEqual((await listAuditPage(shadow, { after: page.next!, limit: 2 })).entries.map((e) => e.id), [rows[2]![0]]);
        assert.deepEqual((await shadow.auditLog({ object: 'AB:CD' })).map((e) => e.detail).sort(), ['a@example.com, 2048 bytes', 'b@example.com, 2048 bytes']);
        await shadow.close();
      } finally {
        await engine.close().catch(() => undefined);
        if (f.name === 'postgres') await store.engine.run('DROP DATABASE kakitome_before_25');
      }
    });

    test('migration 26 re-files addresses stored with a Unicode or dotted domain in the one form lookups use (xn--, no final dot)', async () => {
      const [c1, c2] = await Promise.all([pki.identity('p256', `mig26a-${f.name}`), pki.identity('p256', `mig26b-${f.name}`)].map(async (i) => (await store.importCertificate(i.cert)).id));
      assert.ok(c1 && c2);
      // Rows as a store before migration 26 could hold them: only the case was folded.
      const older: Array<[string, string]> = [[c1, 'dai@例え.jp'], [c1, 'dai@example.org.'], [c2, 'eri@例え.jp'], [c2, 'eri@xn--r8jz45g.jp'], [c2, 'ascii@example.net']];
      for (const [id, email] of older) await store.engine.run("INSERT INTO certificate_emails (certificate_id, email, filing, preferred, filed_at) VALUES (?, ?, 'current', 0, '2026-01-01T00:00:00.000Z')", [id, email]);
      await store.engine.run("INSERT INTO unknown_root_leaves (root_fingerprint, fingerprint, address, der, chain, preferred, seen_at) VALUES ('R', 'L', 'dai@例え.jp', ?, '[]', 0, '2026-01-01T00:00:00.000Z')", [Buffer.from('30', 'hex')]);
      await store.engine.run('DELETE FROM schema_migrations WHERE version = 26');
      assert.equal(await migrateStore(store.engine), SCHEMA_VERSION);
      const filed = async (id: string) => (await store.engine.all("SELECT email FROM certificate_emails WHERE certificate_id = ? AND (email LIKE 'dai@%' OR email LIKE 'eri@%' OR email LIKE 'ascii@%') ORDER BY email", [id])).map((r) => String(r.email));
      assert.deepEqual(await filed(c1), ['dai@example.org', 'dai@xn--r8jz45g.jp']);
      assert.deepEqual(await filed(c2), ['ascii@example.net', 'eri@xn--r8jz45g.jp'], 'both spellings of one filing become one row');
      assert.deepEqual((await store.engine.all("SELECT address FROM unknown_root_leaves WHERE root_fingerprint = 'R'")).map((r) => String(r.address)), ['dai@xn--r8jz45g.jp']);
      await store.engine.run("DELETE FROM certificate_emails WHERE email LIKE 'dai@%' OR email LIKE 'eri@%' OR email LIKE 'ascii@%'");
      await store.engine.run("DELETE FROM unknown_root_leaves WHERE root_fingerprint = 'R'");
    });

    test('migration 27 files certificates under every address they name as identity matching reads them (an SmtpUTF8Mailbox), harvested ones not', async () => {
      const make = (mailbox: string) => issueCertificate({
        subject: { commonName: mailbox }, publicKey: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey, issuer: pki.caCert, signingKey: pki.caKey,
        keyUsage: ['digitalSignature', 'keyAgreement'], extKeyUsage: [OID.emailProtection], smtpUtf8Mailboxes: [mailbox], emails: [`${f.name}-ascii@example.org`],
      });
      const imported = await store.importCertificate(make(`山田-${f.name}@例え.jp`));
      const harvested = make(`花子-${f.name}@例え.jp`);
      await store.harvestCertificate(harvested, { address: `${f.name}-ascii@example.org` });
      // As a store before migration 27 held them: the imported one filed under its rfc822Name only.
      await store.engine.run("DELETE FROM certificate_emails WHERE certificate_id = ? AND email LIKE '山田%'", [imported.id]);
      await store.engine.run('DELETE FROM schema_migrations WHERE version = 27');
      assert.equal(await migrateStore(store.engine), SCHEMA_VERSION);
      const filed = async (fingerprint: string) => (await store.findCertificateByFingerprint(fingerprint))!.filings.map((x) => `${x.email} ${x.filing}`).sort();
      assert.deepEqual(await filed(imported.certificate.fingerprint256), [`${f.name}-ascii@example.org current`, `山田-${f.name}@xn--r8jz45g.jp current`]);
      assert.deepEqual(await filed(harvested.fingerprint256), [`${f.name}-ascii@example.org pending`], 'a harvested certificate stays filed under its verified From address only');
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
