/**
 * The console's paged lists (certificate inventory, audit log) stay fast on a
 * large store because every query they send runs on an index: SQLite's own query
 * plan for each shape (no search, address prefix, fingerprint, cursor, date range)
 * must never read a table from end to end. Checked on the plan, not by timing.
 */
import { test, after as afterAll } from 'node:test';
import assert from 'node:assert/strict';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import type { SqlValue } from '../../src/store/sql-engine.ts';
import { listCertificatePage } from '../../src/store/list-certificate-page.ts';
import { listAuditPage } from '../../src/store/list-audit-page.ts';
import { writeCursor } from '../../src/store/page-cursor.ts';
import { listHarvestedCertificates } from '../../src/store/list-harvested-certificates.ts';
import { countPendingKeyChanges, listPendingKeyChanges } from '../../src/store/list-pending-key-changes.ts';
import { countUnknownRoots, listUnknownRoots } from '../../src/store/list-unknown-roots.ts';
import { PeopleDirectory } from '../../src/store/people-directory.ts';
import { countExpiringMailboxCertificates } from '../../src/store/count-expiring-mailbox-certificates.ts';
import { findDelegateCertificate } from '../../src/ca/issue-delegate-certificate.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { generateKey, TestPki } from '../helpers/pki.ts';

test('every query of the certificate inventory, the audit log, the external directory and the dashboard\'s expiry counts runs on an index', async () => {
  const store = await Store.open(openSqliteEngine(':memory:'), {});
  const sent: Array<[string, SqlValue[]]> = [];
  const all = store.engine.all.bind(store.engine);
  (store.engine as { all: typeof all }).all = async (sql: string, params: SqlValue[] = []) => {
    if (/FROM (certificates c|audit_log|certificates WHERE trust|certificate_emails WHERE filing|people)\b/.test(sql)) sent.push([sql, params]);
    return all(sql, params);
  };
  const after = writeCursor('2030-01-01T00:00:00.000Z', 'zz');
  for (const q of [{}, { kind: 'all' as const }, { search: 'tanaka@' }, { search: 'ab'.repeat(32) }, { after }, { kind: 'all' as const, search: 'x', after }, { search: '田中' }, { search: '0A:1B:2C' }, { kind: 'all' as const, search: 'beef', after }]) await listCertificatePage(store, q);
  for (const q of [{}, { actor: 'console:' }, { from: '2026-01-01', to: '2026-02-01', action: 'key' }, { after }]) await listAuditPage(store, q);
  for (const q of [{}, { after }]) await listHarvestedCertificates(store, q);
  await countPendingKeyChanges(store);
  await listPendingKeyChanges(store);
  await countExpiringMailboxCertificates(store, [7, 14, 30]);
  // The dashboard's CA health looks up the OCSP responder's delegate certificate.
  await findDelegateCertificate(store, 'ca-id', 'ocsp-signing', new Date());
  const people = new PeopleDirectory(store);
  for (const q of [{}, { search: 'tanaka' }, { after: 'm@example.co.jp' }, { search: '田中', after: 'a@example.co.jp' }]) await people.listPeople({ limit: 101, ...q });
  assert.equal(sent.length, 23);
  for (const [sql, params] of sent) {
    const plan = (await all(`EXPLAIN QUERY PLAN ${sql}`, params)).map((r) => String(r.detail));
    assert.ok(!plan.some((line) => /^SCAN \w+$/.test(line)), `${sql}\n${plan.join('\n')}`);
  }
  await store.close();
});

const pki = new TestPki('Inventory Search CA');
afterAll(() => pki.cleanup());

