/**
 * The store's hot lookups on a grown SQLite store, before and after migration 22
 * (indexes shaped like the queries, statistics kept by PRAGMA optimize):
 *
 *     npx node bench/store-indexes.ts [--certificates=20000,200000] [--rounds=3] [--out=FILE]
 *
 * For each size it seeds one store file at schema 21 (test/helpers/large-store.ts:
 * certificates filed 20 to an address, mostly current; no statistics, as every store
 * made before had none), copies it, and upgrades the copy as a Kakitome that brings
 * migration 22 would at its next open (the indexes, then PRAGMA optimize). Each
 * lookup runs as the code of each version sends it (`before`: main before this
 * change; `after`: this change), in rounds that alternate the two stores, and the
 * figure is CPU time per lookup (process.cpuUsage: user + system), the least of the
 * rounds: on a shared machine the neighbours only ever add to it (the median of
 * three rounds moved by a third between runs at load 14; the least, by a tenth). "filed current at an address" is the shape that went from 14 µs to 2.8 ms
 * (a31107f): the code no longer sends it as it was, but it shows what the new index
 * makes safe to write.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { openSqliteEngine } from '../src/store/sqlite-engine.ts';
import { migrateStore } from '../src/store/migrations.ts';
import type { SqlEngine, SqlValue } from '../src/store/sql-engine.ts';
import { seedLargeStore, type LargeStoreSample } from '../test/helpers/large-store.ts';
import { median } from './harness/measure.ts';

const args = process.argv.slice(2);
const arg = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const sizes = (arg('certificates') ?? '20000,200000').split(',').map(Number);
const rounds = Number(arg('rounds') ?? 7);
const out = arg('out');

const RECORDS = `SELECT c.*, (SELECT COUNT(*) FROM private_keys k WHERE k.spki_sha256 = c.spki_sha256) AS key_count FROM certificates c WHERE`;
const ORDER = 'ORDER BY c.not_before DESC, c.not_after DESC, c.added_at DESC, c.fingerprint';

interface Lookup {
  name: string;
  /** The SQL each version sends (one text when unchanged), and its parameters. */
  before: string;
  after?: string;
  params: (s: LargeStoreSample, now: string) => SqlValue[];
}

const LOOKUPS: Lookup[] = [
  {
    name: 'certificates for an address with 20 (encrypt to, sign as)',
    before: `${RECORDS} c.id IN (SELECT certificate_id FROM certificate_emails WHERE email = ?) AND c.is_ca = 0 AND c.not_before <= ? AND c.not_after > ? AND c.revoked_at IS NULL ${ORDER}`,
    params: (s, now) => [s.address, now, now],
  },
  {
    name: '... for an address with none (most recipients)',
    before: `${RECORDS} c.id IN (SELECT certificate_id FROM certificate_emails WHERE email = ?) AND c.is_ca = 0 AND c.not_before <= ? AND c.not_after > ? AND c.revoked_at IS NULL ${ORDER}`,
    params: (_s, now) => ['nobody@elsewhere.example', now, now],
  },
  {
    name: 'filed current at an address (the shape of a31107f)',
    before: 'SELECT c.id FROM certificates c WHERE c.id IN (SELECT certificate_id FROM certificate_emails WHERE email = ? AND filing = \'current\') AND c.is_ca = 0',
    params: (s) => [s.address],
  },
  {
    name: '... for an address with none',
    before: 'SELECT c.id FROM certificates c WHERE c.id IN (SELECT certificate_id FROM certificate_emails WHERE email = ? AND filing = \'current\') AND c.is_ca = 0',
    params: () => ['nobody@elsewhere.example'],
  },
  {
    name: 'keys in use a new key would replace (harvest)',
    before: 'SELECT c.fingerprint, c.der, m.filing FROM certificates c JOIN certificate_emails m ON m.certificate_id = c.id WHERE m.email = ? AND c.spki_sha256 <> ? AND c.is_ca = 0 ORDER BY c.not_before, c.fingerprint',
    after: 'SELECT c.fingerprint, c.der FROM certificates c JOIN certificate_emails m ON m.certificate_id = c.id WHERE m.email = ? AND m.filing = \'current\' AND c.spki_sha256 <> ? AND c.is_ca = 0 ORDER BY c.not_before, c.fingerprint',
    params: (s) => [s.address, s.spki],
  },
  { name: 'certificate by fingerprint', before: `${RECORDS} c.fingerprint = ? ${ORDER}`, params: (s) => [s.fingerprint] },
  { name: 'certificates by issuer and serial', before: `${RECORDS} c.issuer_hex = ? AND c.serial_hex = ? ${ORDER}`, params: (s) => [s.issuerHex, s.serialHex] },
  { name: 'certificates by key identifier', before: `${RECORDS} c.ski_hex = ? ${ORDER}`, params: (s) => [s.skiHex] },
  {
    name: 'revocation of an issued certificate (OCSP)',
    before: 'SELECT c.revoked_at, c.revocation_reason FROM certificates c JOIN issued_certificates i ON i.certificate_id = c.id WHERE c.issuer_hex = ? AND c.serial_hex = ? AND i.ca_id = ?',
    params: (s) => [s.issuerHex, s.serialHex, s.caId],
  },
  {
    name: 'the revoked certificates of a CRL',
    before: 'SELECT c.serial_hex, c.revoked_at, c.revocation_reason FROM certificates c JOIN issued_certificates i ON i.certificate_id = c.id WHERE i.ca_id = ? AND c.revoked_at IS NOT NULL ORDER BY c.revoked_at, c.serial_hex',
    after: 'SELECT c.serial_hex, c.revoked_at, c.revocation_reason FROM certificates c CROSS JOIN issued_certificates i WHERE i.certificate_id = c.id AND i.ca_id = ? AND c.revoked_at IS NOT NULL ORDER BY c.revoked_at, c.serial_hex',
    params: (s) => [s.caId],
  },
  // No index since migration 25 (each would be written by every audit row): read newest first.
  { name: 'audit rows of an object (100)', before: 'SELECT * FROM audit_log WHERE object = ? ORDER BY at DESC, id LIMIT ?', params: (s) => [s.auditObject, 100] },
  {
    name: 'dashboard audit counts (24 h)',
    before: 'SELECT action, COUNT(*) AS n FROM audit_log WHERE at >= ? AND action IN (?, ?) GROUP BY action',
    params: (_s, now) => [new Date(Date.parse(now) - 86_400_000).toISOString(), 'key.use.decrypt', 'key.use.sign'],
  },
  { name: 'a tenant\'s batches (50)', before: 'SELECT id FROM batches WHERE tenant = ? ORDER BY created_at DESC, id DESC LIMIT ?', params: (s) => [s.tenant, 50] },
  {
    name: 'job queue poll',
    before: "SELECT 1 FROM batch_chunks c JOIN batches b ON b.id = c.batch_id WHERE b.state IN ('queued', 'running') AND c.state <> 'done' AND (c.lease_until IS NULL OR c.lease_until < ?) LIMIT 1",
    params: (_s, now) => [now],
  },
  {
    name: 'key changes waiting (100)',
    before: "SELECT certificate_id, email, filed_at FROM certificate_emails WHERE filing = 'pending' ORDER BY filed_at, email LIMIT ?",
    params: () => [100],
  },
];

