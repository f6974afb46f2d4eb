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
 * with its own domains' DKIM keys. An option the request does not give (opaque,
 * hash, pss, dkim) is the tenant's setting (TenantSignSettings); the SMTP submission port gives none, so its messages are
 * signed by the settings alone (signOptions).
 */
import type { z } from 'zod';
import { KakitomeError } from '../../errors.ts';
import { DEFAULT_LIMITS } from '../../limits.ts';
import { signSplitMessageChunks } from '../../smime/sign-message.ts';
import { joinChunks } from '../../mime/build-entity.ts';
import type { SignerOptions } from '../../cms/signed-data/sign.ts';
import { readSigningAddress, readSigningAddressOf } from '../../smime/read-signing-address.ts';
import { splitMessage, type SplitMessage } from '../../smime/split-message.ts';
import { signDkim } from '../../dkim/sign-dkim.ts';
import { DkimKeyDirectory } from '../../store/dkim-key-directory.ts';
import type { KeyUseRecord } from '../../store/record-key-use.ts';
import { domainOf, type ApiKeyRecord, type SignHash, type TenantSignSettings } from '../../store/tenant-directory.ts';
import type { SignQuery } from '../schemas.ts';
import type { ServiceContext } from '../service-context.ts';
import { serviceCache } from '../service-cache.ts';

/**
 * `action`: the audit log's name for this use (api.sign; smtp.sign for the
 * submission port). The caller refreshed the service cache for this request
 * (ServiceCache.refresh), so what it reads is current.
 */
/** What the request says, else the tenant's setting, else the default (multipart/signed, the key's digest, PKCS#1 v1.5, no DKIM). */
export function signOptions(query: z.infer<typeof SignQuery>, settings: TenantSignSettings): { opaque: boolean; hash?: SignHash; pss: boolean; dkim: boolean } {
  const flag = (asked: 'true' | 'false' | undefined, setting: boolean | undefined) => (asked === undefined ? setting === true : asked === 'true');
  const hash = query.hash ?? settings.hash;
  return { opaque: flag(query.opaque, settings.opaque), ...(hash ? { hash } : {}), pss: flag(query.pss, settings.pss), dkim: flag(query.dkim, settings.dkim) };
}

export async function signForTenant(ctx: ServiceContext, key: ApiKeyRecord, message: Buffer, query: z.infer<typeof SignQuery>, action = 'api.sign'): Promise<Buffer> {
  const { signed, use } = await makeTenantSignature(ctx, key, message, query, action);
  // The message's row names the certificate (its key's opening has a key.use.sign row); the answer waits for its commit.
  await serviceCache(ctx).actingFor(key).audit(use.action, use.object, use.detail);
  return signed;
}

/** A message signed for a tenant, and the audit record of that use, not yet recorded. */
export interface TenantSignature {
  signed: Buffer;
  /** The signed message in pieces (ASCII strings and bytes, see joinChunks), for a caller that writes it into a buffer of its own (a batch chunk's output). */
  chunks: ReadonlyArray<Uint8Array | string>;
  /** The use as the audit log names it: the action, the certificate's SHA-256 fingerprint, the sender and size. */
  readonly use: KeyUseRecord & { object: string; detail: string };
  /** What the use's record is made of, for a caller that makes it later (a batch chunk, at its completion: sign-batch-chunk.ts). */
  readonly parts: KeyUseParts;
}

/** A signing use's record in parts: `use` is made of them (keyUseDetail). */
export interface KeyUseParts {
  at: Date;
  actor: string;
  action: string;
  /** The certificate's SHA-256 fingerprint. */
  object: string;
  /** The From address it was signed for. */
  sender: string;
  /** The message's size as received. */
  bytes: number;
  /** The DKIM selectors that signed it too, comma-separated; empty when none. */
  dkim: string;
}

/** The audit row's detail of a signing use: sender, size, DKIM selectors, and `note` (a batch's id and the message's index). */
export function keyUseDetail(sender: string, bytes: number, dkim: string, note?: string): string {
  return `${sender}, ${bytes} bytes${dkim ? `, DKIM ${dkim}` : ''}${note ? `, ${note}` : ''}`;
}

