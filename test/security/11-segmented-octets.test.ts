/**
 * A segmented (constructed, BER) OCTET STRING costs memory by its bytes, not by its
 * segment count. X.690 allows a constructed OCTET STRING of any number of segments,
 * empty ones included, and limits.maxSegments allows 4 Mi of them: joining them
 * through a parsed child and a view for each segment made an 11 MB message (the
 * encrypted content of an ordinary message in 4 million two-byte segments) cost
 * 1.2 GB of memory and 7 s in `kakitome decrypt`, a 150-fold amplification that a
 * gateway gets from any sender. The real program runs here under a 160 MiB heap.
 *
 * The same holds for any SET OF or SEQUENCE OF: 4 million empty elements in the
 * digestAlgorithms, certificates, crls or signerInfos of a SignedData, or in a carried
 * certificate's extensions, cost 660-710 MB before their count was checked. Now a
 * value's elements are read up to the bound its reader knows (maxSigners,
 * maxCertificates...) or 65,536, and no further.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestPki } from '../helpers/pki.ts';
import { runCli } from '../cli/run-cli.ts';
import { encryptMessage } from '../../src/smime/encrypt-message.ts';
import { signMessage } from '../../src/smime/sign-message.ts';
import { decode, type Tlv } from '../../src/asn1/ber.ts';
import { buildEntity } from '../../src/mime/build-entity.ts';

const pki = new TestPki('Kakitome Segmented Octets Root');
const dir = mkdtempSync(join(tmpdir(), 'kakitome-segments-'));
after(() => {
  pki.cleanup();
  rmSync(dir, { recursive: true, force: true });
});
const alice = pki.identity('p256', 'alice');
const bob = pki.identity('p256', 'bob');
const EMPTY_SEGMENTS = 4_000_000;

const message = Buffer.from('From: alice@example.com\r\nTo: bob@example.com\r\nSubject: Segments\r\nContent-Type: text/plain\r\n\r\nThe figures are in.\r\n');

/** The body of a base64 S/MIME message as DER. */
function derOf(smime: Buffer): Buffer {
  const body = smime.subarray(smime.indexOf('\r\n\r\n') + 4).toString('latin1');
  return Buffer.from(body.replace(/\s+/g, ''), 'base64');
}

/**
 * `der` with the primitive string `isTarget` picks re-encoded as a constructed one of
 * one-byte segments followed by `empties` empty segments; its ancestors get indefinite
 * lengths (as NSS and gpgsm write them).
 */
function fragment(der: Buffer, isTarget: (t: Tlv) => boolean, empties: number): Buffer {
  const rebuild = (t: Tlv): { bytes: Buffer; hit: boolean } => {
    if (!t.constructed && isTarget(t)) {
      const v = Buffer.from(t.value);
      const segments = Buffer.alloc(v.length * 3 + empties * 2);
      for (let i = 0; i < v.length; i++) segments.set([0x04, 1, v[i]!], i * 3);
      for (let i = 0; i < empties; i++) segments.set([0x04, 0], v.length * 3 + i * 2);
      return { bytes: Buffer.concat([Buffer.from([t.tag | 0x20, 0x80]), segments, Buffer.from([0, 0])]), hit: true };
    }
    if (!t.constructed) return { bytes: Buffer.from(t.bytes), hit: false };
    const kids = t.children().map(rebuild);
    if (!kids.some((k) => k.hit)) return { bytes: Buffer.from(t.bytes), hit: false };
    return { bytes: Buffer.concat([Buffer.from([t.tag, 0x80]), ...kids.map((k) => k.bytes), Buffer.from([0, 0])]), hit: true };
  };
  const out = rebuild(decode(der));
  assert.ok(out.hit, 'the string to segment was found');
  return out.bytes;
}

function smimeFile(name: string, der: Buffer, smimeType: string): string {
  const path = join(dir, name);
  const b64 = Buffer.from(der.toString('base64').replace(/.{76}/g, '$&\r\n') + '\r\n');
  writeFileSync(path, buildEntity([['From', 'alice@example.com'], ['To', 'bob@example.com'], ['MIME-Version', '1.0'], ['Content-Type', `application/pkcs7-mime; smime-type=${smimeType}; name="smime.p7m"`], ['Content-Transfer-Encoding', 'base64']], b64));
  return path;
}

