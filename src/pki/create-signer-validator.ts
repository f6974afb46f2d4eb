/**
 * The trust decision for one signer (or recipient) certificate: path building and
 * validation (RFC 5280 6), validity at the chosen clock, revocation (CRL/OCSP),
 * the algorithm policy, sender identity (RFC 8550 3) and the CA/B Forum S/MIME
 * profile, summarised as a TrustReport with a stable code and one plain sentence.
 *
 * Everything that touches the outside world comes in through options: the trust
 * store, the fetcher, the clock (style guide, "Injection"). Validated chains and
 * revocation answers are cached (bounded, TTL), so a warm validator costs a few
 * map look-ups per message and the CMS layer's own signature check dominates.
 *
 * @example
 * const validate = createSignerValidator({ anchors: await loadTrustAnchors(['/etc/kakitome/anchors']),
 *   revocation: { mode: 'hard-fail' }, validityClock: 'signingTime' });
 * const report = await validate({ certificate, carried, usage: 'signing', from: ['alice@example.com'], signingTime });
 */
import type { Certificate } from '../x509/certificate.ts';
import { Certificate as CertificateClass } from '../x509/certificate.ts';
import { decode } from '../asn1/ber.ts';
import { decodePem, isPem } from '../asn1/pem.ts';
import type { ErrorCode } from '../errors.ts';
import type { ClockUsed, Fetcher, LocalRevocationSource, SignerValidationInput, SignerValidator, TrustReport, TrustStore, RevocationReport, IdentityReport, TimestampReport } from './types.ts';
import { TtlCache } from './ttl-cache.ts';
import { DEFAULT_POLICY, allowLegacyAlgorithms, judgeHashAlgorithm, type AlgorithmFinding, type AlgorithmPolicy } from './algorithm-policy.ts';
import { buildCertificationPaths } from './build-certification-path.ts';
import { validateCertificationPath, type PathValidationOptions, type PathValidationResult } from './validate-certification-path.ts';
import type { PolicyProcessingOptions } from './process-certificate-policies.ts';
import { RevocationChecker, DEFAULT_REVOCATION_OPTIONS, type CrlIssuerResolver, type RevocationOptions } from './check-revocation.ts';
import { matchSenderIdentity } from './match-sender-identity.ts';
import { recognizeSmimeProfile } from './recognize-smime-profile.ts';
import { readAuthorityInfoAccess, unreadableExtension } from './read-certificate-extensions.ts';
import { createHttpFetcher } from './create-http-fetcher.ts';
import { createHostList, type HostList } from './match-host-list.ts';
import { createStaticTrustStore } from './load-trust-anchors.ts';
import { fingerprintOf } from './certificate-fingerprint.ts';
import { certificateNames } from '../x509/certificate-names.ts';
import { judgeTimestamp, type JudgedTimestamp, type PathSearch } from './judge-timestamp.ts';

