/**
 * First run on a store whose CA exists already (`kakitome ca init` before the first
 * `kakitome serve`): the setup link's text and the setup page say that CA is kept
 * instead of offering to create one, and setup keeps it (no second CA).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { listCertificateAuthorities } from '../../src/ca/certificate-authority.ts';
import { startServer, type RunningServer } from '../../src/server/start-server.ts';
import { describeSetupLink, issueSetupLink } from '../../src/server/console/first-run.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { ConsoleClient, TEST_PASSWORD } from './console-client.ts';

const dir = mkdtempSync(join(tmpdir(), 'kakitome-console-kept-ca-'));
let server: RunningServer;
let store: Store;

before(async () => {
  store = await Store.open(openSqliteEngine(join(dir, 'kakitome.db')), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'serve' });
  await initCertificateAuthority(store, { name: 'Kept Corp', keyType: 'p256' });
  server = await startServer(store, { host: '127.0.0.1', port: 0, maxMessageBytes: 1024 * 1024, shutdownGraceMs: 2000, revocation: 'allow-unknown' }, {
    log: () => {}, version: 'test', console: { passwordHash: { memoryKiB: 1024, passes: 1, parallelism: 1 } },
  });
});
after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the terminal\'s text names what the link creates: the CA only when the store has none', () => {
  const now = new Date('2026-12-07T12:00:00Z');
  const link = { url: 'https://console.example/setup/x', expiresAt: new Date(now.getTime() + 60 * 60_000) };
  assert.match(describeSetupLink(link, now), /within 60 minutes to create the first administrator, your CA and your mail domains:\n\n {2}https:\/\/console\.example\/setup\/x\n/);
  const kept = describeSetupLink({ ...link, caName: 'Kept Corp S/MIME CA' }, now);
  assert.match(kept, /to create the first administrator and your mail domains \(the store's CA, Kept Corp S\/MIME CA, is kept\):/);
  assert.doesNotMatch(kept, /your CA/);
});

test('first run with a CA in the store: the link and the page say it is kept, and setup keeps it', async () => {
  const before = (await listCertificateAuthorities(store)).map((ca) => ca.id).sort();
  const link = (await issueSetupLink(server.console))!;
  assert.equal(link.caName, 'Kept Corp S/MIME CA');
  const origin = server.console.origin.baseUrl;
  const path = new URL(link.url).pathname;
  const b = new ConsoleClient(() => ({ url: server.url, origin }));
  const shown = await b.request(path);
  assert.equal(shown.status, 200);
  const html = await shown.text();
  assert.ok(html.includes(en.setup.leadCaKept.replace(/'/g, '&#39;')), 'the lead says the CA is kept');
  assert.match(html, /<p id="ca-kept">This store has a certificate authority already: Kept Corp S\/MIME CA\./);
  assert.doesNotMatch(html, /name="ca"|name="ca-file"/, 'nothing asks to create or import a CA');
  assert.ok(!html.includes(en.setup.caCreate), 'no offer to create one');

  // A form that still says "create" (an old page, a hand-made request) does not make a second CA.
  const done = await b.request(path, {
    form: { organisation: 'Kept Corp', domains: 'kept.example', name: 'Admin', email: 'admin@kept.example', password: TEST_PASSWORD, password2: TEST_PASSWORD, ca: 'create' },
  });
  assert.equal(done.status, 303, await done.text());
  assert.deepEqual((await listCertificateAuthorities(store)).map((ca) => ca.id).sort(), before, 'the CA is the one the store had');
  const audit = (await store.auditLog({ limit: 50 })).find((e) => e.action === 'console.setup');
  assert.match(audit?.detail ?? '', /CA kept \(Kept Corp S\/MIME CA\)$/);
  assert.equal(await issueSetupLink(server.console), undefined, 'no setup link once there is an administrator');
});
