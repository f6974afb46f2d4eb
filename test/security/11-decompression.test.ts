/**
 * Issue 9, item 11: decompression bombs (RFC 3274 CompressedData).
 *
 * The attack: zlib inflates at most about 1032:1, but a compressed stream of zeros
 * is itself very regular, so compressing twice multiplies the ratios. A message of
 * about 1.2 KB holding CompressedData inside CompressedData inflated to 256 MiB:
 * the bound (limits.maxDecompressedBytes) applied to each layer on its own, and
 * eight layers were allowed.
 *
 * Safe behaviour: one decompression budget per message, shared by every layer
 * (in memory, and on the streaming paths, which hand compressed content to the
 * in-memory reader), 64 MiB by default; exceeding it is LIMIT, and inflation stops
 * there.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createDeflate, deflateSync } from 'node:zlib';
import { Writable } from 'node:stream';
import { TestPki } from '../helpers/pki.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { verifyMessageStream } from '../../src/smime/verify-message-stream.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { decryptMessageStream } from '../../src/smime/decrypt-message-stream.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { encodeContentInfo } from '../../src/cms/content-info.ts';
import { explicit, integer, octetString, oid, sequence } from '../../src/asn1/der.ts';
import { encodeAlgorithmIdentifier } from '../../src/cms/algorithm-identifier.ts';
import { OID } from '../../src/asn1/oids.ts';
import { DEFAULT_LIMITS } from '../../src/limits.ts';
import { KakitomeError } from '../../src/errors.ts';

const pki = new TestPki('Decompression Root');
after(() => pki.cleanup());
const bob = pki.identity('rsa2048', 'bob');
const keys = [{ key: bob.key, certificate: bob.cert }];
const MiB = 1024 * 1024;

/** CompressedData (the SEQUENCE, as nested CMS content carries it) around already-deflated bytes. */
function compressedDataValue(deflated: Uint8Array, contentType: string): Buffer {
  const eci = sequence(oid(contentType), explicit(0, octetString(deflated)));
  return sequence(integer(0), encodeAlgorithmIdentifier(OID.zlibCompress), eci);
}

/** The same in a ContentInfo, as a message body carries it. */
function compressedData(deflated: Uint8Array, contentType: string): Buffer {
  return encodeContentInfo(OID.compressedData, compressedDataValue(deflated, contentType));
}

/** zlib of `prefix` followed by `n` MiB of `fill`, without holding them in memory. */
async function deflateRepeated(prefix: Buffer, fill: Buffer, n: number): Promise<Buffer> {
  const z = createDeflate({ level: 9 });
  const out: Buffer[] = [];
  z.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((resolve, reject) => {
    z.on('end', resolve);
    z.on('error', reject);
  });
  z.write(prefix);
  const mib = Buffer.alloc(MiB);
  for (let i = 0; i < MiB; i += fill.length) fill.copy(mib, i);
  for (let i = 0; i < n; i++) if (!z.write(mib)) await new Promise((r) => z.once('drain', r));
  z.end();
  await done;
  return Buffer.concat(out);
}

function asMessage(der: Buffer, headers = 'From: mallory@example.com\r\nTo: bob@example.com\r\nSubject: small\r\nMIME-Version: 1.0\r\n'): Buffer {
  return Buffer.from(`${headers}Content-Type: application/pkcs7-mime; smime-type=compressed-data; name=smime.p7z\r\nContent-Transfer-Encoding: base64\r\n\r\n${der.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`);
}

/** CompressedData whose content is CompressedData (RFC 5652 nesting) of a MIME entity with `mib` MiB of NUL octets as its body. */
async function bomb(mib: number): Promise<Buffer> {
  const inner = compressedDataValue(await deflateRepeated(Buffer.from('Content-Type: application/octet-stream\r\n\r\n'), Buffer.alloc(1), mib), OID.data);
  return asMessage(compressedData(deflateSync(inner, { level: 9 }), OID.compressedData));
}

async function* chunks(b: Buffer) {
  for (let i = 0; i < b.length; i += 64 * 1024) yield b.subarray(i, i + 64 * 1024);
}
const discard = () => new Writable({ write: (_c, _e, cb) => cb() });

async function outcome(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
    return 'ok';
  } catch (e) {
    if (!(e instanceof KakitomeError)) throw e;
    return `${e.code}: ${e.message}`;
  }
}

test('the default budget is one of 64 MiB per message', () => {
  assert.equal(DEFAULT_LIMITS.maxDecompressedBytes, 64 * MiB);
});

test('a 1.2 KB message that inflates to 255 MiB is refused (LIMIT) by every reader', async () => {
  // 255 MiB: just under the old per-layer bound of 256 MiB, so the old code inflated all of it.
  const message = await bomb(255);
  assert.ok(message.length < 2048, `the bomb is ${message.length} bytes`);
  const encrypted = encryptMessage(message, { recipients: [{ certificate: bob.cert }] });
  for (const [name, run] of [
    ['verifyMessage', () => verifyMessage(message)],
    ['verifyMessageStream', () => verifyMessageStream(chunks(message), { output: discard() })],
    ['decryptMessage', () => decryptMessage(encrypted, { keys })],
    ['decryptMessageStream', () => decryptMessageStream(chunks(encrypted), { keys, output: discard() })],
  ] as const) {
    assert.match(await outcome(run), /^LIMIT: .*decompress/i, name);
  }
});

test('a message within the budget still opens', async () => {
  const message = await bomb(8);
  const v = await verifyMessage(message);
  assert.equal(v.status, 'unsigned');
  assert.equal(v.output.length > 8 * MiB, true);
});

test('the budget is shared by all layers: two layers under it each, over it together', async () => {
  // Layer 1 inflates to a MIME entity of ~0.6 MiB (padding header fields) holding layer 2, which inflates to ~0.6 MiB.
  const limits = { maxDecompressedBytes: MiB };
  const layer2 = compressedData(deflateSync(Buffer.from(`Content-Type: text/plain\r\n\r\n${'B'.repeat(98)}\r\n`.repeat(6000))), OID.data);
  const padding = Array.from({ length: 600 }, (_, i) => `X-Pad-${i}: ${'p'.repeat(990)}\r\n`).join('');
  const entity2 = asMessage(layer2, padding);
  assert.ok(entity2.length > 0.55 * MiB && entity2.length < MiB);
  const message = asMessage(compressedData(deflateSync(entity2), OID.data));
  assert.match(await outcome(() => verifyMessage(message, { limits })), /^LIMIT: .*decompress/i, 'over the shared budget');
  assert.equal(await outcome(() => verifyMessage(message, { limits: { maxDecompressedBytes: 2 * MiB } })), 'ok', 'each layer alone fits');
});