export interface SignerValidatorOptions {
  /** The administrator's trust anchors (use loadTrustAnchors); or give trustStore. */
  anchors?: Certificate[];
  trustStore?: TrustStore;
  /** Defaults to createHttpFetcher() (http: only, bounded, internal addresses refused). */
  fetcher?: Fetcher;
  /** The clock; defaults to () => new Date(). Tests and replays inject their own. */
  now?: () => Date;
  /**
   * 'now' (default): certificates must be valid now; a signature timestamp is
   * reported as not checked. 'timestamp': valid at the genTime of the signer's RFC
   * 3161 signature timestamp (input.timestampToken) once it is verified (judge-timestamp.ts);
   * a token that is present but fails makes the signer untrusted (TIMESTAMP_INVALID);
   * without a token the certificate is checked now, with a warning. 'signingTime':
   * valid when the message was signed: a verified timestamp's genTime, else the
   * signer's own signingTime attribute (a failed token is a warning there), else now,
   * with a warning.
   */
  validityClock?: 'now' | 'signingTime' | 'timestamp';
  /**
   * The anchors a TSA's certificate must chain to (with the critical, sole
   * id-kp-timeStamping EKU). Default: the signer anchors (anchors / trustStore),
   * as `openssl ts -verify -CAfile` uses one set.
   */
  tsaAnchors?: Certificate[];
  tsaTrustStore?: TrustStore;
  revocation?: Partial<RevocationOptions>;
  /** The caller's own CA's records, asked before CRLs and OCSP (types.ts LocalRevocationSource). */
  localRevocation?: LocalRevocationSource;
  /** The algorithm policy (default DEFAULT_POLICY: SHA-1 and RSA under 2048 bits refused, WEAK_ALG). */
  policy?: AlgorithmPolicy;
  /**
   * Accept SHA-1 and short RSA keys (at least 1024 bits) in received signatures and
   * their paths, for reading archives of old mail: `policy` with sha1OnReceive and
   * shortRsaOnReceive set to 'warn'. The report then lists them in `legacy` and its
   * sentence says the trust rests on them. Default false.
   */
  allowLegacy?: boolean;
  /** Fail with IDENTITY_MISMATCH when From/Sender do not match (default true). */
  enforceIdentity?: boolean;
  /** Certificates in a path, anchor included (default 8). */
  maxPathLength?: number;
  /** Candidate issuer links examined per validation (default 64). */
  maxCandidates?: number;
  /** How long a validated chain is reused (default 10 minutes). */
  chainCacheTtlMs?: number;
  maxCacheEntries?: number;
  /**
   * Chase AIA caIssuers URLs (RFC 5280 4.2.2.1) for intermediates the message did
   * not carry. Off by default: the URL is read from a certificate that is not
   * trusted yet, so chasing it lets anyone who sends a message make the verifier
   * send a request where they choose (blind SSRF, a read receipt, the verifier's
   * address). `{ hosts }` chases only URLs on those hosts (names, ".example.com"
   * for a domain, addresses, CIDR blocks); `true` chases any URL the fetcher accepts.
   * CRLs and OCSP are fetched only for a path that already ends at an anchor.
   */
  fetchCaIssuers?: boolean | { hosts: string[] };
  maxCaIssuersBytes?: number;
  /** Accepted clock difference for a signingTime in the future (default 5 minutes). */
  skewMs?: number;
  /**
   * The RFC 5280 6.1.1 certificate policy inputs: the acceptable policies
   * (user-initial-policy-set) and whether an explicit policy is required and
   * mapping or anyPolicy inhibited from the start. Default: any policy, nothing
   * required or inhibited (S/MIME practice); CA constraints apply either way.
   */
  certificatePolicies?: PolicyProcessingOptions;
}

type PathUsage = PathValidationOptions['usage'];

interface CachedChain {
  path: Certificate[];
  warnings: string[];
  legacy: string[];
  message: string;
  /** The path is valid for clocks within [from, to]. */
  from: number;
  to: number;
}

