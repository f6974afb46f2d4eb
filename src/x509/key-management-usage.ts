/**
 * Whether a certificate's key may receive content-encryption keys (key
 * management), by the rules a sender applies before encrypting to it (RFC 8550
 * 4.4.2 and 4.4.4; RFC 5280 4.2.1.3 and 4.2.1.12): an RSA or ML-KEM key needs
 * keyEncipherment, an EC, X25519 or X448 key needs keyAgreement, extKeyUsage must
 * name emailProtection or anyExtendedKeyUsage, and an absent extension restricts
 * nothing. Other key types (Ed25519, ML-DSA...) never receive a key.
 *
 * The store uses it for the keys it decrypts with and the certificates it files
 * for encryption; the path validator for usage "encryption".
 *
 * And whether the key itself can keep a content key secret (refuseWeakRecipientKey):
 * asked where a recipient's key is taken for key transport or agreement.
 */
import { createPrivateKey, diffieHellman, type KeyObject } from 'node:crypto';
import { OID } from '../asn1/oids.ts';
import { KakitomeError } from '../errors.ts';
import type { Certificate } from './certificate.ts';

/**
 * The keyUsage bit a key of this type needs to receive a content key; undefined when it
 * cannot receive one, a key that cannot be read included (an EC point off its curve,
 * which OpenSSL refuses to decode): such a certificate is no candidate to encrypt to,
 * rather than an error that would stop every message to its address.
 */
export function keyManagementBit(cert: Certificate): 'keyEncipherment' | 'keyAgreement' | undefined {
  let t: string | undefined;
  try {
    t = cert.publicKey.asymmetricKeyType;
  } catch {
    return undefined;
  }
  if (t === 'rsa' || t === 'ml-kem-512' || t === 'ml-kem-768' || t === 'ml-kem-1024') return 'keyEncipherment';
  if (t === 'ec' || t === 'x25519' || t === 'x448') return 'keyAgreement';
  return undefined;
}

/** True when the certificate's key type, keyUsage and extKeyUsage all allow e-mail key management. */
export function allowsKeyManagement(cert: Certificate): boolean {
  const bit = keyManagementBit(cert);
  if (bit === undefined) return false;
  const ku = cert.keyUsage;
  if (ku && !ku.has(bit)) return false;
  const eku = cert.extendedKeyUsage;
  return !eku || eku.includes(OID.emailProtection) || eku.includes(OID.anyExtendedKeyUsage);
}

/** Why `e` is no RSA public exponent one may use, or undefined: odd, from 3 to 2^256-1 (S/MIME BR 6.1.6). */
export function rsaExponentProblem(e: bigint): string | undefined {
  return e < 3n || e % 2n === 0n || e >= 1n << 256n ? `an RSA public exponent is odd, from 3 to 2^256-1 (65537 is the usual one), not ${e}` : undefined;
}

/** The smallest RSA modulus a content key is wrapped to: the algorithm policy's minRsaBits for what we create (pki/algorithm-policy.ts), S/MIME BR 6.1.5. */
const MIN_RSA_BITS = 2048;
/** The curves a content key is agreed on (RFC 5753, S/MIME BR 6.1.5); X25519 and X448 are their own key types. */
const AGREEMENT_CURVES: ReadonlySet<string> = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

/**
 * A fixed private key per curve (PKCS#8, RFC 8410), only to ask OpenSSL whether it
 * agrees with a public key: nothing secret rides on it, and no key pair is made on a
 * serving thread. Clamping makes every scalar a multiple of the cofactor, so any
 * scalar shows a point of small order.
 */
const SMALL_ORDER_PROBES = {
  x25519: '302e020100300506032b656e04220420' + '42'.repeat(32),
  x448: '3046020100300506032b656f043a0438' + '42'.repeat(56),
};
const smallOrderProbes = new Map<string, KeyObject>();
/** The answers by public key (an X448 agreement costs some 180 µs of CPU, X25519 40): a gateway asks for the same recipients again and again. */
const smallOrderAnswers = new Map<string, string | undefined>();
const MAX_SMALL_ORDER_ANSWERS = 4096;

