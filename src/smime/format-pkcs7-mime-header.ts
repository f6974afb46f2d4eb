/**
 * The header section of a streamed application/pkcs7-mime message (RFC 8551
 * section 3.2): the outer message fields, MIME-Version, the Content-Type with its
 * smime-type, base64 transfer encoding and the smime.p7m file name (section 3.2.1),
 * then the blank line. The body (base64 of the CMS object) follows as it is produced.
 */
import { formatHeaderField } from '../mime/build-entity.ts';

export function formatPkcs7MimeHeader(outerHeader: Buffer, smimeType: 'signed-data' | 'enveloped-data' | 'authEnveloped-data'): Buffer {
  return Buffer.concat([
    outerHeader,
    formatHeaderField('MIME-Version', '1.0'),
    formatHeaderField('Content-Type', `application/pkcs7-mime; smime-type=${smimeType}; name=smime.p7m`),
    formatHeaderField('Content-Transfer-Encoding', 'base64'),
    formatHeaderField('Content-Disposition', 'attachment; filename=smime.p7m'),
    Buffer.from('\r\n'),
  ]);
}
