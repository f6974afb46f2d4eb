/**
 * Revocation of every certificate of a validated path (RFC 5280 6.1.3 (a)(3)),
 * from the best evidence available, in this order: an answer cached from an
 * earlier online check, OCSP from the AIA extension (RFC 6960/5019) and CRLs from
 * the distribution points (with the freshest delta CRL, RFC 5280 5.2.6), and only
 * when neither answers, OCSP responses and CRLs carried in the message (when fresh
 * and valid). Online answers and downloaded CRLs are cached, bounded, until their
 * nextUpdate or the TTL, whichever comes first.
 *
 * Carried evidence is the sender's choice of what to show (issue 9, item 7): it
 * is used for the message that carries it only, never cached for other messages,
 * and a fresh online answer wins over it (a stapled "good" from before a
 * revocation must not outlive the revocation).
 *
 * An OCSP answer from a delegated responder counts only when the responder's
 * certificate has id-pkix-ocsp-nocheck or is itself not revoked (RFC 6960
 * 4.2.2.2.1), checked one level deep (MAX_NESTING).
 *
 * Modes (per deployment): 'require' treats "cannot tell" as a failure
 * (REVOCATION_UNKNOWN); 'allow-unknown' accepts it and the report says
 * "revocation unknown"; 'off' skips the check and says so. A revoked answer is
 * always final. 'hard-fail' and 'soft-fail' are the former names of 'require' and
 * 'allow-unknown'.
 */
import type { Certificate } from '../x509/certificate.ts';
import type { CertificateRevocationReport, ClockUsed, Fetcher, LocalRevocationSource, RevocationReport } from './types.ts';
import { TtlCache } from './ttl-cache.ts';
import { issuerKey, parseCrl, type ParsedCrl } from './parse-crl.ts';
import { normaliseName } from './match-name-constraints.ts';
import { checkCrl, type CrlAnswer } from './check-crl.ts';
import { queryOcsp, parseOcspResponse, evaluateOcspResponse, type OcspAnswer } from './check-ocsp.ts';
import { ALL_REASONS, readAuthorityInfoAccess, readDistributionPoints, readDistributionPointUris, PKI_OID, type DistributionPoint, type ReasonMask } from './read-certificate-extensions.ts';
import { KakitomeError, isKakitomeError } from '../errors.ts';
import { fingerprintOf } from './certificate-fingerprint.ts';

export type RevocationMode = 'require' | 'allow-unknown' | 'off' | 'hard-fail' | 'soft-fail';

/** The mode under its current name ('hard-fail' is 'require', 'soft-fail' is 'allow-unknown'). */
export function normalizeRevocationMode(mode: RevocationMode): 'require' | 'allow-unknown' | 'off' {
  switch (mode) {
    case 'require':
    case 'hard-fail':
      return 'require';
    case 'allow-unknown':
    case 'soft-fail':
      return 'allow-unknown';
    case 'off':
      return 'off';
    default:
      throw new KakitomeError('INVALID_ARGUMENT', `Unknown revocation mode "${String(mode)}": use require, allow-unknown or off.`);
  }
}

export interface RevocationOptions {
  mode: RevocationMode;
  /** Which online source to try first; the other is the fallback. */
  prefer: 'ocsp' | 'crl';
  ocspMethod: 'post' | 'get';
  /** Reject OCSP responses that do not echo the nonce we sent. */
  requireOcspNonce: boolean;
  maxCrlBytes: number;
  maxOcspBytes: number;
  timeoutMs: number;
  skewMs: number;
  /** Freshness window for evidence without nextUpdate. */
  maxAgeMs: number;
  /** Upper bound on how long an answer or CRL is cached, even if nextUpdate is later. */
  cacheTtlMs: number;
  /** How long a failed download (a CRL, or any request to an OCSP responder) is remembered, so an unreachable server is not hammered. */
  failureTtlMs: number;
  maxCacheEntries: number;
  maxUrlsPerCertificate: number;
}

export const DEFAULT_REVOCATION_OPTIONS: Readonly<RevocationOptions> = Object.freeze({
  mode: 'allow-unknown',
  prefer: 'ocsp',
  ocspMethod: 'post',
  requireOcspNonce: false,
  maxCrlBytes: 16 * 1024 * 1024,
  maxOcspBytes: 64 * 1024,
  timeoutMs: 5_000,
  skewMs: 5 * 60_000,
  maxAgeMs: 24 * 3600_000,
  cacheTtlMs: 3600_000,
  failureTtlMs: 30_000,
  maxCacheEntries: 10_000,
  maxUrlsPerCertificate: 4,
} as RevocationOptions);

