/**
 * Path validation (RFC 5280 6.1) of one candidate path for S/MIME (RFC 8550 4),
 * at a given time. Signatures of the links were verified during building; this
 * checks everything else, from the anchor down:
 *   - validity of every certificate at the chosen clock (6.1.3 (a)(2));
 *   - extensions this validator reads that cannot be decoded (MALFORMED, naming the
 *     certificate and the extension), then unknown critical extensions (6.1.4 (o), 6.1.5 (f));
 *   - basicConstraints cA and pathLenConstraint, keyCertSign (6.1.4 (k)-(n));
 *   - name constraints on rfc822Name/SmtpUTF8Mailbox/emailAddress and directoryName
 *     (6.1.3 (b)-(c)), applied from the anchor too (RFC 5937 allows it; stricter);
 *   - the signer's keyUsage (RFC 8550 4.4.2) and extendedKeyUsage (RFC 8550 4.4.4),
 *     and, as Mozilla and Microsoft do, EKU in CA certificates as a constraint
 *     (which must name the purpose: anyExtendedKeyUsage alone does not);
 *   - certificate policies: the policy tree with mappings, inhibitAnyPolicy and
 *     policyConstraints (6.1.3 (d)-(f), 6.1.4 (a)-(b), (h)-(j), 6.1.5), in
 *     process-certificate-policies.ts;
 *   - the algorithm policy on every certificate.
 * Revocation is checked afterwards (check-revocation.ts), on the validated path.
 */
import type { Certificate } from '../x509/certificate.ts';
import { keyManagementBit } from '../x509/key-management-usage.ts';
import type { ErrorCode } from '../errors.ts';
import { OID } from '../asn1/oids.ts';
import { PKI_OID, readBasicConstraints, readExtKeyUsage, readNameConstraints, unreadableExtension, type NameConstraints } from './read-certificate-extensions.ts';
import { readSubjectAltNames, readSubjectEmailAddresses } from '../x509/certificate-mailboxes.ts';
import { checkNameConstraints } from './match-name-constraints.ts';
import { judgeCertificateAlgorithms, type AlgorithmPolicy } from './algorithm-policy.ts';
import { processCertificatePolicies, type PolicyProcessingOptions } from './process-certificate-policies.ts';
import { timeStampingUsageProblem } from './check-timestamping-usage.ts';

/** Extensions this validator processes or that carry no constraint on the path. */
const UNDERSTOOD_EXTENSIONS = new Set<string>([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.nameConstraints,
  // Certificate policies: process-certificate-policies.ts (RFC 5280 6.1 policy tree).
  OID.certificatePolicies,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
  OID.crlDistributionPoints,
  OID.authorityInfoAccess,
  PKI_OID.freshestCrl,
  PKI_OID.issuerAltName,
  // RFC 5280 4.2.1.11 and 4.2.1.14 require these to be critical.
  PKI_OID.policyConstraints,
  PKI_OID.inhibitAnyPolicy,
  PKI_OID.policyMappings,
]);

export interface PathValidationResult {
  ok: boolean;
  code?: ErrorCode;
  message: string;
  warnings: string[];
  /** Legacy algorithms (SHA-1, short RSA keys) the policy accepted on a valid path, as facts; `warnings` has them with the decision. */
  legacy?: string[];
}

export interface PathValidationOptions {
  time: Date;
  /** 'timestamping': the path of an RFC 3161 TSA's certificate (check-timestamping-usage.ts). */
  /** 'crl-signing': the path of an indirect CRL issuer (RFC 5280 6.3.3 (f)): keyUsage cRLSign, no S/MIME usage rules. */
  usage: 'signing' | 'encryption' | 'timestamping' | 'crl-signing';
  policy: AlgorithmPolicy;
  /** The RFC 5280 6.1.1 policy inputs (default: any policy, nothing required or inhibited). */
  certificatePolicies?: PolicyProcessingOptions;
}

/**
 * What validation reads of a trust anchor (trusted by configuration: not revocation
 * checked, outside the policy tree, its own names unconstrained): a damaged extension
 * it never reads does not make an administrator's anchor useless.
 */
