/**
 * POST /api/v1/identities (scope admin): a new signing identity for the caller's
 * tenant, from an uploaded PKCS#12 or issued by the internal CA, by the same rules
 * as `kakitome tenant identity` (store/add-tenant-identity.ts,
 * ca/issue-tenant-identity.ts): within the tenant's domains, never another
 * tenant's address, refused before anything is stored. The file is read in a
 * worker thread (keys/import-pkcs12-off-thread.ts) with importPkcs12's bounds,
 * legacy RC2/RC4 files included, so the requests being answered meanwhile do not
 * wait for it.
 *
 * Nothing is cached: POST /sign finds the identity in the store on every request,
 * so the new one signs from the next request on, on every node sharing the store.
 */
import { issueTenantIdentity } from '../../ca/issue-tenant-identity.ts';
import { importPkcs12OffThread } from '../../keys/import-pkcs12-off-thread.ts';
import { addTenantIdentityFromPkcs12 } from '../../store/add-tenant-identity.ts';
import { TenantDirectory, type ApiKeyRecord } from '../../store/tenant-directory.ts';
import type { IdentityUpload } from '../read-identity-upload.ts';
import { actorOf, type ServiceContext } from '../service-context.ts';
import { identityView, type IdentityView } from './identities.ts';

export async function addIdentityForTenant(ctx: ServiceContext, key: ApiKeyRecord, upload: IdentityUpload): Promise<{ certificate: string; identities: IdentityView[] }> {
  const store = ctx.store.actingAs(actorOf(key));
  // The directory audits as the caller too (tenant.identity by api:<tenant>/<key id>).
  const tenants = new TenantDirectory(store);
  const added = upload.kind === 'pkcs12'
    ? await addTenantIdentityFromPkcs12(store, tenants, key.tenant, await importPkcs12OffThread(upload.bytes, upload.password), `upload by ${actorOf(key)}`)
    : await issueTenantIdentity(store, tenants, key.tenant, { email: upload.request.email, ...(upload.request.keyType ? { keyType: upload.request.keyType } : {}), ...(upload.request.days ? { validityDays: upload.request.days } : {}) });
  await store.audit('api.identities.add', added.fingerprint, `${added.addresses.join(', ')} ${upload.kind === 'pkcs12' ? 'from a PKCS#12 upload' : 'issued by the internal CA'}`);
  const identities: IdentityView[] = [];
  for (const a of added.addresses) identities.push(await identityView(store, a));
  return { certificate: added.fingerprint, identities };
}
