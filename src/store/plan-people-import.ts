/**
 * Importing people in bulk (the console's CSV and LDAP import): first a plan,
 * row by row, that writes nothing (each row: add, unchanged because the address
 * has an account already, or an error with its reason), then the plan applied.
 * Re-importing the same rows changes nothing (idempotent). People are imported
 * without roles: a role is given by an administrator, one person at a time.
 *
 * A CSV file has a header row naming its columns: email (required), name,
 * language (ja or en); any other column is refused rather than ignored. A cell a
 * spreadsheet would run as a formula (starting with =, +, -, @, a tab or CR) is an
 * error, so an imported name never becomes a formula in someone's export later.
 */
import { isKakitomeError, KakitomeError } from '../errors.ts';
import { isMailboxAddressInAnyForm } from '../x509/mailbox-address.ts';
import { parseCsv } from './parse-csv.ts';
import { checkDisplayName, type ConsoleLanguage, type PeopleDirectory } from './people-directory.ts';
import { normalizeAddress } from './store.ts';

export const IMPORT_MAX_BYTES = 256 * 1024;
export const IMPORT_MAX_ROWS = 2000;
const COLUMNS = ['email', 'name', 'language'] as const;

export interface ImportRecord {
  /** Where it came from: the CSV line number, or the directory entry's DN. */
  origin: string;
  email: string;
  name: string;
  language: string;
}

export type ImportProblem = 'email' | 'duplicate' | 'formula' | 'name' | 'language';

export interface ImportRow extends ImportRecord {
  status: 'add' | 'unchanged' | 'error';
  problem?: ImportProblem;
}

/** Reads the CSV text into records (row numbers as in a spreadsheet, the header being 1). */
export function readPeopleCsv(text: string): ImportRecord[] {
  if (Buffer.byteLength(text) > IMPORT_MAX_BYTES) throw new KakitomeError('LIMIT', `The file is larger than ${IMPORT_MAX_BYTES} bytes.`);
  let rows: string[][];
  try {
    rows = parseCsv(text, IMPORT_MAX_ROWS + 1);
  } catch (e) {
    // The header row does not count as a person.
    if (isKakitomeError(e, 'LIMIT')) throw new KakitomeError('LIMIT', `The file has more than ${IMPORT_MAX_ROWS} people.`);
    throw e;
  }
  const header = (rows[0] ?? []).map((h) => h.trim().toLowerCase());
  const unknown = header.filter((h) => !(COLUMNS as readonly string[]).includes(h));
  if (!header.includes('email') || unknown.length || new Set(header).size !== header.length) {
    throw new KakitomeError('MALFORMED', `The first row must name the columns: email, and optionally name and language${unknown.length ? ` (unknown: ${unknown.join(', ').slice(0, 200)})` : ''}.`);
  }
  const at = (r: string[], col: string) => (header.indexOf(col) >= 0 ? (r[header.indexOf(col)] ?? '') : '');
  return rows.slice(1).map((r, i) => ({ origin: String(i + 2), email: at(r, 'email').trim(), name: at(r, 'name').trim(), language: at(r, 'language').trim().toLowerCase() }));
}

const FORMULA = /^[=+\-@\t\r]/;

/** A cell a spreadsheet would run as a formula (=, +, -, @, a tab or CR first): refused on import. */
export function looksLikeFormula(cell: string): boolean {
  return FORMULA.test(cell);
}

function problemOf(r: ImportRecord): ImportProblem | undefined {
  if (looksLikeFormula(r.email) || looksLikeFormula(r.name)) return 'formula';
  if (!isMailboxAddressInAnyForm(r.email)) return 'email';
  if (r.language && r.language !== 'ja' && r.language !== 'en') return 'language';
  try {
    checkDisplayName(r.name);
  } catch {
    return 'name';
  }
  return undefined;
}

export async function planPeopleImport(people: PeopleDirectory, records: readonly ImportRecord[]): Promise<ImportRow[]> {
  if (records.length > IMPORT_MAX_ROWS) throw new KakitomeError('LIMIT', `At most ${IMPORT_MAX_ROWS} people at once.`);
  const seen = new Set<string>();
  const out: ImportRow[] = [];
  for (const r of records) {
    const problem = problemOf(r);
    if (problem) {
      out.push({ ...r, status: 'error', problem });
      continue;
    }
    const email = normalizeAddress(r.email);
    if (seen.has(email)) {
      out.push({ ...r, email, status: 'error', problem: 'duplicate' });
      continue;
    }
    seen.add(email);
    out.push({ ...r, email, status: (await people.findPersonByEmail(email)) ? 'unchanged' : 'add' });
  }
  return out;
}

/** Adds the plan's "add" rows (re-checked: a row added meanwhile becomes unchanged); returns the rows as done. */
export async function applyPeopleImport(people: PeopleDirectory, plan: readonly ImportRow[]): Promise<ImportRow[]> {
  const out: ImportRow[] = [];
  for (const r of plan) {
    if (r.status !== 'add') {
      out.push(r);
      continue;
    }
    if (await people.findPersonByEmail(r.email)) {
      out.push({ ...r, status: 'unchanged' });
      continue;
    }
    await people.addPerson({ email: r.email, displayName: r.name, ...(r.language ? { language: r.language as ConsoleLanguage } : {}) });
    out.push(r);
  }
  return out;
}
