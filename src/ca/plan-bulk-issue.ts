/**
 * Bulk issue from a CSV (the console's Certificates → Issue for many people):
 * the same rule as issuing for one person on their page, row by row. First a
 * plan that writes nothing (each row: issue, unchanged because the person has a
 * current certificate from our CA already, or an error with its reason), then
 * the plan applied, each row checked again just before its certificate is
 * issued. The key of each certificate is made on the server and sealed in the
 * store (issueMailboxCertificate, as `kakitome ca issue`); nobody downloads it
 * here: each person takes a key for their own devices, once, on "My
 * certificate". Uploading the same file again issues nothing more (idempotent),
 * and after a failure half-way it finishes the rest.
 *
 * The file is the people import's CSV (plan-people-import.ts: a header naming
 * email, optionally name and language, which are not used here), at most
 * BULK_ISSUE_MAX_ROWS rows: each row makes a key.
 */
import { KakitomeError, isKakitomeError } from '../errors.ts';
import type { OrganisationSettings } from '../store/organisation-settings.ts';
import type { PeopleDirectory, Person } from '../store/people-directory.ts';
import { looksLikeFormula, readPeopleCsv } from '../store/plan-people-import.ts';
import { normalizeAddress, type Store } from '../store/store.ts';
import { isMailboxAddressInAnyForm } from '../x509/mailbox-address.ts';
import { issueMailboxCertificate, type MailboxKeyType } from './issue-mailbox-certificate.ts';
import { isCurrent, listIssuedMailboxCertificates } from './list-issued-mailbox-certificates.ts';

export const BULK_ISSUE_MAX_ROWS = 200;

export type BulkIssueProblem = 'email' | 'formula' | 'duplicate' | 'no-person' | 'disabled' | 'not-yours' | 'not-in-domains' | 'refused';

export interface BulkIssueRow {
  /** The CSV line number (the header being 1). */
  origin: string;
  email: string;
  status: 'issue' | 'unchanged' | 'error';
  problem?: BulkIssueProblem;
  /** The library's words when issuing was refused. */
  detail?: string;
  /** The certificate issued now, or the current one that made the row unchanged. */
  fingerprint?: string;
}

export interface BulkIssueContext {
  store: Store;
  people: PeopleDirectory;
  organisation: OrganisationSettings;
  /** May the person uploading act on this person? (An officer only on people without a role.) */
  mayActOn: (p: Person) => boolean;
}

/** Reads the CSV into rows of addresses (the people import's format and limits, at most BULK_ISSUE_MAX_ROWS rows). */
export function readBulkIssueCsv(text: string): Array<{ origin: string; email: string }> {
  const records = readPeopleCsv(text);
  if (records.length > BULK_ISSUE_MAX_ROWS) throw new KakitomeError('LIMIT', `The file has more than ${BULK_ISSUE_MAX_ROWS} people; issue for them in several files (a file uploaded again issues nothing twice).`);
  return records.map((r) => ({ origin: r.origin, email: r.email }));
}

async function planRow(cx: BulkIssueContext, origin: string, email: string): Promise<BulkIssueRow> {
  if (looksLikeFormula(email)) return { origin, email, status: 'error', problem: 'formula' };
  if (!isMailboxAddressInAnyForm(email)) return { origin, email, status: 'error', problem: 'email' };
  const a = normalizeAddress(email);
  const person = await cx.people.findPersonByEmail(a);
  if (!person) return { origin, email: a, status: 'error', problem: 'no-person' };
  if (person.disabledAt) return { origin, email: a, status: 'error', problem: 'disabled' };
  if (!cx.mayActOn(person)) return { origin, email: a, status: 'error', problem: 'not-yours' };
  if (!(await cx.organisation.ownsMailbox(a))) return { origin, email: a, status: 'error', problem: 'not-in-domains' };
  const now = cx.store.now();
  const current = (await listIssuedMailboxCertificates(cx.store, a)).find((r) => isCurrent(r, now));
  if (current) return { origin, email: a, status: 'unchanged', fingerprint: current.certificate.fingerprint256 };
  return { origin, email: a, status: 'issue' };
}

/** The plan, row by row; writes nothing. */
export async function planBulkIssue(cx: BulkIssueContext, records: ReadonlyArray<{ origin: string; email: string }>): Promise<BulkIssueRow[]> {
  if (records.length > BULK_ISSUE_MAX_ROWS) throw new KakitomeError('LIMIT', `At most ${BULK_ISSUE_MAX_ROWS} people at once.`);
  const seen = new Set<string>();
  const out: BulkIssueRow[] = [];
  for (const r of records) {
    const row = await planRow(cx, r.origin, r.email);
    // The same person twice is an error on the second row (whatever the first row's fate).
    const key = row.email.toLowerCase();
    if (row.problem !== 'formula' && seen.has(key)) out.push({ origin: r.origin, email: row.email, status: 'error', problem: 'duplicate' });
    else out.push(row);
    seen.add(key);
  }
  return out;
}

/** Issues the plan's "issue" rows, each checked again first; a refusal of one row is that row's error, the others go on. */
export async function applyBulkIssue(cx: BulkIssueContext, plan: readonly BulkIssueRow[], keyType: MailboxKeyType): Promise<BulkIssueRow[]> {
  const out: BulkIssueRow[] = [];
  for (const r of plan) {
    if (r.status !== 'issue') {
      out.push(r);
      continue;
    }
    const now = await planRow(cx, r.origin, r.email);
    if (now.status !== 'issue') {
      out.push(now);
      continue;
    }
    try {
      const [issued] = await issueMailboxCertificate(cx.store, { email: r.email, keyType });
      out.push({ ...r, fingerprint: issued!.certificate.fingerprint256 });
    } catch (e) {
      if (!isKakitomeError(e)) throw e;
      out.push({ ...r, status: 'error', problem: 'refused', detail: `${e.code}: ${e.message}` });
    }
  }
  return out;
}
