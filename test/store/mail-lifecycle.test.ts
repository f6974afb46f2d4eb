/**
 * The issue's "done when", on SQLite and on PostgreSQL: create a CA, issue
 * certificates for two users, exchange signed and encrypted mail between them,
 * renew one user's certificate and still decrypt the old mail; then back up,
 * restore, and decrypt the old mail from the restored store.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { openPostgresEngine } from '../../src/store/postgres-engine.ts';
import type { SqlEngine } from '../../src/store/sql-engine.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { renewMailboxCertificate } from '../../src/ca/renew-mailbox-certificate.ts';
import { findEnvelopeKeys } from '../../src/store/find-envelope-keys.ts';
import { createStoreTrustStore } from '../../src/store/store-trust-store.ts';
import { chooseContentEncryption } from '../../src/store/choose-content-encryption.ts';
import { backupSqliteStore } from '../../src/store/backup-store.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { createSignerValidator } from '../../src/pki/create-signer-validator.ts';
import { startPostgres, type PostgresServer } from './postgres-server.ts';
import { isKakitomeError } from '../../src/errors.ts';

const master = masterKeyFromBytes(randomBytes(32));
const message = (from: string, to: string, body: string) =>
  Buffer.from(`From: ${from}\r\nTo: ${to}\r\nSubject: lifecycle\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <${randomBytes(6).toString('hex')}@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`);

/** The envelope DER inside an application/pkcs7-mime message (base64 body). */
function envelopeOf(eml: Buffer): Buffer {
  const text = eml.toString('latin1');
  const split = text.indexOf('\r\n\r\n');
  return Buffer.from(text.slice(split + 4), 'base64');
}

async function send(store: Store, from: string, to: string, body: string): Promise<Buffer> {
  const signer = await store.findSigningIdentity(from);
  assert.ok(signer, `no signing identity for ${from}`);
  const recipients = [];
  for (const a of [to, from]) {
    const r = await store.findRecipientCertificate(a);
    assert.ok(r, `no certificate for ${a}`);
    recipients.push(r);
  }
  const cipher = chooseContentEncryption(recipients.map((r) => ({ recipient: r.emails[0]!, ...(r.capabilities ? { capabilities: r.capabilities } : {}) })), { unknownRecipients: 'gcm' });
  return encryptMessage(message(from, to, body), {
    recipients: recipients.map((r) => ({ certificate: r.certificate })),
    contentEncryption: cipher.name,
    sign: { signers: [{ certificate: signer.certificate, key: signer.key }], certificates: signer.chain },
  });
}

async function receive(store: Store, eml: Buffer): Promise<{ text: string; status: string }> {
  const keys = await findEnvelopeKeys(store, envelopeOf(eml));
  const { message: out, verdict } = await decryptMessage(eml, {
    keys,
    validateSigner: createSignerValidator({ trustStore: createStoreTrustStore(store), fetchCaIssuers: false, revocation: { mode: 'off' } }),
  });
  return { text: out.toString('utf8'), status: verdict.status };
}

interface Engine { name: string; setup(): Promise<void>; make(): SqlEngine; teardown(): Promise<void> }
let pg: PostgresServer | undefined;
let dir = '';
const engines: Engine[] = [
  { name: 'sqlite', async setup() { dir = mkdtempSync(join(tmpdir(), 'kakitome-life-')); }, make: () => openSqliteEngine(join(dir, 'kakitome.db')), async teardown() { rmSync(dir, { recursive: true, force: true }); } },
  { name: 'postgres', async setup() { pg = await startPostgres(); }, make: () => openPostgresEngine(pg!.url), async teardown() { pg?.stop(); } },
];

for (const e of engines) {
  describe(`mail lifecycle on ${e.name}`, () => {
    let store: Store;
    let oldMail: Buffer;
    before(async () => {
      await e.setup();
      store = await Store.open(e.make(), { masterKey: master, actor: 'lifecycle' });
    });
    after(async () => {
      await store.close();
      await e.teardown();
    });

    test('CA, two users, signed and encrypted mail both ways', async () => {
      await initCertificateAuthority(store, { name: `Life ${e.name}`, keyType: 'p256' });
      await issueMailboxCertificate(store, { email: 'alice@example.com', keyType: 'rsa2048' });
      await issueMailboxCertificate(store, { email: 'bob@example.com', keyType: 'p256' });
      oldMail = await send(store, 'alice@example.com', 'bob@example.com', 'first message to bob');
      const got = await receive(store, oldMail);
      assert.match(got.text, /first message to bob/);
      assert.equal(got.status, 'trusted');
      const reply = await receive(store, await send(store, 'bob@example.com', 'alice@example.com', 'reply to alice'));
      assert.match(reply.text, /reply to alice/);
      assert.equal(reply.status, 'trusted');
    });

    test("renewing bob's certificate keeps the old mail readable; new mail uses the new key", async () => {
      const oldCert = (await store.findRecipientCertificate('bob@example.com'))!.certificate;
      const renewed = await renewMailboxCertificate(store, oldCert.fingerprint256);
      await new Promise((r) => setTimeout(r, 5));
      const newMail = await send(store, 'alice@example.com', 'bob@example.com', 'after renewal');
      const keysForNew = await findEnvelopeKeys(store, envelopeOf(newMail));
      assert.ok(keysForNew.some((k) => k.certificate.fingerprint256 === renewed.certificate.fingerprint256));
      assert.ok(!keysForNew.some((k) => k.certificate.fingerprint256 === oldCert.fingerprint256), 'new mail is not encrypted to the old certificate');
      assert.match((await receive(store, newMail)).text, /after renewal/);
      assert.match((await receive(store, oldMail)).text, /first message to bob/);
    });

    test('back up, restore, and decrypt the old mail from the restored store', async () => {
      let restored: Store;
      if (e.name === 'sqlite') {
        const copy = join(dir, 'backup.db');
        await backupSqliteStore(join(dir, 'kakitome.db'), copy);
        await assert.rejects(backupSqliteStore(join(dir, 'kakitome.db'), copy), (err) => isKakitomeError(err, 'INVALID_ARGUMENT'));
        restored = await Store.open(openSqliteEngine(copy), { masterKey: master });
      } else {
        const url = new URL(pg!.url);
        const bin = (n: string) => (execFileSync('bash', ['-c', `ls /usr/lib/postgresql/*/bin/${n} | tail -1`]).toString().trim());
        const dump = execFileSync(bin('pg_dump'), ['-h', url.hostname, '-p', url.port, '-U', 'kakitome', '--no-owner', 'postgres']);
        execFileSync(bin('psql'), ['-h', url.hostname, '-p', url.port, '-U', 'kakitome', '-d', 'postgres', '-q', '-c', 'CREATE DATABASE restored']);
        execFileSync(bin('psql'), ['-h', url.hostname, '-p', url.port, '-U', 'kakitome', '-d', 'restored', '-q', '-v', 'ON_ERROR_STOP=1'], { input: dump });
        restored = await Store.open(openPostgresEngine(pg!.url.replace(/\/postgres$/, '/restored')), { masterKey: master });
      }
      try {
        assert.match((await receive(restored, oldMail)).text, /first message to bob/);
        await assert.rejects(Store.open(restored.engine, { masterKey: masterKeyFromBytes(randomBytes(32)) }), (err) => isKakitomeError(err, 'KEY_INVALID'));
      } finally {
        await restored.close();
      }
    });
  });
}
