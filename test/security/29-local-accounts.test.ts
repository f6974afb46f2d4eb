/**
 * docs/security.md section 23: what Kakitome leaves on the machine, attacked by a
 * second local account. The attacker is `mallory`, a real account made with
 * useradd, who plants files with runuser in a directory every account may write to
 * (mode 1777, as /tmp), before the victim (root here, as in CI) runs the command.
 *
 * These tests need root and useradd/runuser: where either is missing (a developer's
 * own account, a container without shadow-utils) they are skipped, and say so.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openAtomicWriter, writeFileAtomic } from '../../src/cli/io.ts';
import { StagingDirectory, stagingPathFor } from '../../src/cli/staging-directory.ts';
import { KakitomeError } from '../../src/errors.ts';
import { TestPki } from '../helpers/pki.ts';
import { draftMessage, runCli } from '../cli/run-cli.ts';

const LAUNCHER = new URL('../../bin/kakitome.js', import.meta.url).pathname;

function hasProgram(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

const skip = process.getuid?.() !== 0 ? 'needs root (CI runs as root) to act as a second account'
  : !hasProgram('useradd') || !hasProgram('runuser') ? 'needs useradd and runuser for a second local account' : false;

let shared: string;

/** Runs `args` as mallory. */
function asMallory(...args: string[]): void {
  execFileSync('runuser', ['-u', 'mallory', '--', ...args], { stdio: 'pipe' });
}

before(() => {
  if (skip) return;
  if (spawnSync('id', ['-u', 'mallory']).status !== 0) execFileSync('useradd', ['-m', 'mallory'], { stdio: 'pipe' });
  shared = mkdtempSync(join(tmpdir(), 'kakitome-shared-'));
  chmodSync(shared, 0o1777);
});
after(() => {
  if (shared) rmSync(shared, { recursive: true, force: true });
});

function isRefusal(e: unknown): boolean {
  return e instanceof KakitomeError && e.code === 'INVALID_ARGUMENT' && /belongs to uid/.test(e.message);
}

test('-o FILE: a symbolic link another account planted at FILE is refused; the file it points to is not replaced', { skip }, async () => {
  const victim = join(shared, 'victim.conf');
  writeFileSync(victim, 'root configuration\n', { mode: 0o644 });
  const out = join(shared, 'key.pem');
  asMallory('ln', '-s', victim, out);
  await assert.rejects(writeFileAtomic(out, Buffer.from('-----BEGIN PRIVATE KEY-----\n')), isRefusal);
  await assert.rejects(openAtomicWriter(out), isRefusal);
  assert.equal(readFileSync(victim, 'utf8'), 'root configuration\n', 'the link\'s target is left as it was');
  // The same link, made by root itself (an administrator's own link), is still followed.
  rmSync(out);
  execFileSync('ln', ['-s', victim, out]);
  await writeFileAtomic(out, Buffer.from('new\n'));
  assert.equal(readFileSync(victim, 'utf8'), 'new\n');
});

test('-o FILE: a FIFO another account planted at FILE is refused at once: no plaintext reaches it, no wait for a reader', { skip }, async () => {
  const out = join(shared, 'decrypted.eml');
  asMallory('mkfifo', '-m', '0666', out);
  // Before the fix the open waited for a reader: mallory's. Be that reader after 3 s so the test ends either way.
  let leaked = '';
  const reader = setTimeout(() => {
    const fd = openSync(out, constants.O_RDONLY | constants.O_NONBLOCK);
    setTimeout(() => {
      try { leaked = readFileSync(fd, 'utf8'); } catch { /* nothing written */ }
      closeSync(fd);
    }, 500);
  }, 3000);
  const started = Date.now();
  try {
    await assert.rejects(openAtomicWriter(out).then(async (w) => { await w.write(Buffer.from('Subject: salaries\n')); await w.commit(); }), isRefusal);
  } finally {
    clearTimeout(reader);
  }
  assert.ok(Date.now() - started < 3000, 'refused without waiting');
  assert.equal(leaked, '');
  assert.ok(statSync(out).isFIFO(), 'mallory\'s FIFO is left alone');
});

