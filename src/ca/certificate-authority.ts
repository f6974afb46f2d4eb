/**
 * The internal CA's records: a root and an issuing CA kept in the store (their
 * keys sealed like every other key), plus the certificates each has issued.
 * Operations live one per file beside this (init, issue, renew, revoke, CRL, OCSP).
 */
import type { KeyObject } from 'node:crypto';
import { generateKeyPairOffThread, type KeyPair } from '../keys/generate-key-pair.ts';
import { KakitomeError } from '../errors.ts';
import type { Certificate } from '../x509/certificate.ts';
import type { Store } from '../store/store.ts';

export type CaRole = 'root' | 'issuing';

export interface CertificateAuthority {
  id: string;
  name: string;
  role: CaRole;
  certificate: Certificate;
  parentId?: string;
  crlUrl?: string;
  ocspUrl?: string;
}

export type CaKeyType = 'p256' | 'p384' | 'rsa2048' | 'rsa3072' | 'rsa4096' | 'ed25519';

/** A new CA key pair, off the thread (the console's first run makes the CA on a serving thread). */
export function generateCaKey(type: CaKeyType): Promise<KeyPair> {
  switch (type) {
    case 'p256': return generateKeyPairOffThread({ type: 'ec', namedCurve: 'prime256v1' });
    case 'p384': return generateKeyPairOffThread({ type: 'ec', namedCurve: 'secp384r1' });
    case 'rsa2048': return generateKeyPairOffThread({ type: 'rsa', modulusLength: 2048 });
    case 'rsa3072': return generateKeyPairOffThread({ type: 'rsa', modulusLength: 3072 });
    case 'rsa4096': return generateKeyPairOffThread({ type: 'rsa', modulusLength: 4096 });
    case 'ed25519': return generateKeyPairOffThread({ type: 'ed25519' });
    default: throw new KakitomeError('INVALID_ARGUMENT', `Unknown key type ${String(type)}.`);
  }
}

export async function listCertificateAuthorities(store: Store): Promise<CertificateAuthority[]> {
  const rows = await store.engine.all('SELECT * FROM certificate_authorities ORDER BY created_at, name');
  const out: CertificateAuthority[] = [];
  for (const r of rows) {
    const rec = await store.findCertificateById(String(r.certificate_id));
    if (!rec) throw new KakitomeError('MALFORMED', `CA ${String(r.name)} has no certificate in the store.`);
    const ca: CertificateAuthority = { id: String(r.id), name: String(r.name), role: String(r.role) as CaRole, certificate: rec.certificate };
    if (r.parent_id) ca.parentId = String(r.parent_id);
    if (r.crl_url) ca.crlUrl = String(r.crl_url);
    if (r.ocsp_url) ca.ocspUrl = String(r.ocsp_url);
    out.push(ca);
  }
  return out;
}

/** The CA named `name`, or the (single) issuing CA when no name is given. */
export async function findCertificateAuthority(store: Store, name?: string): Promise<CertificateAuthority> {
  const all = await listCertificateAuthorities(store);
  const hit = name ? all.find((c) => c.name === name) : all.filter((c) => c.role === 'issuing').at(-1);
  if (!hit) throw new KakitomeError('INVALID_ARGUMENT', name ? `No certificate authority named "${name}".` : 'No issuing CA in this store: initialise the internal CA first.', name ? undefined : { remedy: 'internalCa' });
  return hit;
}

/** The CA's signing key, opened for `purpose` (audited). */
export async function openCaKey(store: Store, ca: CertificateAuthority, purpose: string): Promise<KeyObject> {
  const key = await store.usePrivateKeyFor(ca.certificate, purpose);
  if (!key) throw new KakitomeError('KEY_INVALID', `The private key of CA "${ca.name}" is not in the store (or was retired).`);
  return key;
}
