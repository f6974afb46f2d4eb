/**
 * The certificate of an RFC 3161 time-stamping authority (RFC 3161 2.3): its
 * extendedKeyUsage must be critical and name id-kp-timeStamping and nothing else
 * (anyExtendedKeyUsage does not do); its keyUsage, when present, must allow
 * signatures. A certificate for e-mail or for anything else cannot vouch for a time.
 */
import { Tag, decode, readOid } from '../asn1/ber.ts';
import { OID } from '../asn1/oids.ts';
import type { Certificate } from '../x509/certificate.ts';

/** Why `cert` may not sign timestamps, or undefined when it may. */
export function timeStampingUsageProblem(cert: Certificate): string | undefined {
  const who = `The TSA's certificate (${cert.subjectText || cert.serialHex})`;
  const ext = cert.extensions.get(OID.extKeyUsage);
  if (!ext) return `${who} has no extendedKeyUsage; RFC 3161 2.3 requires a critical one naming only id-kp-timeStamping.`;
  if (!ext.critical) return `${who} has a non-critical extendedKeyUsage; RFC 3161 2.3 requires it to be critical.`;
  let purposes: string[];
  try {
    const seq = decode(ext.value, { der: true });
    if (seq.tag !== Tag.SEQUENCE) return `${who} has a malformed extendedKeyUsage.`;
    purposes = seq.children().map((c) => readOid(c, 'KeyPurposeId'));
  } catch {
    return `${who} has a malformed extendedKeyUsage.`;
  }
  if (purposes.length !== 1 || purposes[0] !== OID.timeStamping) {
    return `${who} is not for timestamping: its extendedKeyUsage must name only id-kp-timeStamping (RFC 3161 2.3), and it names ${purposes.join(', ') || 'nothing'}.`;
  }
  const ku = cert.keyUsage;
  if (ku && !ku.has('digitalSignature') && !ku.has('nonRepudiation')) return `${who} may not be used for signatures (keyUsage has neither digitalSignature nor nonRepudiation).`;
  return undefined;
}
