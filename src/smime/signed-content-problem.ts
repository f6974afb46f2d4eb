/**
 * What a signature on mail may sign (issue 9 item 6). RFC 8551 sections 3.1 and
 * 3.5.3: the signed content of an S/MIME message is a MIME entity, encapsulated as
 * id-data (RFC 5652 section 4); an opaque signature may also wrap another CMS
 * layer (RFC 3274 section 1.1, triple wrapping without a MIME wrapper). Anything
 * else (an RFC 3161 timestamp token, an RFC 2634 receipt, content of any other
 * type) was signed for another purpose, and a signature for one purpose must not
 * be accepted as a signature on a message: the verdict is 'invalid' with MALFORMED.
 */
import { OID } from '../asn1/oids.ts';
import type { ErrorCode } from '../errors.ts';

/** Content types that are not messages, named for the verdict. */
const KNOWN: Record<string, string> = {
  '1.2.840.113549.1.9.16.1.4': 'an RFC 3161 timestamp token (id-ct-TSTInfo)',
  '1.2.840.113549.1.9.16.1.1': 'an RFC 2634 signed receipt (id-ct-receipt)',
  '1.2.840.113549.1.9.16.1.2': 'authenticated data (id-ct-authData)',
  [OID.digestedData]: 'digested data (id-digestedData)',
  [OID.encryptedData]: 'encrypted data (id-encryptedData)',
};

/** CMS layers an opaque signature may wrap directly. */
const NESTED_CMS = new Set<string>([OID.signedData, OID.envelopedData, OID.authEnvelopedData, OID.compressedData]);

/**
 * Why content of type `contentType` signed in `form` is not a message, or undefined
 * when it is one.
 */
export function signedContentProblem(contentType: string, form: 'detached' | 'opaque'): { code: ErrorCode; message: string } | undefined {
  if (contentType === OID.data) return undefined;
  if (form === 'opaque' && NESTED_CMS.has(contentType)) return undefined;
  const what = KNOWN[contentType] ?? `content of type ${contentType}`;
  return {
    code: 'MALFORMED',
    message: `The signed content is ${what}, not a message (id-data, RFC 8551 section 3.1): a signature made for another purpose is not accepted as a signature on mail.`,
  };
}