/** CPU µs per run of `sql`, over enough runs to take about 30 ms of CPU (at least 5). */
async function cpuPerRun(engine: SqlEngine, sql: string, params: SqlValue[]): Promise<number> {
  let n = 0;
  const t0 = process.cpuUsage();
  let used = 0;
  while (n < 5 || used < 30_000) {
    await engine.all(sql, params);
    n++;
    const c = process.cpuUsage(t0);
    used = c.user + c.system;
  }
  return used / n;
}

const results: Array<{ certificates: number; lookup: string; beforeUs: number; afterUs: number; beforeMedianUs: number; afterMedianUs: number }> = [];
const dir = mkdtempSync(join(tmpdir(), 'kakitome-bench-indexes-'));
try {
  for (const n of sizes) {
    const beforeFile = join(dir, `before-${n}.db`);
    const seeding = openSqliteEngine(beforeFile);
    await migrateStore(seeding, 21);
    const t = Date.now();
    const sample = await seedLargeStore(seeding, n);
    await seeding.close();
    // Schema 21's Kakitome never gathered statistics (this one's close just did).
    const raw = new DatabaseSync(beforeFile);
    raw.exec('DELETE FROM sqlite_stat1');
    raw.close();
    const afterFile = join(dir, `after-${n}.db`);
    copyFileSync(beforeFile, afterFile);
    const before = openSqliteEngine(beforeFile);
    const upgrading = openSqliteEngine(afterFile);
    const m = Date.now();
    await migrateStore(upgrading);
    const migrateMs = Date.now() - m;
    await upgrading.close();
    console.error(`${n} certificates: seeded in ${((Date.now() - t) / 1000).toFixed(0)} s, migration 22 and statistics ${migrateMs} ms`);
    const after = openSqliteEngine(afterFile);
    const now = new Date().toISOString();
    for (const l of LOOKUPS) {
      const b: number[] = [];
      const a: number[] = [];
      for (let r = 0; r < rounds; r++) {
        b.push(await cpuPerRun(before, l.before, l.params(sample, now)));
        a.push(await cpuPerRun(after, l.after ?? l.before, l.params(sample, now)));
      }
      results.push({ certificates: n, lookup: l.name, beforeUs: Math.min(...b), afterUs: Math.min(...a), beforeMedianUs: median(b), afterMedianUs: median(a) });
      console.error(`${String(n).padStart(7)}  ${l.name.padEnd(60)} ${Math.min(...b).toFixed(1).padStart(9)} µs -> ${Math.min(...a).toFixed(1).padStart(7)} µs`);
    }
    await before.close();
    await after.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const json = JSON.stringify({ date: new Date().toISOString(), rounds, results }, null, 2);
if (out) writeFileSync(out, json);
console.log(json);
