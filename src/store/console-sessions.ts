/**
 * Console sessions and single-use links, kept in the store so every node behind a
 * load balancer sees them (migration 5). A session or link secret is 256 random
 * bits handed to the browser (cookie) or printed (setup link); the store keeps
 * only its SHA-256, so a copy of the database opens no session and replays no
 * link. A random secret needs no slow hash (the same reasoning as API keys,
 * tenant-directory.ts).
 *
 * A session ends at the first of: sign-out, its idle limit (no request for
 * `idleMs`), its absolute limit (`absoluteMs` after sign-in, however busy), or the
 * person's password change or disabling. A new session is made at every sign-in
 * (rotation: an identifier planted before sign-in is never promoted).
 *
 * A session may carry a step-up proof (recordStepUp): the person proved their
 * presence again a moment ago, which the console's most dangerous actions ask
 * for (console/step-up.ts). It is a row of console_tokens keyed by a digest of
 * the session's own id, valid a few minutes, for that session only.
 *
 * A link ('setup': the first administrator; 'invitation': a person sets their
 * password) is consumed by one DELETE that also checks its purpose and expiry:
 * of two requests racing with the same link, one wins.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Store } from './store.ts';
import type { PeopleDirectory, Person } from './people-directory.ts';

export interface SessionPolicy {
  /** A session unused this long ends (default 30 minutes). */
  idleMs: number;
  /** A session ends this long after sign-in whatever happens (default 12 hours). */
  absoluteMs: number;
}

export const DEFAULT_SESSION_POLICY: SessionPolicy = { idleMs: 30 * 60_000, absoluteMs: 12 * 3_600_000 };
/** last_seen_at is written at most this often per session: a page view is not a write. */
const TOUCH_EVERY_MS = 60_000;

/**
 * 'setup', 'invitation' and 'mail-sign-in' are links; the passkey ceremonies' challenges
 * ('passkey-register', 'passkey-sign-in') and the sign-in waiting for its passkey
 * ('second-factor') are single-use secrets of the same kind, bound to a person.
 */
export type LinkPurpose = 'setup' | 'invitation' | 'mail-sign-in' | 'passkey-register' | 'passkey-sign-in' | 'second-factor' | 'step-up-passkey';

export interface ResumedSession {
  person: Person;
  /** The absolute end. */
  expiresAt: Date;
}

const SECRET = /^[A-Za-z0-9_-]{43}$/;

