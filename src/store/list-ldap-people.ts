/**
 * The people of the company directory (entries with a mail attribute under the
 * base DN), for the console's LDAP import: address, name (displayName, else cn)
 * and language (preferredLanguage starting ja or en). Bounded like the
 * certificate lookup (lookup-ldap-certificates.ts): time limits, and at most
 * IMPORT_MAX_ROWS entries (more is refused with LIMIT, never cut silently).
 */
import { Client, PresenceFilter, SizeLimitExceededError } from 'ldapts';
import { KakitomeError } from '../errors.ts';
import type { LdapSource } from './lookup-ldap-certificates.ts';
import { IMPORT_MAX_ROWS, type ImportRecord } from './plan-people-import.ts';

const first = (v: unknown): string => String((Array.isArray(v) ? v[0] : v) ?? '').trim();

export async function listLdapPeople(source: LdapSource, max = IMPORT_MAX_ROWS): Promise<ImportRecord[]> {
  const timeout = source.timeoutMs ?? 5000;
  const client = new Client({ url: source.url, timeout, connectTimeout: timeout });
  try {
    if (source.bindDn) await client.bind(source.bindDn, source.password ?? '');
    const { searchEntries } = await client.search(source.baseDn, {
      scope: 'sub', filter: new PresenceFilter({ attribute: 'mail' }), attributes: ['mail', 'cn', 'displayName', 'preferredLanguage'],
      sizeLimit: max + 1, timeLimit: Math.max(1, Math.ceil(timeout / 1000)),
    });
    if (searchEntries.length > max) throw new KakitomeError('LIMIT', `The directory has more than ${max} people under ${source.baseDn}: import a narrower base.`);
    return searchEntries.map((e) => {
      const lang = first(e.preferredLanguage).toLowerCase();
      return { origin: e.dn, email: first(e.mail), name: first(e.displayName) || first(e.cn), language: lang.startsWith('ja') ? 'ja' : lang.startsWith('en') ? 'en' : '' };
    }).sort((a, b) => a.email.localeCompare(b.email));
  } catch (e) {
    if (e instanceof KakitomeError) throw e;
    if (e instanceof SizeLimitExceededError) throw new KakitomeError('LIMIT', `The directory has more than ${max} people under ${source.baseDn}: import a narrower base.`, { cause: e });
    throw new KakitomeError('INVALID_ARGUMENT', `LDAP search at ${source.url} failed: ${(e as Error).message}`, { cause: e });
  } finally {
    await client.unbind().catch(() => undefined);
  }
}
