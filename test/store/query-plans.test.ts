/**
 * The store's hot queries keep their index as the store grows. Three times SQLite
 * read every current filing in the store to find one address's certificates (the
 * filing index beside the address index: 14 µs became 2.8 ms at 20,000
 * certificates), so this checks the plan, not a timing: the SQL the store really
 * sends (recorded from the operations on a small store) is planned on a store of
 * 20,000 certificates filed 20 to an address, mostly current, in the three states
 * its statistics can be in: none (a store made before statistics were kept), stale
 * (taken when the store was small: what `PRAGMA optimize` recorded at its first
 * open) and fresh. Every plan must run on the index named for it, and no plan may
 * read one of the large tables from end to end.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import { migrateStore } from '../../src/store/migrations.ts';
import type { SqlEngine, SqlExecutor, SqlValue } from '../../src/store/sql-engine.ts';
import { masterKeyFromBytes } from '../../src/keys/master-key.ts';
import { initCertificateAuthority } from '../../src/ca/init-certificate-authority.ts';
import { issueMailboxCertificate } from '../../src/ca/issue-mailbox-certificate.ts';
import { createInternalCaRevocationSource } from '../../src/ca/internal-ca-revocation.ts';
import { publishCrl } from '../../src/ca/publish-crl.ts';
import { listHarvestedCertificates } from '../../src/store/list-harvested-certificates.ts';
import { countPendingKeyChanges, listPendingKeyChanges } from '../../src/store/list-pending-key-changes.ts';
import { countAuditActions } from '../../src/store/count-audit-actions.ts';
import { BatchDirectory } from '../../src/store/batch-directory.ts';
import { BatchQueue } from '../../src/store/batch-queue.ts';
import { openBatchBlobs } from '../../src/store/batch-blobs.ts';
import { listMailboxCertificates } from '../../src/ca/list-mailbox-certificates.ts';
import { issueCertificate } from '../../src/x509/issue.ts';
import { generateKey, TestPki } from '../helpers/pki.ts';
import { largeStoreAddress, seedLargeStore } from '../helpers/large-store.ts';

/** Tables that grow with the store: none may be read from end to end. */
const LARGE = ['certificates', 'certificate_emails', 'audit_log', 'batches', 'batch_chunks', 'issued_certificates', 'private_keys', 'people'];

/**
 * Each hot query (matched by its SQL) and the index its plan must use, as SQLite
 * writes it in EXPLAIN QUERY PLAN (a pattern where either of two indexes serves);
 * `not`: what must never appear in its plan.
 */