/** The answer for one certificate of the path. */
export interface CertificateRevocation {
  status: 'good' | 'revoked' | 'unknown';
  source?: 'ocsp' | 'crl' | 'embedded-ocsp' | 'embedded-crl' | 'internal-ca';
  time?: Date;
  revokedAt?: Date;
  reason?: string;
  /** Why the status is unknown (each source tried). */
  problems: string[];
  cached: boolean;
}

interface Cached {
  answer: CertificateRevocation;
}

export interface RevocationEvidence {
  carriedCrls: Uint8Array[];
  carriedOcsp: Uint8Array[];
  /** Certificates carried in the message: candidates for an indirect CRL issuer, used only once validated to the anchor. */
  carriedCertificates?: Certificate[];
  /** The trust anchor of the path being checked: an indirect CRL issuer must chain to it (RFC 5280 6.3.3 (f)). checkPath sets it. */
  anchor?: Certificate;
}

/**
 * Finds a certificate of the indirect CRL issuer `name` (DER Name) and validates
 * its path to `anchor` for signing CRLs (signer first, anchor last); undefined
 * when there is none. createSignerValidator supplies it.
 */
export type CrlIssuerResolver = (name: Uint8Array, anchor: Certificate, carried: Certificate[]) => Promise<Certificate[] | undefined>;

/** What an online check, whose answer is cached for every message, may use of a message's evidence: no revocation data, only the anchor and candidate certificates. */
function onlineContext(e: RevocationEvidence): RevocationEvidence {
  const out: RevocationEvidence = { carriedCrls: [], carriedOcsp: [] };
  if (e.carriedCertificates) out.carriedCertificates = e.carriedCertificates;
  if (e.anchor) out.anchor = e.anchor;
  return out;
}

/**
 * How deep revocation checks nest: the path's certificates are at depth 0; the
 * certificate of a delegated OCSP responder that answered for one of them (RFC
 * 6960 4.2.2.2.1), and the certificates of an indirect CRL issuer (RFC 5280
 * 6.3.3 (f)), are checked at depth 1, and evidence that would need a check
 * deeper than that is not used. This bounds the recursion (a responder whose
 * own status comes from a delegated responder, and so on).
 */
const MAX_NESTING = 1;

export class RevocationChecker {
  readonly #o: RevocationOptions;
  readonly #mode: 'require' | 'allow-unknown' | 'off';
  readonly #fetcher: Fetcher;
  readonly #now: () => Date;
  readonly #answers: TtlCache<Cached>;
  readonly #crls: TtlCache<ParsedCrl | Error>;
  /** OCSP responders (by the certificate's URL) that could not be asked: refused again without a request until failureTtlMs passes. */
  readonly #ocspDown: TtlCache<Error>;
  /**
   * Certificates that name no OCSP responder and no CRL distribution point and of which
   * the caller's own CA's records say nothing (by issuer, serial and the certificate's
   * own fingerprint): "unknown" is all the online and local steps can say of them, so
   * they are not asked again for NO_SOURCE_TTL_MS. Evidence a message carries is still
   * read for every message (a cached "no source" is used only for a message that carries
   * none), and it is never an answer in #answers: nothing but the absence of sources is kept.
   */
  readonly #noSource: TtlCache<CertificateRevocation>;
  // Concurrent validations of the same certificate (a burst of mail from one
  // sender) share one network round trip instead of each starting their own.
  readonly #inFlight = new Map<string, Promise<CertificateRevocation>>();
  readonly #crlInFlight = new Map<string, Promise<ParsedCrl>>();
  readonly #resolveCrlIssuer: CrlIssuerResolver | undefined;
  readonly #local: LocalRevocationSource | undefined;

  /** `local`: the caller's own CA's records, asked first (types.ts LocalRevocationSource). */
  constructor(options: RevocationOptions, fetcher: Fetcher, now: () => Date, resolveCrlIssuer?: CrlIssuerResolver, local?: LocalRevocationSource) {
    this.#o = options;
    this.#resolveCrlIssuer = resolveCrlIssuer;
    this.#local = local;
    this.#mode = normalizeRevocationMode(options.mode);
    this.#fetcher = fetcher;
    this.#now = now;
    const ms = () => now().getTime();
    this.#answers = new TtlCache(options.maxCacheEntries, ms);
    this.#crls = new TtlCache(Math.max(16, options.maxCacheEntries >> 4), ms);
    this.#ocspDown = new TtlCache(Math.max(16, options.maxCacheEntries >> 4), ms);
    this.#noSource = new TtlCache(options.maxCacheEntries, ms);
  }

  get mode(): 'require' | 'allow-unknown' | 'off' {
    return this.#mode;
  }

  clearCaches(): void {
    this.#answers.clear();
    this.#crls.clear();
    this.#ocspDown.clear();
    this.#noSource.clear();
  }