/** Creates the validator the S/MIME layer and the CLI inject into verification. */
export function createSignerValidator(options: SignerValidatorOptions = {}): SignerValidator {
  const now = options.now ?? (() => new Date());
  const nowMs = () => now().getTime();
  const policy = options.allowLegacy ? allowLegacyAlgorithms(options.policy) : (options.policy ?? DEFAULT_POLICY);
  const fetcher = options.fetcher ?? createHttpFetcher();
  const store = options.trustStore ?? createStaticTrustStore(options.anchors ?? []);
  const tsaStore = options.tsaTrustStore ?? (options.tsaAnchors ? createStaticTrustStore(options.tsaAnchors) : store);
  const clockMode = options.validityClock ?? 'now';
  const revOpts: RevocationOptions = { ...DEFAULT_REVOCATION_OPTIONS, ...options.revocation };
  const maxEntries = options.maxCacheEntries ?? 10_000;
  const chainTtl = options.chainCacheTtlMs ?? 600_000;
  const skew = options.skewMs ?? 5 * 60_000;
  const chains = new TtlCache<CachedChain>(maxEntries, nowMs);
  const links = new TtlCache<boolean>(maxEntries * 4, nowMs);
  const learned = new TtlCache<Certificate[]>(maxEntries, nowMs);
  const fetchedIssuers = new TtlCache<Certificate[]>(1024, nowMs);
  // Identity and profile depend only on the certificate and the addresses: cached.
  const identities = new TtlCache<{ report: IdentityReport; warnings: string[] }>(maxEntries, nowMs);
  const profiles = new TtlCache<{ name?: string }>(maxEntries, nowMs);
  const defects = new TtlCache<{ unreadable?: string }>(maxEntries, nowMs);

  const isSignedBy = (child: Certificate, issuer: Certificate): boolean => {
    const key = `${fingerprintOf(child)}:${fingerprintOf(issuer)}`;
    const hit = links.get(key);
    if (hit !== undefined) return hit;
    let ok = false;
    try {
      ok = child.x509.verify(issuer.publicKey);
    } catch {
      ok = false; // key type unusable for the certificate's algorithm
    }
    links.set(key, ok, nowMs() + chainTtl);
    return ok;
  };

  const knownIssuers = async (name: Uint8Array): Promise<Certificate[]> => {
    const fromStore = store.intermediates ? await store.intermediates(name) : [];
    return [...fromStore, ...(learned.get(Buffer.from(name).toString('hex')) ?? [])];
  };

  const chase = caIssuersHosts(options.fetchCaIssuers);
  const fetchIssuers = async (cert: Certificate): Promise<Certificate[]> => {
    if (!chase) return [];
    const out: Certificate[] = [];
    for (const url of readAuthorityInfoAccess(cert).caIssuers.filter((u) => chase === 'any' || chase.hasName(hostOf(u))).slice(0, 2)) {
      const hit = fetchedIssuers.get(url);
      if (hit) {
        out.push(...hit);
        continue;
      }
      try {
        const body = await fetcher(url, { method: 'GET', maxBytes: options.maxCaIssuersBytes ?? 256 * 1024, timeoutMs: revOpts.timeoutMs });
        const certs = parseCaIssuersBody(body);
        fetchedIssuers.set(url, certs, nowMs() + revOpts.cacheTtlMs);
        out.push(...certs);
      } catch {
        // Unreachable or unreadable: remembered briefly as empty, and the path
        // simply is not found through it (reported as no path).
        fetchedIssuers.set(url, [], nowMs() + revOpts.failureTtlMs);
      }
    }
    return out;
  };

  const learn = (path: Certificate[]) => {
    // Intermediates of a validated path are remembered, so a later message from
    // the same CA that omits them still chains. They are never anchors.
    for (const c of path.slice(1, -1)) {
      const k = Buffer.from(c.subject).toString('hex');
      const list = learned.get(k) ?? [];
      if (!list.some((x) => fingerprintOf(x) === fingerprintOf(c))) learned.set(k, [...list, c].slice(-4), nowMs() + chainTtl);
    }
  };

  // RFC 5280 6.3.3 (f): an indirect CRL issuer's certificate (from the message or the
  // store) must have a valid path, for signing CRLs, to the anchor of the path it speaks for.
  const resolveCrlIssuer: CrlIssuerResolver = async (name, anchor, carried) => {
    const sameName = (c: Certificate) => Buffer.compare(c.subject, name) === 0;
    const candidates = [...(sameName(anchor) ? [anchor] : []), ...carried.filter(sameName), ...(await knownIssuers(name)).filter(sameName)].slice(0, 8);
    for (const candidate of candidates) {
      const built = await buildCertificationPaths({ leaf: candidate, anchors: [anchor], carried, knownIssuers, fetchIssuers, isSignedBy, maxPathLength: options.maxPathLength ?? 8, maxCandidates: options.maxCandidates ?? 64 });
      for (const p of built.paths) {
        if (validateCertificationPath(p, { time: now(), usage: 'crl-signing', policy, ...(options.certificatePolicies ? { certificatePolicies: options.certificatePolicies } : {}) }).ok) return p;
      }
    }
    return undefined;
  };
  const revocation = new RevocationChecker(revOpts, fetcher, now, resolveCrlIssuer, options.localRevocation);

  /** A valid path for `leaf` at `time` (cached while the clock stays within its validity), or the first failure. */
  const findPath = async (leaf: Certificate, carried: Certificate[], usage: PathUsage, time: Date, anchorsFrom: TrustStore): Promise<{ chain?: CachedChain; failure?: PathValidationResult; failedPath: Certificate[] }> => {
    const cacheKey = `${fingerprintOf(leaf)}:${usage}`;
    let chain = chains.get(cacheKey);
    if (chain && (time.getTime() < chain.from || time.getTime() > chain.to)) chain = undefined;
    let pathFailure: PathValidationResult | undefined;
    let failedPath: Certificate[] = [];
    if (!chain) {
      const anchors = await anchorsFrom.anchors();
      const built = await buildCertificationPaths({
        leaf,
        anchors,
        carried,
        knownIssuers,
        fetchIssuers,
        isSignedBy,
        maxPathLength: options.maxPathLength ?? 8,
        maxCandidates: options.maxCandidates ?? 64,
      });
      for (const p of built.paths) {
        // The verifier's policy inputs are for S/MIME signers; a TSA's path gets the defaults (its CAs' constraints still apply).
        const v = validateCertificationPath(p, { time, usage, policy, ...(options.certificatePolicies && usage !== 'timestamping' ? { certificatePolicies: options.certificatePolicies } : {}) });
        if (v.ok) {
          chain = {
            path: p,
            warnings: v.warnings,
            legacy: v.legacy ?? [],
            message: v.message,
            from: Math.max(...p.map((c) => c.notBefore.getTime())),
            to: Math.min(...p.map((c) => c.notAfter.getTime())),
          };
          chains.set(cacheKey, chain, nowMs() + chainTtl);
          learn(p);
          break;
        }
        if (!pathFailure) {
          pathFailure = v;
          failedPath = p;
        }
      }
      if (!chain && !pathFailure) {
        const why = built.notes.length ? ` (${[...new Set(built.notes)].join('; ')})` : '';
        pathFailure = {
          ok: false,
          code: 'CERT_UNTRUSTED',
          message: `No chain from the certificate of "${leaf.subjectText}" (issued by "${leaf.issuerText}") to a configured trust anchor${why}.`,
          warnings: [],
        };
      }
    }
    return { ...(chain ? { chain } : {}), ...(pathFailure ? { failure: pathFailure } : {}), failedPath };
  };

  /** The path search for a TSA's certificate, in judge-timestamp's terms. */
  const findTsaPath = async (leaf: Certificate, carried: Certificate[], time: Date): Promise<PathSearch> => {
    const r = await findPath(leaf, carried, 'timestamping', time, tsaStore);
    if (r.chain) return { ok: true, path: r.chain.path, warnings: r.chain.warnings, legacy: r.chain.legacy };
    return { ok: false, code: r.failure!.code ?? 'CERT_UNTRUSTED', message: r.failure!.message };
  };

  /** The signer's timestamp: verified and judged unless the clock is 'now'. */
  const judgeToken = async (input: SignerValidationInput, current: Date): Promise<JudgedTimestamp | undefined> => {
    const token = input.timestampToken;
    if (!token) return undefined;
    if (clockMode === 'now') {
      return { report: { status: 'not-checked', used: false, message: 'The signature carries a timestamp; it was not checked because certificates are checked against the current time (validity clock "now").' }, warnings: [], legacy: [] };
    }
    return judgeTimestamp(token, input.carried, {
      policy,
      now: current,
      skewMs: skew,
      revocationMode: revocation.mode,
      findPath: findTsaPath,
      // Judged at genTime as a signing time: a compromise of the TSA's key, whenever, voids its tokens.
      checkRevocation: async (path, evidence, time) => (await revocation.checkPath(path, { carriedCrls: evidence.crls, carriedOcsp: evidence.ocspResponses }, { source: 'signingTime', time })).report,
    });
  };

  return async (input: SignerValidationInput): Promise<TrustReport> => {
    const current = now();
    const warnings: string[] = [];
    const stamped = await judgeToken(input, current);
    if (stamped?.report.status === 'refused') warnings.push(`${stamped.report.message} ${clockMode === 'timestamp' ? 'It was not used as the validity clock, and the validity clock "timestamp" requires a usable one.' : 'It was not used as the validity clock.'}`);
    if (stamped) warnings.push(...stamped.warnings);
    const clock = chooseClock(clockMode, input.signingTime, stamped?.report.status === 'verified' ? stamped.report.time : undefined, current, skew, warnings);
    const timestamp: TimestampReport | undefined = stamped ? { ...stamped.report, used: clock.source === 'timestamp' } : undefined;
    const leaf = input.certificate;
    // Brief, "Safe verification": signingTime is checked against the certificate,
    // whichever clock decides validity (a claim outside the validity period is odd).
    if (input.signingTime && (input.signingTime < leaf.notBefore || input.signingTime > leaf.notAfter)) {
      warnings.push(`The signing time ${input.signingTime.toISOString()} is outside the certificate's validity period (${leaf.notBefore.toISOString()} to ${leaf.notAfter.toISOString()}).`);
    }

    // 1. The algorithms of the signature itself.
    const legacy: string[] = stamped?.report.status === 'verified' ? [...stamped.legacy] : [];
    const alg = input.signatureAlgorithms ? judgeSignatureAlgorithms(input.signatureAlgorithms.signature, input.signatureAlgorithms.digest, policy) : undefined;
    if (alg?.action === 'warn') {
      warnings.push(alg.message);
      if (alg.legacy) legacy.push(alg.legacy);
    }

    // 2. A signer's certificate with an extension the checks below read that cannot be
    // decoded: a verdict that names it (MALFORMED, untrusted), where reading it for the
    // path, the identity or the profile would end verification with no verdict at all.
    const leafFp = fingerprintOf(leaf);
    let defect = defects.get(leafFp);
    if (!defect) {
      const unreadable = unreadableExtension(leaf);
      defect = unreadable ? { unreadable } : {};
      defects.set(leafFp, defect, nowMs() + chainTtl);
    }
    if (defect.unreadable) {
      const message = `Not trusted: the signer's certificate (${certificateNames(leaf).subjectText}) cannot be judged: ${defect.unreadable}.`;
      if (alg?.action === 'reject') warnings.push(alg.message);
      const identity: IdentityReport = { status: 'unknown', certificateAddresses: [...certificateNames(leaf).emailAddresses], message: 'The signer\'s certificate was not compared with the sender: its names cannot be read with certainty.' };
      return {
        status: 'untrusted', code: 'MALFORMED', message, path: [leaf], clock, identity, warnings,
        revocation: { status: 'not-checked', message: 'Revocation was not checked because the signer\'s certificate cannot be read.', certificates: [] },
        ...(legacy.length > 0 ? { legacy } : {}),
        ...(timestamp ? { timestamp } : {}),
      };
    }

    // 3. The path (cached when it was valid for this clock).
    const search = await findPath(leaf, input.carried, input.usage, clock.time, store);
    const chain = search.chain;
    const pathFailure = search.failure;
    const failedPath = search.failedPath;

    // 4. Identity and profile do not depend on the path.
    const idKey = `${leafFp}\n${(input.from ?? []).join('\n')}\n${input.sender ?? ''}`;
    let identity = identities.get(idKey);
    if (!identity) {
      identity = input.from || input.sender ? matchSenderIdentity(leaf, input.from, input.sender) : { report: noIdentity(leaf), warnings: [] };
      identities.set(idKey, identity, nowMs() + chainTtl);
    }
    warnings.push(...identity.warnings);
    let profile = profiles.get(leafFp);
    if (!profile) {
      const p = recognizeSmimeProfile(leaf);
      profile = p ? { name: p.name } : {};
      profiles.set(leafFp, profile, nowMs() + chainTtl);
    }

    const report = (status: TrustReport['status'], code: ErrorCode | undefined, message: string, path: Certificate[], rev: RevocationReport): TrustReport => {
      // Copies: the path and identity are cached and must not be changed through a report.
      const r: TrustReport = { status, message, path: [...path], clock, revocation: rev, identity: { ...identity.report, certificateAddresses: [...identity.report.certificateAddresses] }, warnings };
      if (code) r.code = code;
      if (legacy.length > 0) r.legacy = legacy;
      if (status === 'trusted' || path.length > 1) r.anchor = path[path.length - 1];
      if (profile.name) r.profile = profile.name;
      if (timestamp) r.timestamp = timestamp;
      return r;
    };

    // Under the 'timestamp' clock a token that is present but not usable is the failure: the
    // clock it should have given is missing, whatever the current time makes of the path.
    const stampRefused = clockMode === 'timestamp' && timestamp?.status === 'refused'
      ? `Not trusted: the validity clock is the signature timestamp, and it is not usable (${timestamp.code}). ${timestamp.message}`
      : undefined;
    if (!chain) {
      const pf = pathFailure!;
      warnings.push(...pf.warnings);
      if (stampRefused) {
        warnings.push(`Checked against the current time instead: ${lowerFirst(pf.message)}`);
        return report('untrusted', 'TIMESTAMP_INVALID', stampRefused, failedPath, { status: 'not-checked', message: 'Revocation was not checked because the certificate path is not valid.', certificates: [] });
      }
      // The path failure is reported; a refused signature algorithm must not go unsaid.
      if (alg?.action === 'reject') warnings.push(alg.message);
      return report('untrusted', pf.code ?? 'CERT_UNTRUSTED', `Not trusted: ${lowerFirst(pf.message)}`, failedPath, { status: 'not-checked', message: 'Revocation was not checked because the certificate path is not valid.', certificates: [] });
    }
    warnings.push(...chain.warnings);
    legacy.push(...chain.legacy);

    // 5. Revocation of the validated path.
    const { report: rev } = await revocation.checkPath(chain.path, { carriedCrls: input.carriedCrls ?? [], carriedOcsp: input.carriedOcsp ?? [], carriedCertificates: input.carried }, clock);
    if (rev.status === 'unknown' && revocation.mode === 'allow-unknown') warnings.push(rev.message);

    // 6. The verdict, most serious failure first.
    const path = chain.path;
    if (alg?.action === 'reject') return report('untrusted', 'WEAK_ALG', `Not trusted: ${lowerFirst(alg.message)}`, path, rev);
    if (stampRefused) return report('untrusted', 'TIMESTAMP_INVALID', stampRefused, path, rev);
    if (rev.status === 'revoked') return report('untrusted', 'CERT_REVOKED', `Not trusted: ${lowerFirst(rev.message)}`, path, rev);
    if (rev.status === 'unknown' && revocation.mode === 'require') {
      return report('untrusted', 'REVOCATION_UNKNOWN', `Not trusted: the revocation status could not be established and policy requires it. ${rev.message}`, path, rev);
    }
    if (identity.report.status === 'mismatch' && (options.enforceIdentity ?? true) && input.usage === 'signing') {
      return report('untrusted', 'IDENTITY_MISMATCH', `Not trusted for this sender: ${lowerFirst(identity.report.message)}`, path, rev);
    }
    const onLegacy = legacy.length > 0 ? ' Trusted only because legacy algorithms are allowed.' : '';
    return report('trusted', undefined, summarise(leaf, path, clock, rev, identity.report, profile.name, timestamp) + onLegacy, path, rev);
  };
}

