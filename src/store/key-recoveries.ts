/**
 * Key recovery with two-person approval (issue 11): a person's decryption keys
 * (the current and past ones, as "keys for my old mail") leave the store for
 * someone other than the person only when two different staff members agreed.
 *
 * 1. An administrator or registration officer *requests* recovery for a person,
 *    with a reason, naming who receives the keys: themselves (the requester) or
 *    the person. Open for REQUEST_TTL_MS.
 * 2. A *different* administrator *approves* it (never the requester, never the
 *    person whose keys they are). The hand-over is then open for HANDOVER_TTL_MS.
 *    Or any administrator, or the requester, *refuses* it.
 * 3. The recipient *claims the hand-over*, once: the row is marked handed over in
 *    the same statement that checks it is approved, unexpired and not handed over
 *    yet, so of two clicks racing one wins (on any node).
 *
 * Each step is audited (`key.recovery.request`, `.approve`, `.refuse`,
 * `.hand-over`) under the actor's name; the export of each key is audited by the
 * store (key.export) with the request's id. The rules are enforced here, not in
 * the pages: who may request for whom (role holders only by an administrator) is
 * the caller's, who may approve, refuse and receive is this module's.
 * Migration 16.
 */
import { KakitomeError } from '../errors.ts';
import type { Row } from './sql-engine.ts';
import type { Store } from './store.ts';
import { timeOrderedId } from './time-ordered-id.ts';

export const REQUEST_TTL_MS = 24 * 3_600_000;
export const HANDOVER_TTL_MS = 24 * 3_600_000;
const MAX_REASON = 500;
/** Open requests at once, across the organisation: a bound on a flood. */
export const MAX_OPEN_RECOVERIES = 100;

export type RecoveryRecipient = 'requester' | 'person';
export type RecoveryState = 'requested' | 'approved' | 'handed-over' | 'refused' | 'expired';

export interface KeyRecovery {
  id: string;
  personId: string;
  email: string;
  requestedBy: string;
  requestedByEmail: string;
  recipient: RecoveryRecipient;
  reason: string;
  requestedAt: Date;
  expiresAt: Date;
  approvedBy?: string;
  approvedByEmail?: string;
  approvedAt?: Date;
  refusedAt?: Date;
  handedAt?: Date;
  state: RecoveryState;
}

/** The actor of a step: a signed-in person of the console. */
export interface RecoveryActor {
  id: string;
  email: string;
  roles: readonly string[];
}

/** A reason: trimmed, NFC, 1 to 500 characters, no control characters (it is shown and exported). */
export function checkRecoveryReason(reason: string): string {
  const r = reason.normalize('NFC').trim();
  if (!r || [...r].length > MAX_REASON || /[\p{Cc}\p{Cf}]/u.test(r)) throw new KakitomeError('INVALID_ARGUMENT', `A recovery needs a reason of 1 to ${MAX_REASON} characters without control characters.`);
  return r;
}

const dateOf = (v: unknown): Date | undefined => (v === null || v === undefined ? undefined : new Date(String(v)));

function stateOf(r: Row, now: Date): RecoveryState {
  if (r.handed_at) return 'handed-over';
  if (r.refused_at) return 'refused';
  if (new Date(String(r.expires_at)) <= now) return 'expired';
  return r.approved_at ? 'approved' : 'requested';
}

function toRecovery(r: Row, now: Date): KeyRecovery {
  const k: KeyRecovery = {
    id: String(r.id), personId: String(r.person_id), email: String(r.email), requestedBy: String(r.requested_by), requestedByEmail: String(r.requested_by_email),
    recipient: String(r.recipient) as RecoveryRecipient, reason: String(r.reason), requestedAt: new Date(String(r.requested_at)), expiresAt: new Date(String(r.expires_at)),
    state: stateOf(r, now),
  };
  if (r.approved_by) k.approvedBy = String(r.approved_by);
  if (r.approved_by_email) k.approvedByEmail = String(r.approved_by_email);
  const approvedAt = dateOf(r.approved_at);
  const refusedAt = dateOf(r.refused_at);
  const handedAt = dateOf(r.handed_at);
  if (approvedAt) k.approvedAt = approvedAt;
  if (refusedAt) k.refusedAt = refusedAt;
  if (handedAt) k.handedAt = handedAt;
  return k;
}

