/**
 * Certificates the CA issues to itself for one narrow job (the OCSP responder's
 * delegate, the console's profile signer): found by their profile in
 * issued_certificates, issued with a fresh key that is sealed in the store (trust
 * "imported": never an anchor) and recorded like any certificate the CA issued, so
 * they can be revoked and appear in its CRL.
 */
import type { KeyPair } from '../keys/generate-key-pair.ts';
import { issueCertificate, type IssueOptions } from '../x509/issue.ts';
import type { Certificate } from '../x509/certificate.ts';
import type { Store } from '../store/store.ts';
import { openCaKey, type CertificateAuthority } from './certificate-authority.ts';

const DAY = 86_400_000;

/** The unrevoked certificate of `profile` from the CA valid at `now` and still at `until`, the longest-lived first. */
export async function findDelegateCertificate(store: Store, caId: string, profile: string, now: Date, until: Date = now): Promise<Certificate | undefined> {
  const rows = await store.engine.all(
    `SELECT c.id FROM certificates c JOIN issued_certificates i ON i.certificate_id = c.id
     WHERE i.ca_id = ? AND i.profile = ? AND c.revoked_at IS NULL AND c.not_before <= ? AND c.not_after > ?
     ORDER BY c.not_after DESC`,
    [caId, profile, now.toISOString(), until.toISOString()],
  );
  const id = rows[0]?.id;
  return id === undefined ? undefined : (await store.findCertificateById(String(id)))?.certificate;
}

export interface DelegateRequest {
  /** issued_certificates.profile */
  profile: string;
  /** What the CA key is opened for (audited as key.use.<purpose>), and the key's source. */
  purpose: string;
  commonName: string;
  /** The key's label in the store. */
  label: string;
  keys: KeyPair;
  validityDays: number;
  now: Date;
  /** Extensions beyond keyUsage digitalSignature (extKeyUsage, CRL/OCSP pointers, others). */
  extensions?: Pick<IssueOptions, 'extKeyUsage' | 'extraExtensions' | 'crlDistributionPoints' | 'ocspUrls'>;
  /** The delegate this one renews. */
  renews?: Certificate;
}

/** Issues the delegate (opening the CA key), seals its key in the store and records it as issued by `ca`. */
export async function issueDelegateCertificate(store: Store, ca: CertificateAuthority, r: DelegateRequest): Promise<Certificate> {
  const caKey = await openCaKey(store, ca, r.purpose);
  const notBefore = new Date(r.now.getTime() - 60_000);
  const certificate = issueCertificate({
    subject: { commonName: r.commonName },
    publicKey: r.keys.publicKey,
    issuer: ca.certificate,
    signingKey: caKey,
    keyUsage: ['digitalSignature'],
    notBefore,
    notAfter: new Date(Math.min(notBefore.getTime() + r.validityDays * DAY, ca.certificate.notAfter.getTime())),
    ...r.extensions,
  });
  await store.importPrivateKey(r.keys.privateKey, { certificates: [certificate], label: r.label, trust: 'imported', source: `${r.purpose} ${ca.name}` });
  const rec = (await store.findCertificateByFingerprint(certificate.fingerprint256))!;
  const renewed = r.renews ? await store.findCertificateByFingerprint(r.renews.fingerprint256) : undefined;
  await store.engine.transaction(async (tx) => {
    await tx.run('INSERT INTO issued_certificates (certificate_id, ca_id, profile, renewed_from, issued_at) VALUES (?, ?, ?, ?, ?)', [rec.id, ca.id, r.profile, renewed?.id ?? null, r.now.toISOString()]);
  });
  return certificate;
}