/**
 * The policy's finding on the CMS signature's own algorithms, the worst one: the
 * CMS layer makes the signature algorithm's hash agree with digestAlgorithm
 * (RFC 5754, RFC 5758), so one sentence says it; the signature's OID says more
 * (ecdsa-with-SHA1), the digest's covers rsaEncryption and RSASSA-PSS.
 */
function judgeSignatureAlgorithms(signature: string, digest: string, policy: AlgorithmPolicy): AlgorithmFinding | undefined {
  const found = [signature, digest].flatMap((oid) => judgeHashAlgorithm(oid, 'receive', policy, 'The message signature') ?? []);
  return found.find((f) => f.action === 'reject') ?? found[0];
}

function chooseClock(mode: 'now' | 'signingTime' | 'timestamp', signingTime: Date | undefined, timestamp: Date | undefined, current: Date, skew: number, warnings: string[]): ClockUsed {
  if (mode === 'now') return { source: 'now', time: current };
  if (timestamp && timestamp.getTime() <= current.getTime() + skew) {
    if (signingTime && Math.abs(signingTime.getTime() - timestamp.getTime()) > 24 * 3600_000) {
      warnings.push(`The signing time ${signingTime.toISOString()} differs from the timestamp ${timestamp.toISOString()} by more than a day.`);
    }
    return { source: 'timestamp', time: timestamp };
  }
  if (mode === 'timestamp') {
    // Never the signer's own claim: without a verified third-party time, now.
    warnings.push('The signature has no usable timestamp; the certificate was checked against the current time.');
    return { source: 'now', time: current };
  }
  if (!signingTime) {
    warnings.push('The message has no signing time; the certificate was checked against the current time.');
    return { source: 'now', time: current };
  }
  if (signingTime.getTime() > current.getTime() + skew) {
    warnings.push(`The signing time ${signingTime.toISOString()} is in the future; the certificate was checked against the current time.`);
    return { source: 'now', time: current };
  }
  return { source: 'signingTime', time: signingTime };
}

