/**
 * Judging a certificate against a CRL and an optional delta CRL (RFC 5280 6.3.3).
 * Fetching and caching live in check-revocation.ts; this file performs no I/O.
 */
import { KakitomeError } from '../errors.ts';
import type { Certificate } from '../x509/certificate.ts';
import { readBasicConstraints, readDistributionPointUris } from './read-certificate-extensions.ts';
import { verifySignatureValue } from './verify-signed-object.ts';
import { reasonName, type ParsedCrl, type CrlEntry } from './parse-crl.ts';

export interface CrlAnswer {
  status: 'good' | 'revoked';
  thisUpdate: Date;
  nextUpdate?: Date;
  revokedAt?: Date;
  reason?: string;
  /** The delta CRL was applied. */
  usedDelta: boolean;
}

export interface CrlCheckOptions {
  now: Date;
  skewMs: number;
  /** A CRL without nextUpdate is considered fresh for this long after thisUpdate. */
  maxAgeMs: number;
}

function reject(why: string): never {
  throw new KakitomeError('CERT_UNTRUSTED', `CRL rejected: ${why}.`);
}

/** Checks that `crl` is a CRL `issuer` signed, that covers `cert`, and is fresh at `o.now`. */
export function validateCrl(crl: ParsedCrl, cert: Certificate, issuer: Certificate, o: CrlCheckOptions, kind: 'base' | 'delta'): void {
  if (crl.unusable) reject(crl.unusable);
  // 6.3.3 (b)(1): the CRL issuer is the certificate's issuer (indirect CRLs unsupported).
  if (Buffer.compare(crl.issuer, cert.issuer) !== 0 || Buffer.compare(crl.issuer, issuer.subject) !== 0) reject('it was issued by another CA');
  // 6.3.3 (f): the CRL signer must be allowed to sign CRLs.
  const ku = issuer.keyUsage;
  if (ku && !ku.has('cRLSign')) reject('the issuer\'s keyUsage lacks cRLSign');
  if (!verifySignatureValue(crl.signatureAlgorithm, crl.tbs, crl.signatureValue, issuer.publicKey)) reject('bad signature');
  if (kind === 'base' && crl.deltaBase !== undefined) reject('a delta CRL was found where a complete CRL was expected');
  if (kind === 'delta' && crl.deltaBase === undefined) reject('the freshest CRL is not a delta CRL');
  // 6.3.3 (b)(2): the issuing distribution point scope must cover this certificate.
  if (crl.idp) {
    if (crl.idp.unsupportedScope) reject('its issuing distribution point restricts reasons or is indirect (not supported)');
    const isCa = readBasicConstraints(cert)?.ca === true;
    if (crl.idp.onlyContainsUserCerts && isCa) reject('it covers only end-entity certificates');
    if (crl.idp.onlyContainsCACerts && !isCa) reject('it covers only CA certificates');
    const dps = readDistributionPointUris(cert);
    if (crl.idp.uris.length && !crl.idp.uris.some((u) => dps.includes(u))) reject('its distribution point is not the certificate\'s');
  }
  const now = o.now.getTime();
  if (crl.thisUpdate.getTime() > now + o.skewMs) reject('thisUpdate is in the future');
  if (crl.nextUpdate && crl.nextUpdate.getTime() + o.skewMs < now) reject(`it is stale (nextUpdate ${crl.nextUpdate.toISOString()} has passed)`);
  if (!crl.nextUpdate && crl.thisUpdate.getTime() + o.maxAgeMs < now) reject('it is stale (no nextUpdate)');
}

/**
 * The status of `cert` by `base` (and `delta` when given). Both are validated
 * first; failures throw CERT_UNTRUSTED with the reason.
 */
export function checkCrl(cert: Certificate, issuer: Certificate, base: ParsedCrl, delta: ParsedCrl | undefined, o: CrlCheckOptions): CrlAnswer {
  validateCrl(base, cert, issuer, o, 'base');
  const serial = Buffer.from(cert.serial).toString('hex').toUpperCase();
  let entry: CrlEntry | undefined = base.entries.get(serial);
  let usedDelta = false;
  let thisUpdate = base.thisUpdate;
  let nextUpdate = base.nextUpdate;
  if (delta) {
    validateCrl(delta, cert, issuer, o, 'delta');
    // RFC 5280 5.2.4: the delta applies to a base whose cRLNumber >= its BaseCRLNumber,
    // and must itself be newer than that base.
    if (base.crlNumber === undefined || delta.deltaBase! > base.crlNumber) reject('the delta CRL needs a newer base CRL');
    if (delta.crlNumber !== undefined && delta.crlNumber <= base.crlNumber) reject('the delta CRL is older than the base CRL');
    const d = delta.entries.get(serial);
    // removeFromCRL (8) in a delta releases a certificateHold listed in the base.
    if (d) entry = d.reason === 8 ? undefined : d;
    usedDelta = true;
    thisUpdate = delta.thisUpdate;
    nextUpdate = delta.nextUpdate;
  }
  const answer: CrlAnswer = { status: entry && entry.reason !== 8 ? 'revoked' : 'good', thisUpdate, usedDelta };
  if (nextUpdate) answer.nextUpdate = nextUpdate;
  if (entry && answer.status === 'revoked') {
    answer.revokedAt = entry.revocationDate;
    const r = reasonName(entry.reason);
    if (r) answer.reason = r;
  }
  return answer;
}
