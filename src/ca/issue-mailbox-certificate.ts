/**
 * Mailbox certificates in the CA/Browser Forum S/MIME Baseline Requirements
 * "mailbox-validated strict" profile (BR 7.1.2.3, 7.1.4.2.2 and 7.1.6.1):
 * - certificatePolicies with the reserved policy 2.23.140.1.5.1.3 (mailbox strict);
 * - extKeyUsage id-kp-emailProtection only;
 * - subjectAltName with the mailbox (certifiedMailbox): an rfc822Name for an
 *   ASCII local part (an internationalised domain in its A-label form, RFC 5280
 *   7.5), an SmtpUTF8Mailbox otherName for a non-ASCII one (RFC 9598); the subject
 *   holds only commonName (the address as certified, UTF-8) and, for an
 *   rfc822Name, emailAddress (an IA5String: never for an SmtpUTF8Mailbox);
 * - keyUsage critical, by key type and use (BR 7.1.2.3 e): RSA signing =
 *   digitalSignature(+nonRepudiation), RSA encryption = keyEncipherment,
 *   EC signing = digitalSignature, EC encryption = keyAgreement; "dual" combines;
 * - validity at most 825 days (BR 6.3.2); serial of 128 random bits (issue.ts);
 * - crlDistributionPoints (required in strict) and authorityInformationAccess from
 *   the issuing CA's configuration.
 * Separate signing and encryption certificates are issued when asked ("separate"):
 * two keys, so the encryption key can be escrowed in the store while the signing
 * key stays the user's alone (RFC 8551 and BR both allow it).
 */
import type { KeyObject } from 'node:crypto';
import { generateKeyPairOffThread, type KeyPair } from '../keys/generate-key-pair.ts';
import { issueCertificate, toPublic, type KeyUsageName } from '../x509/issue.ts';
import { sequence, oid, octetString } from '../asn1/der.ts';
import { OID } from '../asn1/oids.ts';
import { domainToUnicode } from 'node:url';
import { isMailboxAddress, mailDomainOf, splitMailbox } from '../x509/mailbox-address.ts';
import { rsaExponentProblem } from '../x509/key-management-usage.ts';
import { KakitomeError } from '../errors.ts';
import type { Certificate } from '../x509/certificate.ts';
import type { Store } from '../store/store.ts';
import { findCertificateAuthority, openCaKey, type CertificateAuthority } from './certificate-authority.ts';

/** CA/B Forum reserved policy identifier: mailbox-validated, strict. */
export const POLICY_MAILBOX_STRICT = '2.23.140.1.5.1.3';
export const MAX_VALIDITY_DAYS = 825;

export type MailboxKeyType = 'rsa2048' | 'rsa3072' | 'p256' | 'p384';
export type MailboxUsage = 'dual' | 'signing' | 'encryption';

export interface IssueMailboxOptions {
  email: string;
  /** Issue for this public key (the user holds the private key); otherwise a key is generated and sealed in the store. */
  publicKey?: KeyObject;
  keyType?: MailboxKeyType;
  /** "separate" issues two certificates (signing and encryption) with two keys. */
  usage?: MailboxUsage | 'separate';
  validityDays?: number;
  caName?: string;
  now?: Date;
  /** Set by renewal: the certificate this one replaces. */
  renewedFrom?: string;
  /** Set by CSR intake: the SHA-256 of the PKCS#10 request, named in the audit log. */
  requestSha256?: string;
}

export interface IssuedCertificate {
  certificate: Certificate;
  usage: MailboxUsage;
  /** Store id of the generated private key, when the store holds it. */
  keyId?: string;
}

/** A new key pair, off the thread (keys/generate-key-pair.ts: a serving thread keeps answering). */
function generateMailboxKey(type: MailboxKeyType): Promise<KeyPair> {
  switch (type) {
    case 'rsa2048': return generateKeyPairOffThread({ type: 'rsa', modulusLength: 2048 });
    case 'rsa3072': return generateKeyPairOffThread({ type: 'rsa', modulusLength: 3072 });
    case 'p256': return generateKeyPairOffThread({ type: 'ec', namedCurve: 'prime256v1' });
    case 'p384': return generateKeyPairOffThread({ type: 'ec', namedCurve: 'secp384r1' });
    default: throw new KakitomeError('INVALID_ARGUMENT', `Unknown key type ${String(type)}.`);
  }
}