/** Lower-cases a sentence's first letter to continue another sentence (acronyms kept). */
function lowerFirst(s: string): string {
  return /^[A-Z][a-z]/.test(s) ? s.charAt(0).toLowerCase() + s.slice(1) : s;
}

function noIdentity(leaf: Certificate): IdentityReport {
  return { status: 'unknown', certificateAddresses: leaf.emailAddresses, message: 'No From address was given to compare with the certificate.' };
}

function summarise(leaf: Certificate, path: Certificate[], clock: ClockUsed, rev: RevocationReport, id: IdentityReport, profile: string | undefined, timestamp: TimestampReport | undefined): string {
  const names = certificateNames(leaf);
  const who = id.status === 'match' ? id.from! : (names.emailAddresses[0] ?? names.subjectText);
  const anchor = certificateNames(path[path.length - 1]!);
  const when = clock.source === 'now' ? 'now' : clock.source === 'timestamp' ? `at the timestamped time ${clock.time.toISOString()}${timestamp?.tsa ? ` (TSA "${timestamp.tsa}")` : ''}` : `at the signing time ${clock.time.toISOString()}`;
  const revText = rev.status === 'good' ? 'not revoked' : rev.status === 'unknown' ? 'revocation unknown' : 'revocation not checked';
  const idText = id.status === 'match' ? 'matches the sender' : id.status === 'unknown' ? 'sender not compared' : 'does not match the sender';
  return `Trusted: certificate of ${who}${profile ? ` (${profile})` : ''} chains to "${anchor.subjectText}", valid ${when}, ${revText}, ${idText}.`;
}

