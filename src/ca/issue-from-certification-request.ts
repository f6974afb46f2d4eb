/**
 * `kakitome ca issue --csr FILE`: a mailbox certificate for a key made on the
 * user's own device, from a PKCS#10 request (RFC 2986). The request proves that its
 * maker holds the private key (its self-signature); it decides nothing else. The
 * CA's profile (issue-mailbox-certificate.ts, S/MIME BR mailbox-validated strict)
 * decides the subject, the usages, the extensions and the validity:
 *
 * - taken from the request: the public key, and the mailbox address it names
 *   (subject emailAddress, a subjectAltName rfc822Name or SmtpUTF8Mailbox, RFC 9598),
 *   which must be one address, equal to `email` when one is given (IDENTITY_MISMATCH
 *   otherwise), certified in the profile's form for it (certifiedMailbox: an
 *   SmtpUTF8Mailbox for a non-ASCII local part, in NFC and at most 64 octets, else
 *   an rfc822Name with the domain's A-label; INVALID_ARGUMENT for anything else);
 * - refused: a bad or missing proof of possession (BAD_SIG), SHA-1/MD5 signatures and
 *   RSA below 2048 bits or with an exponent that is not odd and 3 or more (e=1: anyone
 *   can write the self-signature) (WEAK_ALG), RSA above 8192 bits, curves other than
 *   P-256/P-384/P-521 and unknown key types (UNSUPPORTED_ALG), an EdDSA key for
 *   anything but signing (CERT_USAGE), a request for a CA certificate
 *   (basicConstraints cA=TRUE: CERT_USAGE, a mailbox user never asks for that by
 *   accident), several different addresses, or none without `email`;
 * - ignored, and listed in `ignored`: every other requested extension (keyUsage,
 *   extKeyUsage such as serverAuth or codeSigning, anything else: the profile sets
 *   keyUsage by key type and extKeyUsage emailProtection only), other subject
 *   attributes (O, OU, a commonName that is not the address), subjectAltName
 *   entries that are not e-mail addresses.
 *
 * The certificate is recorded in the store as issued by the CA (issued_certificates)
 * and audited as ca.issue, naming the request's SHA-256.
 */
import { decode, Tag, readBoolean, readOid } from '../asn1/ber.ts';
import { OID, oidName } from '../asn1/oids.ts';
import { KakitomeError } from '../errors.ts';
import { normalizeAddress, type Store } from '../store/store.ts';
import { parseCertificationRequest, verifyProofOfPossession, type CertificationRequest } from '../x509/parse-certification-request.ts';
import { issueMailboxCertificate, mailboxKeyUsage, type IssuedCertificate, type MailboxUsage } from './issue-mailbox-certificate.ts';

export interface IssueFromRequestOptions {
  /** The request, PEM or DER. */
  request: Uint8Array;
  /** The mailbox the certificate is for; the request must name it (or no address at all). */
  email?: string;
  usage?: MailboxUsage;
  validityDays?: number;
  caName?: string;
  now?: Date;
}

export interface IssuedFromRequest extends IssuedCertificate {
  /** SHA-256 of the request's DER. */
  requestSha256: string;
  /** What the request asked for that the profile does not give, in words. */
  ignored: string[];
}

const MAX_RSA_BITS = 8192;

export async function issueFromCertificationRequest(store: Store, o: IssueFromRequestOptions): Promise<IssuedFromRequest> {
  const request = parseCertificationRequest(o.request);
  const usage = o.usage ?? 'dual';
  checkKey(request, usage); // first: a key like RSA e=1 makes any "proof" of possession worthless
  verifyProofOfPossession(request);
  refuseCaRequest(request);
  const email = chooseAddress(request, o.email);
  const [issued] = await issueMailboxCertificate(store, {
    email, publicKey: request.publicKey, usage,
    ...(o.validityDays !== undefined ? { validityDays: o.validityDays } : {}),
    ...(o.caName ? { caName: o.caName } : {}),
    ...(o.now ? { now: o.now } : {}),
    requestSha256: request.sha256,
  });
  return { ...issued!, requestSha256: request.sha256, ignored: ignoredParts(request, email) };
}

function checkKey(r: CertificationRequest, usage: MailboxUsage): void {
  const bits = r.publicKey.asymmetricKeyDetails?.modulusLength ?? 0;
  if (r.publicKey.asymmetricKeyType === 'rsa' && bits > MAX_RSA_BITS) throw new KakitomeError('UNSUPPORTED_ALG', `The request's RSA key has ${bits} bits; mailbox certificates are issued for 2048 to ${MAX_RSA_BITS}.`);
  mailboxKeyUsage(r.publicKey, usage);
}

function refuseCaRequest(r: CertificationRequest): void {
  const bc = r.extensions.get(OID.basicConstraints);
  if (!bc) return;
  const first = decode(bc.value, { der: true }).children()[0];
  if (first?.tag === Tag.BOOLEAN && readBoolean(first)) {
    throw new KakitomeError('CERT_USAGE', 'The certification request asks for a CA certificate (basicConstraints cA=TRUE); the CA issues only mailbox certificates. Make the request without it.');
  }
}

function chooseAddress(r: CertificationRequest, given: string | undefined): string {
  const named = [...new Set(r.emails.map(normalizeAddress))];
  if (given !== undefined) {
    const wanted = normalizeAddress(given);
    const other = named.filter((e) => e !== wanted);
    if (other.length) throw new KakitomeError('IDENTITY_MISMATCH', `The certification request names ${other.join(', ')}, not ${given}: nothing was issued. Make the request for ${given}, or give the address it names.`);
    return given.trim();
  }
  if (named.length === 1) return r.emails.find((e) => normalizeAddress(e) === named[0])!.trim();
  throw new KakitomeError('INVALID_ARGUMENT', named.length
    ? `The certification request names several addresses (${named.join(', ')}); a mailbox certificate is for one: name the address it is for.`
    : 'The certification request names no e-mail address: name the mailbox it is for.', { remedy: 'email' });
}

function ignoredParts(r: CertificationRequest, email: string): string[] {
  const out: string[] = [];
  for (const a of r.otherSubjectAttributes) out.push(`subject attribute ${oidName(a)}`);
  for (const cn of r.commonNames) if (normalizeAddress(cn) !== normalizeAddress(email)) out.push(`subject commonName "${cn}"`);
  if (r.otherNames.length) out.push(`${r.otherNames.length} subjectAltName entr${r.otherNames.length === 1 ? 'y' : 'ies'} other than e-mail addresses`);
  for (const [id, ext] of r.extensions) {
    if (id === OID.subjectAltName) continue;
    if (id === OID.extKeyUsage) out.push(`extKeyUsage ${decode(ext.value, { der: true }).children().map((t) => oidName(readOid(t))).join(', ')}`);
    else out.push(`extension ${oidName(id)}${ext.critical ? ' (critical)' : ''}`);
  }
  return out;
}
