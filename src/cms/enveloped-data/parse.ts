/**
 * Reading EnvelopedData (RFC 5652 6.1) and AuthEnvelopedData (RFC 5083 2.1) into a
 * model that both the in-memory decryptor and the streaming one (src/cms/stream/)
 * use: the recipients, the content-encryption parameters, where the encrypted
 * content is, and for AuthEnvelopedData the AAD and the mac.
 *
 *   EnvelopedData ::= SEQUENCE { version, originatorInfo [0] IMPLICIT OPTIONAL,
 *     recipientInfos SET OF RecipientInfo, encryptedContentInfo, unprotectedAttrs [1] IMPLICIT OPTIONAL }
 *   AuthEnvelopedData ::= SEQUENCE { version (0), originatorInfo [0] IMPLICIT OPTIONAL,
 *     recipientInfos, authEncryptedContentInfo, authAttrs [1] IMPLICIT OPTIONAL,
 *     mac OCTET STRING, unauthAttrs [2] IMPLICIT OPTIONAL }
 *   EncryptedContentInfo ::= SEQUENCE { contentType, contentEncryptionAlgorithm,
 *     encryptedContent [0] IMPLICIT OCTET STRING OPTIONAL }
 *
 * BER is accepted (indefinite lengths, constructed encryptedContent) because NSS,
 * gpgsm and Bouncy Castle write it; authAttrs must be DER since they are the AAD.
 */
import { Tag, type Tlv, decode, readOctetString, readOid, readSmallInt } from '../../asn1/ber.ts';
import { retag } from '../../asn1/der.ts';
import { OID } from '../../asn1/oids.ts';
import { KakitomeError, malformed } from '../../errors.ts';
import { resolveLimits, type Limits } from '../../limits.ts';
import { parseAlgorithmIdentifier } from '../algorithm-identifier.ts';
import { parseAttributes, singleValue, type Attribute } from '../attributes.ts';
import { toContentInfo, type CmsInput } from '../content-info.ts';
import { parseContentEncryptionAlgorithm, type ContentEncryptionParameters } from '../algorithms/content-encryption.ts';
import { parseRecipientInfo, type ParsedRecipient } from '../recipients/recipient-info.ts';

export interface ParsedEnvelope {
  type: 'envelopedData' | 'authEnvelopedData';
  version: number;
  recipients: ParsedRecipient[];
  /** EncryptedContentInfo.contentType: the type of the plaintext. */
  contentType: string;
  contentEncryption: ContentEncryptionParameters;
  /** The encryptedContent [0] value: primitive (0x80) or constructed BER segments (0xa0); undefined when detached. */
  encryptedContent: Tlv | undefined;
  /** AuthEnvelopedData: the authAttrs re-tagged as a DER SET, which is the AAD (RFC 5083 2.2). */
  aad: Buffer | undefined;
  authAttributes: Map<string, Attribute> | undefined;
  /** AuthEnvelopedData: the message authentication code (AEAD tag). */
  mac: Uint8Array | undefined;
  /** limits.maxKeyAttempts in force when parsing: bounds the private-key operations (recover-content-key.ts). */
  maxKeyAttempts: number;
}

/**
 * Parses the content of a ContentInfo whose contentType is envelopedData or
 * authEnvelopedData (`contentType` says which: the two are not told apart by shape).
 */
