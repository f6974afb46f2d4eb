/**
 * Streaming SignedData production (RFC 5652 5) for content too large to hold in
 * memory: the content is read once, hashed with each signer's digest algorithm and,
 * unless detached, written out as it arrives inside an indefinite-length
 * encapsulation (X.690 8.1.3.6; the brief allows BER for streaming output, as NSS,
 * gpgsm and Bouncy Castle write it). The SignerInfos follow the content: they are
 * computed from the digests once the input ends (signed-data/sign.ts builds them,
 * so the streamed and in-memory signers produce the same attributes).
 *
 * Detached output is a small DER SignedData written after the input has been read.
 */
import type { Readable, Writable } from 'node:stream';
import type { Hash } from 'node:crypto';
import { Tag } from '../../asn1/ber.ts';
import { encodeLength } from '../../asn1/der.ts';
import { buildSignerInfo, layoutSignedData, type PreparedSigner, type SignOptions } from '../signed-data/sign.ts';
import { encodeSignedData, encodeSignedDataParts } from '../signed-data/encode.ts';
import { createDigest, type DigestName } from '../algorithms/digest.ts';
import { fileSink, writableSink, type ByteSink } from './byte-sink.ts';
import { readFileChunks } from './read-file-chunks.ts';
import { AtomicFile } from './atomic-file.ts';

export interface SignStreamOptions extends SignOptions {
  /** Default true: end `output` when done. */
  end?: boolean;
}

/** Segments smaller than this are coalesced, so a trickling input does not produce millions of tiny segments. */
const MIN_SEGMENT = 16 * 1024;
const TARGET_SEGMENT = 64 * 1024;

/**
 * Signs the content read from `input` and writes a ContentInfo(SignedData) to `output`.
 * Encapsulated output (the default) is indefinite-length BER with the content as
 * OCTET STRING segments; `detached: true` writes a DER signature without content.
 *
 * @example
 * await signStream(createReadStream('big.eml'), createWriteStream('big.p7m'), { signers: [{ certificate, key }] });
 */
export async function signStream(input: Readable | AsyncIterable<Uint8Array>, output: Writable, options: SignStreamOptions): Promise<void> {
  await signToSink(input, writableSink(output, options.end !== false), options);
}

/** One hash per digest algorithm the signers use (RFC 5652 5.4: each signer's messageDigest). */
function startDigests(signers: readonly PreparedSigner[]): Map<DigestName, Hash> {
  const hashes = new Map<DigestName, Hash>();
  for (const s of signers) if (!hashes.has(s.scheme.digest)) hashes.set(s.scheme.digest, createDigest(s.scheme.digest));
  return hashes;
}

function buildSignerInfos(hashes: Map<DigestName, Hash>, signers: readonly PreparedSigner[], contentType: string, now: Date): Buffer[] {
  const digests = new Map<DigestName, Buffer>();
  for (const [name, h] of hashes) digests.set(name, h.digest());
  return signers.map((p) => buildSignerInfo(digests.get(p.scheme.digest)!, p, contentType, now));
}

/** A detached signature computed while the content passes by (the multipart/signed streamers write the content out themselves). */
export interface DetachedSigner {
  update(chunk: Uint8Array): void;
  /** The DER ContentInfo(SignedData) without content, once all content was given. */
  finish(): Buffer;
}

export function createDetachedSigner(options: SignOptions): DetachedSigner {
  const { layout, signers } = layoutSignedData({ ...options, detached: true });
  const now = options.now ?? new Date();
  const hashes = startDigests(signers);
  const hashList = [...hashes.values()];
  return {
    update: (chunk) => {
      for (const h of hashList) h.update(chunk);
    },
    finish: () => encodeSignedData(layout, undefined, buildSignerInfos(hashes, signers, layout.contentType, now)),
  };
}

/** signStream into a ByteSink (the message-level opaque signer's base64 writer, the file helper's owned file). */
export async function signToSink(input: Readable | AsyncIterable<Uint8Array>, output: ByteSink, options: SignOptions): Promise<void> {
  const { layout, signers } = layoutSignedData(options);
  const now = options.now ?? new Date();
  const detached = options.detached === true;
  const hashes = startDigests(signers);
  const hashList = [...hashes.values()];

  const parts = detached ? undefined : encodeSignedDataParts(layout, false);
  if (parts) await output.write(parts.header);

  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    if (pendingBytes === 0) return;
    const body = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    // One primitive OCTET STRING segment (X.690 8.7.3.2): header, then the bytes as received.
    const len = encodeLength(body.length);
    const head = Buffer.allocUnsafe(1 + len.length);
    head[0] = Tag.OCTET_STRING;
    len.copy(head, 1);
    await output.write(head, body);
  };

  for await (const raw of input as AsyncIterable<Uint8Array | string>) {
    const chunk = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
    if (chunk.length === 0) continue;
    for (const h of hashList) h.update(chunk);
    if (!parts) continue;
    if (chunk.length >= MIN_SEGMENT && pendingBytes === 0) {
      pending.push(chunk);
      pendingBytes = chunk.length;
      await flush();
    } else {
      pending.push(Uint8Array.prototype.slice.call(chunk)); // held across reads: copy (the producer may reuse its buffer)
      pendingBytes += chunk.length;
      if (pendingBytes >= TARGET_SEGMENT) await flush();
    }
  }
  await flush();

  const signerInfos = buildSignerInfos(hashes, signers, layout.contentType, now);
  if (parts) await output.write(parts.trailer(signerInfos));
  else await output.write(encodeSignedData(layout, undefined, signerInfos));
  await output.end();
}

/**
 * Signs the file at `inPath` into `outPath`. The output file appears only when
 * signing succeeded (written beside it and renamed into place); on any failure no
 * output file is left behind.
 * It is created mode 0600, as every file Kakitome writes: a signed or encrypted
 * file is someone's data, and signed content travels in the clear.
 */
export async function signFile(inPath: string, outPath: string, options: SignOptions): Promise<void> {
  const out = await AtomicFile.create(outPath);
  try {
    await signToSink(readFileChunks(inPath), fileSink(out), options);
    await out.commit();
  } catch (e) {
    await out.abort();
    throw e;
  }
}