const isAdministrator = (a: RecoveryActor) => a.roles.includes('administrator');

export class KeyRecoveries {
  readonly #store: Store;

  /** `store` acts for whoever does the step (store.actingAs): the audit rows carry their name. */
  constructor(store: Store) {
    this.#store = store;
  }

  async find(id: string): Promise<KeyRecovery | undefined> {
    if (id.length > 64) return undefined;
    const rows = await this.#store.engine.all('SELECT * FROM key_recoveries WHERE id = ?', [id]);
    return rows[0] ? toRecovery(rows[0], this.#store.now()) : undefined;
  }

  /** The newest `limit` recoveries, open ones first. */
  async list(limit = 100): Promise<KeyRecovery[]> {
    const now = this.#store.now();
    const rows = await this.#store.engine.all('SELECT * FROM key_recoveries ORDER BY requested_at DESC, id LIMIT ?', [limit]);
    const open = (k: KeyRecovery) => (k.state === 'requested' || k.state === 'approved' ? 0 : 1);
    return rows.map((r) => toRecovery(r, now)).sort((a, b) => open(a) - open(b));
  }

  /** Approved recoveries waiting for `personId` to receive them (as requester, or as the person). */
  async waitingFor(personId: string): Promise<KeyRecovery[]> {
    const now = this.#store.now();
    const rows = await this.#store.engine.all(
      "SELECT * FROM key_recoveries WHERE approved_at IS NOT NULL AND handed_at IS NULL AND refused_at IS NULL AND expires_at > ? AND ((recipient = 'requester' AND requested_by = ?) OR (recipient = 'person' AND person_id = ?)) ORDER BY requested_at",
      [now.toISOString(), personId, personId]);
    return rows.map((r) => toRecovery(r, now));
  }

