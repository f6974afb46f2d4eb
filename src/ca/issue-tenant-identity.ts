/**
 * A tenant's signing identity issued now by the internal CA (issue 10): the one
 * rule for `kakitome tenant identity NAME --email ADDRESS`, POST /api/v1/identities
 * and the console. The address is checked against the tenant's domains and the
 * other tenants' identities before a key is made, so a refusal leaves nothing
 * behind; the certificate is the CA's mailbox profile (issue-mailbox-certificate.ts),
 * its key generated and sealed in the store.
 */
import type { AddedTenantIdentity } from '../store/add-tenant-identity.ts';
import type { Store } from '../store/store.ts';
import type { TenantDirectory } from '../store/tenant-directory.ts';
import { issueMailboxCertificate, type MailboxKeyType } from './issue-mailbox-certificate.ts';

export interface IssueTenantIdentityOptions {
  email: string;
  keyType?: MailboxKeyType;
  /** Validity in days (default 365; at most the CA's MAX_VALIDITY_DAYS). */
  validityDays?: number;
}

export async function issueTenantIdentity(store: Store, tenants: TenantDirectory, tenant: string, o: IssueTenantIdentityOptions): Promise<AddedTenantIdentity> {
  await tenants.checkIdentities(tenant, [o.email]);
  const [issued] = await issueMailboxCertificate(store, { email: o.email, keyType: o.keyType ?? 'rsa2048', ...(o.validityDays !== undefined ? { validityDays: o.validityDays } : {}) });
  const addresses = issued!.certificate.emailAddresses;
  const updated = await tenants.registerIdentities(tenant, addresses);
  return { tenant: updated, addresses, fingerprint: issued!.certificate.fingerprint256 };
}
