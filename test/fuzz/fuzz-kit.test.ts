/**
 * The fuzz kit itself: a target whose cases wait for no I/O still lets the event loop
 * turn, so that what Node defers to process.nextTick (a failed zlib inflate's stream
 * clean-up) runs during the target instead of piling up until its end (a campaign's
 * compressed-data process grew by about 3.6 KB a case, to gigabytes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync, inflateSync } from 'node:zlib';
import { fuzz, seed } from './fuzz-kit.ts';

test('fuzz() gives the event loop a turn while a synchronous target runs', async () => {
  let ticksRun = 0;
  let ticksDuring = 0;
  let running = true;
  const damaged = Buffer.from(deflateSync(Buffer.from('x'.repeat(100))));
  damaged[5]! ^= 0xff;
  // Not mutation cases: kept out of a campaign's count of cases.
  delete process.env['KAKITOME_FUZZ_REPORT'];
  await fuzz('fuzz-kit-turns', [seed('bytes', Buffer.from('0123456789'))], 3000, () => {
    process.nextTick(() => {
      ticksRun++;
      if (running) ticksDuring++;
    });
    // What compressed-data's damaged inputs do: Node destroys the inflate stream on the next tick.
    try {
      inflateSync(damaged);
    } catch {
      // expected
    }
  });
  running = false;
  assert.ok(ticksDuring >= 2000, `${ticksDuring} of 3000 next-tick callbacks ran while the target ran (${ticksRun} in all so far)`);
});