const EXPECTED: Array<{ name: string; sql: RegExp; uses: Array<string | RegExp>; not?: string[] }> = [
  { name: 'certificates for an address (encrypt to, sign as)', sql: /FROM certificate_emails WHERE email = \?\)/, uses: ['COVERING INDEX certificate_emails_email (email=?)'], not: ['certificate_emails_filing'] },
  { name: 'the filings of the records read', sql: /FROM certificate_emails WHERE certificate_id IN/, uses: ['sqlite_autoindex_certificate_emails_1 (certificate_id=?)'] },
  { name: 'the keys in use a new key would replace (harvest, accept)', sql: /m\.email = \? AND m\.filing = 'current'/, uses: ['COVERING INDEX certificate_emails_email (email=? AND filing=?)'], not: ['certificate_emails_filing'] },
  { name: 'the preferred certificate of an address', sql: /UPDATE certificate_emails SET preferred/, uses: ['certificate_emails_email (email=?)'] },
  { name: 'certificate by fingerprint', sql: /WHERE c\.fingerprint = \?/, uses: ['sqlite_autoindex_certificates_2 (fingerprint=?)'] },
  { name: 'certificates by issuer and serial (CMS identifier)', sql: /WHERE c\.issuer_hex = \? AND c\.serial_hex = \? ORDER BY/, uses: ['certificates_serial (serial_hex=? AND issuer_hex=?)'] },
  { name: 'certificates by subject key identifier', sql: /WHERE c\.ski_hex = \? ORDER BY/, uses: ['certificates_ski (ski_hex=?)'] },
  { name: 'decryption keys by serial', sql: /WHERE c\.serial_hex IN/, uses: ['certificates_serial (serial_hex=?)', 'sqlite_autoindex_private_keys_2 (spki_sha256=?)'] },
  { name: 'decryption keys by key identifier', sql: /WHERE c\.ski_hex IN/, uses: ['certificates_ski (ski_hex=?)', 'sqlite_autoindex_private_keys_2 (spki_sha256=?)'] },
  { name: 'the signing key of a certificate', sql: /FROM private_keys WHERE spki_sha256 = \? AND status = 'active'/, uses: ['sqlite_autoindex_private_keys_2 (spki_sha256=?)'] },
  { name: 'harvested certificates, newest first', sql: /WHERE trust = 'harvested'/, uses: ['certificates_trust_added (trust=?)'], not: ['TEMP B-TREE'] },
  { name: 'key changes waiting', sql: /WHERE filing = 'pending'/, uses: ['COVERING INDEX certificate_emails_filing (filing=?)'], not: ['TEMP B-TREE'] },
  { name: 'the keys in use at the addresses of the key changes', sql: /WHERE email IN \(.*\) AND filing = 'current'/, uses: ['COVERING INDEX certificate_emails_email (email=? AND filing=?)'] },
  { name: 'revocation of a certificate the CA issued (OCSP, verify)', sql: /c\.issuer_hex = \? AND c\.serial_hex = \? AND i\.ca_id = \?/, uses: ['certificates_serial (serial_hex=? AND issuer_hex=?)', 'sqlite_autoindex_issued_certificates_1 (certificate_id=?)'] },
  { name: 'the revoked certificates of a CRL', sql: /c\.revoked_at IS NOT NULL ORDER BY/, uses: ['COVERING INDEX certificates_revoked (revoked_at>?)', 'sqlite_autoindex_issued_certificates_1 (certificate_id=?)'], not: ['issued_certificates_profile'] },
  { name: 'the dashboard\'s audit counts', sql: /COUNT\(\*\) AS n FROM audit_log WHERE at >= \?/, uses: ['COVERING INDEX audit_log_at (at>?)'] },
  { name: 'a tenant\'s batches, newest first', sql: /FROM batches WHERE tenant = \? ORDER BY created_at DESC/, uses: ['batches_tenant_created (tenant=?)'], not: ['TEMP B-TREE'] },
  { name: 'a tenant\'s unfinished batches (the upload limit)', sql: /COUNT\(\*\) AS n FROM batches WHERE tenant = \? AND state <> 'done'/, uses: ['COVERING INDEX batches_unfinished (tenant=?)'], not: ['batches_tenant_created'] },
  { name: 'the batch-expiry sweep', sql: /FROM batches WHERE \(state = 'done' AND expires_at < \?\)/, uses: ['batches_state (state=? AND expires_at<?)', 'batches_state (state=?)'] },
  { name: 'a person\'s mailbox certificates (person page, offboarding)', sql: /JOIN issued_certificates i ON i\.certificate_id = c\.id\s+WHERE m\.email = \?/, uses: ['COVERING INDEX certificate_emails_email (email=?)', 'sqlite_autoindex_issued_certificates_1 (certificate_id=?)'] },
  { name: 'a batch\'s done chunks', sql: /FROM batch_chunks WHERE batch_id = \? AND state = 'done'/, uses: ['sqlite_autoindex_batch_chunks_1 (batch_id=?)'], not: ['TEMP B-TREE'] },
  { name: 'the job queue\'s claim', sql: /FROM batch_chunks c JOIN batches b/, uses: [/INDEX batches_(live|state) \(state=\?\)/, /INDEX (batch_chunks_claim|sqlite_autoindex_batch_chunks_1) \(batch_id=\?\)/] },
];

const pki = new TestPki('Query Plans CA');
let home = '';
let large: SqlEngine;
before(async () => {
  home = mkdtempSync(join(tmpdir(), 'kakitome-plans-'));
  large = openSqliteEngine(join(home, 'large.db'));
  await migrateStore(large);
  await seedLargeStore(large, 20_000);
});
after(async () => {
  await large.close();
  rmSync(home, { recursive: true, force: true });
  pki.cleanup();
});