/**
 * signForTenant without the recording: the caller records `use` before anything
 * made with it leaves (a batch chunk: in the transaction that completes the chunk
 * and makes its result readable, src/store/batch-queue.ts, from `parts`).
 */
export async function makeTenantSignature(ctx: ServiceContext, key: ApiKeyRecord, message: Buffer, query: z.infer<typeof SignQuery>, action: string): Promise<TenantSignature> {
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
  const cache = serviceCache(ctx);
  const address = split ? readSigningAddressOf(split.root.headers, cache.signingAddresses) : readSigningAddress(message, DEFAULT_LIMITS, cache.signingAddresses);
  await cache.authorizeSender(key.tenant, address);
  const store = cache.actingFor(key);
  const options = signOptions(query, await cache.signSettings(key.tenant));
  const dkimKeys = options.dkim ? await new DkimKeyDirectory(store).signingKeys(domainOf(address)) : [];
  if (options.dkim && !dkimKeys.length) {
    const asked = query.dkim === 'true' ? 'dkim=true asked for it' : `the tenant's setting dkim asked for it: turn it off for tenant "${key.tenant}"`;
    throw new KakitomeError('KEY_INVALID', `No active DKIM key for ${domainOf(address)}: an administrator adds one for ${domainOf(address)} and publishes its record, or sign without DKIM (${asked}). The message was not signed.`, { remedy: 'dkimKey' });
  }
  const identity = await cache.signingIdentity(store, address);
  if (!identity) {
    throw new KakitomeError('KEY_INVALID', `No current signing identity for ${address}: its certificate expired or was revoked, or none was added (an administrator adds ${address} to tenant "${key.tenant}" as an identity: its key and certificate, or a certificate the internal CA issues). The message was not signed.`, { remedy: 'tenantIdentity' });
  }
  if (!split) throw unsplit;
  // The tenant's pss setting applies to its RSA identities; pss=true asked of another key is refused as before.
  const signer: SignerOptions = { certificate: identity.certificate, key: identity.key };
  if (options.hash) signer.hash = options.hash;
  if (options.pss && (query.pss === 'true' || identity.key.asymmetricKeyType === 'rsa')) signer.rsaPadding = 'pss';
  const chunks = signSplitMessageChunks(split, { signers: [signer], certificates: identity.chain, opaque: options.opaque });
  const dkimSigned = dkimKeys.length ? signDkim(joinChunks(chunks), { signers: dkimKeys }) : undefined;
  const parts: KeyUseParts = { at: store.now(), actor: store.actor, action, object: identity.certificate.fingerprint256, sender: address, bytes: message.length, dkim: dkimKeys.length ? dkimKeys.map((k) => k.selector).join(', ') : '' };
  return new MadeSignature(dkimSigned ? [dkimSigned] : chunks, parts, dkimSigned);
}

/**
 * The signed message is joined only when asked for: a batch chunk writes its pieces straight
 * into its output; and the use's record made only when asked for: a batch chunk keeps its parts.
 */
class MadeSignature implements TenantSignature {
  readonly chunks: ReadonlyArray<Uint8Array | string>;
  readonly parts: KeyUseParts;
  #signed: Buffer | undefined;

  /** `signed`: the message already whole (DKIM signs the joined message), so it is not joined again. */
  constructor(chunks: ReadonlyArray<Uint8Array | string>, parts: KeyUseParts, signed?: Buffer) {
    this.chunks = chunks;
    this.parts = parts;
    this.#signed = signed;
  }

  get use(): TenantSignature['use'] {
    const p = this.parts;
    return { at: p.at, actor: p.actor, action: p.action, object: p.object, detail: keyUseDetail(p.sender, p.bytes, p.dkim) };
  }

  get signed(): Buffer {
    return (this.#signed ??= joinChunks(this.chunks));
  }
}
