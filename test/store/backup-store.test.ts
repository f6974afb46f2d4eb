/**
 * `kakitome backup -o FILE` (src/store/backup-store.ts) while another process holds
 * the store's lock for a moment: the last connection of a command closing (it
 * checkpoints the WAL and removes it), WAL recovery after a crash, an EXCLUSIVE
 * locking-mode connection. The backup waited for none of them (no busy timeout on
 * its source connection): it failed at once, as an internal error ("database is
 * locked", or node:sqlite's "not an error"), 8 + 2267 failures in 2,900 backups
 * taken beside a process opening, writing and closing the store in a loop.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { backupSqliteStore } from '../../src/store/backup-store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { runCli } from '../cli/run-cli.ts';
import { isKakitomeError } from '../../src/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-backup-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A child process that opens the store, writes a row and closes it, again and again
 * for `ms` (each close of the last connection checkpoints the WAL and removes it);
 * resolves with the number of rows it wrote once it ends.
 */
function churn(path: string, ms: number): Promise<number> {
  const code = `const { DatabaseSync } = require('node:sqlite');
    let n = 0;
    for (const end = Date.now() + ${ms}; Date.now() < end; n++) {
      const db = new DatabaseSync(${JSON.stringify(path)}, { timeout: 10000 });
      db.exec('INSERT INTO t VALUES (' + n + ')');
      db.close();
    }
    process.stdout.write(String(n));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.on('exit', (c) => (c === 0 ? resolve(Number(out)) : reject(new Error(`writer exited ${c}`))));
  });
}

test('backups taken while another process opens, writes and closes the store all succeed, and each copy is whole', async () => {
  const source = join(dir, 'kakitome.db');
  const engine = openSqliteEngine(source);
  await engine.run('CREATE TABLE t (x)');
  await engine.close();
  const writer = churn(source, 4000);
  let done = false;
  void writer.finally(() => { done = true; });
  const failures: string[] = [];
  let backups = 0;
  for (let i = 0; !done; i++) {
    const out = join(dir, `backup-${i}.db`);
    try {
      await backupSqliteStore(source, out);
      const copy = new DatabaseSync(out, { readOnly: true });
      assert.equal((copy.prepare('PRAGMA integrity_check').get() as { integrity_check: string }).integrity_check, 'ok');
      copy.close();
      backups++;
    } catch (e) {
      failures.push((e as Error).message);
    }
    rmSync(out, { force: true });
  }
  const written = await writer;
  assert.ok(written > 20 && backups + failures.length > 20, `${written} writes, ${backups + failures.length} backups: they overlapped (the test can fail)`);
  assert.deepEqual(failures.slice(0, 3), [], `${failures.length} of ${backups + failures.length} backups failed`);
});

test('kakitome backup -o FILE copies a SQLite store named by KAKITOME_DATABASE_URL=/path/to.db (it was taken for PostgreSQL and refused)', async () => {
  const env = { ...process.env, KAKITOME_HOME: join(dir, 'home'), KAKITOME_MASTER_KEY: '', KAKITOME_DATABASE_URL: join(dir, 'stores', 'alice.db') };
  const init = await runCli(['init'], { env });
  assert.equal(init.status, 0, init.stderr);
  const r = await runCli(['backup', '-o', join(dir, 'alice-backup.db'), '--json'], { env });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout.toString()).source, join(dir, 'stores', 'alice.db'));
  const copy = new DatabaseSync(join(dir, 'alice-backup.db'), { readOnly: true });
  assert.ok((copy.prepare("SELECT count(*) AS n FROM settings WHERE name = 'master_key_id'").get() as { n: number }).n === 1);
  copy.close();
});

test('a backup of a store that does not exist is NOT_FOUND naming the file, not an internal error', async () => {
  const missing = join(dir, 'no-home', 'kakitome.db');
  await assert.rejects(backupSqliteStore(missing, join(dir, 'none.db')), (e) => isKakitomeError(e, 'NOT_FOUND') && e.message.includes(missing));
  const r = await runCli(['backup', '-o', join(dir, 'none.db')], { env: { ...process.env, KAKITOME_HOME: join(dir, 'no-home'), KAKITOME_DATABASE_URL: '' } });
  assert.match(r.stderr, /kakitome backup: NOT_FOUND: There is no store at /);
  assert.doesNotMatch(r.stderr, /bug in Kakitome/);
  assert.ok(!existsSync(join(dir, 'none.db')));
});