/** The SQL the store's hot operations send, recorded on a small store with real certificates, keys and a CA. */
async function recordHotQueries(): Promise<Array<[string, SqlValue[]]>> {
  const store = await Store.open(openSqliteEngine(':memory:'), { masterKey: masterKeyFromBytes(randomBytes(32)), actor: 'tester' });
  const sent: Array<[string, SqlValue[]]> = [];
  let recording = false;
  const recorded = (ex: SqlExecutor): SqlExecutor => ({
    all: async (sql, params = []) => {
      if (recording) sent.push([sql, [...params]]);
      return ex.all(sql, params);
    },
    run: async (sql, params = []) => {
      if (recording && /^\s*(UPDATE|DELETE)/.test(sql)) sent.push([sql, [...params]]);
      return ex.run(sql, params);
    },
  });
  const engine = store.engine as { all: SqlEngine['all']; run: SqlEngine['run']; transaction: SqlEngine['transaction'] };
  const direct = recorded({ all: engine.all.bind(store.engine), run: engine.run.bind(store.engine) });
  const transaction = engine.transaction.bind(store.engine);
  engine.all = direct.all;
  engine.run = direct.run;
  engine.transaction = (fn) => transaction((tx) => fn(recorded(tx)));

  const { issuing } = await initCertificateAuthority(store, { name: 'Plans CA', keyType: 'p256' });
  const [own] = await issueMailboxCertificate(store, { email: 'ren@example.org', keyType: 'p256' });
  const mine = own!.certificate;
  const now = Date.now();
  const partner = (key = generateKey('p256')) => issueCertificate({
    subject: { commonName: 'mei@partner.example' }, publicKey: key.publicKey, issuer: pki.caCert, signingKey: pki.caKey, emails: ['mei@partner.example'],
    keyUsage: ['digitalSignature', 'keyAgreement'], notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000),
  });
  await store.harvestCertificate(partner(), { address: 'mei@partner.example' });
  const fresh = partner();
  const blobs = await openBatchBlobs(store.engine);
  await store.engine.run("INSERT INTO batches (id, tenant, key_id, media_type, options, state, chunks, created_at) VALUES ('b1', 'acme', 'k1', 'application/mbox', '{}', 'queued', 1, ?)", [new Date(now).toISOString()]);
  await store.engine.run("INSERT INTO batch_chunks (batch_id, seq, first_index, messages, input_bytes, state) VALUES ('b1', 0, 0, 1, 10, 'queued')");

  recording = true;
  await store.findRecipientCertificates('mei@partner.example');
  await store.findSigningIdentity('ren@example.org');
  await store.nextSigningCertificateAt('ren@example.org');
  await store.findCertificateByFingerprint(mine.fingerprint256);
  await store.findCertificatesByIdentifier({ kind: 'issuerAndSerialNumber', issuer: mine.issuer, serial: mine.serial });
  await store.findCertificatesByIdentifier({ kind: 'subjectKeyIdentifier', keyId: mine.subjectKeyIdentifier! });
  await store.findDecryptionKeys([{ kind: 'issuerAndSerialNumber', issuer: mine.issuer, serial: mine.serial }]);
  await store.findDecryptionKeys([{ kind: 'subjectKeyIdentifier', keyId: mine.subjectKeyIdentifier! }]);
  await store.harvestCertificate(fresh, { address: 'mei@partner.example', preferred: true });
  await countPendingKeyChanges(store);
  await listPendingKeyChanges(store);
  await store.acceptCertificate(fresh.fingerprint256, 'mei@partner.example');
  await listHarvestedCertificates(store);
  await createInternalCaRevocationSource(store)(mine, issuing.certificate);
  await publishCrl(store);
  await countAuditActions(store, new Date(now - 86_400_000), ['key.use.sign', 'key.use.decrypt']);
  const batches = new BatchDirectory(store, blobs);
  await batches.list('acme', 50);
  await batches.countUnfinished('acme');
  await batches.resultParts('b1');
  await new BatchQueue(store.engine).claim('node-1', 60_000);
  await batches.expire();
  await listMailboxCertificates(store, 'ren@example.org');
  recording = false;
  await store.close();
  return sent;
}

/** The table `name` (a table or an alias, as a plan names it) stands for in `sql`. */
function tableOf(sql: string, name: string): string {
  for (const m of sql.matchAll(/\b(?:FROM|JOIN)\s+(\w+)\s+(?:AS\s+)?(\w+)/gi)) if (m[2] === name) return m[1]!;
  return name;
}

async function plan(sql: string, params: SqlValue[]): Promise<string[]> {
  return (await large.all(`EXPLAIN QUERY PLAN ${sql}`, params)).map((r) => String(r.detail));
}

/** Replaces the large store's statistics with `rows` (none: empty) and makes SQLite read them again. */
async function setStatistics(rows: Array<{ tbl: SqlValue; idx: SqlValue; stat: SqlValue }>): Promise<void> {
  await large.run('DELETE FROM sqlite_stat1');
  for (const r of rows) await large.run('INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)', [r.tbl, r.idx, r.stat]);
  await large.run('ANALYZE sqlite_schema');
}

/** The statistics `PRAGMA optimize` records for a store of `certificates` certificates. */
async function statisticsAt(certificates: number): Promise<Array<{ tbl: SqlValue; idx: SqlValue; stat: SqlValue }>> {
  const engine = openSqliteEngine(':memory:');
  await migrateStore(engine);
  await seedLargeStore(engine, certificates);
  await engine.all('PRAGMA optimize=0x10002');
  const rows = await engine.all('SELECT tbl, idx, stat FROM sqlite_stat1');
  await engine.close();
  return rows.map((r) => ({ tbl: r.tbl!, idx: r.idx!, stat: r.stat! }));
}

