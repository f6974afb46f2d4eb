/**
 * Bulk issue from a CSV: a preview that issues nothing, row by row with each
 * refusal's reason; the confirmation issues as for one person (keys made and
 * sealed on the server, nothing to download); uploading the same file again
 * issues nothing twice; bounded file and row count; an officer only for people
 * without a role; audited; in both languages.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { listIssuedMailboxCertificates } from '../../src/ca/list-issued-mailbox-certificates.ts';
import { BULK_ISSUE_MAX_ROWS } from '../../src/ca/plan-bulk-issue.ts';
import { offboardPerson } from '../../src/ca/offboard-person.ts';
import { startAdminFixture, ROLE_PEOPLE, type AdminFixture } from './admin-fixture.ts';

let fx: AdminFixture;
before(async () => {
  fx = await startAdminFixture();
  const people = fx.server.console.people;
  for (const email of ['alice@example.co.jp', 'bob@example.co.jp', 'carol@example.co.jp']) await people.addPerson({ email });
  await people.addPerson({ email: 'guest@elsewhere.example' });
  await offboardPerson(fx.store, (await people.addPerson({ email: 'gone@example.co.jp' })).id, 'affiliationChanged');
});
after(async () => {
  await fx?.close();
});

const upload = (csv: string, step: 'preview' | 'issue', keyType = 'p256') => {
  const f = new FormData();
  f.set('step', step);
  f.set('key-type', keyType);
  f.set('csv-file', new Blob([csv], { type: 'text/csv' }), 'people.csv');
  return f;
};
const rows = (html: string) => [...html.matchAll(/<tr data-bulk-row="(\w+)"><td>(\d+)<\/td><td>([^<]*)<\/td><td><span class="status \w+">([^<]*)</g)].map((m) => ({ status: m[1]!, line: m[2]!, email: m[3]!, text: m[4]! }));
const issuedFor = async (email: string) => (await listIssuedMailboxCertificates(fx.store, email)).length;

const CSV = [
  'email,name',
  'alice@example.co.jp,Alice',
  'Bob@Example.co.jp,Bob',
  'alice@example.co.jp,Alice again',
  'admin@example.co.jp,Admin',
  'nobody@example.co.jp,',
  'guest@elsewhere.example,',
  'gone@example.co.jp,',
  '"=HYPERLINK(""http://evil.example"")",x',
  'not an address,',
].join('\r\n');

test('preview issues nothing and says, row by row, what will happen and why not', async () => {
  const officer = await fx.client('officer');
  const r = await officer.request('/admin/bulk-issue', { form: upload(CSV, 'preview') });
  const html = await r.text();
  assert.equal(r.status, 200, html);
  assert.deepEqual(rows(html).map((x) => [x.line, x.status, x.text]), [
    ['2', 'issue', 'will get a certificate'],
    ['3', 'issue', 'will get a certificate'],
    ['4', 'error', 'the same address again'],
    ['5', 'error', 'this person holds a role: only an administrator issues for them'],
    ['6', 'error', 'nobody with this address on People: import them first'],
    ['7', 'error', 'not in the organisation&#39;s mail domains'],
    ['8', 'error', 'this person is disabled'],
    ['9', 'error', 'starts with = + - or @ (a spreadsheet would run it as a formula)'],
    ['10', 'error', 'not a mail address'],
  ]);
  assert.match(html, /Preview: 2 to issue, 0 unchanged, 7 with an error/);
  assert.equal(await issuedFor('alice@example.co.jp'), 0, 'a preview issues nothing');
  // In Japanese.
  const ja = await (await officer.request('/admin/bulk-issue', { form: upload(CSV, 'preview'), headers: { 'accept-language': 'ja' } })).text();
  assert.match(ja, /プレビュー：発行 2 件、変更なし 0 件、エラー 7 件/);
});

test('the confirmation issues as for one person (keys sealed on the server, nothing to download); the same file again issues nothing twice; audited', async () => {
  const officer = await fx.client('officer');
  const r = await officer.request('/admin/bulk-issue', { form: upload(CSV, 'issue') });
  const html = await r.text();
  assert.equal(r.status, 200, html);
  assert.match(html, /Done: 2 issued, 0 unchanged, 7 left out/);
  assert.ok(!/download|pkcs12|\.p12|password/i.test(html.replace(/<link[^>]*>|<script[^>]*><\/script>/g, '')), 'nothing to download, no password');
  for (const email of ['alice@example.co.jp', 'bob@example.co.jp']) {
    const [rec] = await listIssuedMailboxCertificates(fx.store, email);
    assert.ok(rec, email);
    assert.equal(rec.hasPrivateKey, true, 'the key is sealed in the store');
  }
  assert.equal(await issuedFor('admin@example.co.jp'), 0, 'an officer issues nothing for a role holder');
  assert.equal(await issuedFor('carol@example.co.jp'), 0);
  const again = await (await officer.request('/admin/bulk-issue', { form: upload(CSV, 'issue') })).text();
  assert.match(again, /Done: 0 issued, 2 unchanged, 7 left out/);
  assert.equal(await issuedFor('alice@example.co.jp'), 1, 'idempotent');
  const audit = (await fx.store.auditLog({ limit: 500 })).filter((e) => e.actor === `console:${ROLE_PEOPLE.officer!.email}`);
  assert.deepEqual(audit.filter((e) => e.action === 'certificate.bulk-issue').map((e) => e.detail).sort(), ['p256: 0 issued, 2 unchanged, 7 refused', 'p256: 2 issued, 0 unchanged, 7 refused']);
  // An administrator issues for a role holder; a certificate revoked since is no longer current, so a new one is issued.
  const admin = await fx.client('admin');
  const forAdmin = await (await admin.request('/admin/bulk-issue', { form: upload('email\nadmin@example.co.jp\nuser@example.co.jp\n', 'issue', 'p384') })).text();
  assert.match(forAdmin, /Done: 2 issued/);
  // The person sees it on My certificate, where they take a key for their own devices.
  const user = await fx.client('user');
  assert.match(await (await user.request('/me')).text(), /valid · (364|365) days left/);
  await fx.store.revokeCertificate((await listIssuedMailboxCertificates(fx.store, 'user@example.co.jp'))[0]!.certificate.fingerprint256, 1);
  assert.match(await (await admin.request('/admin/bulk-issue', { form: upload('email\nuser@example.co.jp\n', 'issue') })).text(), /Done: 1 issued/, 'a revoked certificate is not current');
});

test('bounded and strict: too many rows, an unknown column, a stray quote, a bad key type, a forged request, a helpdesk or auditor', async () => {
  const admin = await fx.client('admin');
  const many = ['email', ...Array.from({ length: BULK_ISSUE_MAX_ROWS + 1 }, (_, i) => `p${i}@example.co.jp`)].join('\n');
  const tooMany = await admin.request('/admin/bulk-issue', { form: upload(many, 'preview') });
  assert.equal(tooMany.status, 400);
  assert.match(await tooMany.text(), new RegExp(`more than ${BULK_ISSUE_MAX_ROWS} people`));
  const roles = await admin.request('/admin/bulk-issue', { form: upload('email,roles\nalice@example.co.jp,administrator\n', 'issue') });
  assert.equal(roles.status, 400);
  assert.equal((await admin.request('/admin/bulk-issue', { form: upload('email\n"alice@example.co.jp"x\n', 'issue') })).status, 400);
  assert.equal((await admin.request('/admin/bulk-issue', { form: upload('email\n', 'issue') })).status, 400, 'nobody in it');
  assert.equal((await admin.request('/admin/bulk-issue', { form: upload('email\ncarol@example.co.jp\n', 'issue', 'rsa1024') })).status, 400);
  const big = new FormData();
  big.set('step', 'preview');
  big.set('csv-file', new Blob([`email\n${'x'.repeat(400 * 1024)}\n`]), 'big.csv');
  assert.equal((await admin.request('/admin/bulk-issue', { form: big })).status, 413);
  assert.equal((await admin.request('/admin/bulk-issue', { form: upload('email\ncarol@example.co.jp\n', 'issue'), origin: 'http://evil.example' })).status, 403);
  for (const role of ['helpdesk', 'auditor', 'user'] as const) {
    const b = await fx.client(role);
    assert.equal((await b.request('/admin/bulk-issue', { form: upload('email\ncarol@example.co.jp\n', 'issue') })).status, 403, role);
  }
  assert.equal(await issuedFor('carol@example.co.jp'), 0);
});
