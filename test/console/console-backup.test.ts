/**
 * Backup from the console (/admin/backup, administrators): the encrypted archive
 * of the store, under a passphrase made and shown once or typed; downloaded once;
 * restored into an empty store it holds the same people and certificates, and
 * its keys open with the master key only. Audited; refused to other roles.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { restoreEncryptedBackup } from '../../src/store/encrypted-backup.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { ja } from '../../src/server/console/messages/ja.ts';
import { startAdminFixture, ROLE_PEOPLE, type AdminFixture } from './admin-fixture.ts';

let fx: AdminFixture;
const tmp = mkdtempSync(join(tmpdir(), 'kakitome-console-backup-'));
before(async () => {
  fx = await startAdminFixture();
});
after(async () => {
  await fx?.close();
  rmSync(tmp, { recursive: true, force: true });
});

test('an administrator downloads an encrypted backup once, under a passphrase shown once; it restores into an empty store', async () => {
  const admin = await fx.client('admin');
  const form = await (await admin.request('/admin/backup', { headers: { 'accept-language': 'ja' } })).text();
  assert.ok(form.includes(ja.backup.lead) && form.includes('kakitome restore'));
  assert.equal((await admin.request('/admin/backup', { form: { passphrase: 'one passphrase here', 'passphrase-again': 'another one here' } })).status, 400);
  assert.equal((await admin.request('/admin/backup', { form: { passphrase: 'short', 'passphrase-again': 'short' } })).status, 400);
  assert.equal((await fx.store.auditLog()).filter((e) => e.action === 'store.backup').length, 0, 'nothing made');

  const r = await admin.request('/admin/backup', { form: { passphrase: '', 'passphrase-again': '' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  const html = await r.text();
  const passphrase = /data-backup-passphrase>([A-Z0-9-]+)</.exec(html)?.[1];
  const link = /href="(\/me\/certificate\/download\/[A-Za-z0-9_-]+)" download data-backup-download/.exec(html)?.[1];
  assert.ok(passphrase && link, html);
  assert.equal(passphrase.length, 35, 'six groups of five');
  // Only the administrator who made it downloads it, once.
  const other = await fx.client('officer');
  assert.equal((await other.request(link)).status, 404);
  const d = await admin.request(link);
  assert.equal(d.status, 200);
  assert.match(d.headers.get('content-disposition') ?? '', /kakitome-backup-\d{4}-\d{2}-\d{2}\.kbk/);
  const archive = Buffer.from(await d.arrayBuffer());
  assert.equal((await admin.request(link)).status, 404);
  assert.ok(!archive.includes(Buffer.from(ROLE_PEOPLE.user!.email)), 'nothing in clear');

  const engine = openSqliteEngine(join(tmp, 'restored.db'));
  await assert.rejects(restoreEncryptedBackup(openSqliteEngine(join(tmp, 'wrong.db')), archive, 'WRONG-PASSPHRASE-GIVEN'), (e: unknown) => isKakitomeError(e, 'DECRYPT_FAILED'));
  const out = await restoreEncryptedBackup(engine, archive, passphrase);
  assert.equal(out.masterKeyId, (await fx.store.engine.all("SELECT value FROM settings WHERE name = 'master_key_id'"))[0]?.value);
  const people = (await engine.all('SELECT email FROM people ORDER BY email')).map((x) => String(x.email));
  assert.deepEqual(people, (await fx.store.engine.all('SELECT email FROM people ORDER BY email')).map((x) => String(x.email)));
  assert.equal(Number((await engine.all('SELECT COUNT(*) AS n FROM console_sessions'))[0]!.n), 0, 'no session travels in a backup');
  await engine.close();
  const [row] = (await fx.store.auditLog()).filter((e) => e.action === 'store.backup');
  assert.equal(row!.actor, `console:${ROLE_PEOPLE.admin!.email}`);
  assert.match(row!.detail!, /made and shown once/);
  assert.ok(!row!.detail!.includes(passphrase), 'the passphrase is never logged');

  // A typed passphrase is not shown back.
  const typed = await (await admin.request('/admin/backup', { form: { passphrase: 'our offsite backup 2026', 'passphrase-again': 'our offsite backup 2026' } })).text();
  assert.ok(typed.includes(en.backup.yourPassphrase) && !typed.includes('our offsite backup 2026') && !typed.includes('data-backup-passphrase'));
});

test('other roles are refused, and a forged cross-site form makes nothing', async () => {
  for (const role of ['officer', 'auditor', 'helpdesk', 'user'] as const) {
    const c = await fx.client(role);
    assert.equal((await c.request('/admin/backup')).status, 403, role);
    assert.equal((await c.request('/admin/backup', { form: {} })).status, 403, role);
  }
  const before = (await fx.store.auditLog()).filter((e) => e.action === 'store.backup').length;
  const admin = await fx.client('admin');
  assert.equal((await admin.request('/admin/backup', { form: {}, origin: 'https://evil.example' })).status, 403);
  assert.equal((await fx.store.auditLog()).filter((e) => e.action === 'store.backup').length, before);
});
