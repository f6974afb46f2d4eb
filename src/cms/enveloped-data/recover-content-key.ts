/**
 * Choosing the RecipientInfo to open and recovering the content-encryption key.
 *
 * Matching (recipient identifiers are public, so failing to match is reported as
 * NOT_RECIPIENT):
 * - a key offered WITH its certificate opens the first RecipientInfo whose
 *   identifier names that certificate (issuerAndSerialNumber or subjectKeyIdentifier),
 *   and only that one: an honest sender wraps the content key once per recipient,
 *   and an envelope naming our certificate 200 times must not buy 200 private-key
 *   operations and 200 content decryptions (issue 9, item 10). The same private
 *   key offered twice (a certificate renewed on the same key) is opened once too;
 * - a key offered WITHOUT a certificate is tried on every RecipientInfo of a
 *   matching key type, once per distinct identifier. Cost: one private-key
 *   operation per such recipient, and for each key the layer above may run one
 *   content decryption per plausible key. Pass certificates whenever you have them.
 * Every private-key operation, certificate matches included, counts against
 * limits.maxKeyAttempts; past it the envelope is refused (LIMIT) before any is made.
 *
 * Once a recipient is chosen, nothing about the key layer is revealed: a failed
 * OAEP decoding, key-wrap integrity check, bad originator point, or an RSA
 * PKCS#1 v1.5 result of the wrong length (implicit rejection) is replaced by a
 * random key of the expected length (RFC 3218 2.3.2), so the failure shows only
 * as the content layer's DecryptionError.
 */
import { randomBytes } from 'node:crypto';
import { KakitomeError, isKakitomeError } from '../../errors.ts';
import { encodeIdentifier, identifierMatches, type CmsIdentifier } from '../identifier.ts';
import { checkKeyAgreeAlgorithm, decryptKeyAgreeKey, keyAgreeKeyType } from '../recipients/key-agreement.ts';
import { checkKemAlgorithm, decryptKemKey, kemKeyType } from '../recipients/kem.ts';
import { checkKeyTransAlgorithm, decryptKeyTransKey } from '../recipients/key-transport.ts';
import type { ParsedRecipient } from '../recipients/recipient-info.ts';
import type { DecryptKey, KeyAttempt, KeyManagement } from '../recipients/recipient-options.ts';
import type { ParsedEnvelope } from './parse.ts';

export interface RecipientCandidate {
  recipient: ParsedRecipient;
  /** For a KARI: which RecipientEncryptedKey. 0 otherwise. */
  rekIndex: number;
  identifier: CmsIdentifier | undefined;
  key: DecryptKey;
  /** True when the key's certificate matched the identifier. */
  byCertificate: boolean;
}

export interface RecoveredContentKey {
  cek: Buffer;
  recipient: { index: number; identifier: CmsIdentifier | undefined; keyManagement: KeyManagement };
  warnings: string[];
  /**
   * False when the key layer already knows the key is wrong (it is then random).
   * Internal: used only to skip hopeless candidates when trying keys without certificates.
   */
  plausible: boolean;
  /** RSA PKCS#1 v1.5: the key layer cannot tell a wrong key (implicit rejection). Internal. */
  implicitRejection: boolean;
}

function keyTypeOf(r: ParsedRecipient): string | undefined {
  switch (r.kind) {
    case 'ktri':
      return 'rsa';
    case 'kari':
      return keyAgreeKeyType(r);
    case 'kemri':
      return kemKeyType(r);
    default:
      return undefined;
  }
}

function checkAlgorithm(r: ParsedRecipient): void {
  if (r.kind === 'ktri') checkKeyTransAlgorithm(r);
  else if (r.kind === 'kari') checkKeyAgreeAlgorithm(r);
  else if (r.kind === 'kemri') checkKemAlgorithm(r);
}