  /**
   * Checks `path` (leaf first, anchor last; the anchor is not checked: trusted by
   * configuration, RFC 5280 6.1). `clock` is the clock the validity decision used.
   * Call it only for a path that ends at an anchor: it contacts the URLs the
   * path's certificates name (issue 9, item 8).
   */
  async checkPath(path: Certificate[], evidence: RevocationEvidence, clock: ClockUsed): Promise<{ report: RevocationReport; perCertificate: CertificateRevocation[] }> {
    const warm = this.checkPathFromCache(path, clock, evidence);
    if (warm) return warm;
    if (this.#mode === 'off') return { report: notChecked(path), perCertificate: [] };
    const per: CertificateRevocation[] = [];
    const withAnchor: RevocationEvidence = { ...evidence, anchor: path[path.length - 1]! };
    for (let i = 0; i + 1 < path.length; i++) {
      per.push(await this.checkCertificate(path[i]!, path[i + 1]!, withAnchor));
    }
    return { report: summarise(path, per, clock), perCertificate: per };
  }

  /**
   * The warm path: when every certificate has an answer cached from an online
   * check, the report is produced synchronously (no promise per certificate).
   * Carried evidence does not matter then: the online answer wins over it.
   * With `evidence` that carries no CRL and no OCSP response, a certificate known to
   * name no source (#noSource) counts as answered too: "unknown", as the full check
   * would say. Undefined when any answer is missing.
   */
  checkPathFromCache(path: Certificate[], clock: ClockUsed, evidence?: RevocationEvidence): { report: RevocationReport; perCertificate: CertificateRevocation[] } | undefined {
    if (this.#mode === 'off') return undefined;
    const carriesNone = evidence !== undefined && evidence.carriedCrls.length === 0 && evidence.carriedOcsp.length === 0;
    const per: CertificateRevocation[] = [];
    for (let i = 0; i + 1 < path.length; i++) {
      const key = answerKey(path[i]!, path[i + 1]!);
      const hit = this.#answers.get(key);
      if (hit) {
        per.push({ ...hit.answer, cached: true });
        continue;
      }
      const none = carriesNone ? this.#noSource.get(noSourceKey(key, path[i]!)) : undefined;
      if (!none) return undefined;
      per.push({ ...none, problems: [...none.problems] });
    }
    return { report: summarise(path, per, clock), perCertificate: per };
  }

  async checkCertificate(cert: Certificate, issuer: Certificate, evidence: RevocationEvidence): Promise<CertificateRevocation> {
    return this.#check(cert, issuer, evidence, 0);
  }

  async #check(cert: Certificate, issuer: Certificate, evidence: RevocationEvidence, depth: number): Promise<CertificateRevocation> {
    const key = answerKey(cert, issuer);
    // 1. An answer from an earlier online check.
    const hit = this.#answers.get(key);
    if (hit) return { ...hit.answer, cached: true };

    // 2. The caller's own CA, from its records: no network, and current.
    const localProblems: string[] = [];
    const own = this.#local ? await this.#fromLocal(key, cert, issuer, localProblems) : undefined;
    if (own) return own;

    // 3. Online sources, preferred first (one request at a time per certificate
    //    and depth: a nested check never waits for the check that started it),
    //    unless the certificate is known to name none.
    const quietKey = noSourceKey(key, cert);
    let online = localProblems.length === 0 ? this.#noSource.get(quietKey) : undefined;
    if (!online) {
      const flightKey = `${key}#${depth}`;
      let pending = this.#inFlight.get(flightKey);
      if (!pending) {
        pending = this.#checkOnline(key, cert, issuer, onlineContext(evidence), depth).finally(() => this.#inFlight.delete(flightKey));
        this.#inFlight.set(flightKey, pending);
      }
      online = await pending;
      if (online.status !== 'unknown') return online;
      // Nothing to ask, and the local records had nothing to say without failing: the same until the TTL.
      if (localProblems.length === 0 && online.problems.length === 1 && online.problems[0] === NO_SOURCE) {
        const now = this.#now().getTime();
        this.#noSource.set(quietKey, online, now + Math.min(this.#o.cacheTtlMs, NO_SOURCE_TTL_MS));
      }
    }

    // 4. Evidence carried in this message, when valid and fresh; never remembered.
    const problems = [...localProblems, ...online.problems];
    const carried = await this.#fromCarried(cert, issuer, evidence, problems, depth);
    return carried ?? { status: 'unknown', problems, cached: false };
  }

  /**
   * The answer of the caller's own CA (LocalRevocationSource), remembered for at most
   * LOCAL_ANSWER_TTL_MS: a revocation recorded meanwhile shows within that time, and
   * a burst of mail from one sender costs one look-up. A failing source (the store
   * down) leaves the question to the other sources, its failure among the problems.
   */
  async #fromLocal(key: string, cert: Certificate, issuer: Certificate, problems: string[]): Promise<CertificateRevocation | undefined> {
    let a: Awaited<ReturnType<LocalRevocationSource>>;
    try {
      a = await this.#local!(cert, issuer);
    } catch (e) {
      problems.push(`the internal CA's records: ${messageOf(e)}`);
      return undefined;
    }
    if (!a) return undefined;
    const now = this.#now();
    const r: CertificateRevocation & { nextUpdate?: Date } = { status: a.status, source: 'internal-ca', time: now, problems: [], cached: false, nextUpdate: new Date(now.getTime() + LOCAL_ANSWER_TTL_MS) };
    if (a.revokedAt) r.revokedAt = a.revokedAt;
    if (a.reason) r.reason = a.reason;
    return this.#remember(key, r);
  }

