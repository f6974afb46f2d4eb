/**
 * LDAP as a further certificate source (RFC 8550 4.3 lets agents look up
 * certificates in a directory): the entries whose `mail` equals the address, their
 * userCertificate;binary (RFC 4523) and userSMIMECertificate (a certs-only
 * PKCS#7, RFC 2798) values. Only certificates that name the address are returned,
 * and the store keeps them at the lowest trust level (never replacing a trusted
 * certificate). ldapts: a maintained, TypeScript LDAP client with one dependency.
 *
 * Bounded: size and time limits on the search, a connect/operation timeout, a cap
 * on certificates taken, and the address escaped in the filter (RFC 4515). ldapts
 * buffers the whole answer (the directory's own limits bound it); what is parsed of
 * it is capped: at most maxValuesPerEntry values of an entry and maxBytes of values
 * in all per lookup are examined, the rest left with a warning (`onWarning`).
 */
import { Client, EqualityFilter } from 'ldapts';
import { KakitomeError } from '../errors.ts';
import { Certificate } from '../x509/certificate.ts';
import { readCertsOnly } from '../smime/read-certs-only.ts';
import { normalizeAddress, type CertificateRecord, type Store } from './store.ts';
import { encryptionProblem } from './harvest-signer.ts';
import type { SignerValidator } from '../pki/types.ts';

export interface LdapSource {
  /** ldap://host:port or ldaps://host:port */
  url: string;
  baseDn: string;
  bindDn?: string;
  password?: string;
  /** Milliseconds for connect and for the search (default 5000). */
  timeoutMs?: number;
  /** Most certificates taken from one answer (default 16). */
  maxCertificates?: number;
  /** Most certificate values examined in one entry (default 32); the entry's others are left, with a warning. */
  maxValuesPerEntry?: number;
  /** Most bytes of certificate values examined in one lookup (default 1 MiB); the answer's rest is left, with a warning. */
  maxBytes?: number;
  /** Told what a lookup left unexamined (a sentence naming the URL and the limit; never the address or a value, so it can be logged). */
  onWarning?: (message: string) => void;
}

// userSMIMECertificate has Binary syntax (RFC 2798 9.1.2): no ;binary transfer option.
const ATTRIBUTES = ['userCertificate;binary', 'userSMIMECertificate'];

export async function lookupLdapCertificates(source: LdapSource, email: string): Promise<Certificate[]> {
  if (!/^ldaps?:\/\//i.test(source.url)) throw new KakitomeError('INVALID_ARGUMENT', 'The LDAP URL must be ldap:// or ldaps://.');
  const timeout = source.timeoutMs ?? 5000;
  const max = source.maxCertificates ?? 16;
  const address = normalizeAddress(email);
  const client = new Client({ url: source.url, timeout, connectTimeout: timeout });
  try {
    if (source.bindDn) await client.bind(source.bindDn, source.password ?? '');
    const { searchEntries } = await client.search(source.baseDn, {
      scope: 'sub',
      filter: new EqualityFilter({ attribute: 'mail', value: address }),
      attributes: ATTRIBUTES,
      explicitBufferAttributes: ATTRIBUTES,
      sizeLimit: max,
      timeLimit: Math.max(1, Math.ceil(timeout / 1000)),
    });
    const out: Certificate[] = [];
    const seen = new Set<string>();
    const maxValues = source.maxValuesPerEntry ?? 32;
    const maxBytes = source.maxBytes ?? 1 << 20;
    const warn = (what: string) => source.onWarning?.(`LDAP lookup at ${source.url}: ${what}`);
    let examined = 0;
    entries: for (const entry of searchEntries) {
      let taken = 0;
      for (const [name, raw] of Object.entries(entry)) {
        const attr = name.toLowerCase();
        if (!ATTRIBUTES.some((a) => a.toLowerCase() === attr)) continue;
        const values = (Array.isArray(raw) ? raw : [raw]).filter((v): v is Buffer => Buffer.isBuffer(v));
        for (const v of values) {
          if (taken >= maxValues) {
            warn(`an entry has more than ${maxValues} certificate values; the others were not examined.`);
            continue entries;
          }
          if (examined + v.length > maxBytes) {
            warn(`the answer has more than ${maxBytes} bytes of certificate values; the rest was not examined.`);
            return out;
          }
          taken++;
          examined += v.length;
          let certs: Certificate[];
          try {
            certs = attr.startsWith('usersmime') ? readCertsOnly(v) : [Certificate.fromDer(v)];
          } catch {
            continue; // a damaged value in the directory does not hide the others
          }
          for (const c of certs) {
            if (seen.has(c.fingerprint256) || !c.emailAddresses.some((e) => normalizeAddress(e) === address)) continue;
            seen.add(c.fingerprint256);
            out.push(c);
            if (out.length >= max) return out;
          }
        }
      }
    }
    return out;
  } catch (e) {
    if (e instanceof KakitomeError) throw e;
    throw new KakitomeError('INVALID_ARGUMENT', `LDAP lookup at ${source.url} failed: ${(e as Error).message}`, { cause: e });
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

/**
 * The recipient certificate for `email`: from the store when it has a current one,
 * otherwise looked up in LDAP. A directory answer proves nothing by itself, so each
 * certificate must pass `validate` (the PKI layer's SignerValidator, usage
 * "encryption") before it is kept (trust "harvested", source ldap:URL) and ranked.
 */
export async function findRecipientCertificateWithLdap(store: Store, email: string, source: LdapSource, validate: SignerValidator, now: Date = store.now()): Promise<CertificateRecord | undefined> {
  const local = await store.findRecipientCertificate(email, now);
  if (local) return local;
  for (const c of await lookupLdapCertificates(source, email)) {
    const report = await validate({ certificate: c, carried: [], usage: 'encryption', from: [email] });
    if (!encryptionProblem(report, email)) await store.harvestCertificate(c, { address: email, source: `ldap:${source.url}` });
  }
  return store.findRecipientCertificate(email, now);
}