test('a batch\'s new OUTDIR (its staging directory) is 0700 under umask 000: no other account can add outputs to it', { skip }, async () => {
  const outDir = join(shared, 'decrypted');
  const staging = new StagingDirectory(outDir, stagingPathFor(outDir)!, () => {}, { programs: [] });
  const old = process.umask(0);
  try {
    await staging.create();
  } finally {
    process.umask(old);
  }
  assert.equal(statSync(staging.path).mode & 0o777, 0o700);
  assert.throws(() => asMallory('touch', join(staging.path, 'invoice.eml')), 'mallory cannot plant an output');
  await staging.finish();
  assert.equal(statSync(outDir).mode & 0o777, 0o700, 'OUTDIR is the staging directory');
});

test('-o OUTDIR of a batch: a link another account planted there is refused before any output is written; its directory stays empty', { skip }, async () => {
  const pki = new TestPki('Local Accounts Root');
  const alice = pki.identity('rsa2048', 'alice');
  const inDir = join(shared, 'to-sign');
  mkdirSync(inDir);
  for (let i = 0; i < 3; i++) writeFileSync(join(inDir, `m${i}.eml`), draftMessage(alice.email, 'bob@example.com', `salary ${i}`, `Body ${i}\r\n`));
  const hers = join(shared, 'mallory-outputs');
  asMallory('mkdir', '-m', '0777', hers);
  const outDir = join(shared, 'signed');
  asMallory('ln', '-s', hers, outDir);
  const r = await runCli(['sign', '--cert', alice.certPath, '--key', alice.keyPath, '-i', inDir, '-o', outDir]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /symbolic link that belongs to uid/);
  assert.deepEqual(execFileSync('ls', ['-A', hers]).toString(), '', 'nothing written into mallory\'s directory');
});

test('init refuses a Kakitome home another account owns, or can write to, before it writes the master key there', { skip }, async () => {
  const hers = join(shared, 'mallory-home-dir');
  asMallory('mkdir', '-m', '0700', hers);
  const open = join(shared, 'open-home');
  mkdirSync(open, { mode: 0o777 });
  chmodSync(open, 0o777);
  for (const [home, why] of [[hers, /belongs to uid/], [open, /writable by group or others/]] as const) {
    const r = await runCli(['init'], { env: { ...process.env, KAKITOME_HOME: home } });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, why);
    assert.ok(!existsSync(join(home, 'master.key')), `no master key left in ${home}`);
  }
});

/** Runs `kakitome --help` as root with `env`; true if Node's compile cache was written under `cacheHome`. */
function launcherCaches(cacheHome: string, umask = 0o022): boolean {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cacheHome };
  delete env.NODE_COMPILE_CACHE;
  delete env.NODE_DISABLE_COMPILE_CACHE;
  const r = spawnSync('sh', ['-c', `umask ${umask.toString(8)} && exec "$0" "$1" --help`, process.execPath, LAUNCHER], { env, stdio: 'pipe' });
  assert.equal(r.status, 0, r.stderr.toString());
  return existsSync(join(cacheHome, 'kakitome', 'node-compile-cache'));
}

