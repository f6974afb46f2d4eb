#!/usr/bin/env node
// The `kakitome` launcher. In a checkout it runs the TypeScript sources directly
// (Node 24 strips types); an installed package has no src/ and runs dist/.
import { existsSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import module from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(`kakitome needs Node.js 24 or newer (this is ${process.version}). In a checkout, run: npx node bin/kakitome.js\n`);
  process.exit(2);
}

// Node's module compile cache halves start-up (0.26 -> 0.12 s for `sign --help`)
// and keeps the TypeScript stripper out of memory (102 -> 70 MiB peak RSS). It lives
// in the user's own cache directory, never the shared temporary directory, where
// another local user could plant compiled code. NODE_COMPILE_CACHE or
// NODE_DISABLE_COMPILE_CACHE in the environment take precedence.
// Worker threads (the serving threads, the gateway's crypto workers, batch workers)
// read the cache's location from the environment when they start: without it each
// compiled its modules again, about 0.35 s of CPU per thread.
// Each installation (a checkout, an installed package) has a directory of its own,
// and what no process used for a week is removed once a day (prune-compile-cache.js):
// Node itself removes nothing, and every checkout and Node upgrade added ~35 MiB.
if (!process.env.NODE_COMPILE_CACHE && !process.env.NODE_DISABLE_COMPILE_CACHE) {
  try {
    const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
    const root = join(base, 'kakitome', 'node-compile-cache');
    const cacheDir = join(root, installationDirectory(fileURLToPath(new URL('..', import.meta.url))));
    // Compiled code is trusted as the sources are: 0700 whatever the umask (Node's
    // own mkdir gave 0777 under umask 000), and used only where no other account can
    // write (privateCacheDirectory); this user's own, left open to others, is repaired.
    let tagged;
    if (existsSync(base) ? privateCacheDirectory(base, base) : othersCannotWrite(dirname(base))) {
      mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
      let safe = privateCacheDirectory(cacheDir, base);
      if (!safe) {
        (await import('./prune-compile-cache.js')).repairCacheDirectory(base, cacheDir);
        mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
        safe = privateCacheDirectory(cacheDir, base);
      }
      if (safe) {
        module.enableCompileCache(cacheDir);
        tagged = module.getCompileCacheDir();
      }
    }
    if (tagged) {
      process.env.NODE_COMPILE_CACHE = cacheDir;
      const cache = await import('./prune-compile-cache.js');
      cache.touchInUse(cacheDir, tagged);
      if (cache.pruneDue(root)) cache.pruneCompileCache(root, cacheDir, tagged);
    }
  } catch {
    // A read-only home: run without the cache (or without pruning it).
  }
}

// The temporary directory holds standard output's staging file (src/cli/open-output-sink.ts),
// a gateway's spool and large messages' scratch files. One another account can write to
// (TMPDIR left pointing at a user's directory by `sudo -E`, or made 0777) lets her
// replace or remove what is put there: it is ignored, with a warning, for /tmp (sticky,
// where only the owner of a file may rename or remove it), by the rule that judges the
// directories above the compile cache (othersCannotWrite).
try {
  const tmp = tmpdir();
  if (tmp !== '/tmp' && existsSync(tmp) && !othersCannotWrite(tmp)) {
    process.stderr.write(`kakitome: ignoring the temporary directory ${tmp} (TMPDIR): another account can write to it; using /tmp.\n`);
    for (const name of ['TMPDIR', 'TMP', 'TEMP']) delete process.env[name];
  }
} catch {
  // Unreadable: the commands that use it say so.
}

/**
 * Whether no other account can put files into `dir` (the compile cache): another
 * user who could would run code as this one (as root, when root runs kakitome with
 * HOME or XDG_CACHE_HOME left pointing at a user's directory). Every directory from
 * `dir` up to `base` (the cache home) must be this user's and not writable by group
 * or others, and those above it as othersCannotWrite says, as ssh's StrictModes
 * judges a home. Not on Windows.
 */
function privateCacheDirectory(dir, base) {
  const uid = process.getuid?.();
  if (uid === undefined) return true;
  const top = realpathSync(base);
  for (let d = realpathSync(dir); ; d = dirname(d)) {
    const st = statSync(d);
    if (st.uid !== uid || (d === top ? foreignWritable(st) : (st.mode & 0o022) !== 0)) return false;
    if (d === top || dirname(d) === d) return othersCannotWrite(dirname(d));
  }
}

