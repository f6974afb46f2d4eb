/**
 * Reads a ContentInfo holding EnvelopedData (RFC 5652 6.1) or AuthEnvelopedData
 * (RFC 5083 2.1) arriving as a stream, with bounded memory: the fields are
 * collected, the encryptedContent ([0] IMPLICIT OCTET STRING, primitive or
 * segmented) is passed chunk by chunk to `onCiphertext`. The result is the envelope
 * re-assembled without its encryptedContent, from the field encodings received, so
 * the in-memory envelope parser applies the same strictness to it.
 *
 *   EnvelopedData ::= SEQUENCE { version, originatorInfo [0] IMPLICIT OPTIONAL,
 *     recipientInfos SET, encryptedContentInfo, unprotectedAttrs [1] IMPLICIT OPTIONAL }
 *   AuthEnvelopedData ::= SEQUENCE { version, originatorInfo [0] IMPLICIT OPTIONAL,
 *     recipientInfos SET, authEncryptedContentInfo, authAttrs [1] IMPLICIT OPTIONAL,
 *     mac OCTET STRING, unauthAttrs [2] IMPLICIT OPTIONAL }
 *   EncryptedContentInfo ::= SEQUENCE { contentType, contentEncryptionAlgorithm,
 *     encryptedContent [0] IMPLICIT OCTET STRING OPTIONAL }
 */
import type { Readable } from 'node:stream';
import { BerStreamReader, type BerEvent, type Disposition, type StreamHeader } from '../../asn1/ber-stream.ts';
import { decode, readOid, Tag, type Tlv } from '../../asn1/ber.ts';
import { sequence } from '../../asn1/der.ts';
import { encodeContentInfo } from '../content-info.ts';
import { OID } from '../../asn1/oids.ts';
import { KakitomeError, malformed } from '../../errors.ts';
import { resolveLimits, type Limits } from '../../limits.ts';

export interface EnvelopeStreamParts {
  /** OID.envelopedData or OID.authEnvelopedData. */
  contentType: string;
  /** The envelope SEQUENCE re-assembled with encryptedContent omitted. */
  withoutContent: Tlv;
  /** The whole ContentInfo re-assembled with encryptedContent omitted. */
  contentInfo: Uint8Array;
  /** True when encryptedContent was present. */
  hadContent: boolean;
  ciphertextBytes: number;
}

const MAX_FIELD_BYTES = 16 * 1024 * 1024;

export async function readEnvelopedDataStream(
  input: AsyncIterable<Uint8Array> | Readable,
  onCiphertext: (chunk: Uint8Array) => Promise<void> | void,
  limits?: Partial<Limits>,
): Promise<EnvelopeStreamParts> {
  const l = resolveLimits(limits);
  let contentType: string | undefined;
  const outer: Uint8Array[] = []; // envelope fields (the ECI as a placeholder)
  let eciIndex = -1;
  const eci: Uint8Array[] = []; // contentType, contentEncryptionAlgorithm
  let hadContent = false;
  let ciphertextBytes = 0;
  let segments = 0;
  let sawRecipients = false;
  let eciSeen = false;
  let eciFields = 0;
  let outerCount = 0;

  const decide = (h: StreamHeader): Disposition => {
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
        if (h.tag !== Tag.SEQUENCE) malformed('EnvelopedData is not a SEQUENCE');
        return 'descend';
      case 3:
        // The first SEQUENCE after recipientInfos is the (auth)EncryptedContentInfo.
        if (h.tag === Tag.SET) sawRecipients = true;
        if (h.tag === Tag.SEQUENCE && sawRecipients && !eciSeen) {
          eciSeen = true;
          return 'descend';
        }
        return 'collect';
      case 4:
        if (++eciFields <= 2) return 'collect';
        if (hadContent) malformed('EncryptedContentInfo: unexpected field after encryptedContent');
        hadContent = true;
        if (h.tag === 0x80) return countSegment();
        if (h.tag === 0xa0) return 'descend';
        return malformed('EncryptedContentInfo: encryptedContent is not [0] IMPLICIT OCTET STRING');
      default:
        // Segments of a constructed encryptedContent: OCTET STRINGs (X.690 8.7.3.2).
        if (h.path[4] !== 0xa0) malformed('unexpected nesting in EnvelopedData');
        if (h.tag === Tag.OCTET_STRING) return countSegment();
        if (h.tag === (Tag.OCTET_STRING | 0x20)) return 'descend';
        return malformed('segment of encryptedContent is not an OCTET STRING');
    }
  };
  function countSegment(): Disposition {
    if (++segments > l.maxSegments) throw new KakitomeError('LIMIT', `More than ${l.maxSegments} OCTET STRING segments.`);
    return 'stream';
  }

  const reader = new BerStreamReader({ decide, maxValueBytes: MAX_FIELD_BYTES, maxDepth: l.maxAsn1Depth });
  const handle = async (events: BerEvent[]) => {
    for (const e of events) {
      if (e.kind === 'value') {
        if (e.depth === 1) contentType = readOid(e.tlv, 'contentType');
        else if (e.depth === 3) outer.push(e.bytes);
        else if (e.depth === 4) eci.push(e.bytes);
      } else if (e.kind === 'enter' && e.depth === 1) {
        if (contentType !== OID.envelopedData && contentType !== OID.authEnvelopedData) {
          throw new KakitomeError('MALFORMED', `Expected EnvelopedData or AuthEnvelopedData, found content type ${contentType}.`);
        }
      } else if (e.kind === 'enter' && e.depth === 3) {
        eciIndex = outer.length;
        outer.push(new Uint8Array(0));
      } else if (e.kind === 'data') {
        ciphertextBytes += e.bytes.length;
        await onCiphertext(e.bytes);
      }
    }
  };
  for await (const chunk of input as AsyncIterable<Uint8Array>) await handle(reader.push(chunk));
  reader.end();

  if (contentType === undefined || eciIndex < 0 || eci.length !== 2) malformed('EnvelopedData is incomplete');
  outer[eciIndex] = sequence(...eci);
  const envelope = sequence(...outer);
  const contentInfo = encodeContentInfo(contentType, envelope);
  const withoutContent = decode(envelope, { maxDepth: l.maxAsn1Depth });
  return { contentType, withoutContent, contentInfo, hadContent, ciphertextBytes };
}
