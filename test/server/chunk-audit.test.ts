import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkAudit } from '../../src/server/batches/chunk-audit.ts';
import { keyUseDetail, type KeyUseParts } from '../../src/server/api/sign.ts';
import { auditRowOf, type AuditRow } from '../../src/store/record-key-use.ts';

const batchId = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';

test('a chunk\'s audit rows made at its completion are the rows its messages\' uses make, in order, past its capacity and across senders, certificates and DKIM selectors', () => {
  const at = Date.UTC(2026, 11, 7, 18, 0, 0, 5);
  const uses: Array<[KeyUseParts, number]> = [];
  for (let i = 0; i < 7; i++) {
    const sender = i < 3 || i === 5 ? 'news@acme.example' : `other-${i}@acme.example`;
    // A new string each time, as each message's From address is read anew.
    uses.push([{ at: new Date(at + i * 999), actor: 'api:acme/k1', action: 'api.batches.sign', object: i < 4 ? 'fp-a' : 'fp-b', sender: `${sender}`, bytes: 2000 + i, dkim: i === 6 ? 's1, s2' : '' }, 40 + 2 * i]);
  }
  const audit = new ChunkAudit(batchId, 3);
  for (const [parts, index] of uses) audit.add(parts, index);
  assert.equal(audit.length, 7);
  const rows = [...audit];
  const expected = uses.map(([p, index]) => auditRowOf({ at: p.at, actor: p.actor, action: p.action, object: p.object, detail: keyUseDetail(p.sender, p.bytes, p.dkim, `batch ${batchId} message ${index}`) }));
  // The ids are random past their time: compared by their time part, the rest whole.
  const strip = (r: AuditRow) => [r[0].slice(0, 13), ...r.slice(1)];
  assert.deepEqual(rows.map(strip), expected.map(strip));
  assert.equal(rows[6]![5], `other-6@acme.example, 2006 bytes, DKIM s1, s2, batch ${batchId} message 52`);
  assert.equal(rows[0]![1], '2026-12-07T18:00:00.005Z');
  assert.equal(new Set(rows.map((r) => r[0])).size, 7, 'each row its own id');
  // Iterated again, the same rows (the completion may be retried by a test's second look).
  assert.deepEqual([...audit].map(strip), expected.map(strip));
  assert.deepEqual([...new ChunkAudit(batchId, 0)], []);
});
