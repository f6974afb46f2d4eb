/**
 * A process killed (SIGKILL) in the middle of a write transaction loses nothing
 * committed and leaves nothing half-written: SQLite file store, WAL mode.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, generateKeyPairSync } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-crash-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const src = (p: string) => JSON.stringify(new URL(`../../src/${p}`, import.meta.url).pathname);

test('SIGKILL mid-transaction: committed keys survive, the open transaction vanishes, the file is intact', async () => {
  const raw = randomBytes(32);
  const master = masterKeyFromBytes(raw);
  const path = join(dir, 'kakitome.db');
  const store = await Store.open(openSqliteEngine(path), { masterKey: master });
  const kept = await store.importPrivateKey(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey, { label: 'committed' });
  await store.close();

  // The child commits one key, then starts a transaction that writes and never ends.
  const script = `
    import { Store } from ${src('store/store.ts')};
    import { openSqliteEngine } from ${src('store/sqlite-engine.ts')};
    import { masterKeyFromBytes } from ${src('keys/master-key.ts')};
    import { generateKeyPairSync } from 'node:crypto';
    const store = await Store.open(openSqliteEngine(process.argv[1]), { masterKey: masterKeyFromBytes(Buffer.from(process.argv[2], 'hex')) });
    await store.importPrivateKey(generateKeyPairSync('ed25519').privateKey, { label: 'child committed' });
    await store.engine.transaction(async (tx) => {
      await tx.run("INSERT INTO audit_log (id, at, actor, action) VALUES ('half', '2026-01-01T00:00:00.000Z', 'x', 'half-written')");
      process.stdout.write('in-transaction\\n');
      await new Promise(() => {});
    });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, path, raw.toString('hex')], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('in-transaction')) resolve(); });
    child.once('exit', () => reject(new Error('child exited early')));
  });
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));

  const check = new DatabaseSync(path);
  assert.equal((check.prepare('PRAGMA integrity_check').get() as { integrity_check: string }).integrity_check, 'ok');
  check.close();
  const reopened = await Store.open(openSqliteEngine(path), { masterKey: master });
  try {
    const labels = (await reopened.listKeys()).map((k) => k.label).sort();
    assert.deepEqual(labels, ['child committed', 'committed']);
    assert.equal((await reopened.exportPrivateKey(kept.id, 'after crash')).type, 'private');
    assert.equal((await reopened.engine.all("SELECT id FROM audit_log WHERE id = 'half'")).length, 0);
  } finally {
    await reopened.close();
  }
});
