/**
 * ThreadChannel: a handler's failure reaches the caller on the other thread as the
 * same error: a KakitomeError with its code, message and remedy; a system error
 * with its message and code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { ThreadChannel } from '../../../src/server/workers/thread-channel.ts';
import { KakitomeError } from '../../../src/errors.ts';

test('a KakitomeError crosses with its code, message and remedy; another error with its message and code', async () => {
  const { port1, port2 } = new MessageChannel();
  try {
    const here = new ThreadChannel(port1);
    const there = new ThreadChannel(port2);
    there.handle('sign', () => {
      throw new KakitomeError('KEY_INVALID', 'No current signing identity for a@acme.example.', { remedy: 'tenantIdentity' });
    });
    there.handle('plain', () => {
      throw new KakitomeError('LIMIT', 'Too large.');
    });
    there.handle('listen', () => {
      throw Object.assign(new Error('address in use'), { code: 'EADDRINUSE' });
    });
    await assert.rejects(here.call('sign'), (e) => e instanceof KakitomeError && e.code === 'KEY_INVALID' && e.remedy === 'tenantIdentity' && e.message === 'No current signing identity for a@acme.example.');
    await assert.rejects(here.call('plain'), (e) => e instanceof KakitomeError && e.code === 'LIMIT' && e.remedy === undefined);
    await assert.rejects(here.call('listen'), (e) => !(e instanceof KakitomeError) && (e as NodeJS.ErrnoException).code === 'EADDRINUSE');
  } finally {
    port1.close();
    port2.close();
  }
});