export function parseEnvelope(content: Tlv, limits: Partial<Limits> | undefined, contentType: string): ParsedEnvelope {
  const l = resolveLimits(limits);
  const auth = contentType === OID.authEnvelopedData;
  if (!auth && contentType !== OID.envelopedData) malformed(`content type ${contentType} is not EnvelopedData or AuthEnvelopedData`);
  const what = auth ? 'AuthEnvelopedData' : 'EnvelopedData';
  if (content.tag !== Tag.SEQUENCE) malformed(`${what} is not a SEQUENCE`);
  const f = content.fields(what);
  const version = readSmallInt(f.expect(Tag.INTEGER, 'version'), 'version');
  // RFC 5083 2.1: AuthEnvelopedData version is always 0 (RFC 9629 keeps it 0 with ori).
  // RFC 5652 6.1: EnvelopedData is 0, 2, 3 or 4.
  if (auth ? version !== 0 : ![0, 2, 3, 4].includes(version)) malformed(`${what} version ${version}`);
  f.optional(0xa0); // originatorInfo: certificates for static-static key agreement, unused here
  const risT = f.expect(Tag.SET, 'recipientInfos');
  const risItems = risT.children(l.maxRecipients + 1);
  if (risItems.length === 0) malformed(`${what} has no recipientInfos`);
  if (risItems.length > l.maxRecipients) throw new KakitomeError('LIMIT', `${what} has ${risItems.length} recipients; the limit is ${l.maxRecipients}.`);
  const recipients = risItems.map((t, i) => parseRecipientInfo(t, i, l.maxRecipients));
  if (!auth && version === 0 && recipients.some((r) => r.kind !== 'ktri' || r.rid.kind !== 'issuerAndSerialNumber')) malformed('EnvelopedData version 0 with recipients that require version 2 or 3');

  const eci = f.expect(Tag.SEQUENCE, 'encryptedContentInfo').fields('EncryptedContentInfo');
  const innerType = readOid(eci.expect(Tag.OID, 'contentType'), 'contentType');
  const contentEncryption = parseContentEncryptionAlgorithm(parseAlgorithmIdentifier(eci.expect(Tag.SEQUENCE, 'contentEncryptionAlgorithm'), 'contentEncryptionAlgorithm'));
  const encryptedContent = eci.optional(0x80, true);
  eci.end();
  // One reading per input: an AEAD cipher in EnvelopedData would skip the tag, a CBC
  // cipher in AuthEnvelopedData would claim an authentication it does not give.
  if (auth && !contentEncryption.cipher.aead) malformed(`AuthEnvelopedData with the non-AEAD cipher ${contentEncryption.cipher.name}`);
  if (!auth && contentEncryption.cipher.aead) malformed(`EnvelopedData with the AEAD cipher ${contentEncryption.cipher.name} (it belongs in AuthEnvelopedData)`);

  let aad: Buffer | undefined;
  let authAttributes: Map<string, Attribute> | undefined;
  let mac: Uint8Array | undefined;
  if (auth) {
    const aa = f.optional(0xa1);
    if (aa) {
      // RFC 5083 2.2: the AAD is the DER encoding of authAttrs with the SET OF tag. We use
      // the bytes received (re-tagged) and require them to be DER, so no re-encoding can differ.
      aad = retag(aa.bytes, Tag.SET);
      const set = decode(aad, { der: true, maxDepth: l.maxAsn1Depth });
      authAttributes = parseAttributes(set, 'authAttrs', l.maxAttributes);
      const ct = singleValue(authAttributes, OID.contentType, 'content-type attribute');
      if (ct && readOid(ct, 'content-type attribute') !== innerType) throw new KakitomeError('ATTR_INVALID', 'The content-type attribute does not match the encrypted content type.');
    }
    mac = readOctetString(f.expect(Tag.OCTET_STRING, 'mac'), 'mac');
    const ua = f.optional(0xa2);
    if (ua) parseAttributes(ua, 'unauthAttrs', l.maxAttributes);
    // RFC 5083 2.1: authAttrs MUST be present when the content type is not id-data.
    if (innerType !== OID.data && !aa) throw new KakitomeError('ATTR_INVALID', 'AuthEnvelopedData of a non-data content type must carry authenticated attributes (RFC 5083 2.1).');
  } else {
    const ua = f.optional(0xa1);
    if (ua) parseAttributes(ua, 'unprotectedAttrs', l.maxAttributes);
  }
  f.end();
  return { type: auth ? 'authEnvelopedData' : 'envelopedData', version, recipients, contentType: innerType, contentEncryption, encryptedContent, aad, authAttributes, mac, maxKeyAttempts: l.maxKeyAttempts };
}

/** ContentInfo bytes (or a ContentInfo already read) to a ParsedEnvelope (size and depth limits applied). */
export function parseEnvelopeFromContentInfo(input: CmsInput, limits?: Partial<Limits>): ParsedEnvelope {
  const ci = toContentInfo(input, limits);
  if (ci.contentType !== OID.envelopedData && ci.contentType !== OID.authEnvelopedData) {
    malformed(`expected EnvelopedData or AuthEnvelopedData, found content type ${ci.contentType}`);
  }
  return parseEnvelope(ci.content, limits, ci.contentType);
}