  async request(o: { actor: RecoveryActor; person: { id: string; email: string }; reason: string; recipient: RecoveryRecipient }): Promise<KeyRecovery> {
    const reason = checkRecoveryReason(o.reason);
    if (o.person.id === o.actor.id) throw new KakitomeError('FORBIDDEN', 'Nobody requests recovery of their own keys: use "Keys for my old mail".');
    if (o.recipient !== 'requester' && o.recipient !== 'person') throw new KakitomeError('INVALID_ARGUMENT', 'The keys go to the requester or to the person.');
    const now = this.#store.now();
    const id = timeOrderedId(now.getTime());
    await this.#store.engine.transaction(async (tx) => {
      const open = Number((await tx.all('SELECT COUNT(*) AS n FROM key_recoveries WHERE handed_at IS NULL AND refused_at IS NULL AND expires_at > ?', [now.toISOString()]))[0]?.n ?? 0);
      if (open >= MAX_OPEN_RECOVERIES) throw new KakitomeError('LIMIT', `${MAX_OPEN_RECOVERIES} recoveries are open: approve, refuse or let some expire first.`);
      await tx.run('INSERT INTO key_recoveries (id, person_id, email, requested_by, requested_by_email, recipient, reason, requested_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [id, o.person.id, o.person.email, o.actor.id, o.actor.email, o.recipient, reason, now.toISOString(), new Date(now.getTime() + REQUEST_TTL_MS).toISOString()]);
    });
    await this.#store.audit('key.recovery.request', o.person.email, `${id}: for ${o.recipient === 'requester' ? o.actor.email : o.person.email}; reason: ${reason}`);
    return (await this.find(id))!;
  }

  /** A second administrator agrees: never the requester, never the person whose keys they are. */
  async approve(id: string, actor: RecoveryActor): Promise<KeyRecovery> {
    const k = await this.#open(id, 'requested');
    if (!isAdministrator(actor)) throw new KakitomeError('FORBIDDEN', 'Only an administrator approves a key recovery.');
    if (actor.id === k.requestedBy) throw new KakitomeError('FORBIDDEN', 'A key recovery is approved by a second administrator, not by the one who asked for it.');
    if (actor.id === k.personId) throw new KakitomeError('FORBIDDEN', 'Nobody approves the recovery of their own keys.');
    const now = this.#store.now();
    const changed = await this.#store.engine.run(
      'UPDATE key_recoveries SET approved_by = ?, approved_by_email = ?, approved_at = ?, expires_at = ? WHERE id = ? AND approved_at IS NULL AND refused_at IS NULL AND handed_at IS NULL AND expires_at > ?',
      [actor.id, actor.email, now.toISOString(), new Date(now.getTime() + HANDOVER_TTL_MS).toISOString(), id, now.toISOString()]);
    if (changed !== 1) throw new KakitomeError('CONFLICT', 'This key recovery was approved, refused or expired meanwhile.');
    await this.#store.audit('key.recovery.approve', k.email, `${id}: requested by ${k.requestedByEmail}`);
    return (await this.find(id))!;
  }

  /** Any administrator, or the requester, ends a request that is still open. */
  async refuse(id: string, actor: RecoveryActor): Promise<KeyRecovery> {
    const k = await this.#open(id);
    if (!isAdministrator(actor) && actor.id !== k.requestedBy) throw new KakitomeError('FORBIDDEN', 'Only an administrator or the requester ends a key recovery.');
    const now = this.#store.now();
    const changed = await this.#store.engine.run('UPDATE key_recoveries SET refused_at = ? WHERE id = ? AND refused_at IS NULL AND handed_at IS NULL AND expires_at > ?', [now.toISOString(), id, now.toISOString()]);
    if (changed !== 1) throw new KakitomeError('CONFLICT', 'This key recovery was handed over, refused or expired meanwhile.');
    await this.#store.audit('key.recovery.refuse', k.email, id);
    return (await this.find(id))!;
  }

  /**
   * Claims the hand-over for `actor`, once: true only for the recipient of an
   * approved, unexpired recovery not handed over yet (the row is marked in the
   * same statement). The caller then exports the keys and hands them to `actor`.
   */
  async claimHandover(id: string, actor: RecoveryActor): Promise<KeyRecovery> {
    const k = await this.#open(id, 'approved');
    const recipientId = k.recipient === 'requester' ? k.requestedBy : k.personId;
    if (actor.id !== recipientId) throw new KakitomeError('FORBIDDEN', 'These keys are handed over only to the recipient named in the request.');
    const now = this.#store.now();
    const changed = await this.#store.engine.run('UPDATE key_recoveries SET handed_at = ? WHERE id = ? AND approved_at IS NOT NULL AND handed_at IS NULL AND refused_at IS NULL AND expires_at > ?', [now.toISOString(), id, now.toISOString()]);
    if (changed !== 1) throw new KakitomeError('CONFLICT', 'These keys were handed over already, or the recovery was refused or expired.');
    await this.#store.audit('key.recovery.hand-over', k.email, `${id}: to ${actor.email}`);
    return (await this.find(id))!;
  }

  async #open(id: string, state?: RecoveryState): Promise<KeyRecovery> {
    const k = await this.find(id);
    if (!k) throw new KakitomeError('NOT_FOUND', 'No such key recovery.');
    if (k.state === 'expired') throw new KakitomeError('CONFLICT', 'This key recovery expired: request it again.');
    if (k.state === 'handed-over' || k.state === 'refused') throw new KakitomeError('CONFLICT', `This key recovery is ${k.state} already.`);
    if (state && k.state !== state) throw new KakitomeError('CONFLICT', state === 'approved' ? 'This key recovery is not approved yet: a second administrator approves it first.' : 'This key recovery is approved already.');
    return k;
  }
}
