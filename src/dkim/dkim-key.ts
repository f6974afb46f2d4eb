/**
 * DKIM keys (RFC 6376 section 3.6, RFC 8463, RFC 8301): which keys may sign, how a
 * new one is made, and the DNS TXT record that publishes its public half.
 *
 * - RSA from 2048 to 4096 bits (RFC 8301 section 3.2 allows 1024; Kakitome's
 *   algorithm policy refuses RSA under 2048 everywhere, docs/security.md section 5),
 *   signing rsa-sha256; the record's p= is the SubjectPublicKeyInfo in base64, as
 *   OpenDKIM and every verifier read it.
 * - Ed25519 (RFC 8463), signing ed25519-sha256; p= is the raw 32-byte public key.
 *   Many receivers still ignore Ed25519 signatures (they count as none): a domain
 *   that signs with Ed25519 should sign with RSA too, which Kakitome does when both
 *   keys are active.
 *
 * Selectors and domains are DNS names of letters, digits and hyphens (RFC 6376
 * section 3.1: sub-domain syntax), stored lower-case.
 */
import type { KeyObject } from 'node:crypto';
import { generateKeyPairOffThread } from '../keys/generate-key-pair.ts';
import { KakitomeError } from '../errors.ts';

export type DkimKeyType = 'rsa' | 'ed25519';
/** What `dkim add --algorithm` offers. */
export type DkimKeyAlgorithm = 'rsa-2048' | 'ed25519';
export const DKIM_KEY_ALGORITHMS: readonly DkimKeyAlgorithm[] = ['rsa-2048', 'ed25519'];

const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 4096;
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const SELECTOR = new RegExp(`^(?=.{1,200}$)${LABEL}(?:\\.${LABEL})*$`);
const DOMAIN = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})+$`);

/** The selector, lower-cased; INVALID_ARGUMENT unless it is a DNS name (RFC 6376 section 3.1). */
export function checkSelector(selector: string): string {
  const s = selector.trim().toLowerCase();
  if (!SELECTOR.test(s)) throw new KakitomeError('INVALID_ARGUMENT', `"${selector}" is not a DKIM selector: use letters, digits and hyphens, labels separated by dots (e.g. 2026a or mail-2026).`);
  return s;
}

/** The signing domain, lower-cased without a final dot; INVALID_ARGUMENT unless it is a domain name (internationalised ones in their xn-- form). */
export function checkDkimDomain(domain: string): string {
  const d = domain.trim().toLowerCase().replace(/\.$/, '');
  if (!DOMAIN.test(d)) throw new KakitomeError('INVALID_ARGUMENT', `"${domain}" is not a mail domain (e.g. example.com; internationalised domains in their xn-- form).`);
  return d;
}

/** The key's type for DKIM; KEY_INVALID for a key DKIM cannot or must not use. */
export function dkimKeyType(key: KeyObject): DkimKeyType {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) throw new KakitomeError('KEY_INVALID', `An RSA key of ${bits} bits cannot sign DKIM here: use ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits (RFC 8301; shorter keys are refused as weak, longer ones do not fit common DNS setups).`);
    return 'rsa';
  }
  throw new KakitomeError('KEY_INVALID', `A ${key.asymmetricKeyType ?? 'unknown'} key cannot sign DKIM: use RSA (2048 to 4096 bits) or Ed25519 (RFC 6376, RFC 8463).`);
}

/** The signature algorithm (a= tag) a key of this type signs with. */
export function dkimSignatureAlgorithm(type: DkimKeyType): 'rsa-sha256' | 'ed25519-sha256' {
  return type === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256';
}

/** A new private key for `algorithm`, made off the thread (keys/generate-key-pair.ts). */
export async function generateDkimKey(algorithm: DkimKeyAlgorithm): Promise<KeyObject> {
  if (algorithm === 'ed25519') return (await generateKeyPairOffThread({ type: 'ed25519' })).privateKey;
  if (algorithm === 'rsa-2048') return (await generateKeyPairOffThread({ type: 'rsa', modulusLength: 2048 })).privateKey;
  throw new KakitomeError('INVALID_ARGUMENT', `Unknown DKIM key algorithm "${String(algorithm)}": use ${DKIM_KEY_ALGORITHMS.join(' or ')}.`);
}

/** The p= value: SubjectPublicKeyInfo for RSA, the raw 32-byte key for Ed25519 (RFC 8463 section 4.2), base64. */
export function dkimPublicKeyData(publicKey: KeyObject): string {
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  // An Ed25519 SubjectPublicKeyInfo is a fixed 12-byte prefix and the 32-byte key (RFC 8410 section 4).
  return (dkimKeyType(publicKey) === 'ed25519' ? spki.subarray(spki.length - 32) : spki).toString('base64');
}

export interface DkimDnsRecord {
  /** The owner name: SELECTOR._domainkey.DOMAIN. */
  name: string;
  /** The TXT record's text, as one string. */
  value: string;
  /** The same as a zone-file line, the text cut into strings of at most 255 bytes (RFC 1035 section 3.3.14). */
  zoneLine: string;
}

/** The TXT record that publishes the key (RFC 6376 section 3.6.1). */
export function formatDkimDnsRecord(domain: string, selector: string, publicKey: KeyObject): DkimDnsRecord {
  const name = `${selector}._domainkey.${domain}`;
  const value = `v=DKIM1; k=${dkimKeyType(publicKey)}; p=${dkimPublicKeyData(publicKey)}`;
  const strings: string[] = [];
  for (let i = 0; i < value.length; i += 255) strings.push(`"${value.slice(i, i + 255)}"`);
  return { name, value, zoneLine: `${name}. IN TXT ( ${strings.join(' ')} )` };
}