const smallHeap = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=160`.trim() };

test('decrypt: encrypted content in 4 million segments opens within a 160 MiB heap', async () => {
  // AuthEnvelopedData's encryptedContent [0] IMPLICIT OCTET STRING (tag 0x80).
  const der = fragment(derOf(encryptMessage(message, { recipients: [{ certificate: bob.cert }] })), (t) => t.tag === 0x80 && t.value.length > 16, EMPTY_SEGMENTS);
  assert.ok(der.length > 8_000_000);
  const r = await runCli(['decrypt', '--cert', bob.certPath, '--key', bob.keyPath, '-i', smimeFile('enc.eml', der, 'authEnveloped-data')], { env: smallHeap });
  assert.equal(r.status, 0, r.stderr.slice(0, 400));
  assert.match(r.stdout.toString('latin1'), /The figures are in\./);
});

test('verify: opaque signed content in 4 million segments verifies within a 160 MiB heap', async () => {
  // SignedData's eContent [0] EXPLICIT OCTET STRING (tag 0x04, the message inside).
  const signed = signMessage(message, { signers: [{ certificate: alice.cert, key: alice.key }], opaque: true });
  const der = fragment(derOf(signed), (t) => t.tag === 0x04 && Buffer.from(t.value).includes('The figures'), EMPTY_SEGMENTS);
  const r = await runCli(['verify', '--ca', pki.caPath, '-i', smimeFile('signed.eml', der, 'signed-data')], { env: smallHeap });
  assert.equal(r.status, 0, r.stderr.slice(0, 400));
  assert.match(r.stdout.toString('latin1'), /The figures are in\./);
});

/**
 * `der` with `extra` appended to the contents of the constructed value `isTarget`
 * picks (the first, depth first); the ancestors get indefinite lengths.
 */
function stuff(der: Buffer, isTarget: (t: Tlv) => boolean, extra: Buffer): Buffer {
  let done = false;
  const rebuild = (t: Tlv): Buffer => {
    if (!t.constructed || done) return Buffer.from(t.bytes);
    if (isTarget(t)) {
      done = true;
      return Buffer.concat([Buffer.from([t.tag, 0x80]), Buffer.from(t.value), extra, Buffer.from([0, 0])]);
    }
    const kids = t.children().map(rebuild);
    return Buffer.concat([Buffer.from([t.tag, 0x80]), ...kids, Buffer.from([0, 0])]);
  };
  const out = rebuild(decode(der));
  assert.ok(done, 'the value to fill was found');
  return out;
}

test('verify: 4 million empty elements in a SET OF or SEQUENCE OF are refused within a 160 MiB heap', async () => {
  const opaque = derOf(signMessage(message, { signers: [{ certificate: alice.cert, key: alice.key }], opaque: true }));
  const empties = Buffer.alloc(EMPTY_SEGMENTS * 2);
  for (let i = 0; i < empties.length; i += 2) empties.set([0x30, 0], i);
  // SignedData's fields at depth 2: version, digestAlgorithms (SET), encapContentInfo, certificates [0], signerInfos (SET).
  const signedDataField = (tag: number, nth = 0) => {
    let seen = -1;
    return (t: Tlv) => t.depth === 3 && t.tag === tag && ++seen === nth;
  };
  const cases: Array<[string, (t: Tlv) => boolean]> = [
    ['digestAlgorithms', signedDataField(0x31, 0)],
    ['certificates', signedDataField(0xa0)],
    ['signerInfos', signedDataField(0x31, 1)],
    // The extensions of the certificate carried ([0] -> Certificate -> TBSCertificate -> [3] -> SEQUENCE).
    ['certificate extensions', (t) => t.depth === 7 && t.tag === 0x30 && t.children()[0]?.tag === 0x30 && t.children()[0]!.children()[0]?.tag === 0x06],
  ];
  for (const [what, isTarget] of cases) {
    const der = stuff(opaque, isTarget, empties);
    const r = await runCli(['verify', '--ca', pki.caPath, '-i', smimeFile(`bomb-${what.replace(/ /g, '-')}.eml`, der, 'signed-data')], { env: smallHeap });
    assert.ok(r.status === 1 || r.status === 2, `${what}: exit ${r.status}: ${r.stderr.slice(-300)}`);
    assert.doesNotMatch(r.stdout.toString('latin1'), /The figures are in/, what);
  }
});
