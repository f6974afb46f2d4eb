/**
 * Takes over an existing issuing CA (the console's first run, "import our CA"):
 * its key and certificate, with the chain up to a self-signed root, as a PKCS#12
 * file holds them. What is checked before anything is stored:
 * - the certificate is a CA certificate (basicConstraints cA=TRUE) that may sign
 *   certificates (keyUsage keyCertSign, when keyUsage is present), valid now;
 * - the key is the certificate's;
 * - each certificate of the chain is signed by the next, ending in a self-signed
 *   root (which becomes a trust anchor: an administrator chose to import it).
 * The issuing CA is registered like one made by `ca init` (its key sealed, a
 * delegated OCSP signer issued), so `ca issue`, `ca revoke`, `ca crl` and the
 * console work the same. The root's key stays with its owner: the root is stored
 * as a trusted certificate, not as a CA of this store.
 */
import { randomUUID, type KeyObject } from 'node:crypto';
import { KakitomeError } from '../errors.ts';
import { keyMatchesCertificate } from '../keys/private-key.ts';
import type { Store } from '../store/store.ts';
import type { Certificate } from '../x509/certificate.ts';
import { listCertificateAuthorities, type CertificateAuthority } from './certificate-authority.ts';
import { issueOcspSigningCertificate } from './issue-ocsp-signing-certificate.ts';

export interface ImportCaOptions {
  key: KeyObject;
  certificate: Certificate;
  /** Other certificates from the file: the issuers up to the root, in any order. */
  chain: readonly Certificate[];
  now?: Date;
}

const MAX_CHAIN = 8;

function signedBy(cert: Certificate, issuer: Certificate): boolean {
  return Buffer.from(cert.issuer).equals(Buffer.from(issuer.subject)) && cert.x509.verify(issuer.publicKey);
}

/** The certificate's issuers, nearest first, ending with a self-signed root (the certificate itself when it is one). */
export function chainToRoot(certificate: Certificate, pool: readonly Certificate[]): Certificate[] {
  const path: Certificate[] = [];
  let current = certificate;
  for (let depth = 0; depth <= MAX_CHAIN; depth++) {
    if (signedBy(current, current)) return path;
    const issuer = pool.find((c) => c !== current && !path.includes(c) && signedBy(current, c));
    if (!issuer) break;
    path.push(issuer);
    current = issuer;
  }
  throw new KakitomeError('CERT_UNTRUSTED', `The file does not hold the chain from "${certificate.subjectText}" up to a self-signed root: export the CA with its whole chain.`);
}

/** INVALID_ARGUMENT unless `o` is an issuing CA this store can take over (see the module comment). */
export function checkImportedCa(o: ImportCaOptions, now: Date): Certificate[] {
  const cert = o.certificate;
  if (!cert.x509.ca) throw new KakitomeError('CERT_USAGE', `"${cert.subjectText}" is not a CA certificate (basicConstraints cA is not TRUE).`);
  const usage = cert.keyUsage;
  if (usage && !usage.has('keyCertSign')) throw new KakitomeError('CERT_USAGE', `"${cert.subjectText}" may not sign certificates (keyUsage lacks keyCertSign).`);
  if (now < cert.notBefore || now > cert.notAfter) throw new KakitomeError('CERT_EXPIRED', `"${cert.subjectText}" is not valid now (${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}).`);
  if (!keyMatchesCertificate(o.key, cert)) throw new KakitomeError('KEY_INVALID', `The private key in the file is not the key of "${cert.subjectText}".`);
  return chainToRoot(cert, o.chain);
}

export async function importCertificateAuthority(store: Store, o: ImportCaOptions): Promise<CertificateAuthority> {
  const now = o.now ?? store.now();
  const issuers = checkImportedCa(o, now);
  const name = o.certificate.subjectText;
  if ((await listCertificateAuthorities(store)).some((c) => c.name === name)) throw new KakitomeError('INVALID_ARGUMENT', `A CA named "${name}" exists already.`);
  const root = issuers.at(-1);
  // The root is the anchor an administrator chose; certificates between are only path material.
  for (const c of issuers) await store.importCertificate(c, { trust: c === root ? 'trusted' : 'imported', source: 'ca-import' });
  await store.importPrivateKey(o.key, { certificates: [o.certificate], label: name, trust: 'trusted', source: 'ca-import' });
  const rec = (await store.findCertificateByFingerprint(o.certificate.fingerprint256))!;
  const id = randomUUID();
  await store.engine.run('INSERT INTO certificate_authorities (id, name, role, certificate_id, parent_id, next_crl_number, crl_url, ocsp_url, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', [id, name, 'issuing', rec.id, null, 1, null, null, now.toISOString()]);
  await store.audit('ca.import', o.certificate.fingerprint256, `${name}${root ? `, root ${root.fingerprint256}` : ', self-signed'}`);
  const ca = (await listCertificateAuthorities(store)).find((c) => c.id === id)!;
  await issueOcspSigningCertificate(store, ca, { now });
  return ca;
}