/**
 * The (recipient, key) pairs worth trying, certificate matches first, at most one
 * per private key among certificate matches and one per (key, identifier) among
 * trial ones. Throws NOT_RECIPIENT when there is none, LIMIT when they would take
 * more than maxKeyAttempts private-key operations, and the algorithm error
 * (UNSUPPORTED_ALG, MALFORMED) when the only matching recipients use parameters we refuse.
 */
export function matchRecipients(parsed: ParsedEnvelope, keys: DecryptKey[]): RecipientCandidate[] {
  const exact: RecipientCandidate[] = [];
  const trial: RecipientCandidate[] = [];
  /** Trial identifiers already taken, per key: the same identifier names the same certificate, hence the same key. */
  const tried = new Map<DecryptKey, Set<string>>();
  let refused: unknown;
  for (const key of keys) {
    const t = key.key.asymmetricKeyType;
    // A key already matched by certificate (under this or another certificate) is not opened again.
    if (exact.some((c) => sameKey(c.key, key))) continue;
    for (const r of parsed.recipients) {
      if (keyTypeOf(r) !== t) continue;
      const ids: (CmsIdentifier | undefined)[] = r.kind === 'kari' ? r.recipientEncryptedKeys.map((k) => k.rid) : r.kind === 'ktri' || r.kind === 'kemri' ? [r.rid] : [];
      ids.forEach((identifier, rekIndex) => {
        if (key.certificate) {
          if (identifier && identifierMatches(identifier, key.certificate) && !exact.some((c) => c.key === key)) exact.push({ recipient: r, rekIndex, identifier, key, byCertificate: true });
          return;
        }
        const seen = tried.get(key) ?? tried.set(key, new Set()).get(key)!;
        const id = identifier ? Buffer.from(encodeIdentifier(identifier)).toString('latin1') : `no identifier ${r.index}/${rekIndex}`;
        if (seen.has(id)) return;
        seen.add(id);
        trial.push({ recipient: r, rekIndex, identifier, key, byCertificate: false });
      });
    }
  }
  // Each candidate costs a private-key operation: an envelope with thousands of recipients must
  // not buy thousands of them, whether or not the caller said which certificate is theirs.
  const attempts = exact.length + trial.length;
  if (attempts > parsed.maxKeyAttempts) {
    const hint = trial.length > 0 ? ': offer the certificates with the keys' : '';
    throw new KakitomeError('LIMIT', `Opening this envelope would take ${attempts} private-key operations (limit ${parsed.maxKeyAttempts})${hint}.`);
  }
  const usable: RecipientCandidate[] = [];
  for (const c of [...exact, ...trial]) {
    try {
      checkAlgorithm(c.recipient);
      usable.push(c);
    } catch (e) {
      // A recipient named by our certificate with refused parameters: say why (public information).
      if (c.byCertificate) throw e;
      if (!isKakitomeError(e)) throw e;
      refused ??= e;
    }
  }
  if (usable.length === 0) {
    if (refused) throw refused;
    throw new KakitomeError('NOT_RECIPIENT', `None of the ${parsed.recipients.length} recipients of this message matches the keys offered.`);
  }
  return usable;
}

/** The same private key (one KeyObject, or two holding the same key material). */
function sameKey(a: DecryptKey, b: DecryptKey): boolean {
  return a.key === b.key || (a.key.asymmetricKeyType === b.key.asymmetricKeyType && a.key.equals(b.key));
}

function attempt(c: RecipientCandidate): KeyAttempt {
  const r = c.recipient;
  if (r.kind === 'ktri') return decryptKeyTransKey(r, c.key.key);
  if (r.kind === 'kari') return decryptKeyAgreeKey(r, c.rekIndex, c.key.key);
  if (r.kind === 'kemri') return decryptKemKey(r, c.key.key);
  throw new KakitomeError('UNSUPPORTED_ALG', 'Unsupported recipient kind.');
}

/** Stand-in keys are cut from a pool of random bytes: randomBytes costs 20-45 µs per call here, whatever its size up to 4 KiB. */
const STAND_IN_POOL_BYTES = 4096;
let standInPool = Buffer.alloc(0);
let standInAt = 0;

