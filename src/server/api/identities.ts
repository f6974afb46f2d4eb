/**
 * GET /api/v1/identities (scope admin): the caller tenant's identities with their
 * certificates' expiry, read from the store without opening a key. A certificate
 * is "current" when it could sign now (valid, not revoked, its key held and
 * active), which is what POST /sign uses; "retired" when its key was retired;
 * `daysLeft` counts the days left so a platform can renew in time (POST
 * /api/v1/identities, kakitome tenant identity, or ca renew: used at once).
 */
import type { Store } from '../../store/store.ts';
import type { ApiKeyRecord } from '../../store/tenant-directory.ts';
import { actorOf, type ServiceContext } from '../service-context.ts';

export type IdentityStatus = 'current' | 'expired' | 'not-yet-valid' | 'revoked' | 'retired' | 'no-key';

export interface IdentityView {
  address: string;
  certificates: Array<{ fingerprint: string; subject: string; issuer: string; notBefore: string; notAfter: string; status: IdentityStatus; daysLeft: number }>;
}

/** One address and its end-entity certificates as the API shows them. */
export async function identityView(store: Store, address: string): Promise<IdentityView> {
  const now = store.now();
  const certificates: IdentityView['certificates'] = [];
  for (const { record: r } of await store.certificateHistory(address)) {
    if (r.isCa) continue;
    const c = r.certificate;
    const key = r.hasPrivateKey && !r.revokedAt && c.notAfter > now && c.notBefore <= now ? await store.findKeyForCertificate(c) : undefined;
    const status: IdentityStatus = r.revokedAt ? 'revoked' : c.notAfter <= now ? 'expired' : c.notBefore > now ? 'not-yet-valid' : !key ? 'no-key' : key.status === 'active' ? 'current' : 'retired';
    certificates.push({
      fingerprint: c.fingerprint256, subject: c.subjectText, issuer: c.issuerText, notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString(),
      status, daysLeft: Math.max(0, Math.floor((c.notAfter.getTime() - now.getTime()) / 86_400_000)),
    });
  }
  return { address, certificates };
}

export async function listTenantIdentities(ctx: ServiceContext, key: ApiKeyRecord): Promise<IdentityView[]> {
  const tenant = await ctx.tenants.findTenant(key.tenant);
  const out: IdentityView[] = [];
  for (const address of tenant?.identities ?? []) out.push(await identityView(ctx.store, address));
  await ctx.store.actingAs(actorOf(key)).audit('api.identities', undefined, `${out.length} identities`);
  return out;
}