  /**
   * RFC 6960 4.2.2.2.1: a response signed by a delegated responder counts only
   * when the responder's certificate has id-pkix-ocsp-nocheck, or is itself known
   * not to be revoked (by its CA's CRL or OCSP, one level deep). Throws
   * CERT_UNTRUSTED with the reason otherwise: a revoked responder key, or one
   * whose status nobody can tell, vouches for nothing.
   */
  async #acceptResponder(a: OcspAnswer, cert: Certificate, issuer: Certificate, evidence: RevocationEvidence, depth: number): Promise<void> {
    const responder = a.responderCertificate;
    if (!responder || responder.extensions.has(PKI_OID.ocspNoCheck)) return;
    const reject: (why: string) => never = (why) => {
      throw new KakitomeError('CERT_UNTRUSTED', `OCSP response rejected: ${why}.`);
    };
    const name = `the responder's certificate "${responder.subjectText || responder.serialHex}"`;
    if (Buffer.compare(responder.serial, cert.serial) === 0) reject(`${name} answered for itself without id-pkix-ocsp-nocheck, and a responder cannot vouch for its own certificate`);
    if (depth >= MAX_NESTING) reject(`${name} lacks id-pkix-ocsp-nocheck and would need a revocation check nested deeper than allowed`);
    const r = await this.#check(responder, issuer, evidence, depth + 1);
    if (r.status === 'revoked') reject(`${name} was revoked${r.revokedAt ? ` on ${r.revokedAt.toISOString()}` : ''}${r.reason ? ` (${r.reason})` : ''}`);
    if (r.status === 'unknown') reject(`${name} lacks id-pkix-ocsp-nocheck and its own revocation status is unknown (${r.problems.map((p) => p.replace(/\.+$/, '')).join('; ')})`);
  }

  async #fromCarried(cert: Certificate, issuer: Certificate, evidence: RevocationEvidence, problems: string[], depth: number): Promise<CertificateRevocation | undefined> {
    const now = this.#now();
    for (const der of evidence.carriedOcsp) {
      try {
        const a = evaluateOcspResponse(parseOcspResponse(der), cert, issuer, { now, skewMs: this.#o.skewMs, maxAgeMs: this.#o.maxAgeMs });
        if (a.status === 'unknown') continue;
        await this.#acceptResponder(a, cert, issuer, evidence, depth);
        return withoutNextUpdate(fromOcsp(a, 'embedded-ocsp'));
      } catch (e) {
        problems.push(`carried OCSP response: ${messageOf(e)}`);
      }
    }
    if (evidence.carriedCrls.length === 0) return undefined;
    const parsed: ParsedCrl[] = [];
    for (const der of evidence.carriedCrls) {
      try {
        parsed.push(parseCrl(der));
      } catch (e) {
        problems.push(`carried CRL: ${messageOf(e)}`);
      }
    }
    // Each complete CRL for this certificate (its CA's, or an indirect CRL issuer's the
    // certificate names) is a group of its own; reason-partitioned ones add up.
    const dps = readDistributionPoints(cert);
    const deltas = parsed.filter((c) => c.deltaBase !== undefined);
    const groups: CrlGroup[] = [];
    for (const base of parsed) {
      if (base.deltaBase !== undefined) continue;
      const dp = dps.find((d) => d.crlIssuer?.some((n) => issuerKey(n) === issuerKey(base.issuer)));
      if (!dp && Buffer.compare(base.issuer, cert.issuer) !== 0) continue;
      const delta = deltas.find((d) => Buffer.compare(d.issuer, base.issuer) === 0 && base.crlNumber !== undefined && d.deltaBase! <= base.crlNumber);
      groups.push({
        attempts: [{
          label: 'carried CRL',
          run: async () => checkCrl(cert, issuer, base, delta, this.#crlOpts(), dp ? { dp, signer: await this.#crlSigner(dp, base, issuer, evidence, depth) } : { signer: issuer }),
        }],
      });
    }
    const a = await combineCrlAnswers(groups, problems, 'carried CRLs');
    return a ? withoutNextUpdate(fromCrl(a, 'embedded-crl')) : undefined;
  }

  /**
   * The key that signs the CRL at `dp`: the certificate's issuer, or the indirect
   * CRL issuer the distribution point names, found among the message's and the
   * store's certificates, validated to the path's anchor (RFC 5280 6.3.3 (f)) and
   * itself not revoked (checked one level deep). Throws CERT_UNTRUSTED otherwise.
   */
  async #crlSigner(dp: DistributionPoint, base: ParsedCrl, issuer: Certificate, evidence: RevocationEvidence, depth: number): Promise<Certificate> {
    if (!dp.crlIssuer || Buffer.compare(base.issuer, issuer.subject) === 0) return issuer;
    const reject: (why: string) => never = (why) => {
      throw new KakitomeError('CERT_UNTRUSTED', `CRL rejected: ${why}.`);
    };
    if (!dp.crlIssuer.some((n) => issuerKey(n) === issuerKey(base.issuer))) reject('it was issued by another CRL issuer than the one the certificate names');
    const name = describeName(base.issuer);
    if (!this.#resolveCrlIssuer || !evidence.anchor) reject(`the indirect CRL issuer "${name}" cannot be validated here`);
    if (depth >= MAX_NESTING) reject(`the indirect CRL issuer "${name}" would need a revocation check nested deeper than allowed`);
    const path = await this.#resolveCrlIssuer(base.issuer, evidence.anchor, evidence.carriedCertificates ?? []);
    if (!path) reject(`no certificate of the indirect CRL issuer "${name}" chains to the trust anchor with the right to sign CRLs`);
    for (let i = 0; i + 1 < path.length; i++) {
      const r = await this.#check(path[i]!, path[i + 1]!, evidence, depth + 1);
      const who = i === 0 ? `the indirect CRL issuer "${name}"` : `the CA certificate "${path[i]!.subjectText}" above the indirect CRL issuer`;
      if (r.status === 'revoked') reject(`${who} was revoked${r.revokedAt ? ` on ${r.revokedAt.toISOString()}` : ''}${r.reason ? ` (${r.reason})` : ''}`);
      if (r.status === 'unknown') reject(`the revocation status of ${who} is unknown (${r.problems.map((p) => p.replace(/\.+$/, '')).join('; ')})`);
    }
    return path[0]!;
  }

  async #checkOnline(key: string, cert: Certificate, issuer: Certificate, context: RevocationEvidence, depth: number): Promise<CertificateRevocation> {
    const problems: string[] = [];
    const order = this.#o.prefer === 'ocsp' ? [this.#tryOcsp, this.#tryCrl] : [this.#tryCrl, this.#tryOcsp];
    for (const step of order) {
      const a = await step.call(this, cert, issuer, problems, context, depth);
      if (a) return this.#remember(key, a);
    }
    if (problems.length === 0) problems.push(NO_SOURCE);
    return { status: 'unknown', problems, cached: false };
  }

  #crlOpts() {
    return { now: this.#now(), skewMs: this.#o.skewMs, maxAgeMs: this.#o.maxAgeMs };
  }

  #remember(key: string, a: CertificateRevocation & { nextUpdate?: Date }): CertificateRevocation {
    const now = this.#now().getTime();
    const until = Math.min(now + this.#o.cacheTtlMs, a.nextUpdate?.getTime() ?? now + this.#o.cacheTtlMs);
    const answer = withoutNextUpdate(a);
    this.#answers.set(key, { answer }, until);
    return answer;
  }

  async #tryOcsp(cert: Certificate, issuer: Certificate, problems: string[], context: RevocationEvidence, depth: number): Promise<(CertificateRevocation & { nextUpdate?: Date }) | undefined> {
    const urls = readAuthorityInfoAccess(cert).ocsp.slice(0, this.#o.maxUrlsPerCertificate);
    for (const url of urls) {
      try {
        const a = await queryOcsp(url, cert, issuer, {
          now: this.#now(),
          skewMs: this.#o.skewMs,
          maxAgeMs: this.#o.maxAgeMs,
          requireNonce: this.#o.requireOcspNonce,
          fetcher: this.#ocspFetcher(url),
          method: this.#o.ocspMethod,
          maxBytes: this.#o.maxOcspBytes,
          timeoutMs: this.#o.timeoutMs,
        });
        if (a.status === 'unknown') {
          problems.push(`OCSP ${url}: the responder does not know this certificate`);
          continue;
        }
        // Online answers are cached for every message: the responder is judged without any message's revocation data.
        await this.#acceptResponder(a, cert, issuer, context, depth);
        return fromOcsp(a, 'ocsp');
      } catch (e) {
        problems.push(`OCSP ${url}: ${messageOf(e)}`);
      }
    }
    return undefined;
  }

  /**
   * The fetcher for the OCSP responder at `url`: a request that fails (no answer, an
   * unresolvable name, an HTTP error, too slow) marks the responder down for
   * failureTtlMs, like a CRL that could not be downloaded, and meanwhile every check
   * gets that failure without a request. Otherwise each message from its CA's
   * certificates would ask it again (and wait for its timeout) as soon as the
   * previous check ended.
   */
  #ocspFetcher(url: string): Fetcher {
    return async (target, request) => {
      const down = this.#ocspDown.get(url);
      if (down) throw down;
      try {
        return await this.#fetcher(target, request);
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        this.#ocspDown.set(url, err, this.#now().getTime() + this.#o.failureTtlMs);
        throw err;
      }
    };
  }

  /**
   * CRLs from the certificate's distribution points (RFC 5280 6.3.3): each point
   * in turn (its URLs are alternatives) until a CRL says revoked or the CRLs read
   * cover every reason; a point that can add no reason is skipped (6.3.3 (e)).
   */
  async #tryCrl(cert: Certificate, issuer: Certificate, problems: string[], context: RevocationEvidence, depth: number): Promise<(CertificateRevocation & { nextUpdate?: Date }) | undefined> {
    const max = this.#o.maxUrlsPerCertificate;
    const groups: CrlGroup[] = readDistributionPoints(cert)
      .filter((dp) => dp.uris.length > 0)
      .slice(0, max)
      .map((dp) => {
        const group: CrlGroup = {
          attempts: dp.uris.slice(0, max).map((url) => ({
            label: `CRL ${url}`,
            run: async () => {
              const base = await this.#loadCrl(url);
              // The freshest CRL (delta) location comes from the certificate or the base CRL (RFC 5280 5.2.6).
              const deltaUrls = [...readDistributionPointUris(cert, PKI_OID.freshestCrl), ...base.freshestCrlUris].slice(0, max);
              let delta: ParsedCrl | undefined;
              const deltaProblems: string[] = [];
              for (const du of deltaUrls) {
                try {
                  delta = await this.#loadCrl(du);
                  break;
                } catch (e) {
                  deltaProblems.push(`delta CRL ${du}: ${messageOf(e)}`);
                }
              }
              // A published delta we cannot get: the base alone may be out of date.
              if (deltaUrls.length && !delta) throw new KakitomeError('CERT_UNTRUSTED', deltaProblems.join('; '));
              return checkCrl(cert, issuer, base, delta, this.#crlOpts(), { dp, signer: await this.#crlSigner(dp, base, issuer, context, depth) });
            },
          })),
        };
        if (dp.reasons !== undefined) group.reasons = dp.reasons;
        return group;
      });
    const a = await combineCrlAnswers(groups, problems, 'the CRLs read');
    return a ? fromCrl(a, 'crl') : undefined;
  }

  async #loadCrl(url: string): Promise<ParsedCrl> {
    const hit = this.#crls.get(url);
    if (hit instanceof Error) throw hit;
    if (hit) return hit;
    const pending = this.#crlInFlight.get(url);
    if (pending) return pending;
    const p = this.#downloadCrl(url).finally(() => this.#crlInFlight.delete(url));
    this.#crlInFlight.set(url, p);
    return p;
  }

  async #downloadCrl(url: string): Promise<ParsedCrl> {
    const now = this.#now().getTime();
    try {
      const der = await this.#fetcher(url, { method: 'GET', maxBytes: this.#o.maxCrlBytes, timeoutMs: this.#o.timeoutMs });
      const crl = parseCrl(der);
      const until = Math.min(now + this.#o.cacheTtlMs, crl.nextUpdate?.getTime() ?? now + this.#o.cacheTtlMs);
      this.#crls.set(url, crl, until);
      return crl;
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      this.#crls.set(url, err, now + this.#o.failureTtlMs);
      throw err;
    }
  }
}

