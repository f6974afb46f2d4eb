/**
 * The console's passkeys (migration 13): each person's WebAuthn credentials, the
 * second factor after their password (src/server/console/passkey-ceremony.ts
 * runs the ceremonies). What is kept is public: the credential id, the
 * authenticator's public key (COSE), its signature counter and the transports it
 * named; a copy of the database signs nobody in.
 *
 * A person has at most MAX_PASSKEYS; a name is the person's own label ("work
 * laptop"), plain text without control characters.
 */
import { KakitomeError } from '../errors.ts';
import type { Row } from './sql-engine.ts';
import type { Store } from './store.ts';

export const MAX_PASSKEYS = 10;
const MAX_NAME = 60;
const TRANSPORTS = new Set(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb']);

export interface Passkey {
  /** The credential id, base64url. */
  id: string;
  personId: string;
  publicKey: Uint8Array<ArrayBuffer>;
  signCount: number;
  transports: string[];
  name: string;
  createdAt: Date;
  lastUsedAt?: Date;
}

/** A passkey's label: trimmed, NFC, 1 to 60 characters, no control characters. */
export function checkPasskeyName(name: string): string {
  const n = name.normalize('NFC').trim();
  if (!n || [...n].length > MAX_NAME || /[\p{Cc}\p{Cf}]/u.test(n)) throw new KakitomeError('INVALID_ARGUMENT', `A passkey's name has 1 to ${MAX_NAME} characters and no control characters.`);
  return n;
}

function toPasskey(r: Row): Passkey {
  const p: Passkey = {
    id: String(r.id), personId: String(r.person_id), publicKey: new Uint8Array(r.public_key as Uint8Array),
    signCount: Number(r.sign_count), transports: String(r.transports).split(',').filter(Boolean), name: String(r.name),
    createdAt: new Date(String(r.created_at)),
  };
  if (r.last_used_at !== null && r.last_used_at !== undefined) p.lastUsedAt = new Date(String(r.last_used_at));
  return p;
}

const COLUMNS = 'id, person_id, public_key, sign_count, transports, name, created_at, last_used_at';

export class PasskeyDirectory {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  /** A person's passkeys, oldest first. */
  async list(personId: string): Promise<Passkey[]> {
    return (await this.#store.engine.all(`SELECT ${COLUMNS} FROM console_passkeys WHERE person_id = ? ORDER BY created_at, id`, [personId])).map(toPasskey);
  }

  async count(personId: string): Promise<number> {
    return Number((await this.#store.engine.all('SELECT COUNT(*) AS n FROM console_passkeys WHERE person_id = ?', [personId]))[0]?.n ?? 0);
  }

  /** The passkey with this credential id, if it is `personId`'s. */
  async find(personId: string, id: string): Promise<Passkey | undefined> {
    const rows = await this.#store.engine.all(`SELECT ${COLUMNS} FROM console_passkeys WHERE id = ? AND person_id = ?`, [id, personId]);
    return rows[0] ? toPasskey(rows[0]) : undefined;
  }

  async add(o: { personId: string; email: string; id: string; publicKey: Uint8Array; signCount: number; transports?: readonly string[]; name: string }): Promise<Passkey> {
    const name = checkPasskeyName(o.name);
    const transports = (o.transports ?? []).filter((t) => TRANSPORTS.has(t));
    const now = this.#store.now().toISOString();
    await this.#store.engine.transaction(async (tx) => {
      const n = Number((await tx.all('SELECT COUNT(*) AS n FROM console_passkeys WHERE person_id = ?', [o.personId]))[0]?.n ?? 0);
      if (n >= MAX_PASSKEYS) throw new KakitomeError('LIMIT', `A person has at most ${MAX_PASSKEYS} passkeys: remove one first.`);
      if ((await tx.all('SELECT 1 FROM console_passkeys WHERE id = ?', [o.id])).length) throw new KakitomeError('INVALID_ARGUMENT', 'This passkey is registered already.');
      await tx.run(`INSERT INTO console_passkeys (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, [o.id, o.personId, Buffer.from(o.publicKey), o.signCount, transports.join(','), name, now, null]);
    });
    await this.#store.audit('person.passkey.add', o.email, name);
    return (await this.find(o.personId, o.id))!;
  }

  /** Records a sign-in: the new counter only if it still holds the one read (two sign-ins racing: one wins). */
  async recordUse(passkey: Passkey, newCount: number): Promise<boolean> {
    return (await this.#store.engine.run('UPDATE console_passkeys SET sign_count = ?, last_used_at = ? WHERE id = ? AND sign_count = ?', [newCount, this.#store.now().toISOString(), passkey.id, passkey.signCount])) === 1;
  }

  async remove(personId: string, email: string, id: string): Promise<boolean> {
    const found = await this.find(personId, id);
    if (!found) return false;
    await this.#store.engine.run('DELETE FROM console_passkeys WHERE id = ? AND person_id = ?', [id, personId]);
    await this.#store.audit('person.passkey.remove', email, found.name);
    return true;
  }

  /**
   * Removes every passkey of a person who lost all their devices (an
   * administrator's act, console person page): one `person.passkey.remove-all`
   * audit row naming how many and which. Returns how many were removed.
   */
  async removeAll(personId: string, email: string): Promise<number> {
    let names: string[] = [];
    await this.#store.engine.transaction(async (tx) => {
      names = (await tx.all('SELECT name FROM console_passkeys WHERE person_id = ? ORDER BY created_at, id', [personId])).map((r) => String(r.name));
      if (names.length) await tx.run('DELETE FROM console_passkeys WHERE person_id = ?', [personId]);
    });
    if (names.length) await this.#store.audit('person.passkey.remove-all', email, `${names.length} removed: ${names.join(', ')}`);
    return names.length;
  }
}