/** Which caIssuers URLs may be chased: none (undefined), any, or those on listed hosts. */
function caIssuersHosts(o: SignerValidatorOptions['fetchCaIssuers']): HostList | 'any' | undefined {
  if (o === true) return 'any';
  if (!o || o.hosts.length === 0) return undefined;
  return createHostList(o.hosts, 'fetchCaIssuers.hosts');
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return '';
  }
}

/** caIssuers bodies: one DER certificate, PEM, or a certs-only PKCS#7 (RFC 5280 4.2.2.1). */
function parseCaIssuersBody(body: Uint8Array): Certificate[] {
  if (isPem(body)) return decodePem(Buffer.from(body).toString('latin1')).filter((b) => b.label === 'CERTIFICATE').map((b) => CertificateClass.fromDer(b.der));
  const top = decode(body);
  const kids = top.children();
  // ContentInfo { contentType OID, [0] SignedData }: take SignedData.certificates [0].
  if (kids[0]?.tag === 0x06 && kids[1]?.tag === 0xa0) {
    const sd = kids[1].children()[0];
    const certs = sd?.children().find((c) => c.tag === 0xa0);
    return (certs?.children() ?? []).slice(0, 16).filter((c) => c.tag === 0x30).map((c) => CertificateClass.fromDer(c.bytes));
  }
  return [CertificateClass.fromDer(body)];
}
