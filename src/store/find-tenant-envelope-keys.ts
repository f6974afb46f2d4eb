/**
 * The private keys a tenant of the signing service may decrypt an envelope with:
 * those of its recipients whose certificate names an address the tenant owns
 * (TenantDirectory.ownsAddress: its identities; for the default tenant, every
 * address no other tenant claims). Another tenant's key is never opened for the
 * caller, nor audited as used by it (findOwnedEnvelopeKeys).
 */
import type { Limits } from '../limits.ts';
import type { KeyObject } from 'node:crypto';
import type { Certificate } from '../x509/certificate.ts';
import { findOwnedEnvelopeKeys } from './find-envelope-keys.ts';
import type { Store } from './store.ts';
import type { TenantDirectory } from './tenant-directory.ts';

export function findTenantEnvelopeKeys(store: Store, tenants: TenantDirectory, tenant: string, envelope: Uint8Array, limits?: Partial<Limits>): Promise<{ key: KeyObject; certificate: Certificate }[]> {
  return findOwnedEnvelopeKeys(store, envelope, (address) => tenants.ownsAddress(tenant, address), limits);
}
