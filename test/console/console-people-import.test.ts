/**
 * Importing people from a CSV file and from the company directory (a real slapd):
 * a preview that writes nothing and names each row's error, an import of the
 * rows previewed, idempotent on re-import, bounded in bytes and rows, refusing
 * unknown columns (no roles this way) and cells a spreadsheet would run.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'ldapts';
import { parseCsv } from '../../src/store/parse-csv.ts';
import { IMPORT_MAX_BYTES, IMPORT_MAX_ROWS } from '../../src/store/plan-people-import.ts';
import { isKakitomeError } from '../../src/errors.ts';
import { en } from '../../src/server/console/messages/en.ts';
import { startSlapd, type LdapServer } from '../store/ldap-server.ts';
import { startAdminFixture, type AdminFixture } from './admin-fixture.ts';

let fx: AdminFixture;
let ldap: LdapServer;

before(async () => {
  ldap = await startSlapd();
  const c = new Client({ url: ldap.url });
  await c.bind(ldap.rootDn, ldap.password);
  await c.add(ldap.baseDn, { objectClass: ['dcObject', 'organization'], dc: 'example', o: 'Example' });
  await c.add(`cn=Suzuki Ichiro,${ldap.baseDn}`, { objectClass: ['inetOrgPerson'], cn: 'Suzuki Ichiro', sn: 'Suzuki', mail: 'suzuki@example.co.jp', displayName: '鈴木 一郎', preferredLanguage: 'ja-JP' });
  await c.add(`cn=Jane Doe,${ldap.baseDn}`, { objectClass: ['inetOrgPerson'], cn: 'Jane Doe', sn: 'Doe', mail: 'Jane.Doe@example.co.jp' });
  await c.add(`cn=No Mail,${ldap.baseDn}`, { objectClass: ['inetOrgPerson'], cn: 'No Mail', sn: 'Mail' });
  await c.add(`cn=Formula,${ldap.baseDn}`, { objectClass: ['inetOrgPerson'], cn: '=cmd|calc', sn: 'x', mail: 'formula@example.co.jp' });
  await c.unbind();
  fx = await startAdminFixture({ ldap: { url: ldap.url, baseDn: ldap.baseDn } });
});
after(async () => {
  await fx?.close();
  await ldap?.stop();
});

function csvForm(csv: string, step: 'preview' | 'import', asFile = false): FormData {
  const f = new FormData();
  f.set('source', 'csv');
  f.set('step', step);
  if (asFile) f.set('csv-file', new Blob([csv], { type: 'text/csv' }), 'people.csv');
  else f.set('csv', csv);
  return f;
}

const statuses = (html: string) => [...html.matchAll(/data-import-row="(\w+)"/g)].map((m) => m[1]);

test('CSV (RFC 4180): quoted commas, line breaks and quotes; a stray or unclosed quote is an error, not a guess', () => {
  assert.deepEqual(parseCsv('\ufeffa,b\r\n"x, y","line\nbreak ""q"""\n\n', 10), [['a', 'b'], ['x, y', 'line\nbreak "q"']]);
  assert.deepEqual(parseCsv('a,,""\nlast', 10), [['a', '', ''], ['last']]);
  for (const bad of ['a,b"c\n', '"open,field\n', '"x"y,z\n']) assert.throws(() => parseCsv(bad, 10), (e) => isKakitomeError(e, 'MALFORMED'), bad);
  assert.throws(() => parseCsv('a\nb\nc\n', 2), (e) => isKakitomeError(e, 'LIMIT'));
});

const CSV = [
  'email,name,language',
  'tanaka@example.co.jp,"田中, 花子",ja',
  'user@example.co.jp,Already Here,en',
  'evil@example.co.jp,"=HYPERLINK(""http://evil.example"",""click"")",en',
  'not-an-address,Nobody,en',
  'TANAKA@example.co.jp,Twice,ja',
  'smith@example.co.jp,<script>alert(1)</script>,fr',
  'brown@example.co.jp,Bob Brown,',
].join('\r\n');

test('CSV import: the preview writes nothing and says what each row would do; the import adds the rows previewed, once', async () => {
  const officer = await fx.client('officer');
  const before = await fx.server.console.people.countPeople();
  const preview = await officer.request('/admin/people-import', { form: csvForm(CSV, 'preview', true) });
  assert.equal(preview.status, 200);
  const html = await preview.text();
  assert.deepEqual(statuses(html), ['add', 'unchanged', 'error', 'error', 'error', 'error', 'add']);
  assert.ok(html.includes(en.peopleImport.problems.formula) && html.includes(en.peopleImport.problems.duplicate) && html.includes(en.peopleImport.problems.language));
  assert.ok(!html.includes('<script>alert'), 'escaped');
  assert.ok(html.includes(en.peopleImport.previewSummary(2, 1, 4)));
  assert.equal(await fx.server.console.people.countPeople(), before, 'the preview wrote nothing');

  const done = await officer.request('/admin/people-import', { form: csvForm(CSV, 'import') });
  assert.equal(done.status, 200);
  assert.ok((await done.text()).includes(en.peopleImport.doneSummary(2, 1, 4)));
  assert.equal(await fx.server.console.people.countPeople(), before + 2);
  const tanaka = (await fx.server.console.people.findPersonByEmail('tanaka@example.co.jp'))!;
  assert.equal(tanaka.displayName, '田中, 花子');
  assert.equal(tanaka.language, 'ja');
  assert.deepEqual(tanaka.roles, []);
  assert.equal(await fx.server.console.people.findPersonByEmail('evil@example.co.jp'), undefined);
  const audit = await fx.store.auditLog({ object: 'csv' });
  assert.ok(audit.some((e) => e.action === 'person.import' && e.detail === '2 added, 1 unchanged, 4 refused'));

  // Again: nothing changes.
  const again = await officer.request('/admin/people-import', { form: csvForm(CSV, 'import') });
  assert.ok((await again.text()).includes(en.peopleImport.doneSummary(0, 3, 4)));
  assert.equal(await fx.server.console.people.countPeople(), before + 2);
});

test('CSV import refuses unknown columns (no roles this way), too many rows, too many bytes, and other roles', async () => {
  const admin = await fx.client('admin');
  const roles = await admin.request('/admin/people-import', { form: csvForm('email,name,roles\nx@example.co.jp,X,administrator\n', 'import') });
  assert.equal(roles.status, 400);
  assert.match(await roles.text(), /unknown: roles/);
  assert.equal(await fx.server.console.people.findPersonByEmail('x@example.co.jp'), undefined);
  const rows = ['email', ...Array.from({ length: IMPORT_MAX_ROWS + 1 }, (_, i) => `p${i}@example.co.jp`)].join('\n');
  const many = await admin.request('/admin/people-import', { form: csvForm(rows, 'preview') });
  assert.equal(many.status, 400);
  assert.match(await many.text(), new RegExp(`more than ${IMPORT_MAX_ROWS} people`));
  const huge = await admin.request('/admin/people-import', { form: csvForm(`email\n${'a'.repeat(IMPORT_MAX_BYTES + 70 * 1024)}`, 'preview', true) });
  assert.equal(huge.status, 413);
  const empty = await admin.request('/admin/people-import', { form: csvForm('email\n', 'preview') });
  assert.equal(empty.status, 400);
  for (const role of ['helpdesk', 'auditor', 'user'] as const) {
    const b = await fx.client(role);
    assert.equal((await b.request('/admin/people-import')).status, 403, role);
    assert.equal((await b.request('/admin/people-import', { form: csvForm(CSV, 'import') })).status, 403, role);
  }
  // Forged from another site: refused before anything is read.
  assert.equal((await admin.request('/admin/people-import', { form: csvForm(CSV, 'import'), origin: 'http://evil.example' })).status, 403);
});

test('LDAP import: everyone with a mail address in the directory, previewed, then added with their names and languages', async () => {
  const admin = await fx.client('admin');
  const form = (step: string) => {
    const f = new FormData();
    f.set('source', 'ldap');
    f.set('step', step);
    return f;
  };
  const preview = await admin.request('/admin/people-import', { form: form('preview') });
  assert.equal(preview.status, 200);
  const html = await preview.text();
  assert.deepEqual(statuses(html), ['error', 'add', 'add'], 'formula@ (a formula name), jane.doe@, suzuki@; the entry without mail is not listed');
  assert.equal(await fx.server.console.people.findPersonByEmail('suzuki@example.co.jp'), undefined);
  const done = await admin.request('/admin/people-import', { form: form('import') });
  assert.ok((await done.text()).includes(en.peopleImport.doneSummary(2, 0, 1)));
  const suzuki = (await fx.server.console.people.findPersonByEmail('suzuki@example.co.jp'))!;
  assert.equal(suzuki.displayName, '鈴木 一郎');
  assert.equal(suzuki.language, 'ja');
  assert.equal((await fx.server.console.people.findPersonByEmail('jane.doe@example.co.jp'))!.displayName, 'Jane Doe');
  const again = await admin.request('/admin/people-import', { form: form('import') });
  assert.ok((await again.text()).includes(en.peopleImport.doneSummary(0, 2, 1)));
});
