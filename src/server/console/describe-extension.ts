/**
 * A certificate extension in words an administrator can check against the
 * S/MIME BR profile: its RFC name, whether it is critical, and its value read
 * by the certificate model or by OpenSSL (through node:crypto's X509Certificate);
 * an extension neither reads is shown as the start of its DER in hex.
 */
import { OID, oidName } from '../../asn1/oids.ts';
import { decode, readOid } from '../../asn1/ber.ts';
import type { Certificate } from '../../x509/certificate.ts';

export interface ExtensionFacts {
  name: string;
  critical: boolean;
  value: string;
}

const HEX_SHOWN = 48;

function hexStart(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes.subarray(0, HEX_SHOWN)).toString('hex').replace(/(..)(?!$)/g, '$1:');
  return bytes.length > HEX_SHOWN ? `${hex}…` : hex;
}

/** The policy OIDs of certificatePolicies (qualifiers left out). */
function policies(value: Uint8Array): string {
  return decode(value, { der: true }).children().map((p) => oidName(readOid(p.children()[0]!, 'policyIdentifier'))).join(', ');
}

function describeValue(cert: Certificate, oid: string, value: Uint8Array): string {
  switch (oid) {
    case OID.keyUsage:
      return [...(cert.keyUsage ?? [])].join(', ');
    case OID.extKeyUsage:
      return (cert.extendedKeyUsage ?? []).map(oidName).join(', ');
    case OID.subjectAltName:
      return cert.x509.subjectAltName ?? hexStart(value);
    case OID.subjectKeyIdentifier:
      return hexStart(cert.subjectKeyIdentifier ?? value);
    case OID.basicConstraints:
      return cert.x509.ca ? 'CA' : 'not a CA';
    case OID.authorityInfoAccess:
      return (cert.x509.infoAccess ?? hexStart(value)).replaceAll('\n', '; ').trim();
    case OID.certificatePolicies:
      return policies(value);
    case OID.crlDistributionPoints:
      return (Buffer.from(value).toString('latin1').match(/[a-z]+:\/\/[\x21-\x7e]+/gi) ?? [hexStart(value)]).join(', ');
    default:
      return hexStart(value);
  }
}

export function describeExtensions(cert: Certificate): ExtensionFacts[] {
  return [...cert.extensions].map(([oid, e]) => {
    let value: string;
    try {
      value = describeValue(cert, oid, e.value);
    } catch {
      value = hexStart(e.value); // a value our reader refuses is still shown, as bytes
    }
    return { name: oidName(oid), critical: e.critical, value };
  });
}
