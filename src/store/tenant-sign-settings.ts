/**
 * A tenant's signing settings (issue 10), read and shown the same way by the
 * store (tenant-directory.ts, which changes them), the CLI (`kakitome tenant
 * settings`), the API (GET/PATCH /api/v1/tenants/{tenant}/settings) and the console.
 * No dependencies: the CLI loads it for its output without loading the store.
 */
import type { SqlValue } from './sql-engine.ts';

/**
 * How the tenant's messages are signed when the request does not say (POST
 * /api/v1/sign's query, a batch's) and always on the SMTP submission port, which has
 * no per-message options: `kakitome tenant settings`. Every setting is off (absent)
 * by default. 7-bit preparation is not a setting: signing always puts the content in
 * canonical 7-bit form, as the CLI does.
 */
export interface TenantSignSettings {
  /** An opaque application/pkcs7-mime signed-data instead of multipart/signed. */
  opaque?: boolean;
  /** The digest; absent: the key's default (SHA-256; fixed for Ed25519). */
  hash?: SignHash;
  /** RSASSA-PSS instead of PKCS#1 v1.5 (RSA keys). */
  pss?: boolean;
  /** DKIM-sign the signed message with the From domain's active DKIM keys (kakitome dkim add); refused when it has none. */
  dkim?: boolean;
}

export type SignHash = 'sha256' | 'sha384' | 'sha512';
export const SIGN_HASHES: readonly SignHash[] = ['sha256', 'sha384', 'sha512'];

/** A change to the settings: a setting given as false (or hash null) goes back to its default; one not given stays. */
export interface TenantSignSettingsChange {
  opaque?: boolean;
  hash?: SignHash | null;
  pss?: boolean;
  dkim?: boolean;
}

/** Every setting with the value in force, defaults included, as the CLI (--json), the API and the console show them. */
export function signSettingsInForce(s: TenantSignSettings): { opaque: boolean; hash: SignHash | 'default'; pss: boolean; dkim: boolean } {
  return { opaque: s.opaque === true, hash: s.hash ?? 'default', pss: s.pss === true, dkim: s.dkim === true };
}

/** The stored form (tenants.sign_settings, JSON): only known settings with values of their type; anything else is ignored. */
export function parseSignSettings(text: SqlValue | undefined): TenantSignSettings {
  if (text === null || text === undefined) return {};
  let v: unknown;
  try {
    v = JSON.parse(String(text));
  } catch {
    return {};
  }
  const o = (v && typeof v === 'object' ? v : {}) as Record<string, unknown>;
  return {
    ...(o.opaque === true ? { opaque: true } : {}),
    ...(SIGN_HASHES.includes(o.hash as SignHash) ? { hash: o.hash as SignHash } : {}),
    ...(o.pss === true ? { pss: true } : {}),
    ...(o.dkim === true ? { dkim: true } : {}),
  };
}
