/**
 * `kakitome backup` onto a full file system (a small tmpfs; root only, as CI runs:
 * mount -t tmpfs): both forms (the SQLite copy, src/store/backup-store.ts, and the
 * encrypted archive, written by cli/io.ts's writeFileAtomic) answer NO_SPACE with the
 * remedy `diskSpace` and exit status 2, and leave nothing on the file system. Before,
 * the SQLite copy answered "internal error: database or disk is full ... This is a bug
 * in Kakitome" (exit 3), and the archive INVALID_ARGUMENT with `--help` as the advice.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, storeHomeEnv } from './run-cli.ts';
import { backupSqliteStore } from '../../src/store/backup-store.ts';
import { isKakitomeError } from '../../src/errors.ts';

const root = process.getuid?.() === 0;
const dir = mkdtempSync(join(tmpdir(), 'kakitome-backup-full-'));
const mnt = join(dir, 'small');
const home = join(dir, 'home');
let mounted = false;
let env: NodeJS.ProcessEnv;

before(async () => {
  if (!root) return;
  execFileSync('mkdir', ['-p', mnt, join(dir, 'user')]);
  // 64 KiB: the store (some 400 KiB after its migrations) does not fit.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', mnt]);
  mounted = true;
  env = { ...storeHomeEnv(home, join(dir, 'user')), BACKUP_PASS: 'a passphrase of some length' };
  const init = await runCli(['init'], { env });
  assert.equal(init.status, 0, init.stderr);
});

after(() => {
  if (mounted) execFileSync('umount', ['-l', mnt]);
  rmSync(dir, { recursive: true, force: true });
});

/** Fills the tmpfs to its last byte. */
function fill(): void {
  const fd = openSync(join(mnt, 'filler'), 'w');
  try {
    for (;;) writeSync(fd, Buffer.alloc(4096, 0x5a));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
}

function assertNoSpace(r: { status: number | null; stderr: string }, what: string): void {
  assert.equal(r.status, 2, `${what}: ${r.stderr}`);
  const [first, advice] = r.stderr.trimEnd().split('\n');
  assert.match(first!, /^kakitome backup: NO_SPACE: /, what);
  assert.match(first!, /small\/backup\./, `${what}: the message names the file`);
  assert.match(advice ?? '', /Free space on the file system/, `${what}: the remedy, not a bug report`);
  assert.doesNotMatch(r.stderr, /internal error|bug in Kakitome|--help/, what);
}

test('the SQLite copy, cut short by the full file system: NO_SPACE, exit 2, nothing left', { skip: !root && 'needs root (mount -t tmpfs)' }, async () => {
  const r = await runCli(['backup', '-o', join(mnt, 'backup.db')], { env });
  assertNoSpace(r, 'backup');
  assert.deepEqual(readdirSync(mnt), [], 'no partial copy, no journal');
  // The library's own error: the code and remedy every front end reads.
  await assert.rejects(backupSqliteStore(join(home, 'kakitome.db'), join(mnt, 'backup.db')), (e) => isKakitomeError(e, 'NO_SPACE') && e.remedy === 'diskSpace' && /SQLITE_FULL/.test(e.message));
  assert.deepEqual(readdirSync(mnt), []);
});

test('the encrypted archive onto a full file system: NO_SPACE, exit 2, no temporary file left', { skip: !root && 'needs root (mount -t tmpfs)' }, async () => {
  fill();
  try {
    const r = await runCli(['backup', '--passphrase', 'env:BACKUP_PASS', '-o', join(mnt, 'backup.kbak')], { env });
    assertNoSpace(r, 'backup --passphrase');
    assert.deepEqual(readdirSync(mnt), ['filler'], 'no archive and no temporary file');
  } finally {
    rmSync(join(mnt, 'filler'), { force: true });
  }
  // With room again the same command works.
  const ok = await runCli(['backup', '--passphrase', 'env:BACKUP_PASS', '-o', join(mnt, 'backup.kbak')], { env });
  assert.equal(ok.status, 0, ok.stderr);
  rmSync(join(mnt, 'backup.kbak'));
});
