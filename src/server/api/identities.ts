/**
 * GET /api/v1/identities (scope admin): the caller tenant's identities with their
 * certificates' expiry, read from the store without opening a key. A certificate
 * is "current" when it could sign now (valid, not revoked, its key held), which is
 * what POST /sign uses; "expiring" counts the days left so a platform can renew in
 * time (kakitome tenant identity, or ca renew: used at once).
 */
import type { ApiKeyRecord } from '../../store/tenant-directory.ts';
import { actorOf, type ServiceContext } from '../service-context.ts';

export interface IdentityView {
  address: string;
  certificates: Array<{ fingerprint: string; subject: string; issuer: string; notBefore: string; notAfter: string; status: 'current' | 'expired' | 'not-yet-valid' | 'revoked' | 'no-key'; daysLeft: number }>;
}

export async function listTenantIdentities(ctx: ServiceContext, key: ApiKeyRecord): Promise<IdentityView[]> {
  const tenant = await ctx.tenants.findTenant(key.tenant);
  const now = ctx.store.now();
  const out: IdentityView[] = [];
  for (const address of tenant?.identities ?? []) {
    const history = await ctx.store.certificateHistory(address);
    out.push({
      address,
      certificates: history.filter((h) => !h.record.isCa).map(({ record: r }) => ({
        fingerprint: r.certificate.fingerprint256,
        subject: r.certificate.subjectText,
        issuer: r.certificate.issuerText,
        notBefore: r.certificate.notBefore.toISOString(),
        notAfter: r.certificate.notAfter.toISOString(),
        status: r.revokedAt ? 'revoked' : r.certificate.notAfter <= now ? 'expired' : r.certificate.notBefore > now ? 'not-yet-valid' : r.hasPrivateKey ? 'current' : 'no-key',
        daysLeft: Math.max(0, Math.floor((r.certificate.notAfter.getTime() - now.getTime()) / 86_400_000)),
      })),
    });
  }
  await ctx.store.actingAs(actorOf(key)).audit('api.identities', undefined, `${out.length} identities`);
  return out;
}