test('every hot query of the store runs on its index at 20,000 certificates, with no statistics, stale ones and fresh ones', async () => {
  const sent = await recordHotQueries();
  for (const e of EXPECTED) assert.ok(sent.some(([sql]) => e.sql.test(sql)), `no recorded query is "${e.name}" (${e.sql}): did its SQL change? Update EXPECTED.`);
  await large.run('PRAGMA optimize=0x10002');
  const fresh = (await large.all('SELECT tbl, idx, stat FROM sqlite_stat1')).map((r) => ({ tbl: r.tbl!, idx: r.idx!, stat: r.stat! }));
  const states: Array<[string, Array<{ tbl: SqlValue; idx: SqlValue; stat: SqlValue }>]> = [['no statistics', []], ['statistics of 200 certificates', await statisticsAt(200)], ['fresh statistics', fresh]];
  for (const [state, stats] of states) {
    await setStatistics(stats);
    for (const [sql, params] of sent) {
      const lines = await plan(sql, params);
      const shown = `${state}:\n${sql}\n${lines.join('\n')}`;
      const scanned = lines.map((l) => /^SCAN (\w+)$/.exec(l)?.[1]).find((name) => name && LARGE.includes(tableOf(sql, name)));
      assert.equal(scanned, undefined, `reads a large table whole, ${shown}`);
      for (const e of EXPECTED.filter((x) => x.sql.test(sql))) {
        for (const u of e.uses) assert.ok(lines.some((l) => (typeof u === 'string' ? l.includes(u) : u.test(l))), `"${e.name}" does not use ${u}, ${shown}`);
        for (const n of e.not ?? []) assert.ok(!lines.some((l) => l.includes(n)), `"${e.name}" uses ${n}, ${shown}`);
      }
    }
  }
});

test('SQLite keeps statistics: refreshed after migrating, on close, and at the next open once a table grew tenfold', async () => {
  const file = join(home, 'grow.db');
  const stat = (db: DatabaseSync, idx: string) => (db.prepare('SELECT stat FROM sqlite_stat1 WHERE idx = ?').get(idx) as { stat: string } | undefined)?.stat;
  let store = await Store.open(openSqliteEngine(file), {});
  await seedLargeStore(store.engine, 200);
  await store.nextSigningCertificateAt(largeStoreAddress(1, 10));
  await store.close();
  // The tables filled since the open (no statistics yet) were analysed on close.
  let db = new DatabaseSync(file);
  assert.equal(stat(db, 'certificate_emails_email')?.split(' ')[0], '200');
  // Grown a hundredfold by another program (a restore, an import): the next open refreshes them.
  db.exec(`INSERT INTO certificate_emails (certificate_id, email, filing, preferred, filed_at)
           WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 19999) SELECT 'cert-' || (i % 200), 'x' || i || '@grown.example', 'current', 0, '2026-01-01T00:00:00.000Z' FROM n`);
  db.close();
  store = await Store.open(openSqliteEngine(file), {});
  db = new DatabaseSync(file);
  assert.equal(stat(db, 'certificate_emails_email')?.split(' ')[0], '20200');
  db.close();
  await store.close();
});

test('refreshing statistics never waits for another process\'s write lock (node:sqlite would wait with the event loop stopped)', async () => {
  const file = join(home, 'locked.db');
  const store = await Store.open(openSqliteEngine(file), {});
  await seedLargeStore(store.engine, 200);
  const other = new DatabaseSync(file);
  other.exec('BEGIN IMMEDIATE');
  const started = performance.now();
  await store.close(); // its PRAGMA optimize would analyse the tables filled since the open: skipped, not waited for (busy timeout 10 s)
  assert.ok(performance.now() - started < 2_000, `close took ${performance.now() - started} ms`);
  other.exec('ROLLBACK');
  assert.equal(other.prepare("SELECT COUNT(*) AS n FROM sqlite_stat1 WHERE tbl = 'certificate_emails'").get()!.n, 0);
  other.close();
  const again = await Store.open(openSqliteEngine(file), {});
  await again.close();
  const db = new DatabaseSync(file);
  assert.ok(Number(db.prepare("SELECT COUNT(*) AS n FROM sqlite_stat1 WHERE tbl = 'certificate_emails'").get()!.n) > 0, 'the next open gathers them');
  db.close();
});