test('the inventory finds a certificate by the start of its person\'s name and by its serial number (with or without colons, case, leading 00); harvested certificates page beyond the first', async () => {
  const store = await Store.open(openSqliteEngine(':memory:'), {});
  const key = generateKey('p256');
  const now = Date.now();
  const make = (i: number, serial: Buffer, email: string) => issueCertificate({
    subject: { commonName: email }, publicKey: key.publicKey, issuer: pki.caCert, signingKey: pki.caKey, emails: [email], serial,
    notBefore: new Date(now - 60_000), notAfter: new Date(now + (100 + i) * 86_400_000),
  });
  // A serial whose first bit is set is stored with the 00 that keeps the DER integer positive.
  const high = make(1, Buffer.from('9f0011223344556677', 'hex'), 'hanako.tanaka@example.co.jp');
  await store.importCertificate(high);
  await store.importCertificate(make(2, Buffer.from('0a1b2c3d', 'hex'), 'smith@example.co.jp'));
  await store.importCertificate(make(3, Buffer.from('0a1b2c3e', 'hex'), 'nobody@elsewhere.example'));
  const people = new PeopleDirectory(store);
  await people.addPerson({ email: 'hanako.tanaka@example.co.jp', displayName: '田中 花子' });
  await people.addPerson({ email: 'smith@example.co.jp', displayName: 'John Smith' });
  const found = async (search: string) => (await listCertificatePage(store, { kind: 'all', search })).records.flatMap((r) => r.emails).sort();
  assert.deepEqual(await found('田中'), ['hanako.tanaka@example.co.jp']);
  assert.deepEqual(await found('john s'), ['smith@example.co.jp'], 'case is ignored');
  assert.deepEqual(await found('JOHN SMITH'), ['smith@example.co.jp']);
  assert.deepEqual(await found('smith'), ['smith@example.co.jp'], 'an address prefix still works');
  assert.deepEqual(await found('花子'), [], 'the start of the name, not any part');
  assert.deepEqual(await found('0A:1B:2C:3D'), ['smith@example.co.jp']);
  assert.deepEqual(await found('0a1b2c3e'), ['nobody@elsewhere.example']);
  assert.deepEqual(await found('a1b2c3e'), ['nobody@elsewhere.example'], 'an odd number of digits reads as the integer');
  assert.deepEqual(await found(high.serialHex), ['hanako.tanaka@example.co.jp'], 'as the console shows it (with its 00)');
  assert.deepEqual(await found('9F:00:11:22:33:44:55:66:77'), ['hanako.tanaka@example.co.jp'], 'without the leading 00');
  assert.deepEqual(await found('0a1b'), [], 'a serial is matched whole');
  assert.deepEqual(await found("x' OR 1=1 --"), []);

  // 105 harvested certificates: three pages of 50, newest first, none lost or repeated.
  for (let i = 0; i < 105; i++) {
    await store.harvestCertificate(make(10 + i, Buffer.from((0x100000 + i).toString(16), 'hex'), `h${i}@partner.example`), { address: `h${i}@partner.example` });
  }
  const seen: string[] = [];
  let next: string | undefined;
  let pages = 0;
  do {
    const p = await listHarvestedCertificates(store, next ? { after: next } : {});
    seen.push(...p.records.map((r) => r.emails[0]!));
    next = p.next;
    pages++;
  } while (next);
  assert.equal(pages, 3);
  assert.equal(seen.length, 105);
  assert.equal(new Set(seen).size, 105);
  await assert.rejects(listHarvestedCertificates(store, { after: 'not a cursor' }), /cursor/);
  await store.close();
});

test('People: paged by address beyond the first page, searched by the start of an address or a name', async () => {
  const store = await Store.open(openSqliteEngine(':memory:'), {});
  const people = new PeopleDirectory(store);
  for (let i = 0; i < 230; i++) await people.addPerson({ email: `p${String(i).padStart(3, '0')}@example.co.jp`, displayName: i % 2 ? `Tanaka ${i}` : `佐藤 ${i}` });
  const seen: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await people.listPeople({ limit: 100, ...(after ? { after } : {}) });
    seen.push(...page.map((p) => p.email));
    if (page.length < 100) break;
    after = page.at(-1)!.email;
  }
  assert.equal(seen.length, 230);
  assert.equal(new Set(seen).size, 230);
  assert.equal((await people.listPeople({ search: 'TANAKA', limit: 500 })).length, 115);
  assert.equal((await people.listPeople({ search: '佐藤', limit: 500 })).length, 115);
  assert.deepEqual((await people.listPeople({ search: 'p22', limit: 500 })).map((p) => p.email), Array.from({ length: 10 }, (_, i) => `p22${i}@example.co.jp`));
  assert.deepEqual(await people.listPeople({ search: "' OR 1=1 --" }), []);
  await store.close();
});

test('the key changes waiting read their records together, find the certificates in use on the address index, and the CA roots waiting run on theirs', async () => {
  const store = await Store.open(openSqliteEngine(':memory:'), {});
  const now = Date.now();
  const mint = (email: string) => issueCertificate({
    subject: { commonName: email }, publicKey: generateKey('p256').publicKey, issuer: pki.caCert, signingKey: pki.caKey, emails: [email],
    keyUsage: ['digitalSignature', 'keyAgreement'], notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000),
  });
  const addresses = ['ren@partner.example', 'mei@partner.example'];
  const changes = new Map<string, [string, string]>();
  for (const a of addresses) {
    const old = mint(a);
    const fresh = mint(a);
    await store.harvestCertificate(old, { address: a });
    assert.equal((await store.harvestCertificate(fresh, { address: a })).filing, 'pending');
    changes.set(a, [fresh.fingerprint256, old.fingerprint256]);
  }
  const sent: Array<[string, SqlValue[]]> = [];
  const all = store.engine.all.bind(store.engine);
  (store.engine as { all: typeof all }).all = async (sql: string, params: SqlValue[] = []) => {
    sent.push([sql, params]);
    return all(sql, params);
  };
  const pending = await listPendingKeyChanges(store);
  assert.deepEqual(pending.map((p) => [p.address, p.record.certificate.fingerprint256, p.inUse.map((r) => r.certificate.fingerprint256)]).sort(), addresses.map((a) => [a, changes.get(a)![0], [changes.get(a)![1]]]).sort());
  // The pending rows, the addresses' filings, the records (one query) and their filings (one query): not one query a certificate.
  assert.equal(sent.length, 4, sent.map(([sql]) => sql).join('\n'));
  await countUnknownRoots(store);
  await listUnknownRoots(store);
  await listUnknownRoots(store, { decision: 'declined' });
  for (const [sql, params] of sent) {
    const plan = (await all(`EXPLAIN QUERY PLAN ${sql}`, params)).map((r) => String(r.detail));
    assert.ok(!plan.some((line) => /^SCAN \w+$/.test(line)), `${sql}\n${plan.join('\n')}`);
    if (/FROM certificate_emails WHERE email IN/.test(sql)) assert.ok(plan.some((line) => line.includes('certificate_emails_email')), plan.join('\n'));
  }
  // Certificates read together come back in the order asked for; an unknown id is left out.
  const ids = pending.map((p) => p.record.id);
  assert.deepEqual((await store.findCertificatesByIds([ids[1]!, 'no-such-id', ids[0]!])).map((r) => r.id), [ids[1], ids[0]]);
  await store.close();
});

