/**
 * The organisation the console serves (issue 11, first run): its name, its mail
 * domains (a signed-in person gets a certificate from the console only for a
 * mailbox in one of them) and who may use the "is this mail genuine?" page.
 * Domains live in organisation_domains (migration 5); the rest in settings.
 */
import { KakitomeError } from '../errors.ts';
import { isMailDomain } from '../x509/mailbox-address.ts';
import { normalizeAddress, type Store } from './store.ts';

export type CheckPageAccess = 'public' | 'signed-in';

const MAX_DOMAINS = 100;
const MAX_NAME = 120;

/** Domains from free text (commas, spaces or lines), lower-cased and checked. */
export function parseMailDomains(text: string): string[] {
  const domains = [...new Set(text.split(/[\s,;]+/).map((d) => d.trim().toLowerCase().replace(/^@/, '').replace(/\.$/, '')).filter(Boolean))];
  const bad = domains.filter((d) => !isMailDomain(d));
  if (bad.length) throw new KakitomeError('INVALID_ARGUMENT', `Not a mail domain: ${bad.slice(0, 3).join(', ')} (e.g. example.co.jp; internationalised domains in their xn-- form).`);
  if (domains.length > MAX_DOMAINS) throw new KakitomeError('LIMIT', `At most ${MAX_DOMAINS} mail domains.`);
  return domains;
}

export function checkOrganisationName(name: string): string {
  const n = name.normalize('NFC').trim();
  if (!n || [...n].length > MAX_NAME || /[\p{Cc}\p{Cf}]/u.test(n)) throw new KakitomeError('INVALID_ARGUMENT', `An organisation name has 1 to ${MAX_NAME} characters and no control characters.`);
  return n;
}

export class OrganisationSettings {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  async #setting(name: string): Promise<string | undefined> {
    const rows = await this.#store.engine.all('SELECT value FROM settings WHERE name = ?', [name]);
    return rows[0] ? String(rows[0].value) : undefined;
  }

  async #set(name: string, value: string): Promise<void> {
    await this.#store.engine.transaction(async (tx) => {
      await tx.run('DELETE FROM settings WHERE name = ?', [name]);
      await tx.run('INSERT INTO settings (name, value) VALUES (?, ?)', [name, value]);
    });
  }

  async name(): Promise<string | undefined> {
    return this.#setting('organisation.name');
  }

  async setName(name: string): Promise<void> {
    const n = checkOrganisationName(name);
    await this.#set('organisation.name', n);
    await this.#store.audit('organisation.name', n);
  }

  async domains(): Promise<string[]> {
    return (await this.#store.engine.all('SELECT domain FROM organisation_domains ORDER BY domain')).map((r) => String(r.domain));
  }

  /** Replaces the list of mail domains (at least one). */
  async setDomains(domains: readonly string[]): Promise<string[]> {
    const wanted = parseMailDomains(domains.join(' '));
    if (!wanted.length) throw new KakitomeError('INVALID_ARGUMENT', 'Give at least one mail domain, e.g. example.co.jp.');
    const at = this.#store.now().toISOString();
    await this.#store.engine.transaction(async (tx) => {
      await tx.run('DELETE FROM organisation_domains');
      for (const d of wanted) await tx.run('INSERT INTO organisation_domains (domain, added_at) VALUES (?, ?)', [d, at]);
    });
    await this.#store.audit('organisation.domains', undefined, wanted.join(' '));
    return wanted;
  }

  /** True when the mailbox's domain (after the last "@") is one of the organisation's. */
  async ownsMailbox(email: string): Promise<boolean> {
    const a = normalizeAddress(email);
    const domain = a.slice(a.lastIndexOf('@') + 1);
    return (await this.#store.engine.all('SELECT domain FROM organisation_domains WHERE domain = ?', [domain])).length > 0;
  }

  /** Who may use the check page; default 'public' (anyone who received a suspicious mail). */
  async checkPageAccess(): Promise<CheckPageAccess> {
    return (await this.#setting('console.check_page')) === 'signed-in' ? 'signed-in' : 'public';
  }

  async setCheckPageAccess(access: CheckPageAccess): Promise<void> {
    if (access !== 'public' && access !== 'signed-in') throw new KakitomeError('INVALID_ARGUMENT', 'The check page is "public" or "signed-in".');
    await this.#set('console.check_page', access);
    await this.#store.audit('console.check-page', access);
  }
}