const ANCHOR_READS = ['keyUsage', 'extendedKeyUsage', 'basicConstraints', 'nameConstraints'];

function fail(code: ErrorCode, message: string, warnings: string[]): PathValidationResult {
  return { ok: false, code, message, warnings };
}

function isSelfIssued(c: Certificate): boolean {
  return Buffer.compare(c.subject, c.issuer) === 0;
}

const label = (c: Certificate) => c.subjectText || c.serialHex;

/** Validates `path` (leaf first, anchor last). */
export function validateCertificationPath(path: Certificate[], o: PathValidationOptions): PathValidationResult {
  const warnings: string[] = [];
  const legacy: string[] = [];
  const n = path.length;
  const leaf = path[0]!;
  const anchor = path[n - 1]!;
  const t = o.time.getTime();
  const constraints: Array<{ nc: NameConstraints; ca: string }> = [];
  let maxPathLength = Number.POSITIVE_INFINITY;
  const tsa = o.usage === 'timestamping';
  const purpose = tsa ? OID.timeStamping : OID.emailProtection;

  // Walk from the anchor (index n-1) down to the leaf (index 0).
  for (let i = n - 1; i >= 0; i--) {
    const c = path[i]!;
    const isLeaf = i === 0;
    const isAnchor = i === n - 1;
    const who = isLeaf ? `The ${tsa ? 'TSA' : 'signer'}'s certificate (${label(c)})` : isAnchor ? `The trust anchor "${label(c)}"` : `The intermediate CA "${label(c)}"`;

    if (t < c.notBefore.getTime()) return fail('CERT_EXPIRED', `${who} is not valid before ${c.notBefore.toISOString()}.`, warnings);
    if (t > c.notAfter.getTime()) return fail('CERT_EXPIRED', `${who} expired on ${c.notAfter.toISOString()}.`, warnings);

    // RFC 5280 6.1: a certificate whose extensions cannot be decoded cannot be processed; the path fails here, naming it, and the next candidate path is tried.
    const unreadable = unreadableExtension(c, isAnchor ? ANCHOR_READS : undefined);
    if (unreadable) return fail('MALFORMED', `${who} cannot be judged: ${unreadable}.`, warnings);

    for (const [id, e] of c.extensions) {
      if (e.critical && !UNDERSTOOD_EXTENSIONS.has(id)) return fail('CERT_UNTRUSTED', `${who} has an unknown critical extension ${id}.`, warnings);
    }

    // Algorithm policy: the anchor's self-signature means nothing (trust is by
    // configuration), but its key signs the path and is judged.
    // Encrypting to a certificate creates a new message: the strict rules apply.
    // Verifying a received signature judges an old one: the configured ones do.
    for (const f of judgeCertificateAlgorithms(c, o.usage === 'encryption' ? 'create' : 'receive', o.policy, who, !isAnchor)) {
      if (f.action === 'reject') return fail('WEAK_ALG', f.message, warnings);
      warnings.push(f.message);
      if (f.legacy) legacy.push(f.legacy);
    }

    // Name constraints from CAs above apply to this certificate (6.1.3 (b)); a
    // self-issued intermediate is exempt, the leaf never is.
    if (!isAnchor && (isLeaf || !isSelfIssued(c))) {
      const san = readSubjectAltNames(c);
      const mailboxes = [...(san?.rfc822 ?? []), ...(san?.smtpUtf8 ?? [])];
      // Every emailAddress of the subject, with or without a subjectAltName (stricter than 4.2.1.10's "MUST when there is none").
      for (const e of readSubjectEmailAddresses(c)) if (!mailboxes.includes(e)) mailboxes.push(e);
      for (const { nc, ca } of constraints) {
        const v = checkNameConstraints({ subject: c.subject, mailboxes, directoryNames: san?.directoryNames ?? [], otherForms: san?.otherForms ?? [] }, nc, ca);
        if (v) return fail('CERT_UNTRUSTED', `Name constraints violated: ${v}.`, warnings);
      }
    }

    if (!isLeaf) {
      // A certificate that issues another must be a CA.
      const bc = readBasicConstraints(c);
      if (!bc?.ca) {
        // QUIRK: v1 trust anchors (no extensions at all) are accepted as CAs, as
        // OpenSSL and NSS do; an administrator chose them explicitly.
        if (!(isAnchor && c.version === 1)) return fail('CERT_UNTRUSTED', `${who} is not a CA certificate (basicConstraints cA is not set).`, warnings);
      }
      const ku = c.keyUsage;
      if (ku && !ku.has('keyCertSign')) return fail('CERT_UNTRUSTED', `${who} may not sign certificates (keyUsage lacks keyCertSign).`, warnings);
      if (!isAnchor && !isSelfIssued(c)) {
        if (maxPathLength <= 0) return fail('CERT_UNTRUSTED', `The path is longer than a CA above "${label(c)}" allows (pathLenConstraint).`, warnings);
        maxPathLength--;
      }
      if (bc?.pathLen !== undefined) maxPathLength = Math.min(maxPathLength, bc.pathLen);
      const nc = readNameConstraints(c);
      if (nc) constraints.push({ nc, ca: label(c) });
      // A CA's EKU constrains the certificates below it and must name the purpose:
      // anyExtendedKeyUsage alone is no wildcard here (Mozilla, NSS and OpenSSL refuse
      // it too; RFC 8550 4.4.4's anyExtendedKeyUsage rule is for the signer's certificate).
      const eku = readExtKeyUsage(c);
      if (eku && !eku.includes(purpose)) {
        return fail('CERT_USAGE', `${who} is restricted to purposes other than ${tsa ? 'timestamping' : 'email protection'} (extendedKeyUsage).`, warnings);
      }
    }
  }

  const policy = processCertificatePolicies(path, o.certificatePolicies);
  if (policy.problem) return fail('CERT_UNTRUSTED', policy.problem, warnings);

  const done: PathValidationResult = { ok: true, message: `Valid path of ${n} certificate${n > 1 ? 's' : ''} to the trust anchor "${label(anchor)}".`, warnings, legacy };
  if (tsa) {
    const problem = timeStampingUsageProblem(leaf);
    return problem ? fail('CERT_USAGE', problem, warnings) : done;
  }
  const ku = leaf.keyUsage;
  if (o.usage === 'crl-signing') {
    if (ku && !ku.has('cRLSign')) return fail('CERT_USAGE', `The certificate of "${label(leaf)}" may not sign CRLs (keyUsage lacks cRLSign).`, warnings);
    return done;
  }
  // The signer's certificate: keyUsage and extendedKeyUsage for S/MIME.
  if (ku && o.usage === 'signing' && !ku.has('digitalSignature') && !ku.has('nonRepudiation')) {
    return fail('CERT_USAGE', 'The signer\'s certificate may not be used for signatures (keyUsage has neither digitalSignature nor nonRepudiation).', warnings);
  }
  if (o.usage === 'encryption') {
    // RFC 8550 4.4.2: the bit that matches the key type (keyEncipherment for RSA and ML-KEM, keyAgreement for EC, X25519, X448).
    const bit = keyManagementBit(leaf);
    if (bit === undefined) return fail('CERT_USAGE', `The certificate's ${leaf.publicKey.asymmetricKeyType ?? 'unknown'} key cannot receive a content key: it may not be used for encryption.`, warnings);
    if (ku && !ku.has(bit)) return fail('CERT_USAGE', `The certificate may not be used for encryption (its keyUsage lacks ${bit}, which its key type needs).`, warnings);
  }
  const eku = readExtKeyUsage(leaf);
  if (eku && !eku.includes(OID.emailProtection) && !eku.includes(OID.anyExtendedKeyUsage)) {
    return fail('CERT_USAGE', 'The certificate is not for email protection (extendedKeyUsage has neither emailProtection nor anyExtendedKeyUsage, RFC 8550 4.4.4).', warnings);
  }
  if (eku && !eku.includes(OID.emailProtection)) warnings.push('The certificate allows any extended key usage rather than naming email protection.');
  if (n > 1 && readBasicConstraints(leaf)?.ca) warnings.push('The signer\'s certificate is a CA certificate.');

  return done;
}