function digestOf(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/**
 * The row of a session's step-up proof in console_tokens (purpose 'step-up'):
 * derived from the session's own digest, so it is found only through that
 * session's cookie, and a proof made in one session is nothing in another (no
 * migration: console_tokens' purpose is free text).
 */
function stepUpIdOf(sessionSecret: string): string {
  return createHash('sha256').update(`step-up\n${digestOf(sessionSecret)}`).digest('hex');
}

export class ConsoleSessions {
  readonly #store: Store;
  readonly #people: PeopleDirectory;
  readonly #policy: SessionPolicy;

  constructor(store: Store, people: PeopleDirectory, policy: SessionPolicy = DEFAULT_SESSION_POLICY) {
    this.#store = store;
    this.#people = people;
    this.#policy = policy;
  }

  get policy(): SessionPolicy {
    return this.#policy;
  }

  /** A new session for `person`; the secret goes into the cookie and nowhere else. */
  async start(person: Person, o: { oidcIssuer?: string } = {}): Promise<{ secret: string; expiresAt: Date }> {
    const secret = randomBytes(32).toString('base64url');
    const now = this.#store.now();
    const expiresAt = new Date(now.getTime() + this.#policy.absoluteMs);
    await this.#store.engine.run('INSERT INTO console_sessions (id, person_id, created_at, last_seen_at, expires_at, oidc_issuer) VALUES (?, ?, ?, ?, ?, ?)', [
      digestOf(secret), person.id, now.toISOString(), now.toISOString(), expiresAt.toISOString(), o.oidcIssuer ?? null,
    ]);
    // Expired sessions are swept as new ones are made, so the table stays as large as the signed-in crowd.
    await this.#store.engine.run('DELETE FROM console_sessions WHERE expires_at < ? OR last_seen_at < ?', [now.toISOString(), new Date(now.getTime() - this.#policy.idleMs).toISOString()]);
    return { secret, expiresAt };
  }

  /** The live session a cookie names, or undefined (unknown, ended, idle too long, past its end, person disabled). */
  async resume(secret: string | undefined): Promise<ResumedSession | undefined> {
    if (!secret || !SECRET.test(secret)) return undefined;
    const id = digestOf(secret);
    const rows = await this.#store.engine.all('SELECT person_id, last_seen_at, expires_at FROM console_sessions WHERE id = ?', [id]);
    const row = rows[0];
    if (!row) return undefined;
    const now = this.#store.now().getTime();
    const lastSeen = new Date(String(row.last_seen_at)).getTime();
    const expiresAt = new Date(String(row.expires_at));
    if (now >= expiresAt.getTime() || now - lastSeen >= this.#policy.idleMs) {
      await this.#store.engine.run('DELETE FROM console_sessions WHERE id = ?', [id]);
      return undefined;
    }
    const person = await this.#people.findPerson(String(row.person_id));
    if (!person || person.disabledAt) return undefined;
    if (now - lastSeen >= TOUCH_EVERY_MS) await this.#store.engine.run('UPDATE console_sessions SET last_seen_at = ? WHERE id = ?', [new Date(now).toISOString(), id]);
    return { person, expiresAt };
  }

  /** Ends the session the cookie names; says which provider signed it in (single sign-on), if one did. */
  async end(secret: string | undefined): Promise<{ oidcIssuer?: string } | undefined> {
    if (!secret || !SECRET.test(secret)) return undefined;
    const id = digestOf(secret);
    const row = (await this.#store.engine.all('SELECT oidc_issuer FROM console_sessions WHERE id = ?', [id]))[0];
    if (!row) return undefined;
    await this.#store.engine.run('DELETE FROM console_sessions WHERE id = ?', [id]);
    await this.#store.engine.run("DELETE FROM console_tokens WHERE id = ? AND purpose = 'step-up'", [stepUpIdOf(secret)]);
    return row.oidc_issuer === null || row.oidc_issuer === undefined ? {} : { oidcIssuer: String(row.oidc_issuer) };
  }

  /**
   * Records that the person of the session `sessionSecret` proved their presence
   * now (step-up re-authentication): the proof holds for `windowMs`, for this
   * session only. A newer proof replaces the older one.
   */
  async recordStepUp(sessionSecret: string, personId: string, windowMs: number): Promise<Date> {
    if (!SECRET.test(sessionSecret)) throw new Error('recordStepUp: not a session secret');
    const now = this.#store.now();
    const until = new Date(now.getTime() + windowMs);
    const id = stepUpIdOf(sessionSecret);
    await this.#store.engine.transaction(async (tx) => {
      await tx.run('DELETE FROM console_tokens WHERE id = ? OR expires_at < ?', [id, now.toISOString()]);
      await tx.run("INSERT INTO console_tokens (id, purpose, person_id, created_at, expires_at) VALUES (?, 'step-up', ?, ?, ?)", [id, personId, now.toISOString(), until.toISOString()]);
    });
    return until;
  }

  /** Until when the session's step-up proof holds, if it holds now and was made by `personId`. */
  async stepUpUntil(sessionSecret: string | undefined, personId: string): Promise<Date | undefined> {
    if (!sessionSecret || !SECRET.test(sessionSecret)) return undefined;
    const now = this.#store.now().toISOString();
    const rows = await this.#store.engine.all("SELECT expires_at FROM console_tokens WHERE id = ? AND purpose = 'step-up' AND person_id = ? AND expires_at > ? AND created_at <= ?", [stepUpIdOf(sessionSecret), personId, now, now]);
    return rows[0] ? new Date(String(rows[0].expires_at)) : undefined;
  }

  /** Ends every session of a person (password changed, disabled, roles taken away). */
  async endAllFor(personId: string): Promise<void> {
    await this.#store.engine.run('DELETE FROM console_sessions WHERE person_id = ?', [personId]);
    await this.#store.engine.run("DELETE FROM console_tokens WHERE purpose = 'step-up' AND person_id = ?", [personId]);
  }

  /** Voids the person's unused links of `purpose` (an invitation made before the person was given a role). */
  async endLinksFor(personId: string, purpose: LinkPurpose): Promise<void> {
    await this.#store.engine.run('DELETE FROM console_tokens WHERE purpose = ? AND person_id = ?', [purpose, personId]);
  }

  /**
   * A new single-use link secret for `purpose`, valid for `ttlMs`. A new setup link
   * replaces any earlier one: only the last one printed works.
   */
  async issueLink(purpose: LinkPurpose, ttlMs: number, personId?: string, o: { oidcIssuer?: string } = {}): Promise<{ secret: string; expiresAt: Date }> {
    const secret = randomBytes(32).toString('base64url');
    const now = this.#store.now();
    const expiresAt = new Date(now.getTime() + ttlMs);
    await this.#store.engine.transaction(async (tx) => {
      if (purpose === 'setup') await tx.run("DELETE FROM console_tokens WHERE purpose = 'setup'");
      else if (personId) await tx.run('DELETE FROM console_tokens WHERE purpose = ? AND person_id = ?', [purpose, personId]);
      await tx.run('DELETE FROM console_tokens WHERE expires_at < ?', [now.toISOString()]);
      await tx.run('INSERT INTO console_tokens (id, purpose, person_id, created_at, expires_at, oidc_issuer) VALUES (?, ?, ?, ?, ?, ?)', [digestOf(secret), purpose, personId ?? null, now.toISOString(), expiresAt.toISOString(), o.oidcIssuer ?? null]);
    });
    return { secret, expiresAt };
  }

  /** The link's person id ('' for a setup link) and the provider of a single sign-on it continues, if it is valid now; the link stays usable. */
  async checkLink(secret: string | undefined, purpose: LinkPurpose): Promise<{ personId: string; oidcIssuer?: string } | undefined> {
    if (!secret || !SECRET.test(secret)) return undefined;
    const rows = await this.#store.engine.all('SELECT person_id, oidc_issuer FROM console_tokens WHERE id = ? AND purpose = ? AND expires_at > ?', [digestOf(secret), purpose, this.#store.now().toISOString()]);
    const r = rows[0];
    if (!r) return undefined;
    return { personId: r.person_id === null ? '' : String(r.person_id), ...(r.oidc_issuer === null || r.oidc_issuer === undefined ? {} : { oidcIssuer: String(r.oidc_issuer) }) };
  }

  /** Uses the link up: true for the one caller that consumed a valid link, false for everyone else. */
  async consumeLink(secret: string | undefined, purpose: LinkPurpose): Promise<boolean> {
    if (!secret || !SECRET.test(secret)) return false;
    return (await this.#store.engine.run('DELETE FROM console_tokens WHERE id = ? AND purpose = ? AND expires_at > ?', [digestOf(secret), purpose, this.#store.now().toISOString()])) === 1;
  }
}