/** One source of a complete CRL: alternatives (URLs) for the same CRL, and the reasons it may cover. */
interface CrlGroup {
  reasons?: ReasonMask;
  attempts: Array<{ label: string; run: () => Promise<CrlAnswer> }>;
}

/**
 * RFC 5280 6.3.3 over the groups: revoked as soon as one CRL says so; good once the
 * CRLs that could be read cover every reason (reasons_mask = all-reasons); undefined
 * (with the reason in `problems`) when none could be read or some reasons are not
 * covered by any.
 */
async function combineCrlAnswers(groups: CrlGroup[], problems: string[], what: string): Promise<CrlAnswer | undefined> {
  let covered: ReasonMask = 0;
  const good: CrlAnswer[] = [];
  for (const g of groups) {
    if (covered === ALL_REASONS) break;
    if (((g.reasons ?? ALL_REASONS) & ~covered) === 0) continue;
    for (const attempt of g.attempts) {
      try {
        const a = await attempt.run();
        if (a.status === 'revoked') return a;
        if ((a.reasons & ~covered) !== 0) {
          covered |= a.reasons;
          good.push(a);
        }
        break;
      } catch (e) {
        problems.push(`${attempt.label}: ${messageOf(e)}`);
      }
    }
  }
  if (good.length === 0) return undefined;
  if (covered !== ALL_REASONS) {
    problems.push(`${what} cover only some revocation reasons (${reasonNames(covered)}); none covers ${reasonNames(ALL_REASONS & ~covered)}`);
    return undefined;
  }
  // The evidence is as old as its oldest part, and fresh until the first part expires.
  const out: CrlAnswer = { status: 'good', thisUpdate: new Date(Math.min(...good.map((a) => a.thisUpdate.getTime()))), usedDelta: good.some((a) => a.usedDelta), reasons: covered };
  const next = good.flatMap((a) => (a.nextUpdate ? [a.nextUpdate.getTime()] : []));
  if (next.length) out.nextUpdate = new Date(Math.min(...next));
  return out;
}