/** `size` random bytes (a copy; the pool's bytes are cleared as they are handed out). */
function drawStandInKey(size: number): Buffer {
  if (standInAt + size > standInPool.length) {
    standInPool = randomBytes(Math.max(STAND_IN_POOL_BYTES, size));
    standInAt = 0;
  }
  const key = Buffer.from(standInPool.subarray(standInAt, standInAt + size));
  standInPool.fill(0, standInAt, standInAt + size);
  standInAt += size;
  return key;
}

/** Opens one candidate. The returned key always has `expectedKeyLength` bytes (random if the key layer failed; `draw` is the randomness, for tests). */
export function openRecipient(c: RecipientCandidate, expectedKeyLength: number, draw: (size: number) => Buffer = drawStandInKey): RecoveredContentKey {
  // RFC 3218 2.3.2: a failure carries on with a random key, so that it shows only at the content
  // layer. The key is drawn whether or not it is needed: drawing it only on failure made a key
  // layer failure (an RSA PKCS#1 v1.5 result of the wrong length) 12-22 µs slower than a content
  // failure, a timing oracle on the padding (docs/security.md section 23).
  const random = draw(expectedKeyLength);
  const a = attempt(c);
  const plausible = a.cek !== undefined && a.cek.length === expectedKeyLength;
  const cek = plausible ? a.cek! : random;
  (plausible ? random : a.cek)?.fill(0);
  return { cek, recipient: { index: c.recipient.index, identifier: c.identifier, keyManagement: a.keyManagement }, warnings: a.warnings, plausible, implicitRejection: a.implicitRejection };
}

/**
 * Every key worth a content-decryption attempt, in order: the certificate-matched
 * recipients, then the trial ones (keys offered without a certificate). The caller
 * stops at the first key that decrypts the content.
 *
 * Certificate matches are always yielded, a random key standing in for a key-layer
 * failure. Trial candidates are yielded when their key layer succeeded (OAEP, key
 * wrap and ML-KEM checks are definitive), and RSA PKCS#1 v1.5 ones also when it did
 * not when the content cipher is AEAD (the tag tells a wrong key with certainty, and
 * trying every v1.5 candidate keeps the timing independent of the padding check).
 * For CBC content a wrong key passes the padding check about once in 256 tries and
 * would return garbage, so failed v1.5 candidates are skipped there. Known cost:
 * with CBC, RSA v1.5 and no certificate, timing shows whether the RSA result had
 * the expected length; offer certificates.
 */
export function* contentKeyCandidates(parsed: ParsedEnvelope, keys: DecryptKey[], expectedKeyLength: number): Generator<RecoveredContentKey> {
  const authenticatedContent = parsed.contentEncryption.cipher.aead;
  for (const c of matchRecipients(parsed, keys)) {
    const k = openRecipient(c, expectedKeyLength);
    if (c.byCertificate || k.plausible || (authenticatedContent && k.implicitRejection)) yield k;
  }
}

/**
 * The content-encryption key for the streaming decryptor, which can try only one.
 * The first certificate match wins; otherwise the first trial recipient whose key
 * layer succeeds; otherwise a random key. Never throws a decryption failure: only
 * NOT_RECIPIENT (or a refused algorithm) before any private-key operation.
 */
export function recoverContentKeyDetailed(parsed: ParsedEnvelope, keys: DecryptKey[], expectedKeyLength: number): RecoveredContentKey {
  let first: RecoveredContentKey | undefined;
  for (const c of matchRecipients(parsed, keys)) {
    const k = openRecipient(c, expectedKeyLength);
    if (c.byCertificate || k.plausible) return k;
    first ??= k;
  }
  return first!;
}

/** As recoverContentKeyDetailed, returning only the key. */
export function recoverContentKey(parsed: ParsedEnvelope, keys: DecryptKey[], expectedKeyLength: number): Buffer {
  return recoverContentKeyDetailed(parsed, keys, expectedKeyLength).cek;
}
