/**
 * Judging a certificate against a CRL and an optional delta CRL (RFC 5280 6.3.3),
 * direct or indirect (cRLIssuer, certificateIssuer, indirectCRL), and saying which
 * reasons the answer covers (onlySomeReasons, DistributionPoint reasons): the
 * caller combines reason-partitioned CRLs until every reason is covered.
 * Fetching and caching live in check-revocation.ts; this file performs no I/O.
 */
import { KakitomeError } from '../errors.ts';
import type { Certificate } from '../x509/certificate.ts';
import { ALL_REASONS, readBasicConstraints, readDistributionPointUris, type DistributionPoint, type ReasonMask } from './read-certificate-extensions.ts';
import { verifySignatureValue } from './verify-signed-object.ts';
import { findCrlEntry, issuerKey, reasonName, type ParsedCrl, type CrlEntry } from './parse-crl.ts';

export interface CrlAnswer {
  status: 'good' | 'revoked';
  thisUpdate: Date;
  nextUpdate?: Date;
  revokedAt?: Date;
  reason?: string;
  /** The delta CRL was applied. */
  usedDelta: boolean;
  /** The reasons this answer covers (RFC 5280 6.3.3 (d)): all of them unless the CRL or the distribution point is partitioned by reason. */
  reasons: ReasonMask;
}

export interface CrlCheckOptions {
  now: Date;
  skewMs: number;
  /** A CRL without nextUpdate is considered fresh for this long after thisUpdate. */
  maxAgeMs: number;
}

/** Where a CRL comes from and who signs it. */
export interface CrlScope {
  /** The certificate's distribution point the CRL was fetched from; absent for a CRL carried in the message. */
  dp?: DistributionPoint;
  /**
   * The certificate whose key signed the CRL: the certificate's issuer, or the
   * indirect CRL issuer its distribution point names (cRLIssuer), whose path to
   * the same trust anchor the caller has validated (6.3.3 (f)).
   */
  signer: Certificate;
}

function reject(why: string): never {
  throw new KakitomeError('CERT_UNTRUSTED', `CRL rejected: ${why}.`);
}

/**
 * Checks that `crl` covers `cert` (issued by `issuer`), was signed by the scope's
 * signer, is fresh at `o.now`; returns the reasons it covers for the certificate.
 */
