/**
 * Single sign-on pinned to the provider's account (migration 20). The first time a
 * person signs in through an OpenID provider, the provider's subject (`sub`, its
 * stable id for the account) is recorded for that person and issuer; from then on
 * only that subject signs them in. A provider that hands the person's address to
 * another account (a re-created account, an address moved by an administrator
 * there, a compromised directory) gets a refusal instead of the person's session,
 * and one subject never signs in two people. An administrator removes the pin
 * (the person's page) when the account at the provider really changed.
 *
 * Issuer and subject are compared exactly (OpenID Connect Core 5.7: the pair is
 * the only stable identifier); the subject is at most 255 ASCII characters
 * (Core 2), longer or other text is refused before anything is stored.
 */
import { KakitomeError } from '../errors.ts';
import type { Store } from './store.ts';

export type OidcPinOutcome =
  /** First sign-in through this issuer: the subject is now pinned to the person. */
  | { kind: 'pinned' }
  /** The subject pinned to the person. */
  | { kind: 'matches' }
  /** The person is pinned to another subject of this issuer. */
  | { kind: 'other-subject'; linkedAt: Date }
  /** The subject is pinned to another person. */
  | { kind: 'subject-of-another' };

const SUBJECT = /^[\x21-\x7e]{1,255}$/;

export function checkOidcSubject(subject: string): string {
  if (!SUBJECT.test(subject)) throw new KakitomeError('INVALID_ARGUMENT', 'The provider\'s subject (sub) is not 1 to 255 printable ASCII characters.');
  return subject;
}

/**
 * Pins `subject` to the person on first use, else compares. Two first sign-ins
 * racing (on any node) insert once: the loser reads the winner's row and is
 * judged by it.
 */
export async function pinOidcSubject(store: Store, issuer: string, subject: string, person: { id: string; email: string }): Promise<OidcPinOutcome> {
  checkOidcSubject(subject);
  const personId = person.id;
  const judge = async (): Promise<OidcPinOutcome | undefined> => {
    const rows = await store.engine.all('SELECT person_id, subject, linked_at FROM console_oidc_subjects WHERE issuer = ? AND (person_id = ? OR subject = ?)', [issuer, personId, subject]);
    const mine = rows.find((r) => String(r.person_id) === personId);
    if (mine) return String(mine.subject) === subject ? { kind: 'matches' } : { kind: 'other-subject', linkedAt: new Date(String(mine.linked_at)) };
    return rows.length ? { kind: 'subject-of-another' } : undefined;
  };
  const known = await judge();
  if (known) return known;
  const inserted = await store.engine.run('INSERT INTO console_oidc_subjects (issuer, person_id, subject, linked_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING', [issuer, personId, subject, store.now().toISOString()]);
  if (inserted > 0) {
    await store.audit('console.oidc.pin', person.email, `${issuer} ${subject}`);
    return { kind: 'pinned' };
  }
  return (await judge()) ?? { kind: 'subject-of-another' };
}

/** The person's pins (issuer and since when), for their page. */
export async function listOidcSubjects(store: Store, personId: string): Promise<Array<{ issuer: string; subject: string; linkedAt: Date }>> {
  const rows = await store.engine.all('SELECT issuer, subject, linked_at FROM console_oidc_subjects WHERE person_id = ? ORDER BY issuer', [personId]);
  return rows.map((r) => ({ issuer: String(r.issuer), subject: String(r.subject), linkedAt: new Date(String(r.linked_at)) }));
}

/** Removes every pin of the person (their next single sign-on pins again); audited. Returns how many. */
export async function forgetOidcSubjects(store: Store, person: { id: string; email: string }): Promise<number> {
  const n = await store.engine.run('DELETE FROM console_oidc_subjects WHERE person_id = ?', [person.id]);
  if (n > 0) await store.audit('console.oidc.unpin', person.email, `${n} pinned account${n === 1 ? '' : 's'}`);
  return n;
}
