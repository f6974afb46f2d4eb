/**
 * A request's log line written by hand (request-cycle.ts requestLine) is the very
 * JSON text JSON.stringify makes of the entry finishRequest logs without it: the
 * same fields in the same order, undefined ones left out, strings escaped alike.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requestLine } from '../../src/server/request-cycle.ts';
import type { RequestState } from '../../src/server/service-context.ts';
import type { ApiKeyRecord } from '../../src/store/tenant-directory.ts';

const key: ApiKeyRecord = { id: '0123456789abcdef', tenant: 'shop.example', scopes: ['sign'], createdAt: new Date(0) };

/** The entry finishRequest gives ctx.log, with the line's own time. */
function entryText(time: string, state: RequestState, method: string, route: string, status: number, ms: number): string {
  return JSON.stringify({
    time, level: status >= 500 ? 'error' : 'info', msg: 'request', request: state.requestId,
    method, route, status, ms, tenant: state.key?.tenant, key: state.key?.id, code: state.code,
  });
}

const cases: Array<[string, RequestState, string, string, number, number]> = [
  ['signed', { requestId: 'a8d0c8a2-3c8e-4a53-9d3c-6a3b1e9b6f01', key }, 'POST', '/api/v1/sign', 200, 3.1],
  ['no key, refused', { requestId: 'r1', code: 'UNAUTHENTICATED' }, 'POST', '/api/v1/sign', 401, 0],
  ['ours failed', { requestId: 'r2', key, code: 'INTERNAL' }, 'GET', '/api/v1/batches/:id', 500, 1234.5],
  ['unmatched, odd method', { requestId: 'r3' }, 'PROPFIND', 'unmatched', 404, 0.1],
  ['text to escape', { requestId: 'r"4\\', key: { ...key, tenant: 'a"b\\c\u2028d\u0001', id: 'é\n' }, code: 'X"Y' }, 'P"OST', '/a"b\\c', 403, 12],
];

for (const [name, state, method, route, status, ms] of cases) {
  test(`requestLine: the entry's JSON text (${name})`, () => {
    const line = requestLine(state, method, route, status, ms);
    const time = (JSON.parse(line) as { time: string }).time;
    assert.match(time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Math.abs(Date.parse(time) - Date.now()) < 5_000);
    assert.equal(line, entryText(time, state, method, route, status, ms));
  });
}

test('requestLine: a key record changed into another object is written as the new one', () => {
  const other: ApiKeyRecord = { ...key, tenant: 'bank.example' };
  const first = JSON.parse(requestLine({ requestId: 'x', key }, 'POST', '/api/v1/sign', 200, 1)) as { tenant: string };
  const second = JSON.parse(requestLine({ requestId: 'y', key: other }, 'POST', '/api/v1/sign', 200, 1)) as { tenant: string };
  assert.equal(first.tenant, 'shop.example');
  assert.equal(second.tenant, 'bank.example');
});
