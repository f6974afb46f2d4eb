/**
 * An administrator's decision on a CA root recorded from signed mail
 * (record-unknown-root.ts), the one rule for the console and `kakitome certs
 * roots`:
 *
 * - trust: the root is imported at trust "trusted" (an anchor, as `kakitome certs
 *   import --trust trusted`), then every certificate waiting for it is validated
 *   again now by a validator made after the import (createValidator: full path
 *   validation with revocation, for encryption to its address, as harvesting
 *   does) and harvested if it passes; one that fails stays out, with its reason;
 * - decline: remembered, no longer listed as waiting (its sightings are still
 *   counted); reopen undoes it.
 *
 * Each decision is audited (root.trust, root.decline, root.reopen) under the
 * store's actor (the console's `console:ADDRESS`).
 */
import { KakitomeError, isKakitomeError } from '../errors.ts';
import type { SignerValidator } from '../pki/types.ts';
import { Certificate } from '../x509/certificate.ts';
import { harvestCandidate } from './harvest-signer.ts';
import { boundedText, isSelfSignedCa, MAX_RECORDED_CERTIFICATE_BYTES } from './record-unknown-root.ts';
import { normalizeFingerprint } from './list-unknown-roots.ts';
import type { SqlValue } from './sql-engine.ts';
import type { CertificateRecord, Filing, Store } from './store.ts';

export interface WaitingOutcome {
  fingerprint: string;
  address: string;
  outcome: 'harvested' | 'refused';
  /** Harvested: how it was filed under the address ('pending' when the address has another key in use). */
  filing?: Filing;
  /** Refused: the code and why. */
  reason?: string;
}

export interface TrustedRoot {
  root: CertificateRecord;
  outcomes: WaitingOutcome[];
}

export async function trustUnknownRoot(store: Store, fingerprint: string, o: { createValidator: () => SignerValidator | Promise<SignerValidator> }): Promise<TrustedRoot> {
  const fp = normalizeFingerprint(fingerprint);
  const rows = await store.engine.all('SELECT der, subject, decision FROM unknown_roots WHERE fingerprint = ?', [fp]);
  const row = rows[0];
  if (!row) throw new KakitomeError('INVALID_ARGUMENT', `No CA root ${fp} was recorded from signed mail (the list of recorded roots shows them); nothing was trusted.`, { remedy: 'recordedRoot' });
  if (String(row.decision) === 'trusted') throw new KakitomeError('INVALID_ARGUMENT', `The CA root ${fp} is trusted already; nothing was changed.`);
  const root = Certificate.fromDer(bytesOf(row.der));
  // The row was written by recordUnknownRoot; a row that is not what it says is refused, not trusted.
  if (root.fingerprint256 !== fp || !isSelfSignedCa(root)) throw new KakitomeError('MALFORMED', `The recorded CA root ${fp} is not a self-signed CA certificate; nothing was trusted.`);
  const record = await store.importCertificate(root, { trust: 'trusted', source: 'unknown-root' });
  await store.engine.transaction(async (tx) => {
    await tx.run("UPDATE unknown_roots SET decision = 'trusted', decided_at = ?, decided_by = ? WHERE fingerprint = ?", [store.now().toISOString(), store.actor, fp]);
    await store.auditWithin(tx, 'root.trust', fp, `${String(row.subject)}: trusted as an anchor`);
  });
  const validate = await o.createValidator();
  const leaves = await store.engine.all('SELECT fingerprint, address, der, chain, preferred, capabilities FROM unknown_root_leaves WHERE root_fingerprint = ? AND outcome IS NULL ORDER BY seen_at, fingerprint, address', [fp]);
  const outcomes: WaitingOutcome[] = [];
  for (const l of leaves) {
    const address = String(l.address);
    const base = { fingerprint: String(l.fingerprint), address };
    let out: WaitingOutcome;
    try {
      const certificate = Certificate.fromDer(bytesOf(l.der));
      const r = await harvestCandidate(store, validate, {
        certificate,
        carried: [...readChain(l.chain), root],
        address,
        preferred: Number(l.preferred) === 1,
        ...(l.capabilities instanceof Uint8Array ? { capabilities: l.capabilities } : {}),
      });
      out = 'kept' in r ? { ...base, outcome: 'harvested', filing: r.kept.filing } : { ...base, outcome: 'refused', reason: `${r.refused.code}: ${r.refused.reason}` };
    } catch (e) {
      if (!isKakitomeError(e)) throw e;
      out = { ...base, outcome: 'refused', reason: `${e.code}: ${e.message}` };
    }
    await store.engine.run('UPDATE unknown_root_leaves SET outcome = ?, reason = ? WHERE root_fingerprint = ? AND fingerprint = ? AND address = ?', [out.outcome, out.reason === undefined ? null : boundedText(out.reason, 1000), fp, base.fingerprint, address]);
    outcomes.push(out);
  }
  return { root: record, outcomes };
}

/** Declines a waiting root: it is remembered and no longer listed as waiting. */
export async function declineUnknownRoot(store: Store, fingerprint: string): Promise<void> {
  await moveDecision(store, fingerprint, 'waiting', 'declined', 'root.decline');
}

/** Undoes a decline: the root is listed as waiting again. */
export async function reopenUnknownRoot(store: Store, fingerprint: string): Promise<void> {
  await moveDecision(store, fingerprint, 'declined', 'waiting', 'root.reopen');
}

async function moveDecision(store: Store, fingerprint: string, from: 'waiting' | 'declined', to: 'waiting' | 'declined', action: string): Promise<void> {
  const fp = normalizeFingerprint(fingerprint);
  await store.engine.transaction(async (tx) => {
    const n = await tx.run('UPDATE unknown_roots SET decision = ?, decided_at = ?, decided_by = ? WHERE fingerprint = ? AND decision = ?', [to, store.now().toISOString(), store.actor, fp, from]);
    if (!n) throw new KakitomeError('INVALID_ARGUMENT', `No CA root ${fp} is ${from === 'waiting' ? 'waiting for a decision' : 'declined'}; nothing was changed.`);
    const subject = await tx.all('SELECT subject FROM unknown_roots WHERE fingerprint = ?', [fp]);
    await store.auditWithin(tx, action, fp, `${String(subject[0]?.subject ?? '')}: ${to}`);
  });
}

function bytesOf(v: SqlValue | undefined): Uint8Array {
  if (v instanceof Uint8Array) return v;
  throw new KakitomeError('MALFORMED', 'The store returned a non-binary value for a binary column.');
}

/** The intermediates recorded with a waiting certificate (base64 DER in a JSON array; what does not read is left out). */
function readChain(v: SqlValue | undefined): Certificate[] {
  let list: unknown;
  try {
    list = JSON.parse(String(v));
  } catch {
    return [];
  }
  if (!Array.isArray(list)) return [];
  const out: Certificate[] = [];
  for (const b of list.slice(0, 8)) {
    if (typeof b !== 'string' || b.length > (MAX_RECORDED_CERTIFICATE_BYTES * 4) / 3 + 4) continue;
    try {
      out.push(Certificate.fromDer(Buffer.from(b, 'base64')));
    } catch {
      // an unreadable intermediate only shortens what the path may use
    }
  }
  return out;
}