/**
 * X25519 and X448: a public key of small order (0, 1, ...) makes every shared secret
 * one of a few known values (RFC 7748 6.1, 7), so the key-encryption key is known too.
 * OpenSSL refuses to agree with such a point ("failed during derivation"), which broke
 * the encryption with a bare error; asked here first, exactly as OpenSSL judges it.
 */
function smallOrderProblem(key: KeyObject, type: 'x25519' | 'x448', spki: Uint8Array): string | undefined {
  const raw = Buffer.from(spki).toString('latin1');
  if (smallOrderAnswers.has(raw)) return smallOrderAnswers.get(raw);
  if (smallOrderAnswers.size >= MAX_SMALL_ORDER_ANSWERS) smallOrderAnswers.clear();
  const answer = agreementProblem(key, type);
  smallOrderAnswers.set(raw, answer);
  return answer;
}

function agreementProblem(key: KeyObject, type: 'x25519' | 'x448'): string | undefined {
  let probe = smallOrderProbes.get(type);
  if (!probe) smallOrderProbes.set(type, (probe = createPrivateKey({ key: Buffer.from(SMALL_ORDER_PROBES[type], 'hex'), format: 'der', type: 'pkcs8' })));
  try {
    diffieHellman({ privateKey: probe, publicKey: key });
    return undefined;
  } catch {
    return `its ${type === 'x25519' ? 'X25519' : 'X448'} key is a point of small order, whose shared secrets are known`;
  }
}

function weakKeyProblem(key: KeyObject, spki: Uint8Array): string | undefined {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'x25519' || key.asymmetricKeyType === 'x448') return smallOrderProblem(key, key.asymmetricKeyType, spki);
  if (key.asymmetricKeyType === 'rsa') {
    const bits = d?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) return `its RSA key has ${bits} bits, under the ${MIN_RSA_BITS} a content key is wrapped to`;
    // e = 1 makes the "encryption" the identity: the content key would travel in clear.
    return rsaExponentProblem(d?.publicExponent ?? 0n);
  }
  if (key.asymmetricKeyType === 'ec' && !AGREEMENT_CURVES.has(d?.namedCurve ?? '')) return `its EC key is on ${d?.namedCurve ?? 'a curve given by explicit parameters'}, not P-256, P-384 or P-521`;
  return undefined;
}

/** What to do about a certificate weakRecipientKeyProblem refuses (remedy 'recipientCertificate'). */
export const SOUND_RECIPIENT_KEY = 'Ask the recipient for a certificate with an RSA key of 2048 bits or more (exponent 65537) or a P-256, P-384, P-521, X25519 or X448 key.';

/**
 * Why a recipient certificate's key cannot keep a content key secret, or undefined:
 * an RSA key under 2048 bits or whose exponent is 1 (the content key in clear), even
 * or past 2^256; an EC key on a curve other than P-256/P-384/P-521, or one that cannot
 * be read at all (a point off its curve: OpenSSL refuses to decode it); an X25519 or
 * X448 point of small order. The internal CA never certifies such keys, but
 * certificates come from outside too (harvested, imported, from LDAP, given to
 * encrypt to).
 */
export function weakRecipientKeyProblem(cert: Certificate): string | undefined {
  let key: KeyObject;
  try {
    key = cert.publicKey;
  } catch {
    return 'its public key cannot be read (an EC point that is not on its curve, or a damaged key)';
  }
  return weakKeyProblem(key, cert.spki);
}

/**
 * WEAK_ALG for weakRecipientKeyProblem's keys. Asked where a recipient's key is taken
 * for key transport or agreement (cms/recipients/recipient-info.ts, every encryption);
 * the store asks weakRecipientKeyProblem before it harvests a certificate or offers
 * one to encrypt to (store/harvest-signer.ts encryptionKeyProblem), so that the
 * gateway treats the recipient as one without a usable certificate.
 */
export function refuseWeakRecipientKey(cert: Certificate): void {
  const problem = weakRecipientKeyProblem(cert);
  if (problem) throw new KakitomeError('WEAK_ALG', `Will not encrypt to certificate "${cert.subjectText}": ${problem}. ${SOUND_RECIPIENT_KEY}`, { remedy: 'recipientCertificate' });
}
