/**
 * POST /api/v1/decrypt: `kakitome decrypt` over the service's store, from the same
 * job (src/cli/jobs/decrypt-job.ts), so its rules hold unchanged: only an
 * encrypted body is opened (a message that is not encrypted, or the EFAIL shape,
 * is MALFORMED), CBC content without a trusted signature of its sender inside is
 * never released (UNAUTH_ENC), every decryption failure is the one DECRYPT_FAILED,
 * and content under a failing inner signature is withheld. The keys are the
 * caller tenant's only (findTenantEnvelopeKeys): another tenant's key is never
 * opened for it.
 */
import { createDecryptJob } from '../../cli/jobs/decrypt-job.ts';
import type { VerdictView } from '../../cli/verdict-view.ts';
import { findMessageEnvelope } from '../../cli/find-message-envelope.ts';
import { KakitomeError } from '../../errors.ts';
import { findTenantEnvelopeKeys } from '../../store/find-tenant-envelope-keys.ts';
import type { ApiKeyRecord } from '../../store/tenant-directory.ts';
import { actorOf, type ServiceContext } from '../service-context.ts';
import { serviceCache, serviceTrustOptions } from '../service-cache.ts';

export async function decryptForTenant(ctx: ServiceContext, key: ApiKeyRecord, message: Buffer): Promise<{ verdict: VerdictView; message?: Uint8Array }> {
  const store = ctx.store.actingAs(actorOf(key));
  const envelope = findMessageEnvelope(message);
  if (envelope === undefined) throw new KakitomeError('MALFORMED', 'The message is not encrypted (no application/pkcs7-mime enveloped-data or authEnveloped-data body): nothing was decrypted.');
  const keys = await findTenantEnvelopeKeys(store, ctx.tenants, key.tenant, envelope);
  if (keys.length === 0) throw new KakitomeError('NOT_RECIPIENT', `No recipient of this message is an identity of tenant "${key.tenant}": it was not decrypted.`);
  const job = await createDecryptJob({
    keys, store: { store }, harvest: false,
    trust: serviceTrustOptions(ctx.config.revocation), validateSigner: await serviceCache(ctx).signerValidator(ctx.config.revocation),
  });
  const result = await job(message);
  await store.audit('api.decrypt', undefined, `${result.verdict!.status}${result.output ? '' : ', withheld'}, ${message.length} bytes`);
  return { verdict: result.verdict!, ...(result.output ? { message: result.output } : {}) };
}
