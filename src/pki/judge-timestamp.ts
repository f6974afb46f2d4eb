/**
 * Whether an RFC 3161 signature timestamp may serve as the clock for "was the
 * signer's certificate valid when it signed". The CMS layer checked the token's
 * signature and that its imprint is the hash of this signature value
 * (verifyTimestampToken); here the rest is decided:
 *   - the algorithm policy on the imprint's hash and on the token's signature
 *     (SHA-1 refused unless legacy algorithms are allowed; MD5 always);
 *   - genTime not later than now plus the clock skew;
 *   - the TSA's certificate: critical, sole id-kp-timeStamping EKU, a valid path at
 *     genTime to a TSA anchor (validate-certification-path, usage 'timestamping');
 *   - its revocation under the configured mode, judged at genTime as a signing time
 *     is: revoked for key compromise (or no reason) at any time refuses the token,
 *     since a TSA key thief can date a token as he likes; superseded and the like
 *     after genTime do not.
 * The result is a TimestampReport: 'verified' (the time can be used) or 'refused'.
 */
import type { ErrorCode } from '../errors.ts';
import type { Certificate } from '../x509/certificate.ts';
import type { RevocationReport, TimestampEvidence, TimestampReport } from './types.ts';
import { judgeHashAlgorithm, type AlgorithmFinding, type AlgorithmPolicy } from './algorithm-policy.ts';

/** A valid path for a certificate, or why there is none (create-signer-validator's path search). */
export type PathSearch = { ok: true; path: Certificate[]; warnings: string[]; legacy: string[] } | { ok: false; code: ErrorCode; message: string };

export interface TimestampJudgeContext {
  policy: AlgorithmPolicy;
  now: Date;
  skewMs: number;
  revocationMode: 'require' | 'allow-unknown' | 'off';
  /** The TSA certificate's path at `time`, usage 'timestamping', to the TSA anchors. */
  findPath(leaf: Certificate, carried: Certificate[], time: Date): Promise<PathSearch>;
  checkRevocation(path: Certificate[], evidence: TimestampEvidence, time: Date): Promise<RevocationReport>;
}

/** A timestamp's report plus what it adds to the signer's warnings and legacy list. */
export interface JudgedTimestamp {
  report: TimestampReport;
  warnings: string[];
  legacy: string[];
}

export async function judgeTimestamp(evidence: TimestampEvidence, carried: Certificate[], ctx: TimestampJudgeContext): Promise<JudgedTimestamp> {
  const warnings: string[] = [];
  const legacy: string[] = [];
  const tsa = evidence.certificate?.subjectText;
  const refuse = (code: ErrorCode, message: string): JudgedTimestamp => ({
    report: { status: 'refused', code, ...(tsa ? { tsa } : {}), used: false, message },
    warnings,
    legacy,
  });
  if (evidence.status !== 'valid' || !evidence.genTime || !evidence.certificate) return refuse(evidence.code ?? 'MALFORMED', evidence.message);
  const genTime = evidence.genTime;
  const when = genTime.toISOString();

  // 1. Algorithms: the imprint's hash and the token's own signature.
  const findings = [
    evidence.imprintAlgorithm ? judgeHashAlgorithm(evidence.imprintAlgorithm, 'receive', ctx.policy, 'The signature timestamp\'s message imprint') : undefined,
    ...(evidence.algorithmOids ? [evidence.algorithmOids.signature, evidence.algorithmOids.digest].map((oid) => judgeHashAlgorithm(oid, 'receive', ctx.policy, 'The TSA\'s signature on the timestamp')) : []),
  ].filter((f): f is AlgorithmFinding => f !== undefined);
  const rejected = findings.find((f) => f.action === 'reject');
  if (rejected) return refuse('WEAK_ALG', `The signature timestamp is not usable: ${lowerFirst(rejected.message)}`);
  for (const f of findings) {
    if (!warnings.includes(f.message)) warnings.push(f.message);
    if (f.legacy && !legacy.includes(f.legacy)) legacy.push(f.legacy);
  }

  // 2. A TSA vouches for a time it has seen, never for one to come.
  if (genTime.getTime() > ctx.now.getTime() + ctx.skewMs) {
    return refuse('TIMESTAMP_INVALID', `The signature timestamp is not usable: its time ${when} is in the future (now is ${ctx.now.toISOString()}), so the TSA's clock or the token is wrong.`);
  }

  // 3. The TSA's certificate and its path, at genTime.
  const found = await ctx.findPath(evidence.certificate, [...evidence.certificates, ...carried], genTime);
  if (!found.ok) return refuse(found.code, `The signature timestamp is not usable: ${lowerFirst(found.message)}`);
  warnings.push(...found.warnings.map((w) => `Timestamp: ${w}`));
  legacy.push(...found.legacy);
  const anchor = found.path[found.path.length - 1]!.subjectText;

  // 4. Revocation of the TSA's path.
  const rev = await ctx.checkRevocation(found.path, evidence, genTime);
  if (rev.status === 'revoked') return refuse('CERT_REVOKED', `The signature timestamp is not usable: the TSA's certificate path is revoked. ${rev.message}`);
  let revText = rev.status === 'good' ? 'not revoked' : 'revocation not checked';
  if (rev.status === 'unknown') {
    if (ctx.revocationMode === 'require') return refuse('REVOCATION_UNKNOWN', `The signature timestamp is not usable: the revocation status of the TSA's certificate could not be established and policy requires it. ${rev.message}`);
    warnings.push(`Timestamp: ${rev.message}`);
    revText = 'revocation unknown';
  }
  return {
    report: { status: 'verified', time: genTime, tsa: tsa!, used: false, message: `Timestamped at ${when} by "${tsa}" (TSA certificate chains to "${anchor}", ${revText}).` },
    warnings,
    legacy,
  };
}

function lowerFirst(s: string): string {
  return /^[A-Z][a-z]/.test(s) ? s.charAt(0).toLowerCase() + s.slice(1) : s;
}
