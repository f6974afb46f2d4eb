/**
 * POST /api/v1/decrypt: `kakitome decrypt` over the service's store, from the same
 * library operation (src/operations/decrypt-with-trust.ts), so its rules hold
 * unchanged: only an encrypted body is opened (a message that is not encrypted, or
 * the EFAIL shape, is MALFORMED), CBC content without a trusted signature of its
 * sender inside is never released (UNAUTH_ENC), every decryption failure is the
 * one DECRYPT_FAILED, and content under a failing inner signature is withheld. The
 * keys are the caller tenant's only (findTenantEnvelopeKeys): another tenant's key
 * is never opened for it.
 */
import { decryptWithTrust, requireMessageEnvelope } from '../../operations/decrypt-with-trust.ts';
import type { VerdictView } from '../../smime/verdict-view.ts';
import { KakitomeError } from '../../errors.ts';
import { findTenantEnvelopeKeys } from '../../store/find-tenant-envelope-keys.ts';
import type { ApiKeyRecord } from '../../store/tenant-directory.ts';
import { actorOf, type ServiceContext } from '../service-context.ts';
import { serviceCache } from '../service-cache.ts';

export async function decryptForTenant(ctx: ServiceContext, key: ApiKeyRecord, message: Buffer): Promise<{ verdict: VerdictView; message?: Uint8Array }> {
  const store = ctx.store.actingAs(actorOf(key));
  const envelope = requireMessageEnvelope(message);
  const keys = await findTenantEnvelopeKeys(store, ctx.tenants, key.tenant, envelope);
  if (keys.length === 0) throw new KakitomeError('NOT_RECIPIENT', `No recipient of this message is an identity of tenant "${key.tenant}": it was not decrypted.`);
  const validateSigner = await serviceCache(ctx).signerValidator(ctx.config.revocation);
  const { view, output } = await decryptWithTrust(message, keys, { validateSigner, certificates: [], allowLegacy: false });
  await store.audit('api.decrypt', undefined, `${view.status}${output ? '' : ', withheld'}, ${message.length} bytes`);
  return { verdict: view, ...(output ? { message: output } : {}) };
}
