/**
 * Audit ids (src/store/time-ordered-id.ts): RFC 9562 version 7 UUIDs whose first 48
 * bits are the time, so they sort by time across milliseconds; unique across many
 * refills of the random pool.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { timeOrderedId } from '../../src/store/time-ordered-id.ts';

const UUID7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('version 7, the time in front: ids sort by their millisecond', () => {
  const t = Date.UTC(2026, 11, 6, 12, 0, 0);
  const ids = [t + 5, t, t + 1, t + 86_400_000].map((ms) => timeOrderedId(ms));
  for (const id of ids) assert.match(id, UUID7);
  assert.deepEqual([...ids].sort(), [ids[1], ids[2], ids[0], ids[3]]);
  assert.equal(Number.parseInt(ids[1]!.replace(/-/g, '').slice(0, 12), 16), t);
});

test('unique across many refills of the random pool, within one millisecond', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 50_000; i++) seen.add(timeOrderedId(1_700_000_000_000));
  assert.equal(seen.size, 50_000);
});
