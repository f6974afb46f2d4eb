/**
 * After a trusted verdict, keeps the certificate to encrypt to each message signer
 * in the key store with its SMIMECapabilities and encryption key preference
 * (harvest-signer.ts), so the next message to that correspondent can be encrypted
 * by address with a cipher they read. Only a 'trusted' verdict harvests, and each
 * certificate kept is validated again for encryption with the same validator and
 * filed under the verified From address only; a signer trusted only because legacy
 * algorithms were allowed is not kept.
 *
 * What the reader must know becomes a warning in the verdict (view.warnings, so
 * --json too): a new key for an address already known (recorded as pending, not
 * used), and a preferred encryption certificate that was refused (a poisoning
 * attempt, or a sender's misconfiguration).
 */
import { describeIdentifier } from '../cms/identifier.ts';
import { harvestSigner } from '../store/harvest-signer.ts';
import { recordUnknownRoot } from '../store/record-unknown-root.ts';
import type { Filing, Store } from '../store/store.ts';
import type { SignerValidator } from '../pki/types.ts';
import type { MessageVerdict } from '../smime/verdict.ts';
import type { VerdictView } from '../smime/verdict-view.ts';

export interface HarvestNote {
  email: string;
  fingerprint: string;
  /** True when the certificate was new to the store; false when only its capabilities/preference were refreshed. */
  created: boolean;
  /** 'pending': a new key for a known address, recorded but not used until accepted. */
  filing: Filing;
}

/** Where the harvest says what it kept and refused: a verdict view, or (the gateway, which shows none) a list that is dropped. */
export type HarvestView = Pick<VerdictView, 'warnings' | 'details'>;

/** A CA root recorded for an administrator's decision (view.details.unknownRoots). */
export interface UnknownRootNote {
  fingerprint: string;
  subject: string;
  /** An administrator declined it earlier. */
  declined: boolean;
}

/**
 * Signers `seen` remembers at most: a gateway's set lives as long as the process and
 * any sender can mint new certificates (the unknown roots' signers), so a full set is
 * emptied and a signer seen again costs one more store write.
 */
export const MAX_SEEN_SIGNERS = 10_000;

function remember(seen: Set<string> | undefined, key: string): void {
  if (!seen) return;
  if (seen.size >= MAX_SEEN_SIGNERS) seen.clear();
  seen.add(key);
}

/**
 * `seen` (one per job) skips a signer already harvested with the same attributes in
 * this run: a batch of a thousand messages from one sender costs one write, not a thousand.
 */
export async function harvestVerdictSigners(store: Store, verdict: MessageVerdict, view: HarvestView, validate: SignerValidator, seen?: Set<string>): Promise<HarvestNote[]> {
  if (verdict.status !== 'trusted') {
    await recordUnknownRoots(store, verdict, view, seen);
    return [];
  }
  const notes: HarvestNote[] = [];
  for (const s of verdict.signers) {
    if (s.scope !== 'message' || s.status !== 'valid' || !s.certificate || !s.trust) continue;
    // --allow-legacy reads old mail; it never makes a SHA-1 path or a short RSA key one to encrypt to.
    if (s.trust.legacy) {
      view.warnings.push(`The certificate of ${s.email ?? s.subject} was not kept in the key store: its trust rests on legacy algorithms.`);
      continue;
    }
    const key = JSON.stringify([s.certificate.fingerprint256, s.trust.identity.from ?? null, s.capabilities ?? null, s.encryptionKeyPreference ? describeIdentifier(s.encryptionKeyPreference) : null]);
    if (seen?.has(key)) continue;
    const { kept, refused } = await harvestSigner(store, {
      signer: { status: 'valid', certificate: s.certificate, capabilities: s.capabilities, encryptionKeyPreference: s.encryptionKeyPreference },
      trust: s.trust,
      ...(s.carried ? { carried: s.carried } : {}),
    }, validate);
    // A pending key is shown on every message that brings it, so it is not remembered as done.
    if (kept.every((r) => r.filing !== 'pending')) remember(seen, key);
    for (const r of kept) {
      const fp = r.record.certificate.fingerprint256;
      notes.push({ email: r.address, fingerprint: fp, created: r.created, filing: r.filing });
      if (r.filing === 'pending') {
        view.warnings.push(`New key for ${r.address}: this message brings certificate ${fp} ("${r.record.certificate.subjectText}"), but the key store already knows ${r.address} with another key (${r.knownCertificates.map((k) => k.slice(0, 16)).join(', ')}). The new one was recorded and is not used to encrypt to ${r.address}. If ${r.address} really changed keys, an administrator accepts certificate ${fp} for ${r.address} in the key store.`);
      }
    }
    for (const x of refused) {
      // A signing-only certificate is simply not an encryption certificate; anything else is worth saying.
      if (!x.preferred && x.code === 'CERT_USAGE') continue;
      const which = `certificate ${x.certificate.fingerprint256} ("${x.certificate.subjectText}")`;
      const what = x.preferred ? `The signer named ${which} as the one to encrypt to them; it was not kept` : `The signer's ${which} was not kept`;
      view.warnings.push(`${what} for encrypting to ${s.trust.identity.from} (${x.code}): ${x.reason}`);
    }
  }
  if (notes.length > 0) view.details = { ...view.details, harvested: notes };
  return notes;
}

