/**
 * Audit row times (src/store/format-audit-time.ts): the text toISOString gives, for
 * rows in one second, across seconds in either direction, at the edges of its year
 * forms (before 1970, six-digit and negative years), and an invalid Date refused as
 * toISOString refuses it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAuditTime } from '../../src/store/format-audit-time.ts';

test('the same text as toISOString, whatever came before', () => {
  const t = Date.UTC(2026, 11, 7, 12, 0, 59);
  const times = [t, t + 1, t + 999, t + 1000, t + 1001, t - 1, t, 0, -1, -999, -1000, -1001, 1, 999, 1000, 8.64e15, -8.64e15, 253402300799999, 253402300800000, -62167219200001, -62167219200000];
  for (let i = 0; i < 2000; i++) times.push(Math.round((((i * 7919) % 2000) / 1000 - 1) * 8e15), t + i * 37);
  for (const ms of [...times, ...times.reverse()]) {
    const d = new Date(ms);
    assert.equal(formatAuditTime(d), d.toISOString(), `at ${ms}`);
  }
});

test('an invalid Date throws RangeError, as toISOString does', () => {
  assert.throws(() => formatAuditTime(new Date(Number.NaN)), RangeError);
});
