/**
 * Recognises S/MIME entities (RFC 8551 section 3.2, RFC 1847 section 2.1),
 * including the forms still in use: application/x-pkcs7-mime and
 * x-pkcs7-signature (RFC 2311, Outlook, `openssl smime`), a multipart/signed with
 * a missing or unusual protocol parameter (flagged, never silently trusted), and
 * application/octet-stream named *.p7m (RFC 8551 section 3.2.2 advises receivers to
 * accept it).
 */
import type { MimeEntity } from '../mime/entity.ts';

const SIGNATURE_TYPES = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature']);
const PKCS7_MIME_TYPES = new Set(['application/pkcs7-mime', 'application/x-pkcs7-mime']);

export type SmimeEntityKind =
  | { kind: 'multipart-signed'; protocol: string | undefined; warnings: string[] }
  | { kind: 'pkcs7-mime'; smimeType: string | undefined; warnings: string[] }
  /** A multipart/signed of another protocol (PGP/MIME...): not ours to verify. */
  | { kind: 'foreign-signed'; protocol: string }
  | { kind: 'none' };

function fileName(entity: MimeEntity): string | undefined {
  const name = entity.contentType.params.name;
  if (name) return name.toLowerCase();
  const cd = entity.headers.find((h) => h.name.toLowerCase() === 'content-disposition');
  const m = cd ? /filename\*?=\s*"?([^";]+)"?/i.exec(cd.value) : null;
  return m?.[1]?.toLowerCase();
}

export function classifyEntity(entity: MimeEntity): SmimeEntityKind {
  const ct = entity.contentType;
  if (ct.mediaType === 'multipart/signed') {
    const protocol = ct.params.protocol?.toLowerCase();
    const warnings: string[] = [];
    if (protocol === 'application/x-pkcs7-signature') warnings.push('Legacy protocol parameter application/x-pkcs7-signature (RFC 2311); accepted.');
    else if (protocol === undefined) {
      // QUIRK: some gateways drop the protocol parameter; recognise S/MIME by the second part, and flag it.
      const sig = entity.children[1];
      if (!sig || !SIGNATURE_TYPES.has(sig.contentType.mediaType)) return { kind: 'none' };
      warnings.push('multipart/signed has no protocol parameter (RFC 1847 section 2.1 requires it); recognised by its signature part.');
    } else if (protocol !== 'application/pkcs7-signature') {
      const sig = entity.children[1];
      if (!sig || !SIGNATURE_TYPES.has(sig.contentType.mediaType)) return { kind: 'foreign-signed', protocol };
      warnings.push(`multipart/signed protocol "${protocol}" does not match its S/MIME signature part.`);
    }
    return { kind: 'multipart-signed', protocol, warnings };
  }
  if (PKCS7_MIME_TYPES.has(ct.mediaType)) {
    const warnings: string[] = [];
    if (ct.mediaType.startsWith('application/x-')) warnings.push(`Legacy media type ${ct.mediaType} (RFC 2311); accepted.`);
    return { kind: 'pkcs7-mime', smimeType: ct.params['smime-type']?.toLowerCase(), warnings };
  }
  if (ct.mediaType === 'application/octet-stream') {
    const name = fileName(entity);
    if (name && /\.p7[mcz]$/.test(name)) {
      // QUIRK: RFC 8551 section 3.2.2: receivers should treat octet-stream *.p7m like application/pkcs7-mime.
      return { kind: 'pkcs7-mime', smimeType: undefined, warnings: [`application/octet-stream named ${name} read as application/pkcs7-mime.`] };
    }
  }
  return { kind: 'none' };
}