test('the compile cache is used only in directories no other account can write to', { skip }, () => {
  // Root's own cache home: used (the test can fail), and private under umask 000.
  const own = join(shared, 'root-cache');
  mkdirSync(own, { mode: 0o700 });
  assert.ok(launcherCaches(own, 0o000));
  for (const d of ['kakitome', 'kakitome/node-compile-cache']) assert.equal(statSync(join(own, d)).mode & 0o777, 0o700, d);
  // XDG_CACHE_HOME left pointing at mallory's directory (sudo -E): nothing read or written there.
  const hers = join(shared, 'mallory-cache');
  asMallory('mkdir', '-m', '0755', hers);
  assert.ok(!launcherCaches(hers));
  // A cache home writable by its group: used when that is root's own group (umask 002 with
  // user-private groups), not when it is mallory's.
  const ownGroup = join(shared, 'own-group-cache');
  mkdirSync(ownGroup);
  chmodSync(ownGroup, 0o775);
  assert.ok(launcherCaches(ownGroup));
  const herGroup = join(shared, 'her-group-cache');
  mkdirSync(herGroup);
  chmodSync(herGroup, 0o775);
  execFileSync('chgrp', ['mallory', herGroup]);
  assert.ok(!launcherCaches(herGroup));
  // Root's, but inside a directory mallory owns (she can rename it and put hers in its place).
  const inside = join(shared, 'mallory-home');
  asMallory('mkdir', '-m', '0755', inside);
  const rootsInHers = join(inside, 'cache');
  execFileSync('mkdir', ['-m', '0700', rootsInHers]);
  chmodSync(inside, 0o777);
  assert.ok(!launcherCaches(rootsInHers));
  // This user's cache left writable by others (made under umask 000 by an earlier
  // version), where mallory planted the installation's directory: repaired, hers removed.
  const loose = join(shared, 'loose-cache');
  mkdirSync(join(loose, 'kakitome', 'node-compile-cache'), { recursive: true, mode: 0o777 });
  chmodSync(join(loose, 'kakitome'), 0o777);
  chmodSync(join(loose, 'kakitome', 'node-compile-cache'), 0o777);
  const installation = readdirSync(join(own, 'kakitome', 'node-compile-cache')).find((n) => !n.startsWith('.'))!;
  const planted = join(loose, 'kakitome', 'node-compile-cache', installation);
  asMallory('mkdir', '-m', '0777', planted);
  asMallory('touch', join(planted, 'planted'));
  assert.ok(launcherCaches(loose));
  assert.ok(!existsSync(join(planted, 'planted')), 'what mallory planted is removed');
  assert.equal(statSync(planted).uid, 0);
  assert.equal(statSync(planted).mode & 0o777, 0o700);
  for (const d of ['kakitome', 'kakitome/node-compile-cache']) assert.equal(statSync(join(loose, d)).mode & 0o022, 0, `${d} no longer writable by others`);
  assert.notEqual(execFileSync('find', [planted, '-name', 'v*']).toString(), '', 'the cache is used again');
});

function isUnsafeDirectory(e: unknown): boolean {
  return e instanceof KakitomeError && e.code === 'KEY_INVALID' && e.remedy === 'permissions';
}

/**
 * Runs `fn` while every mkdirSync of `path` is preceded by `plant()`: another account
 * winning the race at the worst moment, between a check of a missing directory and
 * its creation (mkdir -p then tolerates hers).
 */
async function withPlantedAtMkdir<T>(path: string, plant: () => void, fn: () => Promise<T>): Promise<T> {
  const fs = (await import('node:fs')).default;
  const { syncBuiltinESMExports } = await import('node:module');
  const original = fs.mkdirSync;
  (fs as { mkdirSync: unknown }).mkdirSync = (p: string, o: unknown) => {
    if (p === path && !existsSync(path)) plant();
    return original(p, o as never);
  };
  syncBuiltinESMExports();
  try {
    return await fn();
  } finally {
    (fs as { mkdirSync: unknown }).mkdirSync = original;
    syncBuiltinESMExports();
  }
}

test('the Kakitome home is created, then judged: a home another account makes meanwhile is refused before anything is written into it', { skip }, async () => {
  const { openEngine } = await import('../../src/store/open-store.ts');
  const home = join(shared, 'raced-home');
  await assert.rejects(withPlantedAtMkdir(home, () => asMallory('mkdir', '-m', '0777', home), () => openEngine({ home })), isUnsafeDirectory);
  assert.deepEqual(readdirSync(home), [], 'no store file left in her directory');
  assert.equal(statSync(home).uid, Number(execFileSync('id', ['-u', 'mallory']).toString()));
  // A home planted before the command ran, and a link of hers to a directory of root's own (she can repoint it).
  const hers = join(shared, 'planted-home');
  asMallory('mkdir', '-m', '0700', hers);
  await assert.rejects(openEngine({ home: hers }), isUnsafeDirectory);
  const roots = join(shared, 'roots-home');
  mkdirSync(roots, { mode: 0o700 });
  const link = join(shared, 'linked-home');
  asMallory('ln', '-s', roots, link);
  await assert.rejects(openEngine({ home: link }), isUnsafeDirectory);
  assert.deepEqual(readdirSync(roots), []);
  // Made by this run under umask 000: 0700, and used.
  const fresh = join(shared, 'fresh', 'home');
  const old = process.umask(0);
  try {
    await (await openEngine({ home: fresh })).close();
  } finally {
    process.umask(old);
  }
  assert.equal(statSync(fresh).mode & 0o777, 0o700);
  assert.equal(statSync(join(fresh, 'kakitome.db')).mode & 0o777, 0o600);
});

