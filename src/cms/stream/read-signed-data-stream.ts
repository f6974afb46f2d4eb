/**
 * Reads a ContentInfo/SignedData arriving as a stream (RFC 5652 3, 5.1, 5.2) with
 * bounded memory: the small fields are collected, the encapsulated content OCTET
 * STRING (primitive or segmented, definite or indefinite) is passed chunk by chunk to
 * `onContent`, and the fields after it (certificates, crls, signerInfos) are
 * collected again. The result is the SignedData re-assembled without its eContent,
 * byte for byte from the fields received, so the in-memory parser
 * (signed-data/parse.ts) applies the same strictness to it. Nothing covered by a
 * signature is re-encoded: signatures cover signedAttrs, which are kept as received.
 */
import type { Readable } from 'node:stream';
import { BerStreamReader, type BerEvent, type Disposition, type StreamHeader } from '../../asn1/ber-stream.ts';
import { decode, readOid, Tag, type Tlv } from '../../asn1/ber.ts';
import { sequence } from '../../asn1/der.ts';
import { OID } from '../../asn1/oids.ts';
import { KakitomeError, malformed } from '../../errors.ts';
import { resolveLimits, type Limits } from '../../limits.ts';
import { parseAlgorithmIdentifier, type AlgorithmIdentifier } from '../algorithm-identifier.ts';

export interface SignedDataStreamParts {
  /** The SignedData SEQUENCE without eContent (what parseSignedData reads). */
  detachedForm: Tlv;
  /** True when the input carried eContent (encapsulated content). */
  hadContent: boolean;
  /** Bytes of content delivered to onContent. */
  contentBytes: number;
}

export interface SignedDataStreamHooks {
  /** Called with SignedData.digestAlgorithms before any content (RFC 5652 5.1: listed for one-pass processing). */
  onDigestAlgorithms(algorithms: AlgorithmIdentifier[]): void;
  /** Each piece of the content, in order; the buffer is valid only during the call. */
  onContent(chunk: Uint8Array): Promise<void> | void;
}

/** Largest single field buffered while streaming (certificates, signerInfos). */
const MAX_FIELD_BYTES = 16 * 1024 * 1024;

export async function readSignedDataStream(input: AsyncIterable<Uint8Array> | Readable, hooks: SignedDataStreamHooks, limits?: Partial<Limits>): Promise<SignedDataStreamParts> {
  const l = resolveLimits(limits);
  // Fields at SignedData level, in order, as original encodings.
  const fields: { tag: number; bytes: Uint8Array }[] = [];
  let contentType: string | undefined;
  let eContentType: Uint8Array | undefined;
  let hadContent = false;
  let contentBytes = 0;
  let segments = 0;
  let encapFieldCount = 0;
  let outerCount = 0;
  let signedDataCount = 0;
  let eContentStrings = 0;

  const decide = (h: StreamHeader): Disposition => {
    const p = h.path;
    switch (h.depth) {
      case 0:
        if (h.tag !== Tag.SEQUENCE) malformed('ContentInfo is not a SEQUENCE');
        return 'descend';
      case 1:
        // Values arrive after decide() returns: the contentType is checked on 'enter'.
        if (++outerCount === 1 && h.tag === Tag.OID) return 'collect';
        if (outerCount !== 2 || h.tag !== 0xa0) malformed('ContentInfo: expected contentType then [0] content');
        return 'descend';
      case 2:
        if (h.tag !== Tag.SEQUENCE) malformed('SignedData is not a SEQUENCE');
        return 'descend';
      case 3:
        // The encapsulated content's SEQUENCE is the third field; descend to stream it.
        if (++signedDataCount === 3 && h.tag === Tag.SEQUENCE) return 'descend';
        return 'collect';
      case 4:
        encapFieldCount++;
        if (encapFieldCount === 1) {
          if (h.tag !== Tag.OID) malformed('EncapsulatedContentInfo: eContentType is not an OID');
          return 'collect';
        }
        if (encapFieldCount === 2 && h.tag === 0xa0) {
          hadContent = true;
          return 'descend';
        }
        return malformed('EncapsulatedContentInfo: unexpected field');
      default: {
        // Inside eContent [0]: exactly one OCTET STRING, possibly segmented (X.690 8.7.3).
        if (p[4] !== 0xa0 || p[3] !== Tag.SEQUENCE) malformed('unexpected nesting in SignedData');
        if (h.depth === 5 && eContentStrings++ > 0) malformed('eContent [0] must hold exactly one OCTET STRING');
        if (h.tag === Tag.OCTET_STRING) {
          if (++segments > l.maxSegments) throw new KakitomeError('LIMIT', `More than ${l.maxSegments} OCTET STRING segments.`);
          return 'stream';
        }
        if (h.tag === (Tag.OCTET_STRING | 0x20)) return 'descend';
        return malformed('eContent is not an OCTET STRING');
      }
    }
  };

  const reader = new BerStreamReader({ decide, maxValueBytes: MAX_FIELD_BYTES, maxDepth: l.maxAsn1Depth });
  let digestsAnnounced = false;

  const handle = async (events: BerEvent[]) => {
    for (const e of events) {
      if (e.kind === 'value') {
        if (e.depth === 1) contentType = readOid(e.tlv, 'contentType');
        else if (e.depth === 3) {
          fields.push({ tag: e.tag, bytes: e.bytes });
          if (fields.length === 2) {
            if (e.tag !== Tag.SET) malformed('SignedData: digestAlgorithms is not a SET');
            const kids = e.tlv.children();
            if (kids.length > l.maxSigners * 2) throw new KakitomeError('LIMIT', `More than ${l.maxSigners * 2} digest algorithms.`);
            hooks.onDigestAlgorithms(kids.map((k) => parseAlgorithmIdentifier(k, 'digestAlgorithm')));
            digestsAnnounced = true;
          }
        } else if (e.depth === 4) eContentType = e.bytes;
      } else if (e.kind === 'enter' && e.depth === 1) {
        if (contentType !== OID.signedData) throw new KakitomeError('MALFORMED', `Expected SignedData, found content type ${contentType}.`);
      } else if (e.kind === 'enter' && e.depth === 3) {
        if (fields.length !== 2 || !digestsAnnounced) malformed('SignedData: fields out of order');
        fields.push({ tag: Tag.SEQUENCE, bytes: new Uint8Array(0) }); // placeholder for encapContentInfo
      } else if (e.kind === 'data') {
        contentBytes += e.bytes.length;
        await hooks.onContent(e.bytes);
      }
    }
  };

  for await (const chunk of input as AsyncIterable<Uint8Array>) {
    await handle(reader.push(chunk));
  }
  reader.end();

  if (contentType === undefined || fields.length < 4) malformed('SignedData is incomplete');
  if (!eContentType) malformed('EncapsulatedContentInfo has no eContentType');
  // RFC 5652 5.2: eContent [0] EXPLICIT OCTET STRING: present means exactly one string (possibly empty).
  if (hadContent && eContentStrings !== 1) malformed('eContent [0] must hold exactly one OCTET STRING');
  // Re-assemble: version, digestAlgorithms, encapContentInfo { eContentType }, rest as received.
  const parts = fields.map((f, i) => (i === 2 ? sequence(eContentType!) : f.bytes));
  const detachedForm = decode(sequence(...parts), { maxDepth: l.maxAsn1Depth });
  return { detachedForm, hadContent, contentBytes };
}
