/**
 * The launcher's module compile cache stays bounded (bin/prune-compile-cache.js):
 * each installation has a directory of its own under the cache's top, and once a
 * day what no process used for MAX_AGE_DAYS goes: other installations'
 * directories, the layout before them (Node's version directories at the top),
 * this installation's directories of other Node versions or flags. Nothing else:
 * not a directory in use, not a name the launcher does not give, not a symbolic
 * link nor what it points to. Run through the real launcher, as users start it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/kakitome.js', import.meta.url));
const DAY = 24 * 3600_000;

function launch(xdg: string): void {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: xdg };
  delete env.NODE_COMPILE_CACHE;
  delete env.NODE_DISABLE_COMPILE_CACHE;
  execFileSync(process.execPath, [BIN, '--version'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A directory (with a file in it) last changed `days` ago. */
function aged(path: string, days: number): string {
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, 'entry'), 'compiled');
  age(path, days);
  return path;
}

function age(path: string, days: number): void {
  const t = new Date(Date.now() - days * DAY);
  utimesSync(path, t, t);
}

const daysOld = (path: string) => (Date.now() - statSync(path).mtimeMs) / DAY;

test('the compile cache: a directory per installation; once a day, what was unused for a week is removed, and nothing else', () => {
  const xdg = mkdtempSync(join(tmpdir(), 'kakitome-compile-cache-'));
  try {
    const root = join(xdg, 'kakitome', 'node-compile-cache');
    const staleCheckout = aged(join(root, 'old-checkout-0badc0de'), 10);
    const recentCheckout = aged(join(root, 'recent-checkout-12345678'), 2);
    const staleLegacy = aged(join(root, 'v22.1.0-x64-0a1b2c3d-0'), 10);
    const recentLegacy = aged(join(root, 'v24.21.0-x64-964aae3f-0'), 1);
    const notOurs = aged(join(root, 'notes'), 30);
    const outside = aged(join(xdg, 'elsewhere'), 30);
    const link = join(root, 'linked-0badcafe');
    symlinkSync(outside, link);
    const old = new Date(Date.now() - 30 * DAY);
    lutimesSync(link, old, old);
    const before = new Set(readdirSync(root));

    launch(xdg);
    for (const gone of [staleCheckout, staleLegacy]) assert.equal(existsSync(gone), false, `${gone} was removed`);
    for (const kept of [recentCheckout, recentLegacy, notOurs, link, join(outside, 'entry')]) assert.ok(existsSync(kept), `${kept} was kept`);
    const own = readdirSync(root).filter((n) => !before.has(n) && n !== '.pruned');
    assert.equal(own.length, 1, `one directory for this installation: ${own.join(', ')}`);
    const installation = join(root, own[0]!);
    assert.match(own[0]!, /-[0-9a-f]{8}$/);
    const tags = readdirSync(installation);
    assert.equal(tags.length, 1);
    const current = join(installation, tags[0]!);
    assert.match(tags[0]!, /^v\d+\.\d+\.\d+-/);
    assert.ok(readdirSync(current).length > 10, 'the cache holds this run\'s compiled modules');

    // Another Node version's (or flags') directory of this installation: kept until a day after the last prune.
    const staleTag = aged(join(installation, 'v23.0.0-x64-deadbeef-0'), 10);
    const recentTag = aged(join(installation, 'v24.20.0-x64-deadbeef-0'), 3);
    launch(xdg);
    assert.ok(existsSync(staleTag), 'no second prune the same day');
    age(join(root, '.pruned'), 2);
    // In use, though unchanged: a process marks its directories when they are more than a day old.
    age(installation, 9);
    age(current, 9);
    launch(xdg);
    assert.equal(existsSync(staleTag), false, 'a day later, the stale one is removed');
    assert.ok(existsSync(recentTag) && existsSync(current));
    assert.ok(daysOld(installation) < 0.01 && daysOld(current) < 0.01, 'the directories in use are marked as used');
    assert.ok(daysOld(join(root, '.pruned')) < 0.01);
  } finally {
    rmSync(xdg, { recursive: true, force: true });
  }
});
