/**
 * POST /api/v1/verify: the verdict of `kakitome verify --json`, from the same
 * library operation (src/operations/verify-with-trust.ts) over the service's
 * store: its trusted CA certificates are the anchors, revocation as configured
 * (--revocation), judged by the validator the service keeps between requests
 * (service-cache.ts). The service does not harvest: a tenant's verification must
 * not change the certificate directory every tenant encrypts with.
 */
import { verifyWithTrust } from '../../operations/verify-with-trust.ts';
import type { VerdictView } from '../../smime/verdict-view.ts';
import type { ApiKeyRecord } from '../../store/tenant-directory.ts';
import { actorOf, type ServiceContext } from '../service-context.ts';
import { serviceCache } from '../service-cache.ts';

export async function verifyForTenant(ctx: ServiceContext, key: ApiKeyRecord, message: Buffer): Promise<VerdictView> {
  const store = ctx.store.actingAs(actorOf(key));
  const validateSigner = await serviceCache(ctx).signerValidator(ctx.config.revocation);
  const { view } = await verifyWithTrust(message, { validateSigner, certificates: [], allowLegacy: false });
  await store.audit('api.verify', undefined, `${view.status}${view.code ? ` ${view.code}` : ''}, ${message.length} bytes`);
  return view;
}