export function validateCrl(crl: ParsedCrl, cert: Certificate, issuer: Certificate, o: CrlCheckOptions, kind: 'base' | 'delta', scope: CrlScope = { signer: issuer }): ReasonMask {
  if (crl.unusable) reject(crl.unusable);
  const { dp, signer } = scope;
  // 6.3.3 (b)(1): the CRL issuer is the certificate's issuer, or the cRLIssuer its
  // distribution point names, and then the CRL must say it is indirect. A CRL
  // claiming indirectness speaks only for CAs that named its issuer.
  if (dp?.crlIssuer) {
    if (!dp.crlIssuer.some((n) => issuerKey(n) === issuerKey(crl.issuer))) reject('it was issued by another CRL issuer than the one the certificate names');
    if (!crl.idp?.indirectCRL) reject('the certificate names an indirect CRL issuer, and this CRL is not marked indirect');
  } else if (Buffer.compare(crl.issuer, cert.issuer) !== 0) {
    reject(crl.idp?.indirectCRL ? 'it was issued by another CA, which claims to be an indirect CRL issuer although the certificate\'s CA did not name it' : 'it was issued by another CA');
  }
  if (Buffer.compare(crl.issuer, signer.subject) !== 0) reject('it was issued by another CA');
  // 6.3.3 (f): the CRL signer must be allowed to sign CRLs.
  const ku = signer.keyUsage;
  if (ku && !ku.has('cRLSign')) reject(`${signer === issuer ? 'the issuer' : 'the CRL issuer'}'s keyUsage lacks cRLSign`);
  if (!verifySignatureValue(crl.signatureAlgorithm, crl.tbs, crl.signatureValue, signer.publicKey)) reject('bad signature');
  if (kind === 'base' && crl.deltaBase !== undefined) reject('a delta CRL was found where a complete CRL was expected');
  if (kind === 'delta' && crl.deltaBase === undefined) reject('the freshest CRL is not a delta CRL');
  // 6.3.3 (b)(2): the issuing distribution point scope must cover this certificate.
  if (crl.idp) {
    if (crl.idp.unsupportedScope) reject('its issuing distribution point covers only attribute certificates or is named relative to its issuer (not supported)');
    const isCa = readBasicConstraints(cert)?.ca === true;
    if (crl.idp.onlyContainsUserCerts && isCa) reject('it covers only end-entity certificates');
    if (crl.idp.onlyContainsCACerts && !isCa) reject('it covers only CA certificates');
    const dps = dp ? dp.uris : readDistributionPointUris(cert);
    if (crl.idp.uris.length && !crl.idp.uris.some((u) => dps.includes(u))) reject('its distribution point is not the certificate\'s');
  }
  const now = o.now.getTime();
  if (crl.thisUpdate.getTime() > now + o.skewMs) reject('thisUpdate is in the future');
  if (crl.nextUpdate && crl.nextUpdate.getTime() + o.skewMs < now) reject(`it is stale (nextUpdate ${crl.nextUpdate.toISOString()} has passed)`);
  if (!crl.nextUpdate && crl.thisUpdate.getTime() + o.maxAgeMs < now) reject('it is stale (no nextUpdate)');
  // 6.3.3 (d): the reasons covered, by the CRL and by the distribution point.
  return (crl.idp?.onlySomeReasons ?? ALL_REASONS) & (dp?.reasons ?? ALL_REASONS) & ALL_REASONS;
}

/**
 * The status of `cert` by `base` (and `delta` when given), within the reasons they
 * cover. Both are validated first; failures throw CERT_UNTRUSTED with the reason.
 */
export function checkCrl(cert: Certificate, issuer: Certificate, base: ParsedCrl, delta: ParsedCrl | undefined, o: CrlCheckOptions, scope: CrlScope = { signer: issuer }): CrlAnswer {
  const reasons = validateCrl(base, cert, issuer, o, 'base', scope);
  let entry: CrlEntry | undefined = findCrlEntry(base, cert.issuer, cert.serial);
  let usedDelta = false;
  let thisUpdate = base.thisUpdate;
  let nextUpdate = base.nextUpdate;
  if (delta) {
    // RFC 5280 5.2.4: a delta has the scope of its base.
    if (validateCrl(delta, cert, issuer, o, 'delta', scope) !== reasons || delta.idp?.indirectCRL !== base.idp?.indirectCRL) reject('the delta CRL has another scope than the base CRL');
    // RFC 5280 5.2.4: the delta applies to a base whose cRLNumber >= its BaseCRLNumber,
    // and must itself be newer than that base.
    if (base.crlNumber === undefined || delta.deltaBase! > base.crlNumber) reject('the delta CRL needs a newer base CRL');
    if (delta.crlNumber !== undefined && delta.crlNumber <= base.crlNumber) reject('the delta CRL is older than the base CRL');
    const d = findCrlEntry(delta, cert.issuer, cert.serial);
    // removeFromCRL (8) in a delta releases a certificateHold listed in the base.
    if (d) entry = d.reason === 8 ? undefined : d;
    usedDelta = true;
    thisUpdate = delta.thisUpdate;
    nextUpdate = delta.nextUpdate;
  }
  const answer: CrlAnswer = { status: entry && entry.reason !== 8 ? 'revoked' : 'good', thisUpdate, usedDelta, reasons };
  if (nextUpdate) answer.nextUpdate = nextUpdate;
  if (entry && answer.status === 'revoked') {
    answer.revokedAt = entry.revocationDate;
    const r = reasonName(entry.reason);
    if (r) answer.reason = r;
  }
  return answer;
}
