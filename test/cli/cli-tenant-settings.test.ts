/**
 * `kakitome tenant settings NAME`: shows a tenant's signing settings and changes
 * them (--opaque, --hash, --pss, --dkim); the rules are TenantDirectory's
 * (test/server/serve-tenant-settings.test.ts signs with them). Through the real
 * launcher.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, storeHomeEnv } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-cli-settings-'));
const env = storeHomeEnv(join(dir, 'home'), dir);
after(() => rmSync(dir, { recursive: true, force: true }));

async function kk(...args: string[]) {
  const r = await runCli(args, { env });
  return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr };
}

test('tenant settings: defaults, changes (shown in tenant list too), back to a default, refusals (DKIM without a key)', async () => {
  assert.equal((await kk('init')).status, 0);
  assert.equal((await kk('tenant', 'add', 'acme', '--domain', 'acme.example')).status, 0);
  const shown = await kk('tenant', 'settings', 'acme', '--json');
  assert.equal(shown.status, 0, shown.stderr);
  assert.deepEqual(JSON.parse(shown.stdout).signing, { opaque: false, hash: 'default', pss: false, dkim: false });
  // DKIM needs an active DKIM key for one of the tenant's domains: refused whole without one.
  const noKey = await kk('tenant', 'settings', 'acme', '--opaque', 'on', '--dkim', 'on');
  assert.notEqual(noKey.status, 0);
  assert.match(noKey.stderr, /no active DKIM key for its domains \(acme\.example\).*\n  Add one with kakitome dkim add DOMAIN --selector SEL/);
  assert.deepEqual(JSON.parse((await kk('tenant', 'settings', 'acme', '--json')).stdout).signing, { opaque: false, hash: 'default', pss: false, dkim: false });
  assert.equal((await kk('dkim', 'add', 'acme.example', '--selector', 's2026')).status, 0);
  const set = await kk('tenant', 'settings', 'acme', '--opaque', 'on', '--hash', 'sha512', '--dkim', 'on');
  assert.equal(set.status, 0, set.stderr);
  assert.match(set.stdout, /opaque signed-data, digest sha512, PKCS#1 v1\.5 \(RSA keys\), then DKIM/);
  const listed = JSON.parse((await kk('tenant', 'list', '--json')).stdout) as { tenants: Array<{ name: string; signing: unknown }> };
  assert.deepEqual(listed.tenants.find((t) => t.name === 'acme')!.signing, { opaque: true, hash: 'sha512', pss: false, dkim: true });
  const back = await kk('tenant', 'settings', 'acme', '--hash', 'default', '--dkim', 'off', '--json');
  assert.deepEqual(JSON.parse(back.stdout).signing, { opaque: true, hash: 'default', pss: false, dkim: false });
  const bad = await kk('tenant', 'settings', 'acme', '--hash', 'md5');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /md5/);
  const unknown = await kk('tenant', 'settings', 'nobody', '--opaque', 'on');
  assert.notEqual(unknown.status, 0);
  assert.match(unknown.stderr, /No tenant "nobody"/);
  // The implicit default tenant takes settings too (its row is made then).
  assert.equal((await kk('tenant', 'settings', 'default', '--pss', 'on')).status, 0);
});