test('the certificate to encrypt to, and the keys a new one would replace, are looked up on the address index; only a current filing under that address counts', async () => {
  const store = await Store.open(openSqliteEngine(':memory:'), {});
  const now = Date.now();
  const mint = (emails: string[]) => issueCertificate({
    subject: { commonName: emails[0]! }, publicKey: generateKey('p256').publicKey, issuer: pki.caCert, signingKey: pki.caKey, emails,
    keyUsage: ['digitalSignature', 'keyAgreement'], notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000),
  });
  // Others' current filings: the ones the filing index would have read for every lookup.
  for (let i = 0; i < 5; i++) await store.harvestCertificate(mint([`other${i}@partner.example`]), { address: `other${i}@partner.example` });
  const current = mint(['ren@partner.example']);
  const pending = mint(['ren@partner.example']);
  // Filed current under another address, naming ren too: not ren's current certificate.
  const elsewhere = mint(['mei@partner.example', 'ren@partner.example']);
  await store.harvestCertificate(current, { address: 'ren@partner.example' });
  assert.equal((await store.harvestCertificate(pending, { address: 'ren@partner.example' })).filing, 'pending');
  await store.harvestCertificate(elsewhere, { address: 'mei@partner.example' });
  const sent: Array<[string, SqlValue[]]> = [];
  const all = store.engine.all.bind(store.engine);
  (store.engine as { all: typeof all }).all = async (sql: string, params: SqlValue[] = []) => {
    sent.push([sql, params]);
    return all(sql, params);
  };
  assert.deepEqual((await store.findRecipientCertificates('Ren@partner.example')).map((r) => r.certificate.fingerprint256), [current.fingerprint256]);
  assert.deepEqual((await store.findRecipientCertificates('mei@partner.example')).map((r) => r.certificate.fingerprint256), [elsewhere.fingerprint256]);
  assert.deepEqual(await store.findRecipientCertificates('nobody@partner.example'), []);
  // Harvesting a new key and accepting it look up the keys in use for the address (in a transaction): on the address index too.
  const transaction = store.engine.transaction.bind(store.engine);
  (store.engine as { transaction: typeof transaction }).transaction = (fn) => transaction((tx) => fn({ ...tx, all: async (sql: string, params: SqlValue[] = []) => {
    sent.push([sql, params]);
    return tx.all(sql, params);
  }, run: tx.run.bind(tx) }));
  const fresh = mint(['ren@partner.example']);
  assert.equal((await store.harvestCertificate(fresh, { address: 'ren@partner.example' })).filing, 'pending');
  await store.acceptCertificate(fresh.fingerprint256, 'ren@partner.example');
  assert.deepEqual((await store.findRecipientCertificates('ren@partner.example')).map((r) => r.certificate.fingerprint256), [fresh.fingerprint256]);
  assert.ok(sent.some(([sql]) => /FROM certificate_emails WHERE email = \?/.test(sql)));
  assert.equal(sent.filter(([sql]) => /JOIN certificate_emails m ON m.certificate_id = c.id\s+WHERE m.email = \?/.test(sql)).length, 2);
  for (const [sql, params] of sent) {
    const plan = (await all(`EXPLAIN QUERY PLAN ${sql}`, params)).map((r) => String(r.detail));
    assert.ok(!plan.some((line) => line.includes('certificate_emails_filing')), `${sql}\n${plan.join('\n')}`);
    if (/FROM certificate_emails WHERE email = \?|WHERE m.email = \?/.test(sql)) assert.ok(plan.some((line) => line.includes('certificate_emails_email')), plan.join('\n'));
  }
  await store.close();
});
