/**
 * The console's own certificate, for signing what it hands out that is not mail:
 * iPhone/iPad configuration profiles (.mobileconfig), which iOS shows as "Verified"
 * when their CMS signature chains to a root the device trusts. Issued by the
 * organisation's issuing CA (the one that issues mailbox certificates, so the same
 * root vouches for both), and deliberately unable to do anything else:
 * - keyUsage digitalSignature only, no extKeyUsage (no emailProtection: it names no
 *   mailbox, so it can neither sign mail nor be encrypted to; no cA, no keyCertSign);
 * - subject "<CA name> configuration profiles", no alternative names;
 * - 397 days at most, renewed when fewer than 30 remain; RSA-2048 (what every iOS
 *   version verifies);
 * - its key sealed in the store like every other key (trust "imported": never an
 *   anchor), opened for each signature as key.use.profile-signing;
 * - recorded in issued_certificates with profile "profile-signing", so it can be
 *   revoked and appears in the CRL like any certificate the CA issued.
 */
import { generateKeyPairOffThread } from '../keys/generate-key-pair.ts';
import type { Certificate } from '../x509/certificate.ts';
import { KakitomeError } from '../errors.ts';
import type { Store } from '../store/store.ts';
import { findCertificateAuthority } from './certificate-authority.ts';
import { findDelegateCertificate, issueDelegateCertificate } from './issue-delegate-certificate.ts';

export const PROFILE_SIGNING_PROFILE = 'profile-signing';
const DAY = 86_400_000;
const VALIDITY_DAYS = 397;
const RENEW_BEFORE_DAYS = 30;

/**
 * The profile-signing certificate of the issuing CA that is valid for 30 more days
 * at least, issued now when there is none (or it was revoked); undefined when the
 * store has no issuing CA.
 */
export async function ensureProfileSigningCertificate(store: Store, now: Date = store.now()): Promise<Certificate | undefined> {
  let ca;
  try {
    ca = await findCertificateAuthority(store);
  } catch (e) {
    if (e instanceof KakitomeError && e.code === 'INVALID_ARGUMENT') return undefined;
    throw e;
  }
  const current = await findDelegateCertificate(store, ca.id, PROFILE_SIGNING_PROFILE, now, new Date(now.getTime() + RENEW_BEFORE_DAYS * DAY));
  if (current) return current;
  const certificate = await issueDelegateCertificate(store, ca, {
    profile: PROFILE_SIGNING_PROFILE,
    purpose: 'ca-profile-signer',
    commonName: `${ca.name} configuration profiles`,
    label: `${ca.name} configuration profile signing`,
    keys: await generateKeyPairOffThread({ type: 'rsa', modulusLength: 2048 }),
    validityDays: VALIDITY_DAYS,
    now,
    extensions: { ...(ca.crlUrl ? { crlDistributionPoints: [ca.crlUrl] } : {}), ...(ca.ocspUrl ? { ocspUrls: [ca.ocspUrl] } : {}) },
  });
  await store.audit('ca.profile-signer', certificate.fingerprint256, `${ca.name}, until ${certificate.notAfter.toISOString()}`);
  return certificate;
}