/**
 * A signer whose trust failed only because its chain ends at a CA root the store
 * does not know: the root is recorded for an administrator's decision, with the
 * signer's certificate waiting for it (record-unknown-root.ts; nothing is trusted
 * or kept to encrypt to), and the reader is told how to decide. `seen` records a
 * signer once per job (a gateway process, a CLI run).
 */
async function recordUnknownRoots(store: Store, verdict: MessageVerdict, view: HarvestView, seen?: Set<string>): Promise<void> {
  for (const s of verdict.signers) {
    if (s.scope !== 'message' || s.status !== 'valid' || !s.certificate || !s.trust || s.trust.status !== 'untrusted') continue;
    const key = JSON.stringify(['unknown-root', s.certificate.fingerprint256, s.trust.identity.from ?? null]);
    if (seen?.has(key)) continue;
    remember(seen, key);
    const r = await recordUnknownRoot(store, {
      signer: { status: 'valid', certificate: s.certificate, capabilities: s.capabilities, encryptionKeyPreference: s.encryptionKeyPreference },
      trust: s.trust,
      ...(s.carried ? { carried: s.carried } : {}),
    });
    if (!r) continue;
    const root = `CA root ${r.root.fingerprint256} ("${r.root.subjectText}")`;
    view.warnings.push(r.declined
      ? `The signer's certificate chains to ${root}, which an administrator declined to trust.`
      : `The signer's certificate chains to ${root}, which the key store does not trust. It was recorded for an administrator's decision; nothing from this message is trusted or used to encrypt until then. To trust it, an administrator checks its fingerprint with its owner, then trusts the recorded root.`);
    // The root by its fingerprint, for a front end to offer its own way to decide (the CLI its command).
    const recorded = (view.details?.unknownRoots ?? []) as UnknownRootNote[];
    view.details = { ...view.details, unknownRoots: [...recorded, { fingerprint: r.root.fingerprint256, subject: r.root.subjectText, declined: r.declined }] };
  }
}

/**
 * The harvest as verify, decrypt and the gateway run it: a store that cannot take
 * the certificate (locked, read-only) does not change the verdict, it is a warning.
 */
export async function harvestQuietly(store: Store, verdict: MessageVerdict, view: HarvestView, seen: Set<string>, validate: SignerValidator): Promise<void> {
  try {
    await harvestVerdictSigners(store, verdict, view, validate, seen);
  } catch (e) {
    view.warnings.push(`The signer's certificate could not be kept in the key store: ${(e as Error).message}`);
  }
}