/**
 * The keyUsage bits the profile gives a key of this type for `usage`; refuses keys
 * the profile does not certify: RSA below 2048 bits or with an exponent that is not
 * odd and 3 or more (WEAK_ALG), curves other than
 * P-256/P-384/P-521 and unknown key types (UNSUPPORTED_ALG), an EdDSA key for
 * anything but signing (CERT_USAGE).
 */
export function mailboxKeyUsage(key: KeyObject, usage: MailboxUsage): KeyUsageName[] {
  const t = key.asymmetricKeyType;
  if (t === 'rsa') {
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw new KakitomeError('WEAK_ALG', 'S/MIME BR 6.1.5: RSA keys are at least 2048 bits.');
    // Exponent 1 makes "encryption" the identity and lets anyone write a request's
    // proof of possession for any modulus; an even exponent is no RSA key.
    const exponent = rsaExponentProblem(key.asymmetricKeyDetails?.publicExponent ?? 0n);
    if (exponent) throw new KakitomeError('WEAK_ALG', `S/MIME BR 6.1.6: ${exponent}.`);
    return usage === 'signing' ? ['digitalSignature', 'nonRepudiation'] : usage === 'encryption' ? ['keyEncipherment'] : ['digitalSignature', 'nonRepudiation', 'keyEncipherment'];
  }
  if (t === 'ec') {
    const c = key.asymmetricKeyDetails?.namedCurve;
    if (c !== 'prime256v1' && c !== 'secp384r1' && c !== 'secp521r1') throw new KakitomeError('UNSUPPORTED_ALG', `S/MIME BR 6.1.5 allows P-256, P-384 and P-521, not ${c}.`);
    return usage === 'signing' ? ['digitalSignature', 'nonRepudiation'] : usage === 'encryption' ? ['keyAgreement'] : ['digitalSignature', 'nonRepudiation', 'keyAgreement'];
  }
  if (t === 'ed25519' || t === 'ed448') {
    if (usage !== 'signing') throw new KakitomeError('CERT_USAGE', 'An EdDSA key can only sign: issue it with usage "signing".');
    return ['digitalSignature', 'nonRepudiation'];
  }
  throw new KakitomeError('UNSUPPORTED_ALG', `Mailbox certificates for ${t} keys are not issued.`);
}

function certificatePolicies(): Buffer {
  // certificatePolicies ::= SEQUENCE OF PolicyInformation { policyIdentifier }
  return sequence(oid(OID.certificatePolicies), octetString(sequence(sequence(oid(POLICY_MAILBOX_STRICT)))));
}

/** How a mailbox is written in a certificate: one of `rfc822Name` or `smtpUtf8Mailbox`, and the address as certified. */
export interface CertifiedMailbox {
  address: string;
  rfc822Name?: string;
  smtpUtf8Mailbox?: string;
}

/**
 * The form a mailbox address is certified in (RFC 9598 3 and 5, RFC 5280 7.5): an
 * ASCII local part is an rfc822Name (an IA5String) with the domain in its A-label
 * form, so 'taro@例え.jp' is 'taro@xn--r8jz45g.jp'; a non-ASCII local part is an
 * SmtpUTF8Mailbox (a UTF8String), whose domain labels are U-labels ('山田@例え.jp',
 * as written for 'xn--r8jz45g.jp' too). INVALID_ARGUMENT for anything else: no
 * mailbox, a domain without an A-label form, a local part over 64 octets (RFC 6531
 * 3.3) or not in Unicode NFC (RFC 6532 3.1: one address, one sequence of code
 * points, so that the certificate names what a From header writes).
 */
export function certifiedMailbox(text: string): CertifiedMailbox {
  const email = text.trim();
  const split = splitMailbox(email);
  const refuse = (why: string): never => {
    throw new KakitomeError('INVALID_ARGUMENT', `"${email}" ${why}`);
  };
  if (!split) return refuse('is not a mailbox address.');
  const ascii = `${split.local}@${split.domain}`;
  if (!isMailboxAddress(ascii)) refuse('is not a mailbox address.');
  if (!/[^\x00-\x7f]/.test(split.local)) return { address: ascii, rfc822Name: ascii };
  if (split.local.normalize('NFC') !== split.local) refuse('has a local part that is not in Unicode NFC: write it composed (RFC 6532 3.1).');
  if (Buffer.byteLength(split.local, 'utf8') > 64) refuse('has a local part longer than 64 octets (RFC 6531 3.3).');
  const address = `${split.local}@${domainToUnicode(split.domain)}`;
  // The reader's one form must give back the domain we certify (mailDomainOf: A-labels).
  if (mailDomainOf(address) !== split.domain) refuse('has a domain with no single Unicode form.');
  return { address, smtpUtf8Mailbox: address };
}

