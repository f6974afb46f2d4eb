/**
 * The outermost EnvelopedData/AuthEnvelopedData of a message (DER ContentInfo), so
 * that decrypt can ask the key store for the keys its RecipientInfos name before
 * decrypting. Follows what can wrap an envelope without being decrypted: the content
 * part of multipart/signed and the encapsulated content of an opaque signed-data
 * (RFC 8551 3.7, triple wrapping). Nothing here verifies anything; decryptMessage
 * then opens the message with the keys found and judges every layer.
 */
import { readOctets } from '../asn1/ber.ts';
import { OID } from '../asn1/oids.ts';
import { KakitomeError } from '../errors.ts';
import { resolveLimits } from '../limits.ts';
import { parseContentInfo } from '../cms/content-info.ts';
import { parseSignedData } from '../cms/signed-data/parse.ts';
import { canonicalizeLfOnly } from '../mime/canonicalize-line-breaks.ts';
import { decodeBody } from '../mime/decode-body.ts';
import type { MimeEntity } from '../mime/entity.ts';
import { readContentEntity } from '../mime/read-content-entity.ts';
import { classifyEntity } from './classify-entity.ts';
import { splitMessage } from './split-message.ts';

export function findMessageEnvelope(message: Uint8Array): Buffer | undefined {
  const limits = resolveLimits();
  let current: MimeEntity = splitMessage(message, limits).root;
  for (let depth = 0; depth < limits.maxLayers; depth++) {
    const k = classifyEntity(current);
    if (k.kind === 'multipart-signed') {
      const content = current.children[0];
      if (!content) return undefined;
      current = content;
      continue;
    }
    if (k.kind !== 'pkcs7-mime') return undefined;
    const der = decodeBody(current);
    const ci = parseContentInfo(der, limits);
    if (ci.contentType === OID.envelopedData || ci.contentType === OID.authEnvelopedData) return der;
    if (ci.contentType !== OID.signedData) return undefined;
    const sd = parseSignedData(ci.content, limits);
    if (!sd.eContent || sd.contentType !== OID.data) return undefined;
    current = readContentEntity(canonicalizeLfOnly(Buffer.from(readOctets(sd.eContent, limits.maxSegments))), limits).entity;
  }
  throw new KakitomeError('LIMIT', `More than ${limits.maxLayers} nested S/MIME layers.`);
}
