/**
 * The people who sign in to the web console (issue 11), with their roles: its own
 * concept over the store's SQL engine (style guide, "the store grows by concept"),
 * migration 5. A person is a mailbox (the sign-in name, normalised), a display
 * name, zero or more roles and a password hash (password-hash.ts; absent until the
 * person sets one from an invitation). A person without a role is a plain user:
 * their own certificate and the check page.
 *
 * Roles (the console enforces them on every route, src/server/console/access.ts):
 * - administrator: everything, including roles, settings and the CA;
 * - registration-officer: adds people and issues their certificates;
 * - auditor: reads the audit log and the dashboard, changes nothing;
 * - helpdesk: finds people and their certificates, sends invitations again.
 */
import { randomUUID } from 'node:crypto';
import { KakitomeError } from '../errors.ts';
import { DEFAULT_PASSWORD_HASH, hashPassword, needsRehash, verifyPassword, type Argon2Parameters } from '../keys/password-hash.ts';
import { isMailboxAddressInAnyForm } from '../x509/mailbox-address.ts';
import { prefixEnd } from './page-cursor.ts';
import type { Row } from './sql-engine.ts';
import { normalizeAddress, type Store } from './store.ts';

export type ConsoleRole = 'administrator' | 'registration-officer' | 'auditor' | 'helpdesk';
export const CONSOLE_ROLES: readonly ConsoleRole[] = ['administrator', 'registration-officer', 'auditor', 'helpdesk'];
export type ConsoleLanguage = 'ja' | 'en';

export interface Person {
  id: string;
  email: string;
  displayName: string;
  roles: ConsoleRole[];
  language?: ConsoleLanguage;
  hasPassword: boolean;
  createdAt: Date;
  disabledAt?: Date;
}

export interface NewPerson {
  email: string;
  displayName?: string;
  roles?: readonly ConsoleRole[];
  password?: string;
  language?: ConsoleLanguage;
}

const MAX_DISPLAY_NAME = 200;

export function parseRoles(values: readonly string[]): ConsoleRole[] {
  const roles = [...new Set(values.map((v) => v.trim()).filter(Boolean))];
  const bad = roles.filter((r) => !CONSOLE_ROLES.includes(r as ConsoleRole));
  if (bad.length) throw new KakitomeError('INVALID_ARGUMENT', `Unknown role ${bad.join(', ')}: roles are ${CONSOLE_ROLES.join(', ')} (none: a plain user).`);
  return roles as ConsoleRole[];
}

export function checkDisplayName(name: string): string {
  const n = name.normalize('NFC').trim();
  // Control characters would let a name rewrite a log line or a CSV export.
  if ([...n].length > MAX_DISPLAY_NAME || /[\p{Cc}\p{Cf}]/u.test(n)) throw new KakitomeError('INVALID_ARGUMENT', `A display name has at most ${MAX_DISPLAY_NAME} characters and no control characters.`);
  return n;
}

function toPerson(r: Row): Person {
  const p: Person = {
    id: String(r.id), email: String(r.email), displayName: String(r.display_name),
    roles: String(r.roles).split(',').filter(Boolean) as ConsoleRole[],
    hasPassword: r.password_hash !== null && r.password_hash !== undefined,
    createdAt: new Date(String(r.created_at)),
  };
  if (r.language === 'ja' || r.language === 'en') p.language = r.language;
  if (r.disabled_at !== null && r.disabled_at !== undefined) p.disabledAt = new Date(String(r.disabled_at));
  return p;
}

const COLUMNS = 'id, email, display_name, roles, password_hash, language, created_at, disabled_at';

export class PeopleDirectory {
  readonly #store: Store;
  readonly #hash: Argon2Parameters;

  /** `passwordHash`: the Argon2id cost of new hashes (default RFC 9106's second setting); older hashes are upgraded at sign-in. */
  constructor(store: Store, options: { passwordHash?: Argon2Parameters } = {}) {
    this.#store = store;
    this.#hash = options.passwordHash ?? DEFAULT_PASSWORD_HASH;
  }

