/**
 * After a trusted verdict, keeps each message signer's certificate in the key store
 * with its SMIMECapabilities and encryption key preference (harvest-signer.ts), so
 * the next message to that correspondent can be encrypted by address with a cipher
 * they read. Only a 'trusted' verdict harvests: every body signer then verified, chains
 * to an anchor and matches From (harvestSigner checks each again); a signer trusted
 * only because legacy algorithms were allowed is not kept. A harvested
 * certificate never displaces a trusted one; a conflict becomes a warning.
 */
import { describeIdentifier } from '../cms/identifier.ts';
import { harvestSigner } from '../store/harvest-signer.ts';
import type { Store } from '../store/store.ts';
import type { MessageVerdict } from '../smime/verdict.ts';
import type { VerdictView } from './verdict-view.ts';

export interface HarvestNote {
  email: string;
  fingerprint: string;
  /** True when the certificate was new to the store; false when only its capabilities/preference were refreshed. */
  created: boolean;
  conflict: boolean;
}

/**
 * `seen` (one per job) skips a signer already harvested with the same attributes in
 * this run: a batch of a thousand messages from one sender costs one write, not a thousand.
 */
export async function harvestVerdictSigners(store: Store, verdict: MessageVerdict, view: VerdictView, seen?: Set<string>): Promise<HarvestNote[]> {
  if (verdict.status !== 'trusted') return [];
  const notes: HarvestNote[] = [];
  for (const s of verdict.signers) {
    if (s.scope !== 'message' || s.status !== 'valid' || !s.certificate || !s.trust) continue;
    // --allow-legacy reads old mail; it never makes a SHA-1 path or a short RSA key one to encrypt to.
    if (s.trust.legacy) {
      view.warnings.push(`The certificate of ${s.email ?? s.subject} was not kept in the key store: its trust rests on legacy algorithms.`);
      continue;
    }
    const key = JSON.stringify([s.certificate.fingerprint256, s.capabilities ?? null, s.encryptionKeyPreference ? describeIdentifier(s.encryptionKeyPreference) : null]);
    if (seen?.has(key)) continue;
    const results = await harvestSigner(store, {
      signer: { status: 'valid', certificate: s.certificate, capabilities: s.capabilities, encryptionKeyPreference: s.encryptionKeyPreference },
      trust: s.trust,
      ...(s.carried ? { carried: s.carried } : {}),
    });
    seen?.add(key);
    for (const r of results) {
      const email = r.record.emails[0] ?? r.record.certificate.subjectText;
      notes.push({ email, fingerprint: r.record.certificate.fingerprint256, created: r.created, conflict: r.conflict });
      if (r.conflict) {
        view.warnings.push(`The key store already trusts another certificate for ${email}; the one in this message was kept as "harvested" and mail to ${email} stays encrypted to the trusted one. Check with the sender if this is unexpected.`);
      }
    }
  }
  if (notes.length > 0) view.details = { ...view.details, harvested: notes };
  return notes;
}
