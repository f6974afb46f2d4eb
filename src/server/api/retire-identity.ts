/**
 * DELETE /api/v1/identities/{address} (scope admin): the caller tenant's identity
 * stops signing, by the rule of `kakitome tenant retire-identity`
 * (store/retire-tenant-identity.ts): its keys are retired, from the next request
 * on and on every node; they still decrypt old mail for the tenant. An address
 * that is not the tenant's is 404, whoever else it belongs to.
 */
import { retireTenantIdentity, type RetiredTenantIdentity } from '../../store/retire-tenant-identity.ts';
import { TenantDirectory, type ApiKeyRecord } from '../../store/tenant-directory.ts';
import { actorOf, type ServiceContext } from '../service-context.ts';
import { identityView, type IdentityView } from './identities.ts';

export async function retireIdentityForTenant(ctx: ServiceContext, key: ApiKeyRecord, address: string, fingerprint: string | undefined): Promise<RetiredTenantIdentity & { identity: IdentityView }> {
  const store = ctx.store.actingAs(actorOf(key));
  const r = await retireTenantIdentity(store, new TenantDirectory(store), key.tenant, address, fingerprint ? { fingerprint } : {});
  await store.audit('api.identities.retire', r.address, r.retired.length ? `keys ${r.retired.map((k) => k.keyId).join(', ')}` : 'no active key');
  return { ...r, identity: await identityView(store, r.address) };
}
