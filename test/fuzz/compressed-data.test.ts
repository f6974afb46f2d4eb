/**
 * Mutation fuzzing of decompressData (RFC 3274), plain and wrapped in SignedData
 * (the signed-compressed shape peers send). Oracle: typed errors only; a success
 * is either the original content or bounded by maxDecompressedBytes.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestPki } from '../helpers/pki.ts';
import { compressData, decompressData } from '../../src/cms/compressed-data.ts';
import { signData } from '../../src/cms/signed-data/sign.ts';
import { verifySignedData } from '../../src/cms/signed-data/verify.ts';
import { OID } from '../../src/asn1/oids.ts';
import { fuzz, iterations, seed, timeoutFor, type Seed, REPLAYING } from './fuzz-kit.ts';

const pki = new TestPki('Kakitome Fuzz Compression Root');
after(() => pki.cleanup());
const ed = pki.identity('ed25519');
const content = Buffer.from('Content-Type: text/plain\r\n\r\n' + 'compressible text, '.repeat(60) + '\r\n');
const LIMIT = 64 * 1024;

const seeds: Seed[] = [seed('zlib', compressData(content)), seed('zlib-empty', compressData(Buffer.alloc(0)))];

test('decompressData: typed errors only, output bounded', { timeout: timeoutFor(1500) }, async () => {
  const outcomes = await fuzz('decompress', seeds, iterations(1500), (m) => {
    const r = decompressData(m.bytes, { limits: { maxDecompressedBytes: LIMIT } });
    assert.ok(r.content.length <= LIMIT, `${m.what}: ${r.content.length} bytes over the limit`);
  });
  assert.ok(REPLAYING || (outcomes.get('MALFORMED') ?? 0) > 0 && (outcomes.get('ok') ?? 0) > 0, `explores: ${[...outcomes]}`);
});

test('SignedData over CompressedData: a valid verdict always carries the original compressed object', { timeout: timeoutFor(800, 5) }, async () => {
  const inner = compressData(content);
  const signed = [seed('signed-compressed', signData(inner, { signers: [{ certificate: ed.cert, key: ed.key }], contentType: OID.compressedData }))];
  await fuzz('signed-compressed', signed, iterations(800), (m) => {
    const v = verifySignedData(m.bytes);
    if (v.status !== 'valid') return;
    assert.equal(v.contentType, OID.compressedData, m.what);
    assert.deepEqual(decompressData(v.content).content, content, m.what);
  });
});
