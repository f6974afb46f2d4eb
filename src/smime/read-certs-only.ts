/**
 * Certificates from a certs-only message (RFC 8551 section 3.6): a SignedData with
 * no signers and no content, used to send certificates. It proves nothing about
 * anyone, so it is reported as a structure, never as a signature.
 */
import { decode, Tag } from '../asn1/ber.ts';
import { OID } from '../asn1/oids.ts';
import { malformed } from '../errors.ts';
import { toContentInfo, type CmsInput } from '../cms/content-info.ts';
import { resolveLimits, type Limits } from '../limits.ts';
import { Certificate } from '../x509/certificate.ts';

export function readCertsOnly(input: CmsInput, limits?: Partial<Limits>): Certificate[] {
  const l = resolveLimits(limits);
  const ci = toContentInfo(input, l);
  if (ci.contentType !== OID.signedData) malformed('certs-only is not a SignedData');
  const f = ci.content.fields('SignedData');
  f.expect(Tag.INTEGER, 'version');
  f.expect(Tag.SET, 'digestAlgorithms');
  f.expect(Tag.SEQUENCE, 'encapContentInfo');
  const certs = f.optional(0xa0);
  f.optional(0xa1);
  const signerInfos = f.expect(Tag.SET, 'signerInfos');
  f.end();
  if (signerInfos.children().length !== 0) malformed('certs-only SignedData has signers');
  const list = certs ? certs.children() : [];
  if (list.length > l.maxCertificates) malformed(`more than ${l.maxCertificates} certificates`);
  // Other CertificateChoices (attribute certificates, [0]..[3]) are skipped: only X.509 certificates are reported.
  return list.filter((t) => t.tag === Tag.SEQUENCE).map((t) => Certificate.fromDer(decode(t.bytes, { der: false }).bytes));
}
