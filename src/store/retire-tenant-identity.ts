/**
 * Retiring a tenant's signing identity (issue 10): the one rule for `kakitome
 * tenant retire-identity`, DELETE /api/v1/identities/{address} and the console.
 * The keys of the address's certificates (or of the one certificate named) are
 * retired (Store.retirePrivateKey): from the next request on, on every node, they
 * no longer sign nor are offered for new mail; they still decrypt old mail for the
 * tenant. The address stays the tenant's, so a new identity for it can be added.
 *
 * A key is retired only when everything it serves is the tenant's: no CA
 * certificate, and every address of every certificate for it one of the tenant's
 * identities. One tenant cannot stop another's key.
 */
import { KakitomeError } from '../errors.ts';
import { normalizeAddress, type Store } from './store.ts';
import type { TenantDirectory } from './tenant-directory.ts';

export interface RetiredTenantIdentity {
  address: string;
  /** Keys retired now, with the certificates they served (fingerprints). */
  retired: Array<{ keyId: string; certificates: string[] }>;
}

export async function retireTenantIdentity(store: Store, tenants: TenantDirectory, tenant: string, address: string, options: { fingerprint?: string } = {}): Promise<RetiredTenantIdentity> {
  const a = normalizeAddress(address);
  const self = await tenants.findTenant(tenant);
  // The same answer whether the address is unknown or another tenant's.
  if (!self?.identities.includes(a)) throw new KakitomeError('NOT_FOUND', `${a} is not an identity of tenant "${tenant}" (the tenant's list of identities shows them).`);
  const wanted = options.fingerprint?.toLowerCase().replaceAll(':', '');
  const certificates = (await store.certificateHistory(a)).map((h) => h.record).filter((r) => !r.isCa && r.hasPrivateKey && (!wanted || r.certificate.fingerprint256 === wanted));
  if (wanted && !certificates.length) throw new KakitomeError('NOT_FOUND', `No certificate ${wanted} with a key for ${a}.`);
  const keys = new Map<string, string[]>();
  for (const r of certificates) {
    const key = await store.findKeyForCertificate(r.certificate);
    if (key?.status === 'active') keys.set(key.id, key.certificates);
  }
  for (const fingerprints of keys.values()) {
    for (const fp of fingerprints) {
      const other = await store.findCertificateByFingerprint(fp);
      const foreign = other && (other.isCa ? [other.certificate.subjectText] : other.emails.filter((e) => !self.identities.includes(e)));
      if (foreign?.length) {
        throw new KakitomeError('FORBIDDEN', `The key of ${a} also serves ${foreign.join(', ')}, which ${foreign.length > 1 ? 'are' : 'is'} not tenant "${tenant}"'s: it was not retired.`);
      }
    }
  }
  const retired: RetiredTenantIdentity['retired'] = [];
  for (const [keyId, fingerprints] of keys) {
    await store.retirePrivateKey(keyId, `tenant ${tenant}: identity ${a}`);
    retired.push({ keyId, certificates: fingerprints });
  }
  return { address: a, retired };
}
