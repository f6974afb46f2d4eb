/**
 * The private keys a tenant of the signing service may decrypt an envelope with:
 * those of its recipients whose certificate names an address the tenant owns
 * (TenantDirectory.ownsAddress: its identities; for the default tenant, every
 * address no other tenant claims). Recipients are filtered by their identifiers
 * before any key is opened, so another tenant's key is never unsealed for the
 * caller, nor audited as used by it.
 */
import { parseEnvelopeFromContentInfo } from '../cms/enveloped-data/parse.ts';
import { recipientIdentifiers } from '../cms/recipients/recipient-info.ts';
import type { CmsIdentifier } from '../cms/identifier.ts';
import type { Limits } from '../limits.ts';
import type { KeyObject } from 'node:crypto';
import type { Certificate } from '../x509/certificate.ts';
import type { Store } from './store.ts';
import type { TenantDirectory } from './tenant-directory.ts';

export async function findTenantEnvelopeKeys(store: Store, tenants: TenantDirectory, tenant: string, envelope: Uint8Array, limits?: Partial<Limits>): Promise<{ key: KeyObject; certificate: Certificate }[]> {
  const ids = parseEnvelopeFromContentInfo(envelope, limits).recipients.flatMap(recipientIdentifiers);
  const owned: CmsIdentifier[] = [];
  for (const id of ids) {
    for (const rec of await store.findCertificatesByIdentifier(id)) {
      let mine = false;
      for (const address of rec.certificate.emailAddresses) if (await tenants.ownsAddress(tenant, address)) mine = true;
      if (mine) {
        owned.push(id);
        break;
      }
    }
  }
  return owned.length ? store.findDecryptionKeys(owned) : [];
}
