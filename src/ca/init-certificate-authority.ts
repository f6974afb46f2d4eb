/**
 * Creates the internal CA: a self-signed root and an issuing CA under it
 * (CA/Browser Forum S/MIME BR 7.1.2.1 and 7.1.2.2 shapes: basicConstraints
 * critical cA=TRUE, keyUsage critical keyCertSign+cRLSign, the issuing CA limited
 * to pathLen 0 and extKeyUsage emailProtection). Both keys are sealed in the store,
 * and each CA certifies a delegated OCSP signer (issue-ocsp-signing-certificate.ts).
 *
 * Revocation is published for every certificate below the root (issue 9, item 7:
 * a verifier that requires revocation must get an answer for the issuing CA too):
 * the issuing CA's certificate names the root's CRL (`rootCrlUrl`, published with
 * `ca crl --ca "<name> Root CA"`) and the OCSP responder (`ocspUrl`; `ca ocsp`
 * answers for the issuing CA with the root's delegated signer), as S/MIME BR
 * 7.1.2.2 asks of subordinate CA certificates. Once any revocation URL is given,
 * both levels must be covered, or the CA is refused.
 */
import { randomUUID } from 'node:crypto';
import { issueCertificate } from '../x509/issue.ts';
import { OID } from '../asn1/oids.ts';
import { KakitomeError } from '../errors.ts';
import type { Store } from '../store/store.ts';
import { generateCaKey, listCertificateAuthorities, type CaKeyType, type CertificateAuthority } from './certificate-authority.ts';
import { issueOcspSigningCertificate } from './issue-ocsp-signing-certificate.ts';

export interface InitCaOptions {
  /** Base name: the root is "<name> Root CA", the issuing CA "<name> S/MIME CA". */
  name: string;
  organization?: string;
  country?: string;
  keyType?: CaKeyType;
  rootValidityYears?: number;
  issuingValidityYears?: number;
  /** HTTP URL where the issuing CA's CRL is published (put in issued certificates). */
  crlUrl?: string;
  /** HTTP URL of the OCSP responder (put in issued certificates and in the issuing CA's certificate). */
  ocspUrl?: string;
  /** HTTP URL where the root's CRL is published (put in the issuing CA's certificate). */
  rootCrlUrl?: string;
  now?: Date;
}

const YEAR = 365 * 86_400_000;

export async function initCertificateAuthority(store: Store, o: InitCaOptions): Promise<{ root: CertificateAuthority; issuing: CertificateAuthority }> {
  if (!o.name.trim()) throw new KakitomeError('INVALID_ARGUMENT', 'A CA needs a name.');
  for (const u of [o.crlUrl, o.ocspUrl, o.rootCrlUrl]) {
    if (u !== undefined && !/^http:\/\//.test(u)) throw new KakitomeError('INVALID_ARGUMENT', `${u}: CRL and OCSP URLs must be http:// (RFC 5280 4.2.1.13, S/MIME BR 7.1.2.3).`);
  }
  if ((o.crlUrl || o.ocspUrl || o.rootCrlUrl) && !((o.crlUrl || o.ocspUrl) && (o.rootCrlUrl || o.ocspUrl))) {
    throw new KakitomeError(
      'INVALID_ARGUMENT',
      o.rootCrlUrl
        ? 'The root\'s CRL covers only the issuing CA: give a CRL URL (crlUrl) or an OCSP URL (ocspUrl) for the mailbox certificates too.'
        : 'The issuing CA\'s certificate would name no revocation source: give the root\'s CRL URL (rootCrlUrl) or an OCSP URL (ocspUrl), which then answers for the issuing CA too.',
      { remedy: o.rootCrlUrl ? 'crlUrl' : 'rootCrlUrl' },
    );
  }
  const existing = await listCertificateAuthorities(store);
  if (existing.some((c) => c.name === `${o.name} Root CA`)) throw new KakitomeError('INVALID_ARGUMENT', `A CA named "${o.name}" exists already.`);
  const now = o.now ?? store.now();
  const keyType = o.keyType ?? 'p384';
  const org = { organization: o.organization ?? o.name, ...(o.country ? { country: o.country } : {}) };

  const rootKeys = await generateCaKey(keyType);
  const rootCert = issueCertificate({
    subject: { commonName: `${o.name} Root CA`, ...org },
    publicKey: rootKeys.publicKey,
    signingKey: rootKeys.privateKey,
    ca: true,
    keyUsage: ['keyCertSign', 'cRLSign'],
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + (o.rootValidityYears ?? 20) * YEAR),
  });
  const issKeys = await generateCaKey(keyType);
  const issCert = issueCertificate({
    subject: { commonName: `${o.name} S/MIME CA`, ...org },
    publicKey: issKeys.publicKey,
    issuer: rootCert,
    signingKey: rootKeys.privateKey,
    ca: { pathLength: 0 },
    keyUsage: ['keyCertSign', 'cRLSign'],
    extKeyUsage: [OID.emailProtection],
    ...(o.rootCrlUrl ? { crlDistributionPoints: [o.rootCrlUrl] } : {}),
    ...(o.ocspUrl ? { ocspUrls: [o.ocspUrl] } : {}),
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + Math.min(o.issuingValidityYears ?? 10, o.rootValidityYears ?? 20) * YEAR),
  });

  await store.importPrivateKey(rootKeys.privateKey, { certificates: [rootCert], label: `${o.name} Root CA`, trust: 'trusted', source: 'ca-init' });
  await store.importPrivateKey(issKeys.privateKey, { certificates: [issCert], label: `${o.name} S/MIME CA`, trust: 'trusted', source: 'ca-init' });
  const rootRec = (await store.findCertificateByFingerprint(rootCert.fingerprint256))!;
  const issRec = (await store.findCertificateByFingerprint(issCert.fingerprint256))!;
  const rootId = randomUUID();
  const issId = randomUUID();
  await store.engine.transaction(async (tx) => {
    const at = now.toISOString();
    await tx.run('INSERT INTO certificate_authorities (id, name, role, certificate_id, parent_id, next_crl_number, crl_url, ocsp_url, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', [rootId, `${o.name} Root CA`, 'root', rootRec.id, null, 1, o.rootCrlUrl ?? null, o.ocspUrl ?? null, at]);
    await tx.run('INSERT INTO certificate_authorities (id, name, role, certificate_id, parent_id, next_crl_number, crl_url, ocsp_url, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', [issId, `${o.name} S/MIME CA`, 'issuing', issRec.id, rootId, 1, o.crlUrl ?? null, o.ocspUrl ?? null, at]);
    await tx.run('INSERT INTO issued_certificates (certificate_id, ca_id, profile, renewed_from, issued_at) VALUES (?, ?, ?, ?, ?)', [issRec.id, rootId, 'subordinate-ca', null, at]);
  });
  await store.audit('ca.init', issCert.fingerprint256, `${o.name}: root ${rootCert.fingerprint256}`);
  const all = await listCertificateAuthorities(store);
  const root = all.find((c) => c.id === rootId)!;
  const issuing = all.find((c) => c.id === issId)!;
  // Each CA's delegated OCSP signer, so `ca ocsp` never needs a CA key.
  for (const ca of [root, issuing]) await issueOcspSigningCertificate(store, ca, { now });
  return { root, issuing };
}
