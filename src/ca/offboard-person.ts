/**
 * The leaver flow: a person leaves the organisation. In this order, each step
 * safe to repeat (a second run after a failure finishes the first):
 *   1. their console account is disabled (no sign-in, no session resumes:
 *      console-sessions.ts); the last enabled administrator cannot leave;
 *   2. every mailbox certificate the CA issued for their address that is not
 *      revoked yet is revoked with `reason` (revokeIssuedCertificate, as `kakitome
 *      ca revoke`: in the next CRL and at once in the OCSP answers);
 *   3. nothing else: their private keys stay sealed in the store, so mail
 *      encrypted to them before stays readable (the gateway, key recovery).
 * Audited as person.leave, then one certificate.revoke per certificate.
 */
import { KakitomeError } from '../errors.ts';
import type { Person } from '../store/people-directory.ts';
import { PeopleDirectory } from '../store/people-directory.ts';
import type { CertificateRecord, Store } from '../store/store.ts';
import { listMailboxCertificates } from './list-mailbox-certificates.ts';
import { revokeIssuedCertificate, type RevocationReasonName } from './revoke-issued-certificate.ts';

export interface LeaverOutcome {
  person: Person;
  revoked: CertificateRecord[];
  /** Certificates of theirs whose private key the store keeps (old mail stays readable). */
  keysKept: number;
}

export async function offboardPerson(store: Store, personId: string, reason: RevocationReasonName): Promise<LeaverOutcome> {
  const people = new PeopleDirectory(store);
  const person = await people.findPerson(personId);
  if (!person) throw new KakitomeError('NOT_FOUND', 'No such person.');
  const now = store.now();
  await store.engine.transaction(async (tx) => {
    const n = await tx.run('UPDATE people SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL', [now.toISOString(), person.id]);
    if (!n) return;
    if (person.roles.includes('administrator')) {
      const rows = await tx.all("SELECT roles FROM people WHERE disabled_at IS NULL AND roles LIKE '%administrator%'");
      if (!rows.some((r) => String(r.roles).split(',').includes('administrator'))) {
        throw new KakitomeError('INVALID_ARGUMENT', 'This is the last administrator: make someone else an administrator first.');
      }
    }
    await store.auditWithin(tx, 'person.leave', person.email, `reason ${reason}`);
  });
  const revoked: CertificateRecord[] = [];
  let keysKept = 0;
  for (const rec of await listMailboxCertificates(store, person.email)) {
    if (!rec.revokedAt) revoked.push(await revokeIssuedCertificate(store, rec.certificate.fingerprint256, reason, now));
    if (rec.hasPrivateKey) keysKept++;
  }
  return { person: (await people.findPerson(person.id))!, revoked, keysKept };
}