/**
 * Writable by another account: by others, or by a group other than this user's own
 * primary one (under umask 002, the user-private-group convention of Debian and
 * Fedora, ~/.cache is 0775 with the user's own group, as Debian's OpenSSH accepts).
 */
function foreignWritable(st) {
  return (st.mode & (st.gid === process.getgid?.() ? 0o002 : 0o022)) !== 0;
}

/** `dir` and every directory above it are this user's or root's, and not foreignWritable unless sticky (/tmp). */
function othersCannotWrite(dir) {
  const uid = process.getuid?.();
  if (uid === undefined) return true;
  for (let d = realpathSync(dir); ; d = dirname(d)) {
    const st = statSync(d);
    if ((st.uid !== uid && st.uid !== 0) || (foreignWritable(st) && (st.mode & 0o1000) === 0)) return false;
    if (dirname(d) === d) return true;
  }
}

/**
 * The cache directory's name for an installation: the end of its path, readable
 * (which checkout it is), and an FNV-1a hash of the whole path (two paths ending
 * alike stay apart; node:crypto would cost the start-up ~7 ms of CPU).
 */
function installationDirectory(path) {
  let h = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) h = Math.imul(h ^ path.charCodeAt(i), 0x01000193) >>> 0;
  const tail = path.replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '').slice(-40);
  return `${tail}-${h.toString(16).padStart(8, '0')}`;
}

// A running gateway (`kakitome gateway --listen ...`) streams messages of up to
// gigabytes on its main thread, allocating a gigabyte or more of short-lived
// strings and buffers per pass over a message. Under that allocation rate V8 grows
// its young generation to its largest (16 MiB semi-spaces) and keeps the heap it
// grew: the peak RSS after a 1 GiB message each way was 239 MiB, and 125 MiB with
// semi-spaces of 1 MiB (docs/performance.md, "Large messages through the gateway").
// Not `kakitome serve`: there the flag kept a node signing a batch near 190 MiB
// (272 MiB without it after 75,000 messages) but cost POST /api/v1/sign about a
// quarter more CPU per request (docs/performance.md, "Batches through the signing
// service"). serve signs batches in a thread whose young generation is small
// (src/server/batches/batch-thread.ts); the flag would override that limit and
// every other thread's alike.
// V8 reads the size only when the process starts, so the
// launcher starts itself again (same process id, so signals, kill -9 and systemd
// see one process) with the flag, unless it was given already (on the command line
// or in NODE_OPTIONS).
const semiSpace = '--max-semi-space-size';
const args = process.argv.slice(2);
if (args[0] === 'gateway' && args.some((a) => a === '--listen' || a.startsWith('--listen=')) && typeof process.execve === 'function'
  && !process.execArgv.some((a) => a.startsWith(semiSpace)) && !(process.env.NODE_OPTIONS ?? '').includes(semiSpace)) {
  process.execve(process.execPath, [process.execPath, ...process.execArgv, `${semiSpace}=1`, ...process.argv.slice(1)], process.env);
}

/** Commands whose work is done when main resolves (serve, gateway and `ca ocsp` resolve only once stopped). */
const MESSAGE_COMMANDS = ['sign', 'verify', 'encrypt', 'decrypt', 'inspect'];
// A message command's standard error carries its notes and summary only: a reader that
// leaves (`2>&1 | head`) while a batch still writes them must not turn the command's exit
// code into 1 through an unhandled EPIPE. end-command.js did this only at the end, so a
// note written between the reader leaving and the end raced it (seen once in CI).
if (MESSAGE_COMMANDS.includes(args[0] ?? '')) process.stderr.on('error', () => {});

const source = new URL('../src/cli/main.ts', import.meta.url);
const entry = existsSync(source) ? source : new URL('../dist/cli/main.js', import.meta.url);
const { main } = await import(entry.href);
const code = await main(process.argv.slice(2));
// A message command (sign, verify, encrypt, decrypt, inspect: a batch too) has
// done its work when main resolves: its workers are terminated and nothing else is
// open. It ends naturally (the event loop drains), not by process.exit(), which can
// hang for ever in Node's shutdown (nodejs/node#54918), with a bound in case a
// handle stays open: end-command.js says why and how.
if (MESSAGE_COMMANDS.includes(args[0] ?? '')) {
  await (await import('./end-command.js')).endCommand(code);
}
process.exitCode = code;