  /** The same directory writing to the audit log as the actor of `store` (a view of the same store). */
  actingFor(store: Store): PeopleDirectory {
    return new PeopleDirectory(store, { passwordHash: this.#hash });
  }

  get #engine() {
    return this.#store.engine;
  }

  async addPerson(o: NewPerson): Promise<Person> {
    if (!isMailboxAddressInAnyForm(o.email)) throw new KakitomeError('INVALID_ARGUMENT', `"${o.email}" is not a mailbox address (name@example.com).`);
    const email = normalizeAddress(o.email);
    const roles = parseRoles(o.roles ?? []);
    const displayName = checkDisplayName(o.displayName || email.slice(0, email.indexOf('@')));
    const hash = o.password === undefined ? null : await hashPassword(o.password, this.#hash);
    if (await this.findPersonByEmail(email)) throw new KakitomeError('INVALID_ARGUMENT', `${email} has an account already.`);
    const id = randomUUID();
    await this.#engine.run(`INSERT INTO people (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, [id, email, displayName, roles.join(','), hash, o.language ?? null, this.#store.now().toISOString(), null]);
    await this.#store.audit('person.add', email, roles.length ? `roles ${roles.join(',')}` : 'user');
    return (await this.findPerson(id))!;
  }

  async findPerson(id: string): Promise<Person | undefined> {
    const rows = await this.#engine.all(`SELECT ${COLUMNS} FROM people WHERE id = ?`, [id]);
    return rows[0] ? toPerson(rows[0]) : undefined;
  }

  async findPersonByEmail(email: string): Promise<Person | undefined> {
    const rows = await this.#engine.all(`SELECT ${COLUMNS} FROM people WHERE email = ?`, [normalizeAddress(email)]);
    return rows[0] ? toPerson(rows[0]) : undefined;
  }

  /**
   * People in address order; `limit` at most 500. `after`: the address the page
   * before ended with (keyset paging on the address index); `search`: the start
   * of an address or of a name (people_name; case ignored for ASCII letters).
   */
  async listPeople(o: { limit?: number; offset?: number; after?: string; search?: string } = {}): Promise<Person[]> {
    const limit = Math.min(Math.max(1, o.limit ?? 100), 500);
    const where: string[] = [];
    const params: Array<string | number> = [];
    const search = (o.search ?? '').trim().toLowerCase().slice(0, 320);
    if (search) {
      const end = prefixEnd(search);
      where.push('((email >= ? AND email < ?) OR (lower(display_name) >= ? AND lower(display_name) < ?))');
      params.push(search, end, search, end);
    }
    if (o.after !== undefined) {
      where.push('email > ?');
      params.push(o.after.slice(0, 320));
    }
    const rows = await this.#engine.all(`SELECT ${COLUMNS} FROM people ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY email LIMIT ? OFFSET ?`, [...params, limit, Math.max(0, o.offset ?? 0)]);
    return rows.map(toPerson);
  }

  async countPeople(): Promise<number> {
    return Number((await this.#engine.all('SELECT COUNT(*) AS n FROM people'))[0]?.n ?? 0);
  }

  /** Active administrators: while there is none, the console offers first-run setup. */
  async countAdministrators(): Promise<number> {
    return (await this.listAdministrators()).length;
  }

  /** The enabled administrators, by address. */
  async listAdministrators(): Promise<Person[]> {
    const rows = await this.#engine.all(`SELECT ${COLUMNS} FROM people WHERE disabled_at IS NULL AND roles LIKE '%administrator%' ORDER BY email`);
    return rows.map(toPerson).filter((p) => p.roles.includes('administrator'));
  }

  /**
   * The person whose address and password these are, if they may sign in (enabled,
   * with a password); undefined otherwise, after the same work whatever the cause
   * (verifyPassword's decoy), so the answer does not tell who has an account. A hash
   * made with weaker parameters than today's is replaced.
   */
  async checkPassword(email: string, password: string): Promise<Person | undefined> {
    const rows = isMailboxAddressInAnyForm(email) ? await this.#engine.all(`SELECT ${COLUMNS} FROM people WHERE email = ?`, [normalizeAddress(email)]) : [];
    const row = rows[0];
    const stored = row && row.password_hash !== null && !row.disabled_at ? String(row.password_hash) : undefined;
    if (!(await verifyPassword(password, stored, this.#hash)) || !row) return undefined;
    if (needsRehash(stored!, this.#hash)) await this.#engine.run('UPDATE people SET password_hash = ? WHERE id = ?', [await hashPassword(password, this.#hash), String(row.id)]);
    return toPerson(row);
  }

  async setPassword(id: string, password: string): Promise<void> {
    const hash = await hashPassword(password, this.#hash);
    const n = await this.#engine.run('UPDATE people SET password_hash = ? WHERE id = ?', [hash, id]);
    if (!n) throw new KakitomeError('NOT_FOUND', 'No such person.');
    await this.#store.audit('person.password', (await this.findPerson(id))?.email);
  }

  async setRoles(id: string, roles: readonly ConsoleRole[]): Promise<Person> {
    const checked = parseRoles(roles);
    const before = await this.findPerson(id);
    if (!before) throw new KakitomeError('NOT_FOUND', 'No such person.');
    if (before.roles.includes('administrator') && !checked.includes('administrator') && (await this.countAdministrators()) <= 1) {
      throw new KakitomeError('INVALID_ARGUMENT', 'This is the last administrator: make someone else an administrator first.');
    }
    await this.#engine.run('UPDATE people SET roles = ? WHERE id = ?', [checked.join(','), id]);
    await this.#store.audit('person.roles', before.email, checked.join(',') || 'user');
    return (await this.findPerson(id))!;
  }

  async setLanguage(id: string, language: ConsoleLanguage): Promise<void> {
    await this.#engine.run('UPDATE people SET language = ? WHERE id = ?', [language, id]);
  }
}