function reasonNames(mask: ReasonMask): string {
  const names: string[] = [];
  for (let k = 1; k <= 8; k++) if (mask & (1 << k)) names.push(REASON_FLAG_NAMES[k]!);
  return names.join(', ');
}

/** ReasonFlags named bits (RFC 5280 4.2.1.13); they differ from CRLReason codes from 7 on. */
const REASON_FLAG_NAMES = ['unused', 'keyCompromise', 'cACompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold', 'privilegeWithdrawn', 'aACompromise'];

function describeName(der: Uint8Array): string {
  try {
    return normaliseName(der).join(', ');
  } catch {
    return 'an unreadable name';
  }
}

function answerKey(cert: Certificate, issuer: Certificate): string {
  return `${fingerprintOf(issuer)}:${Buffer.from(cert.serial).toString('hex')}`;
}

/** #noSource's key: the certificate's own bytes too, since "names no source" is read from its extensions. */
function noSourceKey(answer: string, cert: Certificate): string {
  return `${answer}:${fingerprintOf(cert)}`;
}

/** Why a certificate's status is unknown when it names no source to ask. */
const NO_SOURCE = 'the certificate names no OCSP responder and no CRL distribution point';

function withoutNextUpdate(a: CertificateRevocation & { nextUpdate?: Date }): CertificateRevocation {
  const { nextUpdate: _drop, ...answer } = a;
  return answer;
}