test('KAKITOME_DATABASE_URL=/path/to.db: the SQLite file\'s directory is judged as the home is (it holds the store and the batch files)', { skip }, async () => {
  const { openEngine } = await import('../../src/store/open-store.ts');
  const hers = join(shared, 'her-db-dir');
  asMallory('mkdir', '-m', '0777', hers);
  const open = join(shared, 'open-db-dir');
  mkdirSync(open);
  chmodSync(open, 0o777);
  for (const dir of [hers, open, shared]) {
    await assert.rejects(openEngine({ databaseUrl: join(dir, 'store.db') }), isUnsafeDirectory, dir);
    assert.ok(!existsSync(join(dir, 'store.db')), `no store written in ${dir}`);
  }
  const raced = join(shared, 'raced-db-dir');
  await assert.rejects(withPlantedAtMkdir(raced, () => asMallory('mkdir', '-m', '0777', raced), () => openEngine({ databaseUrl: `file://${join(raced, 'store.db')}` })), isUnsafeDirectory);
  assert.deepEqual(readdirSync(raced), []);
  const own = join(shared, 'own-db-dir', 'sub');
  await (await openEngine({ databaseUrl: join(own, 'store.db') })).close();
  assert.equal(statSync(own).mode & 0o777, 0o700);
});

test('standard output staged in a TMPDIR another account can write to: read back through its descriptor, never by name; the launcher ignores such a TMPDIR', { skip }, async () => {
  const { openOutputSink } = await import('../../src/cli/open-output-sink.ts');
  const hers = join(shared, 'her-tmp');
  asMallory('mkdir', '-m', '0777', hers);
  const fs = (await import('node:fs')).default;
  const { syncBuiltinESMExports } = await import('node:module');
  const originalRead = fs.createReadStream;
  // Mallory at the worst moment: whatever is read back by name is hers by then.
  (fs as { createReadStream: unknown }).createReadStream = (p: string, o: unknown) => {
    if (String(p).startsWith(hers)) asMallory('sh', '-c', `echo 'Subject: pay mallory' > '${p}.x' && mv -f '${p}.x' '${p}'`);
    return originalRead(p, o as never);
  };
  syncBuiltinESMExports();
  const captured: Buffer[] = [];
  const originalWrite = process.stdout.write;
  const oldTmp = process.env.TMPDIR;
  process.env.TMPDIR = hers;
  try {
    const sink = await openOutputSink(undefined, { discardAll: false, directToStdout: false });
    assert.deepEqual(readdirSync(hers), [], 'no staging file under a name she can replace');
    sink.writable.write(Buffer.from('Subject: salaries\r\n'));
    sink.writable.write(Buffer.from('\r\nBody\r\n'));
    process.stdout.write = ((d: Uint8Array, cb: (e?: Error) => void) => { captured.push(Buffer.from(d)); cb(); return true; }) as typeof process.stdout.write;
    await sink.keep();
  } finally {
    process.stdout.write = originalWrite;
    process.env.TMPDIR = oldTmp;
    if (oldTmp === undefined) delete process.env.TMPDIR;
    (fs as { createReadStream: unknown }).createReadStream = originalRead;
    syncBuiltinESMExports();
  }
  assert.equal(Buffer.concat(captured).toString(), 'Subject: salaries\r\n\r\nBody\r\n');
  // The launcher: a TMPDIR of hers is ignored (said on stderr); one of root's own is used silently.
  const ignored = await runCli(['--help'], { env: { ...process.env, TMPDIR: hers } });
  assert.equal(ignored.status, 0, ignored.stderr);
  assert.match(ignored.stderr, new RegExp(`ignoring the temporary directory ${hers} \\(TMPDIR\\): another account can write to it`));
  const own = join(shared, 'own-tmp');
  mkdirSync(own, { mode: 0o700 });
  const used = await runCli(['--help'], { env: { ...process.env, TMPDIR: own } });
  assert.equal(used.stderr, '');
});
