/**
 * CompressedData (RFC 3274) with zlib (id-alg-zlibCompress, RFC 1950 format):
 *   CompressedData ::= SEQUENCE { version CMSVersion (0),
 *     compressionAlgorithm CompressionAlgorithmIdentifier, encapContentInfo EncapsulatedContentInfo }
 *
 * Decompression is bounded: zlib's convenience call with maxOutputLength inflates
 * chunk by chunk and stops as soon as the output would pass the bound, so a
 * compression bomb costs at most the bound in memory. The bound is a budget for
 * one message (limits.maxDecompressedBytes, 64 MiB by default), shared by all its
 * CompressedData layers: zlib inflates at most about 1032:1, but a compressed run
 * of zeros is itself regular enough to compress again, so nested layers multiply
 * the ratios (two layers took 1.2 KB to 255 MiB when each layer had its own bound).
 */
import { deflateSync, inflateSync } from 'node:zlib';
import { Tag, readOid, readSmallInt, collectSegments } from '../asn1/ber.ts';
import { sequence, integer, oid, explicit, octetString } from '../asn1/der.ts';
import { OID } from '../asn1/oids.ts';
import { KakitomeError, malformed } from '../errors.ts';
import { resolveLimits, type Limits } from '../limits.ts';
import { encodeAlgorithmIdentifier, hasNoParameters, parseAlgorithmIdentifier } from './algorithm-identifier.ts';
import { encodeContentInfo, toContentInfo, type CmsInput } from './content-info.ts';

/** Compresses `content` into a DER ContentInfo holding CompressedData. */
export function compressData(content: Uint8Array, options: { contentType?: string } = {}): Buffer {
  const compressed = deflateSync(content);
  const eci = sequence(oid(options.contentType ?? OID.data), explicit(0, octetString(compressed)));
  // RFC 3274 1.1: version 0; RFC 3274 2: id-alg-zlibCompress with absent parameters.
  return encodeContentInfo(OID.compressedData, sequence(integer(0), encodeAlgorithmIdentifier(OID.zlibCompress), eci));
}

/** What is left of one message's decompression budget; each layer decompressed takes its output's size from it. */
export interface DecompressionBudget {
  remaining: number;
}

/** A fresh budget of limits.maxDecompressedBytes, for one message. */
export function decompressionBudget(limits?: Partial<Limits>): DecompressionBudget {
  return { remaining: resolveLimits(limits).maxDecompressedBytes };
}

export interface DecompressOptions {
  limits?: Partial<Limits>;
  /** Shared by every layer of one message (openMessage passes one); default: a fresh limits.maxDecompressedBytes. */
  budget?: DecompressionBudget;
}

/**
 * Decompresses a ContentInfo holding CompressedData (bytes, or one already read).
 * Output past the budget's remainder fails with LIMIT, before more is inflated.
 */
export function decompressData(input: CmsInput, options: DecompressOptions = {}): { content: Buffer; contentType: string } {
  const l = resolveLimits(options.limits);
  const budget = options.budget ?? decompressionBudget(l);
  const ci = toContentInfo(input, options.limits);
  if (ci.contentType !== OID.compressedData) malformed(`expected CompressedData, found content type ${ci.contentType}`);
  if (ci.content.tag !== Tag.SEQUENCE) malformed('CompressedData is not a SEQUENCE');
  const f = ci.content.fields('CompressedData');
  const version = readSmallInt(f.expect(Tag.INTEGER, 'version'), 'version');
  if (version !== 0) malformed(`CompressedData version ${version} (must be 0)`);
  const alg = parseAlgorithmIdentifier(f.expect(Tag.SEQUENCE, 'compressionAlgorithm'), 'compressionAlgorithm');
  if (alg.oid !== OID.zlibCompress) throw new KakitomeError('UNSUPPORTED_ALG', `Compression algorithm ${alg.oid} is not supported (zlib only).`);
  // QUIRK: RFC 3274 says parameters are absent; some writers put NULL.
  if (!hasNoParameters(alg)) malformed('zlib compression must not carry parameters');
  const eci = f.expect(Tag.SEQUENCE, 'encapContentInfo').fields('EncapsulatedContentInfo');
  const contentType = readOid(eci.expect(Tag.OID, 'eContentType'), 'eContentType');
  const wrapper = eci.optional(0xa0);
  eci.end();
  f.end();
  // Compressed content is never detached: there is nothing else it could refer to.
  if (!wrapper) malformed('CompressedData without eContent');
  const inner = wrapper.children();
  if (inner.length !== 1 || inner[0]!.baseTag !== Tag.OCTET_STRING) malformed('eContent must hold one OCTET STRING');
  const parts: Uint8Array[] = [];
  collectSegments(inner[0]!, parts, l.maxSegments);
  const compressed = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  const tooLarge = () => new KakitomeError('LIMIT', `Decompressed content exceeds the ${l.maxDecompressedBytes}-byte decompression budget of the message (all CompressedData layers together).`);
  let content: Buffer;
  try {
    // maxOutputLength must be at least 1: an exhausted budget still refuses any output below.
    content = inflateSync(compressed, { maxOutputLength: Math.max(1, budget.remaining) });
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge();
    malformed('the zlib stream is damaged');
  }
  if (content.length > budget.remaining) throw tooLarge();
  budget.remaining -= content.length;
  return { content, contentType };
}