function fromOcsp(a: OcspAnswer, source: 'ocsp' | 'embedded-ocsp'): CertificateRevocation & { nextUpdate?: Date } {
  const r: CertificateRevocation & { nextUpdate?: Date } = { status: a.status, source, time: a.thisUpdate, problems: [], cached: false };
  if (a.revokedAt) r.revokedAt = a.revokedAt;
  if (a.reason) r.reason = a.reason;
  if (a.nextUpdate) r.nextUpdate = a.nextUpdate;
  return r;
}

function fromCrl(a: CrlAnswer, source: 'crl' | 'embedded-crl'): CertificateRevocation & { nextUpdate?: Date } {
  const r: CertificateRevocation & { nextUpdate?: Date } = { status: a.status, source, time: a.thisUpdate, problems: [], cached: false };
  if (a.revokedAt) r.revokedAt = a.revokedAt;
  if (a.reason) r.reason = a.reason;
  if (a.nextUpdate) r.nextUpdate = a.nextUpdate;
  return r;
}

function messageOf(e: unknown): string {
  if (isKakitomeError(e)) return e.message;
  if (e instanceof Error) return (e as NodeJS.ErrnoException).code ? `${(e as NodeJS.ErrnoException).code}: ${e.message}` : e.message;
  return String(e);
}

/** How long an answer of the caller's own CA's records is reused (see #fromLocal). */
const LOCAL_ANSWER_TTL_MS = 60_000;

/**
 * How long a certificate is known to name no source (#noSource): its extensions do not
 * change, but the caller's own CA's records are part of the finding (a CA added to the
 * store), so no longer than their own answers are reused.
 */
const NO_SOURCE_TTL_MS = LOCAL_ANSWER_TTL_MS;

