/**
 * Which content-encryption algorithm to use for a set of recipients, from what each
 * is known to support (their harvested SMIMECapabilities, RFC 8551 2.5.2, 2.7.1):
 * AES-GCM (AuthEnvelopedData) when every recipient can read it, otherwise the
 * strongest CBC cipher all can read, never below the policy floor.
 *
 * One message goes to every recipient, so the choice is the best algorithm in the
 * intersection of their sets, in our order of preference (authenticated first,
 * then key length).
 */
import { decode } from '../asn1/ber.ts';
import { OID } from '../asn1/oids.ts';
import { KakitomeError } from '../errors.ts';
import { parseSmimeCapabilities } from '../cms/capabilities.ts';
import type { ContentEncryptionName } from '../cms/enveloped-data/encrypt.ts';

export type { ContentEncryptionName };

interface Candidate {
  name: ContentEncryptionName;
  oid: string;
  authenticated: boolean;
}

/** Most preferred first (RFC 8551 2.7: AES-GCM MUST, ChaCha20-Poly1305 SHOULD+, AES-CBC MUST- for receiving). */
const CANDIDATES: readonly Candidate[] = [
  { name: 'aes-256-gcm', oid: OID.aes256_GCM, authenticated: true },
  { name: 'aes-128-gcm', oid: OID.aes128_GCM, authenticated: true },
  { name: 'chacha20-poly1305', oid: OID.chacha20Poly1305, authenticated: true },
  { name: 'aes-256-cbc', oid: OID.aes256_CBC, authenticated: false },
  { name: 'aes-192-cbc', oid: OID.aes192_CBC, authenticated: false },
  { name: 'aes-128-cbc', oid: OID.aes128_CBC, authenticated: false },
];

export interface RecipientCapabilities {
  /** For messages and errors (an address). */
  recipient: string;
  /** SMIMECapabilities DER as harvested; undefined when nothing is known. */
  capabilities?: Uint8Array;
}

export interface ContentEncryptionPolicy {
  /** The weakest algorithm ever chosen (default aes-128-cbc; 3DES and RC2 never). */
  floor?: ContentEncryptionName;
  /**
   * What to assume for a recipient whose capabilities are unknown. Default "cbc":
   * QUIRK: RFC 8551 2.7.1.2 says to send AES-256-GCM, but Thunderbird (NSS 3.87),
   * gpgsm 2.2 and Outlook before 2019 cannot read AuthEnvelopedData, so mail to an
   * unknown correspondent would be unreadable. "gcm" follows the RFC.
   */
  unknownRecipients?: 'cbc' | 'gcm';
}

export interface ContentEncryptionChoice {
  name: ContentEncryptionName;
  oid: string;
  /** False for CBC: the verdict must say the content is unauthenticated unless signed. */
  authenticated: boolean;
  /** Recipients whose capabilities were unknown (assumed per policy). */
  assumed: string[];
}

export function chooseContentEncryption(recipients: readonly RecipientCapabilities[], policy: ContentEncryptionPolicy = {}): ContentEncryptionChoice {
  if (recipients.length === 0) throw new KakitomeError('INVALID_ARGUMENT', 'No recipients to choose a cipher for.');
  const floorIdx = CANDIDATES.findIndex((c) => c.name === (policy.floor ?? 'aes-128-cbc'));
  if (floorIdx < 0) throw new KakitomeError('INVALID_ARGUMENT', `Unknown cipher floor ${policy.floor}.`);
  const allowed = CANDIDATES.slice(0, floorIdx + 1);
  let common = new Set(allowed.map((c) => c.oid));
  const assumed: string[] = [];
  for (const r of recipients) {
    let supported: Set<string>;
    if (r.capabilities === undefined) {
      assumed.push(r.recipient);
      supported = new Set(CANDIDATES.filter((c) => (policy.unknownRecipients === 'gcm' ? true : !c.authenticated)).map((c) => c.oid));
    } else {
      supported = new Set(parseSmimeCapabilities(decode(r.capabilities)).map((c) => c.capabilityId));
    }
    common = new Set([...common].filter((o) => supported.has(o)));
    if (common.size === 0) {
      throw new KakitomeError('WEAK_ALG', `No content-encryption algorithm at or above the policy floor (${allowed.at(-1)!.name}) is supported by every recipient; ${r.recipient} rules out the rest.`);
    }
  }
  const pick = allowed.find((c) => common.has(c.oid))!;
  return { name: pick.name, oid: pick.oid, authenticated: pick.authenticated, assumed };
}
