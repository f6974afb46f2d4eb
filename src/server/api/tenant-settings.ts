/**
 * GET and PATCH /api/v1/tenants/{tenant}/settings (scope admin): the caller
 * tenant's signing settings, shown and changed by the rules of `kakitome tenant
 * settings` (TenantDirectory.setSignSettings: an unknown digest refused, DKIM only
 * while one of the tenant's domains has an active key), in force from the next
 * message on every node. A name other than the key's own tenant is 404, whether
 * or not such a tenant exists: a key never learns of other tenants. Reads are
 * audited as api.tenant.settings, changes as tenant.settings, under the key.
 */
import type { z } from 'zod';
import { signSettingsInForce, TenantDirectory, type ApiKeyRecord, type Tenant, type TenantSignSettingsChange } from '../../store/tenant-directory.ts';
import { ProblemError } from '../problem.ts';
import type { TenantSettings, TenantSettingsChange } from '../schemas.ts';
import { actorOf, type ServiceContext } from '../service-context.ts';

type SettingsView = z.infer<typeof TenantSettings>;

function view(t: Tenant): SettingsView {
  return { tenant: t.name, signing: signSettingsInForce(t.signSettings) };
}

function ownTenant(key: ApiKeyRecord, name: string): void {
  if (name !== key.tenant) throw new ProblemError(404, 'NOT_FOUND', `No tenant "${name}" for this API key: a key reads and changes only its own tenant's settings (${key.tenant}).`);
}

export async function tenantSettingsFor(ctx: ServiceContext, key: ApiKeyRecord, name: string): Promise<SettingsView> {
  ownTenant(key, name);
  const store = ctx.store.actingAs(actorOf(key));
  const t = await new TenantDirectory(store).findTenant(key.tenant);
  if (!t) throw new ProblemError(404, 'NOT_FOUND', `No tenant "${name}".`);
  await store.audit('api.tenant.settings', key.tenant, JSON.stringify(t.signSettings));
  return view(t);
}

export async function changeTenantSettingsFor(ctx: ServiceContext, key: ApiKeyRecord, name: string, change: z.infer<typeof TenantSettingsChange>): Promise<SettingsView> {
  ownTenant(key, name);
  const changes: TenantSignSettingsChange = {
    ...(change.opaque !== undefined ? { opaque: change.opaque } : {}),
    ...(change.pss !== undefined ? { pss: change.pss } : {}),
    ...(change.dkim !== undefined ? { dkim: change.dkim } : {}),
    ...(change.hash !== undefined ? { hash: change.hash === 'default' ? null : change.hash } : {}),
  };
  return view(await new TenantDirectory(ctx.store.actingAs(actorOf(key))).setSignSettings(key.tenant, changes));
}