/**
 * Reasons that do not say the key was compromised. With the signing-time clock, a
 * certificate revoked for one of these after the signature was made does not
 * invalidate the signature (the holder left, the certificate was replaced).
 * Compromise reasons (and unspecified) always count: the signing time itself is
 * signed with the key in question (RFC 5280 5.3.1 invalidityDate is advisory only).
 */
const BENIGN_REASONS = new Set(['affiliationChanged', 'superseded', 'cessationOfOperation', 'privilegeWithdrawn']);

function summarise(path: Certificate[], per: CertificateRevocation[], clock: ClockUsed): RevocationReport {
  const atTime = clock.time;
  const leaf = per[0];
  const certificates = per.map((r, i) => describeCertificate(path[i]!, i, r));
  for (let i = 0; i < per.length; i++) {
    const r = per[i]!;
    if (r.status !== 'revoked') continue;
    // With a third-party timestamp the signature provably existed before a later
    // revocation, whatever its reason (the point of RFC 3161 signature timestamps).
    const after = r.revokedAt !== undefined && r.revokedAt > atTime && clock.source !== 'now';
    const benign = after && (clock.source === 'timestamp' || (r.reason !== undefined && BENIGN_REASONS.has(r.reason)));
    if (benign) continue;
    const out: RevocationReport = { status: 'revoked', message: certificates[i]!.message, certificates };
    if (r.source) out.source = r.cached ? 'cache' : r.source;
    if (r.time) out.time = r.time;
    if (r.revokedAt) out.revokedAt = r.revokedAt;
    if (r.reason) out.reason = r.reason;
    return out;
  }
  const unknown = certificates.filter((c) => c.status === 'unknown');
  if (unknown.length > 0) return { status: 'unknown', message: unknown.map((c) => c.message).join(' '), certificates };
  const out: RevocationReport = { status: 'good', message: `Not revoked, according to ${leaf ? describeSource(leaf) : 'the trust anchor configuration'}${per.length > 1 ? ` (and ${per.length - 1 === 1 ? 'the CA certificate' : `${per.length - 1} CA certificates`} above it, each by its own source)` : ''}.`, certificates };
  if (leaf?.source) out.source = leaf.cached ? 'cache' : leaf.source;
  if (leaf?.time) out.time = leaf.time;
  const late = per.find((r) => r.status === 'revoked');
  if (late) out.message += ` (A certificate of the path was revoked after the ${clock.source === 'timestamp' ? 'timestamped time' : 'signing time for a reason that does not affect earlier signatures'}: ${late.reason ?? 'no reason given'}.)`;
  return out;
}

function nameOf(cert: Certificate, index: number): string {
  return index === 0 ? 'the signer\'s certificate' : `the CA certificate "${cert.subjectText}"`;
}

/** The per-certificate line of the report: status, source, and one sentence. */
function describeCertificate(cert: Certificate, index: number, r: CertificateRevocation): CertificateRevocationReport {
  const name = nameOf(cert, index);
  let message: string;
  if (r.status === 'revoked') message = `${capital(name)} was revoked${r.revokedAt ? ` on ${r.revokedAt.toISOString()}` : ''}${r.reason ? ` (${r.reason})` : ''}, according to ${describeSource(r)}.`;
  else if (r.status === 'good') message = `${capital(name)} is not revoked, according to ${describeSource(r)}.`;
  else message = `Revocation unknown for ${name}: ${r.problems.map((p) => p.replace(/\.+$/, '')).join('; ')}.`;
  const out: CertificateRevocationReport = { role: index === 0 ? 'signer' : 'ca', subject: cert.subjectText, serial: cert.serialHex, status: r.status, message };
  if (r.source) out.source = r.source;
  if (r.source && r.cached) out.cached = true;
  if (r.time) out.time = r.time;
  if (r.revokedAt) out.revokedAt = r.revokedAt;
  if (r.reason) out.reason = r.reason;
  return out;
}

/** The report when checking is turned off: every certificate below the anchor, not checked. */
function notChecked(path: Certificate[]): RevocationReport {
  const message = 'Revocation was not checked (turned off by policy).';
  return {
    status: 'not-checked',
    message,
    certificates: path.slice(0, -1).map((c, i) => ({ role: i === 0 ? 'signer' : 'ca', subject: c.subjectText, serial: c.serialHex, status: 'not-checked', message })),
  };
}

function describeSource(r: CertificateRevocation): string {
  const what = { ocsp: 'the OCSP responder', crl: 'the CA\'s CRL', 'embedded-ocsp': 'an OCSP response carried in the message', 'embedded-crl': 'a CRL carried in the message', 'internal-ca': 'the internal CA\'s own records in the key store' }[r.source ?? 'ocsp'];
  return `${r.cached ? 'a cached answer from ' : ''}${what}${r.time ? ` of ${r.time.toISOString()}` : ''}`;
}

function capital(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
