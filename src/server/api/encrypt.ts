/**
 * POST /api/v1/encrypt: `kakitome encrypt --to ADDRESS` over the service's store,
 * from the same library operation (src/operations/encrypt-to-trusted-recipients.ts):
 * recipients validated now against the store's anchors, the cipher from their
 * capabilities, the sender's Sent copy. The From address passes the same checks
 * as for signing (the reader's rules, then the tenant's domains and identities):
 * the service handles outgoing mail of its tenants' identities only.
 */
import type { z } from 'zod';
import { prepareTrustedEncryption } from '../../operations/encrypt-to-trusted-recipients.ts';
import { storeTrustOptions } from '../../operations/trust-options.ts';
import { readSigningAddress } from '../../smime/read-signing-address.ts';
import type { ApiKeyRecord } from '../../store/tenant-directory.ts';
import type { EncryptQuery } from '../schemas.ts';
import { actorOf, type ServiceContext } from '../service-context.ts';
import { serviceCache } from '../service-cache.ts';

export async function encryptForTenant(ctx: ServiceContext, key: ApiKeyRecord, message: Buffer, query: z.infer<typeof EncryptQuery>): Promise<Uint8Array> {
  const from = readSigningAddress(message, undefined, serviceCache(ctx).signingAddresses);
  await ctx.tenants.authorizeSender(key.tenant, from);
  const store = ctx.store.actingAs(actorOf(key));
  const encrypt = await prepareTrustedEncryption(store, {
    certificates: [], addresses: query.to, oaep: query.oaep === 'true', signFromStore: query.sign === 'true', self: true,
    trust: storeTrustOptions(ctx.config.revocation),
    ...(query.cipher ? { cipher: query.cipher } : {}),
    ...(query.hideSubject === 'true' ? { hideSubject: true } : {}),
  });
  const { output } = await encrypt(message, from.trim().toLowerCase());
  await store.audit('api.encrypt', undefined, `from ${from} to ${query.to.join(', ')}${query.sign === 'true' ? ', signed' : ''}, ${message.length} bytes`);
  return output;
}
