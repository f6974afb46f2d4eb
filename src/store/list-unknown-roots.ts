/**
 * The CA roots recorded by recordUnknownRoot, for the console's external
 * certificates and `kakitome certs roots`: those waiting for a decision (most
 * recently seen first; the dashboard counts them) or declined, with the
 * certificates waiting for each. A root trusted since (here or by `kakitome certs
 * import --trust trusted`) is no longer waiting. Only the shown columns are read.
 */
import { KakitomeError } from '../errors.ts';
import { readExamples } from './record-unknown-root.ts';
import type { Row } from './sql-engine.ts';
import type { Store } from './store.ts';

export type RootDecision = 'waiting' | 'declined' | 'trusted';

export interface UnknownRoot {
  fingerprint: string;
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  keyAlgorithm: string;
  firstSeen: Date;
  lastSeen: Date;
  timesSeen: number;
  /** A few senders whose signed mail chained to it. */
  examples: string[];
  decision: RootDecision;
  decidedAt?: Date;
  decidedBy?: string;
  /** Certificates waiting for it (not yet validated again after a trust decision). */
  waiting: number;
}

export interface WaitingCertificate {
  fingerprint: string;
  address: string;
  seenAt: Date;
  /** Absent while waiting; after the root was trusted, whether the certificate was harvested, and why not. */
  outcome?: 'harvested' | 'refused';
  reason?: string;
}

const NOT_TRUSTED_SINCE = "NOT EXISTS (SELECT 1 FROM certificates c WHERE c.fingerprint = r.fingerprint AND c.trust = 'trusted')";

/** Roots waiting for a decision (the dashboard's figure). */
export async function countUnknownRoots(store: Store): Promise<number> {
  const rows = await store.engine.all(`SELECT COUNT(*) AS n FROM unknown_roots r WHERE r.decision = 'waiting' AND ${NOT_TRUSTED_SINCE}`);
  return Number(rows[0]?.n ?? 0);
}

/** Roots with `decision` (default waiting), most recently seen first, at most `limit` (200). */
export async function listUnknownRoots(store: Store, o: { decision?: 'waiting' | 'declined'; limit?: number } = {}): Promise<UnknownRoot[]> {
  const limit = Math.min(Math.max(Math.trunc(o.limit ?? 50), 1), 200);
  const rows = await store.engine.all(
    `SELECT r.fingerprint, r.subject, r.issuer, r.not_before, r.not_after, r.key_algorithm, r.first_seen, r.last_seen, r.times_seen, r.examples, r.decision, r.decided_at, r.decided_by,
       (SELECT COUNT(*) FROM unknown_root_leaves l WHERE l.root_fingerprint = r.fingerprint AND l.outcome IS NULL) AS waiting
     FROM unknown_roots r WHERE r.decision = ? AND ${NOT_TRUSTED_SINCE} ORDER BY r.last_seen DESC, r.fingerprint LIMIT ?`,
    [o.decision ?? 'waiting', limit],
  );
  return rows.map(rootOf);
}

/** One recorded root, whatever its decision; INVALID_ARGUMENT when none has this fingerprint. */
export async function findUnknownRoot(store: Store, fingerprint: string): Promise<UnknownRoot> {
  const fp = normalizeFingerprint(fingerprint);
  const rows = await store.engine.all(
    `SELECT r.fingerprint, r.subject, r.issuer, r.not_before, r.not_after, r.key_algorithm, r.first_seen, r.last_seen, r.times_seen, r.examples, r.decision, r.decided_at, r.decided_by,
       (SELECT COUNT(*) FROM unknown_root_leaves l WHERE l.root_fingerprint = r.fingerprint AND l.outcome IS NULL) AS waiting
     FROM unknown_roots r WHERE r.fingerprint = ?`,
    [fp],
  );
  if (!rows[0]) throw new KakitomeError('INVALID_ARGUMENT', `No CA root ${fp} was recorded from signed mail (the list of recorded roots shows them).`, { remedy: 'recordedRoot' });
  return rootOf(rows[0]);
}

/** The certificates waiting for (or decided with) a root, oldest first. */
export async function listWaitingCertificates(store: Store, fingerprint: string): Promise<WaitingCertificate[]> {
  const rows = await store.engine.all('SELECT fingerprint, address, seen_at, outcome, reason FROM unknown_root_leaves WHERE root_fingerprint = ? ORDER BY seen_at, fingerprint, address', [normalizeFingerprint(fingerprint)]);
  return rows.map((r) => ({
    fingerprint: String(r.fingerprint),
    address: String(r.address),
    seenAt: new Date(String(r.seen_at)),
    ...(r.outcome === null || r.outcome === undefined ? {} : { outcome: String(r.outcome) as 'harvested' | 'refused' }),
    ...(r.reason === null || r.reason === undefined ? {} : { reason: String(r.reason) }),
  }));
}

/** A SHA-256 fingerprint as the store keeps it (lowercase hex; colons and spaces allowed in what is typed). */
export function normalizeFingerprint(s: string): string {
  const fp = s.replace(/[:\s]/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(fp)) throw new KakitomeError('INVALID_ARGUMENT', 'A root is named by its SHA-256 fingerprint: 64 hexadecimal digits (colons allowed).');
  return fp;
}

function rootOf(r: Row): UnknownRoot {
  return {
    fingerprint: String(r.fingerprint),
    subject: String(r.subject),
    issuer: String(r.issuer),
    notBefore: new Date(String(r.not_before)),
    notAfter: new Date(String(r.not_after)),
    keyAlgorithm: String(r.key_algorithm),
    firstSeen: new Date(String(r.first_seen)),
    lastSeen: new Date(String(r.last_seen)),
    timesSeen: Number(r.times_seen),
    examples: readExamples(r.examples),
    decision: String(r.decision) as RootDecision,
    ...(r.decided_at ? { decidedAt: new Date(String(r.decided_at)) } : {}),
    ...(r.decided_by ? { decidedBy: String(r.decided_by) } : {}),
    waiting: Number(r.waiting ?? 0),
  };
}
