import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { decode as decodeBase64 } from 'libbase64';
import { Base64StreamDecoder } from '../../src/smime/decode-base64-stream.ts';

/** Decodes `body` fed in random pieces; each emitted piece is copied at once (the decoder reuses its buffers). */
async function streamDecode(body: Buffer, maxPiece: number): Promise<Buffer> {
  const out: Buffer[] = [];
  const d = new Base64StreamDecoder((b) => void out.push(Buffer.from(b)));
  for (let p = 0; p < body.length; ) {
    const n = Math.min(body.length - p, 1 + randomInt(maxPiece));
    await d.write(body.subarray(p, p + n));
    p += n;
  }
  await d.end();
  return Buffer.concat(out);
}

function wrap(b64: string, width: number, eol: string): string {
  return b64.replace(new RegExp(`(.{${width}})`, 'g'), `$1${eol}`) + eol;
}

test('regular bodies (CRLF and LF, several line lengths) decode as in memory, in any piece size', async () => {
  for (const width of [76, 64, 72, 4, 60]) {
    for (const eol of ['\r\n', '\n']) {
      const data = randomBytes(30_000 + randomInt(1000));
      const body = Buffer.from(wrap(data.toString('base64'), width, eol), 'latin1');
      for (const piece of [1, 7, 4096, 1 << 20]) assert.deepEqual(await streamDecode(body, piece), data, `width ${width} piece ${piece}`);
    }
  }
});

test('irregular bodies: junk bytes, odd line lengths, padding in the middle, URL-safe letters, blank lines', async () => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_';
  for (let round = 0; round < 20; round++) {
    const parts: string[] = [];
    const n = 1000 + randomInt(10_000);
    for (let i = 0; i < n; i++) {
      const r = randomInt(100);
      if (r < 85) parts.push(alphabet[randomInt(alphabet.length)]!);
      else if (r < 90) parts.push('\r\n');
      else if (r < 93) parts.push('\n');
      else if (r < 95) parts.push('=');
      else if (r < 97) parts.push(String.fromCharCode(randomInt(256)));
      else parts.push(' ');
    }
    // Regular stretches too, so the fast path starts and then has to give up.
    const regular = wrap(randomBytes(5000).toString('base64'), 76, '\r\n');
    const text = round % 2 ? regular + parts.join('') + regular : parts.join('') + regular;
    const body = Buffer.from(text, 'latin1');
    const expected = decodeBase64(text);
    for (const piece of [1, 100, 1 << 16]) assert.deepEqual(await streamDecode(body, piece), expected, `round ${round} piece ${piece}`);
  }
});

test('a regular body with one bad line (a skipped byte, a stray "=") falls back to the exact path', async () => {
  const data = randomBytes(100_000);
  const lines = wrap(data.toString('base64'), 76, '\r\n').split('\r\n');
  for (const bad of ['*', '=']) {
    const copy = [...lines];
    copy[500] = copy[500]!.slice(0, 30) + bad + copy[500]!.slice(31);
    const text = copy.join('\r\n');
    assert.deepEqual(await streamDecode(Buffer.from(text, 'latin1'), 1 << 20), decodeBase64(text));
  }
});
