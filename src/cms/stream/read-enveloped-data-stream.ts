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
import { BerStreamReader, type Disposition, type StreamHeader } from '../../asn1/ber-stream.ts';
import { decode, readOid, Tag, type Tlv } from '../../asn1/ber.ts';
import { sequence, tlv } from '../../asn1/der.ts';
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

export interface EnvelopeStreamHooks {
  /** Each piece of ciphertext, in order; the bytes are valid only until the promise settles. */
  onCiphertext(chunk: Uint8Array): Promise<void> | void;
  /** EncryptedContentInfo.contentType (the type of the plaintext), before any ciphertext. */
  onEncryptedContentType?(oid: string): void;
}

/**
 * The push form: feed it chunks as they arrive (each is consumed before push()
 * settles, except up to 5 header bytes referenced until the next push), then end().
 */
export class EnvelopedDataStreamReader {
  readonly #limits: Limits;
  readonly #hooks: EnvelopeStreamHooks;
  readonly #reader: BerStreamReader;
  #contentType: string | undefined;
  readonly #outer: Uint8Array[] = []; // envelope fields (the ECI as a placeholder)
  #eciIndex = -1;
  readonly #eci: Uint8Array[] = []; // contentType, contentEncryptionAlgorithm
  #hadContent = false;
  #ciphertextBytes = 0;
  #segments = 0;
  #sawRecipients = false;
  #eciSeen = false;
  #eciFields = 0;
  #outerCount = 0;

  constructor(hooks: EnvelopeStreamHooks, limits?: Partial<Limits>) {
    this.#limits = resolveLimits(limits);
    this.#hooks = hooks;
    this.#reader = new BerStreamReader({ decide: (h) => this.#decide(h), maxValueBytes: MAX_FIELD_BYTES, maxDepth: this.#limits.maxAsn1Depth });
  }

  #decide(h: StreamHeader): Disposition {
    switch (h.depth) {
      case 0:
        if (h.tag !== Tag.SEQUENCE) malformed('ContentInfo is not a SEQUENCE');
        return 'descend';
      case 1:
        // Values arrive after decide() returns: the contentType is checked on 'enter'.
        if (++this.#outerCount === 1 && h.tag === Tag.OID) return 'collect';
        if (this.#outerCount !== 2 || h.tag !== 0xa0) malformed('ContentInfo: expected contentType then [0] content');
        return 'descend';
      case 2:
        if (h.tag !== Tag.SEQUENCE) malformed('EnvelopedData is not a SEQUENCE');
        return 'descend';
      case 3:
        // The first SEQUENCE after recipientInfos is the (auth)EncryptedContentInfo.
        if (h.tag === Tag.SET) this.#sawRecipients = true;
        if (h.tag === Tag.SEQUENCE && this.#sawRecipients && !this.#eciSeen) {
          this.#eciSeen = true;
          return 'descend';
        }
        return 'collect';
      case 4:
        if (++this.#eciFields <= 2) return 'collect';
        if (this.#hadContent) malformed('EncryptedContentInfo: unexpected field after encryptedContent');
        this.#hadContent = true;
        if (h.tag === 0x80) return this.#countSegment();
        if (h.tag === 0xa0) return 'descend';
        return malformed('EncryptedContentInfo: encryptedContent is not [0] IMPLICIT OCTET STRING');
      default:
        // Segments of a constructed encryptedContent: OCTET STRINGs (X.690 8.7.3.2).
        if (h.path[4] !== 0xa0) malformed('unexpected nesting in EnvelopedData');
        if (h.tag === Tag.OCTET_STRING) return this.#countSegment();
        if (h.tag === (Tag.OCTET_STRING | 0x20)) return 'descend';
        return malformed('segment of encryptedContent is not an OCTET STRING');
    }
  }

  #countSegment(): Disposition {
    if (++this.#segments > this.#limits.maxSegments) throw new KakitomeError('LIMIT', `More than ${this.#limits.maxSegments} OCTET STRING segments.`);
    return 'stream';
  }

  async push(chunk: Uint8Array): Promise<void> {
    for (const e of this.#reader.push(chunk)) {
      if (e.kind === 'value') {
        if (e.depth === 1) this.#contentType = readOid(e.tlv, 'contentType');
        else if (e.depth === 3) this.#outer.push(e.bytes);
        else if (e.depth === 4) {
          if (this.#eci.length === 0 && this.#hooks.onEncryptedContentType) this.#hooks.onEncryptedContentType(readOid(e.tlv, 'contentType'));
          this.#eci.push(e.bytes);
        }
      } else if (e.kind === 'enter' && e.depth === 1) {
        if (this.#contentType !== OID.envelopedData && this.#contentType !== OID.authEnvelopedData) {
          throw new KakitomeError('MALFORMED', `Expected EnvelopedData or AuthEnvelopedData, found content type ${this.#contentType}.`);
        }
      } else if (e.kind === 'enter' && e.depth === 3) {
        this.#eciIndex = this.#outer.length;
        this.#outer.push(new Uint8Array(0));
      } else if (e.kind === 'data') {
        this.#ciphertextBytes += e.bytes.length;
        await this.#hooks.onCiphertext(e.bytes);
      }
    }
  }

  end(): EnvelopeStreamParts {
    this.#reader.end();
    const contentType = this.#contentType;
    if (contentType === undefined || this.#eciIndex < 0 || this.#eci.length !== 2) malformed('EnvelopedData is incomplete');
    this.#outer[this.#eciIndex] = sequence(...this.#eci);
    const envelope = sequence(...this.#outer);
    const contentInfo = encodeContentInfo(contentType, envelope);
    const withoutContent = decode(envelope, { maxDepth: this.#limits.maxAsn1Depth });
    return { contentType, withoutContent, contentInfo, hadContent: this.#hadContent, ciphertextBytes: this.#ciphertextBytes };
  }

  /**
   * After end(): the ContentInfo again, with `ciphertext` as a primitive
   * encryptedContent (for readers that fall back to the in-memory decryptor).
   */
  withContent(ciphertext: Uint8Array): Buffer {
    const outer = [...this.#outer];
    outer[this.#eciIndex] = sequence(...this.#eci, tlv(0x80, ciphertext));
    return encodeContentInfo(this.#contentType!, sequence(...outer));
  }
}

export async function readEnvelopedDataStream(
  input: AsyncIterable<Uint8Array> | Readable,
  onCiphertext: (chunk: Uint8Array) => Promise<void> | void,
  limits?: Partial<Limits>,
): Promise<EnvelopeStreamParts> {
  const reader = new EnvelopedDataStreamReader({ onCiphertext }, limits);
  for await (const chunk of input as AsyncIterable<Uint8Array>) await reader.push(chunk);
  return reader.end();
}
