/**
 * POST /api/v1/sign: the caller tenant's identity for the message's From address
 * signs it. Every decision is the library's: the sender a reader sees
 * (readSigningAddress), the tenant's domains and identities (TenantDirectory),
 * the current identity (Store.findSigningIdentity: valid now, not revoked, active
 * key, allowed to sign; kept by the service cache only while the store's cache
 * revision stands, so a new or renewed identity is used at once), and signing (signMessage: 7-bit canonical content, RFC 9788
 * header protection). With dkim=true the signed message is DKIM-signed (signDkim)
 * with the active keys of the From domain: a domain the tenant owns, or
 * authorizeSender would have refused the From address, so a tenant only ever signs
 * with its own domains' DKIM keys.
 */
import type { z } from 'zod';
import { KakitomeError } from '../../errors.ts';
import { DEFAULT_LIMITS } from '../../limits.ts';
import { signSplitMessage } from '../../smime/sign-message.ts';
import { readSigningAddress, readSigningAddressOf } from '../../smime/read-signing-address.ts';
import { splitMessage, type SplitMessage } from '../../smime/split-message.ts';
import { signDkim } from '../../dkim/sign-dkim.ts';
import { DkimKeyDirectory } from '../../store/dkim-key-directory.ts';
import { domainOf, type ApiKeyRecord } from '../../store/tenant-directory.ts';
import type { SignQuery } from '../schemas.ts';
import type { ServiceContext } from '../service-context.ts';
import { serviceCache } from '../service-cache.ts';

/**
 * `action`: the audit log's name for this use (api.sign; smtp.sign for the
 * submission port). The caller refreshed the service cache for this request
 * (ServiceCache.refresh), so what it reads is current.
 */
export async function signForTenant(ctx: ServiceContext, key: ApiKeyRecord, message: Buffer, query: z.infer<typeof SignQuery>, action = 'api.sign'): Promise<Buffer> {
  // One parse serves the sender's rules and the signing (the header section was read twice:
  // 12% of a P-256 request's allocations). A message that does not split (LIMIT, MALFORMED) is
  // still judged by its From address first and refused for the split only where signing began.
  let split: SplitMessage | undefined;
  let unsplit: unknown;
  try {
    split = splitMessage(message, DEFAULT_LIMITS);
  } catch (e) {
    unsplit = e;
  }
  const address = split ? readSigningAddressOf(split.root.headers) : readSigningAddress(message);
  const cache = serviceCache(ctx);
  await cache.authorizeSender(key.tenant, address);
  const store = cache.actingFor(key);
  const dkimKeys = query.dkim === 'true' ? await new DkimKeyDirectory(store).signingKeys(domainOf(address)) : [];
  if (query.dkim === 'true' && !dkimKeys.length) {
    throw new KakitomeError('KEY_INVALID', `No active DKIM key for ${domainOf(address)}: add one (kakitome dkim add ${domainOf(address)} --selector SEL) and publish its record, or sign without dkim=true. The message was not signed.`);
  }
  const identity = await cache.signingIdentity(store, address);
  if (!identity) {
    throw new KakitomeError('KEY_INVALID', `No current signing identity for ${address}: its certificate expired or was revoked, or none was added (kakitome tenant identity ${key.tenant} --p12 FILE, or --email ${address}). The message was not signed.`);
  }
  if (!split) throw unsplit;
  const signed = signSplitMessage(split, {
    signers: [{ certificate: identity.certificate, key: identity.key, ...(query.hash ? { hash: query.hash } : {}), ...(query.pss === 'true' ? { rsaPadding: 'pss' as const } : {}) }],
    certificates: identity.chain,
    opaque: query.opaque === 'true',
  });
  const out = dkimKeys.length ? signDkim(signed, { signers: dkimKeys }) : signed;
  // The message's row names the certificate (its key's opening has a key.use.sign row); the answer waits for its commit.
  await store.audit(action, identity.certificate.fingerprint256, `${address}, ${message.length} bytes${dkimKeys.length ? `, DKIM ${dkimKeys.map((k) => k.selector).join(', ')}` : ''}`);
  return out;
}