async function issueOne(store: Store, ca: CertificateAuthority, caKey: KeyObject, o: IssueMailboxOptions, usage: MailboxUsage, now: Date): Promise<IssuedCertificate> {
  const mailbox = certifiedMailbox(o.email);
  const email = mailbox.address;
  const generated = o.publicKey ? undefined : await generateMailboxKey(o.keyType ?? 'rsa2048');
  const publicKey = o.publicKey ? toPublic(o.publicKey) : generated!.publicKey;
  const days = o.validityDays ?? 365;
  if (!Number.isInteger(days) || days < 1 || days > MAX_VALIDITY_DAYS) throw new KakitomeError('INVALID_ARGUMENT', `Validity must be 1..${MAX_VALIDITY_DAYS} days (S/MIME BR 6.3.2).`);
  const notBefore = new Date(now.getTime() - 60_000);
  const notAfter = new Date(Math.min(notBefore.getTime() + days * 86_400_000, ca.certificate.notAfter.getTime()));
  const certificate = issueCertificate({
    subject: mailbox.rfc822Name ? { commonName: email, emailAddress: email } : { commonName: email },
    publicKey,
    issuer: ca.certificate,
    signingKey: caKey,
    keyUsage: mailboxKeyUsage(publicKey, usage),
    extKeyUsage: [OID.emailProtection],
    ...(mailbox.rfc822Name ? { emails: [mailbox.rfc822Name] } : { smtpUtf8Mailboxes: [mailbox.smtpUtf8Mailbox!] }),
    notBefore,
    notAfter,
    ...(ca.crlUrl ? { crlDistributionPoints: [ca.crlUrl] } : {}),
    ...(ca.ocspUrl ? { ocspUrls: [ca.ocspUrl] } : {}),
    extraExtensions: [certificatePolicies()],
  });
  let keyId: string | undefined;
  if (generated) {
    keyId = (await store.importPrivateKey(generated.privateKey, { certificates: [certificate], label: `${email} (${usage})`, trust: 'trusted', source: `ca-issue ${ca.name}` })).id;
  } else {
    await store.importCertificate(certificate, { trust: 'trusted', source: `ca-issue ${ca.name}` });
  }
  const rec = (await store.findCertificateByFingerprint(certificate.fingerprint256))!;
  await store.engine.transaction(async (tx) => {
    await tx.run('INSERT INTO issued_certificates (certificate_id, ca_id, profile, renewed_from, issued_at) VALUES (?, ?, ?, ?, ?)', [rec.id, ca.id, `mailbox-strict-${usage}`, o.renewedFrom ?? null, now.toISOString()]);
  });
  await store.audit('ca.issue', certificate.fingerprint256, `${email} ${usage}${o.renewedFrom ? ` renews ${o.renewedFrom}` : ''}${o.requestSha256 ? ` from certification request sha256:${o.requestSha256}` : ''}`);
  const out: IssuedCertificate = { certificate, usage };
  if (keyId) out.keyId = keyId;
  return out;
}

/** Issues one mailbox certificate, or two when `usage` is "separate". */
export async function issueMailboxCertificate(store: Store, o: IssueMailboxOptions): Promise<IssuedCertificate[]> {
  // Refused before the CA key is opened. rfc822Name and emailAddress are IA5Strings
  // (RFC 5280 4.2.1.6): "bób" once went in as latin1 bytes no other reader decodes so.
  certifiedMailbox(o.email);
  const usage = o.usage ?? 'dual';
  if (usage === 'separate' && o.publicKey) throw new KakitomeError('INVALID_ARGUMENT', 'Separate signing and encryption certificates need two keys; omit publicKey to have them generated.');
  const ca = await findCertificateAuthority(store, o.caName);
  if (ca.role !== 'issuing') throw new KakitomeError('INVALID_ARGUMENT', `"${ca.name}" is a root; mailbox certificates come from the issuing CA.`);
  const now = o.now ?? store.now();
  const caKey = await openCaKey(store, ca, 'ca-issue');
  if (usage === 'separate') {
    return [await issueOne(store, ca, caKey, o, 'signing', now), await issueOne(store, ca, caKey, o, 'encryption', now)];
  }
  return [await issueOne(store, ca, caKey, o, usage, now)];
}

