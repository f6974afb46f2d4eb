/**
 * POST /api/v1/verify: the verdict of `kakitome verify --json`, from the same job
 * (src/cli/jobs/verify-job.ts) over the service's store: its trusted CA
 * certificates are the anchors, revocation as configured (--revocation), judged by
 * the validator the service keeps between requests (service-cache.ts). The
 * service does not harvest: a tenant's verification must not change the
 * certificate directory every tenant encrypts with.
 */
import { createVerifyJob } from '../../cli/jobs/verify-job.ts';
import type { VerdictView } from '../../cli/verdict-view.ts';
import type { ApiKeyRecord } from '../../store/tenant-directory.ts';
import { actorOf, type ServiceContext } from '../service-context.ts';
import { serviceCache, serviceTrustOptions } from '../service-cache.ts';

export async function verifyForTenant(ctx: ServiceContext, key: ApiKeyRecord, message: Buffer): Promise<VerdictView> {
  const store = ctx.store.actingAs(actorOf(key));
  const validateSigner = await serviceCache(ctx).signerValidator(ctx.config.revocation);
  const job = await createVerifyJob({ ...serviceTrustOptions(ctx.config.revocation), store: { store }, harvest: false, validateSigner });
  const result = await job(message);
  const verdict = result.verdict!;
  await store.audit('api.verify', undefined, `${verdict.status}${verdict.code ? ` ${verdict.code}` : ''}, ${message.length} bytes`);
  return verdict;
}
