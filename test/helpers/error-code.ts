import assert from 'node:assert/strict';
import { KakitomeError } from '../../src/errors.ts';

/** Runs `fn`, which must throw a KakitomeError, and returns its code. */
export function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof KakitomeError, `expected KakitomeError, got ${String(e)}`);
    return e.code;
  }
  assert.fail('expected a failure');
}
