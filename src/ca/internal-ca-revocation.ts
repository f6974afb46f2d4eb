/**
 * The internal CA's revocation status of its own certificates, read from the key
 * store (pki/types.ts LocalRevocationSource): the same records its CRLs and its
 * OCSP responder are made from (revoke-issued-certificate.ts), so a certificate it
 * issued is "not withdrawn" or "withdrawn" for the check page, `kakitome verify`
 * with a store, serve and the gateway even when its CRL or OCSP URL cannot be
 * reached from here, or it publishes none. Nothing is signed or fetched: the store
 * is trusted as its trust anchors are.
 *
 * It speaks only for a certificate whose issuer is one of the store's CAs (by the
 * issuer certificate's fingerprint) and that this CA recorded issuing, by issuer
 * and serial as the OCSP responder looks it up; any other certificate is left to
 * the usual sources. The CAs are read again at most once a minute.
 */
import { reasonName } from '../pki/parse-crl.ts';
import type { LocalRevocationSource } from '../pki/types.ts';
import type { Store } from '../store/store.ts';

const CA_LIST_TTL_MS = 60_000;

export function createInternalCaRevocationSource(store: Store): LocalRevocationSource {
  let cas: { until: number; byFingerprint: Promise<Map<string, string>> } | undefined;
  const caIds = (): Promise<Map<string, string>> => {
    const now = store.now().getTime();
    if (!cas || cas.until <= now) {
      const byFingerprint = store.engine
        .all('SELECT a.id, c.fingerprint FROM certificate_authorities a JOIN certificates c ON c.id = a.certificate_id')
        .then((rows) => new Map(rows.map((r) => [String(r.fingerprint), String(r.id)])));
      // A failed read is not kept: the next check asks again.
      byFingerprint.catch(() => (cas = undefined));
      cas = { until: now + CA_LIST_TTL_MS, byFingerprint };
    }
    return cas.byFingerprint;
  };
  return async (cert, issuer) => {
    const caId = (await caIds()).get(issuer.fingerprint256);
    if (caId === undefined) return undefined;
    const rows = await store.engine.all(
      `SELECT c.revoked_at, c.revocation_reason FROM certificates c JOIN issued_certificates i ON i.certificate_id = c.id
       WHERE c.issuer_hex = ? AND c.serial_hex = ? AND i.ca_id = ?`,
      [Buffer.from(cert.issuer).toString('hex'), Buffer.from(cert.serial).toString('hex'), caId],
    );
    const row = rows[0];
    // Signed by our CA, but not a certificate it recorded issuing: the OCSP responder's "unknown"; the other sources decide.
    if (!row) return undefined;
    if (row.revoked_at === null || row.revoked_at === undefined) return { status: 'good' };
    const code = Number(row.revocation_reason ?? 0);
    // Unspecified is written without a reason, as in its CRLs and OCSP answers (RFC 5280 5.3.1).
    const reason = code === 0 ? undefined : reasonName(code);
    return { status: 'revoked', revokedAt: new Date(String(row.revoked_at)), ...(reason ? { reason } : {}) };
  };
}
