/**
 * docs/security.md section 21: what a caller of the signing service (serve) spends
 * of the service is bounded by what it is allowed to send. Each test plays a client
 * sending input whose cost is out of proportion to its size, or holding resources
 * the service needs for everyone else.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { splitNdjsonMessages } from '../../src/server/batches/split-ndjson-messages.ts';
import type { ChunkEntry } from '../../src/server/batches/chunk-records.ts';

async function entries(upload: string, maxMessageBytes: number): Promise<ChunkEntry[]> {
  const out: ChunkEntry[] = [];
  for await (const e of splitNdjsonMessages(Readable.from([Buffer.from(upload)]), maxMessageBytes)) out.push(e);
  return out;
}

/** CPU milliseconds `run` takes. */
async function cpuMs(run: () => Promise<unknown>): Promise<number> {
  const start = process.cpuUsage();
  await run();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

test('an NDJSON line of nested arrays costs the batch thread what a message of its size does', async () => {
  const limit = 4 * 1024 * 1024;
  const depth = 1_000_000;
  const nest = `${'['.repeat(depth)}${']'.repeat(depth)}`;
  const bombs = [nest, `{"message": "x", "a": ${nest}}`, `{"a": ${nest}, "message": "x"}`, `{"message": ${nest}}`].join('\n');
  const text = 'From: news@acme.example\r\nSubject: "quoted" \\ back\r\n\r\n'.padEnd(2 * depth, 'x');
  const plain = [JSON.stringify({ message: text }), JSON.stringify({ message: `${text}\\` }), JSON.stringify({ base64: Buffer.from(text).toString('base64') })].join('\n');

  let refused: ChunkEntry[] = [];
  const bombMs = await cpuMs(async () => { refused = await entries(bombs, limit); });
  let read: ChunkEntry[] = [];
  const plainMs = await cpuMs(async () => { read = await entries(plain, limit); });

  assert.deepEqual(refused.map((e) => e.error?.code), ['MALFORMED', 'MALFORMED', 'MALFORMED', 'MALFORMED']);
  for (const e of refused) assert.match(e.error!.reason, /\{"message": "\.\.\."\} or \{"base64": "\.\.\."\}/);
  assert.deepEqual(read.map((e) => e.message?.toString()), [text, `${text}\\`, text], 'long messages with quotes and back-slashes are read whole');
  // Before: 4 nested lines of 2 MB cost some 6 s of CPU (JSON.parse builds a million arrays each), 150 times the plain ones.
  assert.ok(bombMs < 5 * plainMs + 200, `nested lines cost ${bombMs.toFixed(0)} ms of CPU, plain ones of the same size ${plainMs.toFixed(0)} ms`);
});
