/**
 * Delegated OCSP signing (RFC 6960 4.2.2.2): each CA certifies a key of its own
 * for the responder, so `kakitome ca ocsp` never opens a CA key. The certificate:
 * - is issued by the CA whose certificates it answers for (the root's delegate
 *   answers for the issuing CA, the issuing CA's for mailboxes), as 4.2.2.2 requires;
 * - carries extKeyUsage id-kp-OCSPSigning only and keyUsage digitalSignature only,
 *   so it can neither decrypt (no key management usage) nor issue (no cA, no
 *   keyCertSign);
 * - carries id-pkix-ocsp-nocheck (4.2.2.2.1): clients need not ask about the
 *   responder itself; in exchange it lives 30 days and is renewed when 10 remain.
 * Its key is sealed in the store like every other key, with trust "imported"
 * (never an anchor), and recorded in issued_certificates with profile "ocsp-signing".
 */
import { generateKeyPairOffThread, type KeyPair } from '../keys/generate-key-pair.ts';
import { sequence, oid, octetString, NULL } from '../asn1/der.ts';
import { KakitomeError } from '../errors.ts';
import type { Certificate } from '../x509/certificate.ts';
import type { Store } from '../store/store.ts';
import { listCertificateAuthorities, type CertificateAuthority } from './certificate-authority.ts';
import { findDelegateCertificate, issueDelegateCertificate } from './issue-delegate-certificate.ts';

export const OCSP_SIGNING_PROFILE = 'ocsp-signing';
const ID_KP_OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';
const ID_PKIX_OCSP_NOCHECK = '1.3.6.1.5.5.7.48.1.5';
const DAY = 86_400_000;

export interface OcspSigningOptions {
  /** Validity of a new delegate certificate in days (default 30, at most 90). */
  validityDays?: number;
  /** Renew when fewer than this many days remain (default 10). */
  renewBeforeDays?: number;
  now?: Date;
}

export interface OcspSigner {
  ca: CertificateAuthority;
  certificate: Certificate;
}

/** A fresh key pair of the CA key's kind: the same curve, RSA 3072, or Ed25519. */
function generateDelegateKey(caCert: Certificate): Promise<KeyPair> {
  const caKey = caCert.publicKey;
  switch (caKey.asymmetricKeyType) {
    case 'ec': return generateKeyPairOffThread({ type: 'ec', namedCurve: caKey.asymmetricKeyDetails?.namedCurve ?? 'prime256v1' });
    case 'rsa': return generateKeyPairOffThread({ type: 'rsa', modulusLength: 3072 });
    case 'ed25519': return generateKeyPairOffThread({ type: 'ed25519' });
    default: throw new KakitomeError('UNSUPPORTED_ALG', `No OCSP signing key type for a ${caKey.asymmetricKeyType} CA.`);
  }
}

/** The CA's newest delegate that is valid at `now` and not revoked, if any. */
export async function findOcspSigningCertificate(store: Store, ca: CertificateAuthority, now: Date = store.now()): Promise<Certificate | undefined> {
  return findDelegateCertificate(store, ca.id, OCSP_SIGNING_PROFILE, now);
}

/** Issues a new delegate for `ca` (opens the CA key, audited as key.use.ca-ocsp-signer). */
export async function issueOcspSigningCertificate(store: Store, ca: CertificateAuthority, o: OcspSigningOptions = {}): Promise<OcspSigner> {
  const days = o.validityDays ?? 30;
  if (!Number.isInteger(days) || days < 1 || days > 90) throw new KakitomeError('INVALID_ARGUMENT', 'An OCSP signing certificate lives 1 to 90 days (it is never checked for revocation).');
  const now = o.now ?? store.now();
  const previous = await findOcspSigningCertificate(store, ca, now);
  const certificate = await issueDelegateCertificate(store, ca, {
    profile: OCSP_SIGNING_PROFILE,
    purpose: 'ca-ocsp-signer',
    commonName: `${ca.name} OCSP Responder`,
    label: `${ca.name} OCSP signing`,
    keys: await generateDelegateKey(ca.certificate),
    validityDays: days,
    now,
    extensions: { extKeyUsage: [ID_KP_OCSP_SIGNING], extraExtensions: [sequence(oid(ID_PKIX_OCSP_NOCHECK), octetString(NULL))] },
    ...(previous ? { renews: previous } : {}),
  });
  await store.audit('ca.ocsp-signer', certificate.fingerprint256, `${ca.name}, until ${certificate.notAfter.toISOString()}${previous ? `, renews ${previous.fingerprint256}` : ''}`);
  return { ca, certificate };
}

/**
 * Gives every CA a delegate valid for at least `renewBeforeDays` more days, issuing
 * where one is missing, revoked or about to expire. Returns the delegates issued
 * (none when all are current): run it daily (`kakitome ca ocsp-signer`).
 */
export async function renewOcspSigningCertificates(store: Store, o: OcspSigningOptions = {}): Promise<OcspSigner[]> {
  const now = o.now ?? store.now();
  const margin = (o.renewBeforeDays ?? 10) * DAY;
  const issued: OcspSigner[] = [];
  for (const ca of await listCertificateAuthorities(store)) {
    const current = await findOcspSigningCertificate(store, ca, now);
    if (current && current.notAfter.getTime() - now.getTime() > margin) continue;
    // A CA that itself ends sooner than the margin still gets a delegate up to its own end.
    if (current && current.notAfter.getTime() >= ca.certificate.notAfter.getTime()) continue;
    issued.push(await issueOcspSigningCertificate(store, ca, { ...o, now }));
  }
  return issued;
}
