/**
 * A signed CRL (RFC 5280 5.1) for one of the internal CAs: version 2, the
 * authorityKeyIdentifier and a monotonically increasing cRLNumber (5.2.1, 5.2.3,
 * both required by RFC 5280 and S/MIME BR 7.2.2), one entry per revoked
 * certificate with its reasonCode (5.3.1; omitted for unspecified, as 5.3.1 asks).
 * The number is taken in the same transaction that advances it, so two gateway
 * nodes publishing at once never issue two CRLs with one number.
 */
import { sequence, integer, time, explicit, oid, octetString, bitString, implicit, tlv } from '../asn1/der.ts';
import { Tag } from '../asn1/ber.ts';
import { OID } from '../asn1/oids.ts';
import { x509SignatureAlgorithm, x509Sign } from '../x509/algorithms.ts';
import { keyIdentifier } from '../x509/issue.ts';
import { KakitomeError } from '../errors.ts';
import type { Store } from '../store/store.ts';
import { findCertificateAuthority, openCaKey } from './certificate-authority.ts';
import { recordCrlStatus } from './crl-status.ts';

const CRL_NUMBER = '2.5.29.20';
const REASON_CODE = '2.5.29.21';

export interface PublishCrlOptions {
  caName?: string;
  now?: Date;
  /**
   * Hours until nextUpdate (default 168). S/MIME BR 4.9.7: at most 10 days (240 h)
   * for the issuing CA's CRL (subscriber certificates), at most 12 months for the
   * root's (it lists CA certificates only).
   */
  validityHours?: number;
}

export interface PublishedCrl {
  der: Buffer;
  crlNumber: number;
  thisUpdate: Date;
  nextUpdate: Date;
  revokedCount: number;
}

export async function publishCrl(store: Store, o: PublishCrlOptions = {}): Promise<PublishedCrl> {
  const ca = await findCertificateAuthority(store, o.caName);
  const hours = o.validityHours ?? 168;
  const most = ca.role === 'root' ? 8784 : 240;
  if (!(hours > 0 && hours <= most)) throw new KakitomeError('INVALID_ARGUMENT', `CRL validity must be 1..${most} hours for ${ca.role === 'root' ? 'a root' : 'an issuing'} CA (S/MIME BR 4.9.7).`);
  const key = await openCaKey(store, ca, 'ca-crl');
  const thisUpdate = new Date(Math.floor((o.now ?? store.now()).getTime() / 1000) * 1000);
  const nextUpdate = new Date(thisUpdate.getTime() + hours * 3_600_000);
  const out = await store.engine.transaction(async (tx) => {
    const rows = await tx.all('SELECT next_crl_number FROM certificate_authorities WHERE id = ?', [ca.id]);
    const crlNumber = Number(rows[0]!.next_crl_number);
    await tx.run('UPDATE certificate_authorities SET next_crl_number = ? WHERE id = ? AND next_crl_number = ?', [crlNumber + 1, ca.id, crlNumber]);
    // From the revoked certificates (certificates_revoked, a partial index: a few rows) to their issue
    // records, never from every certificate the CA issued to its revocation state: CROSS JOIN fixes that
    // order on SQLite, which without statistics chose the CA's issue records (7 ms at 5,000 issued);
    // PostgreSQL reads it as the inner join it is and plans it itself.
    const revoked = await tx.all(
      `SELECT c.serial_hex, c.revoked_at, c.revocation_reason FROM certificates c CROSS JOIN issued_certificates i
       WHERE i.certificate_id = c.id AND i.ca_id = ? AND c.revoked_at IS NOT NULL ORDER BY c.revoked_at, c.serial_hex`,
      [ca.id],
    );
    const entries = revoked.map((r) => {
      const reason = Number(r.revocation_reason ?? 0);
      const when = new Date(String(r.revoked_at));
      const serial = tlv(Tag.INTEGER, Buffer.from(String(r.serial_hex), 'hex'));
      return reason === 0
        ? sequence(serial, time(when))
        : sequence(serial, time(when), sequence(sequence(oid(REASON_CODE), octetString(tlv(Tag.ENUMERATED, Buffer.of(reason))))));
    });
    const aki = ca.certificate.subjectKeyIdentifier ?? keyIdentifier(ca.certificate.publicKey);
    const exts = sequence(
      sequence(oid(OID.authorityKeyIdentifier), octetString(sequence(implicit(0, false, aki)))),
      sequence(oid(CRL_NUMBER), octetString(integer(crlNumber))),
    );
    const sigAlg = x509SignatureAlgorithm(key);
    const tbs = sequence(
      integer(1),
      sigAlg,
      Buffer.from(ca.certificate.subject),
      time(thisUpdate),
      time(nextUpdate),
      ...(entries.length ? [sequence(...entries)] : []),
      explicit(0, exts),
    );
    const der = sequence(tbs, sigAlg, bitString(x509Sign(key, tbs)));
    await recordCrlStatus(tx, ca.id, { crlNumber, thisUpdate, nextUpdate });
    return { der, crlNumber, thisUpdate, nextUpdate, revokedCount: entries.length };
  });
  await store.audit('ca.crl', ca.certificate.fingerprint256, `CRL ${out.crlNumber}, ${out.revokedCount} revoked`);
  return out;
}
