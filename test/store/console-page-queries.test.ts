/**
 * The console's paged lists (certificate inventory, audit log) stay fast on a
 * large store because every query they send runs on an index: SQLite's own query
 * plan for each shape (no search, address prefix, fingerprint, cursor, date range)
 * must never read a table from end to end. Checked on the plan, not by timing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Store } from '../../src/store/store.ts';
import { openSqliteEngine } from '../../src/store/sqlite-engine.ts';
import type { SqlValue } from '../../src/store/sql-engine.ts';
import { listCertificatePage } from '../../src/store/list-certificate-page.ts';
import { listAuditPage } from '../../src/store/list-audit-page.ts';
import { writeCursor } from '../../src/store/page-cursor.ts';

test('every query of the certificate inventory and the audit log runs on an index', async () => {
  const store = await Store.open(openSqliteEngine(':memory:'), {});
  const sent: Array<[string, SqlValue[]]> = [];
  const all = store.engine.all.bind(store.engine);
  (store.engine as { all: typeof all }).all = async (sql: string, params: SqlValue[] = []) => {
    if (/FROM (certificates c|audit_log)\b/.test(sql)) sent.push([sql, params]);
    return all(sql, params);
  };
  const after = writeCursor('2030-01-01T00:00:00.000Z', 'zz');
  for (const q of [{}, { kind: 'all' as const }, { search: 'tanaka@' }, { search: 'ab'.repeat(32) }, { after }, { kind: 'all' as const, search: 'x', after }]) await listCertificatePage(store, q);
  for (const q of [{}, { actor: 'console:' }, { from: '2026-01-01', to: '2026-02-01', action: 'key' }, { after }]) await listAuditPage(store, q);
  assert.equal(sent.length, 10);
  for (const [sql, params] of sent) {
    const plan = (await all(`EXPLAIN QUERY PLAN ${sql}`, params)).map((r) => String(r.detail));
    assert.ok(!plan.some((line) => /^SCAN \w+$/.test(line)), `${sql}\n${plan.join('\n')}`);
  }
  await store.close();
});
