/**
 * The verdict rules (brief, "Safe verification"; verdict.ts documents the
 * statuses): per-signer trust and identity, then the message status from the
 * layers that cover the body, parts signed inside unsigned content, unusable
 * signatures and unauthenticated (CBC) encryption. Used by openMessage and by
 * any other reader that has gathered the same facts.
 */
import { KakitomeError, type ErrorCode } from '../errors.ts';
import type { SignedDataVerification } from '../cms/signed-data/verify.ts';
import { certificateNames } from '../x509/certificate-names.ts';
import { normalizeAddress } from '../x509/mailbox-address.ts';
import type { HeaderField } from '../mime/entity.ts';
import type { IdentityReport, SignerValidator, TimestampEvidence } from '../pki/types.ts';
import type { SignerVerification } from '../cms/signed-data/verify.ts';
import { verifyTimestampToken } from '../cms/signed-data/verify-timestamp-token.ts';
import { OID } from '../asn1/oids.ts';
import type { Certificate } from '../x509/certificate.ts';
import type { CountersignatureVerdict, LayerReport, ProtectedHeadersReport, SignerVerdict, VerdictStatus } from './verdict.ts';
import { describeIdentifier } from '../cms/identifier.ts';
import { readDisplayedSender, type MisleadingSender } from './read-displayed-sender.ts';

/** One SignerInfo result waiting for its trust and identity decision. */
export interface PendingSigner {
  verification: SignedDataVerification;
  index: number;
  scope: 'message' | 'part';
}

export interface JudgeInput {
  layers: LayerReport[];
  pending: PendingSigner[];
  /** Where From/Sender are read: the protected header fields when present (RFC 9788), else the outer ones. */
  fromHeaders: readonly HeaderField[];
  /** The message's own header fields (what a program without RFC 9788 support shows); the same array as fromHeaders when there is no header protection. */
  outerHeaders: readonly HeaderField[];
  protectedHeaders?: ProtectedHeadersReport;
  /** True when the protected header section lies inside a signature over the body (so the signature covers those fields). */
  protectedHeadersSigned?: boolean;
  certsOnly?: Certificate[];
  /** A signature over the body that is unusable as a whole (NO_SIGNERS, AMBIGUOUS_CONTENT). */
  bodyFailure?: { code: ErrorCode; message: string };
  /**
   * A CBC (unauthenticated) layer was decrypted: the index in `pending` of the first
   * signer inside the last such layer. Absent when none was.
   */
  unauthenticatedFrom?: number;
  validateSigner?: SignerValidator;
  /** Certificates the caller gave besides the message's (openssl's -certfile): intermediates for path building like the carried ones, never anchors. */
  certificates?: Certificate[];
  /** Appended to. */
  warnings: string[];
}

export interface Judgement {
  status: VerdictStatus;
  code: ErrorCode | undefined;
  summary: string;
  signers: SignerVerdict[];
  /** Set when the body is validly signed but the header fields a reader sees are not: their names. */
  unsignedHeaders?: string[];
  /**
   * CBC content that no trusted signature of the From address, made inside the last
   * CBC layer, covers (EFAIL): readers refuse it unless unauthenticated content is allowed.
   */
  unauthenticatedContent: boolean;
}

/** The header fields a reader takes as part of the message, in the order a verdict names them. */
const USER_FACING_HEADERS = ['From', 'Sender', 'To', 'Cc', 'Reply-To', 'Subject', 'Date'];

export function identityWithoutValidator(cert: Certificate | undefined, from: string[]): IdentityReport {
  const certificateAddresses = cert ? certificateNames(cert).emailAddresses.map((a) => a.toLowerCase()) : [];
  if (from.length === 0) return { status: 'unknown', certificateAddresses, message: 'The message has no From address to compare with the signer.' };
  // One form on both sides (bob@例え.jp is bob@xn--r8jz45g.jp): x509/mailbox-address.ts.
  const named = new Set(certificateAddresses.map(normalizeAddress));
  const hit = from.find((f) => named.has(normalizeAddress(f)));
  if (hit) return { status: 'match', from: hit, certificateAddresses, message: `The signer's certificate is issued to ${hit}, the From address.` };
  return {
    status: 'mismatch',
    from: from[0]!,
    certificateAddresses,
    message: `The From address ${from[0]} is not in the signer's certificate (${certificateAddresses.join(', ') || 'no e-mail address'}).`,
  };
}

/**
 * What the summary line adds about revocation (issue 9, item 7): "revocation
 * unknown" when any certificate of a signer's path has no answer, naming which;
 * "revocation not checked" when checking was turned off; nothing when all are good.
 */
function revocationNote(signers: readonly SignerVerdict[]): string {
  const unknown = signers.flatMap((s) => s.trust?.revocation.certificates.filter((c) => c.status === 'unknown') ?? []);
  if (unknown.length > 0 || signers.some((s) => s.trust?.revocation.status === 'unknown')) {
    const which = unknown.length === 0 ? 'the certificate path' : unknown.length === 1 ? (unknown[0]!.role === 'signer' ? 'the signer\'s certificate' : `the CA certificate "${unknown[0]!.subject}"`) : `${unknown.length} certificates of the path`;
    return `; revocation unknown for ${which}`;
  }
  if (signers.some((s) => s.trust?.revocation.status === 'not-checked')) return '; revocation not checked';
  return '';
}

/**
 * The signer's RFC 3161 signature timestamp (id-aa-signatureTimeStampToken, an
 * unsigned attribute), checked by the CMS layer against this signature value; the
 * validator decides on its TSA and whether its time is used. One token at most: two
 * are two answers to "when", so neither is used.
 */
function timestampOf(s: SignerVerification, candidates: Certificate[]): { timestampToken?: TimestampEvidence } {
  const attr = s.unsignedAttributes.get(OID.signatureTimeStampToken);
  if (!attr) return {};
  if (attr.values.length !== 1) {
    return { timestampToken: { status: 'invalid', code: 'ATTR_INVALID', message: `The signature timestamp is not usable: the signature carries ${attr.values.length} timestamp tokens, and two answers to "when was it signed" are none.`, certificates: [], crls: [], ocspResponses: [] } };
  }
  return { timestampToken: verifyTimestampToken(attr.values[0]!.bytes, s.signatureValue, { certificates: candidates }) };
}

/** What the summary line adds when a signer's certificate was checked at a signature timestamp's time, not now. */
function timestampNote(signers: readonly SignerVerdict[]): string {
  const stamped = signers.flatMap((s) => (s.trust?.clock.source === 'timestamp' && s.trust.timestamp ? [s.trust.timestamp] : []));
  if (stamped.length === 0) return '';
  return `; valid at the timestamped time ${stamped.map((t) => `${t.time?.toISOString()} (TSA "${t.tsa}")`).join(', ')}`;
}

/** The certificates a signer's (or countersigner's) path may use: the layer's, then the caller's. */
function carriedFor(p: PendingSigner, input: JudgeInput): Certificate[] {
  return input.certificates?.length ? [...p.verification.certificates, ...input.certificates] : p.verification.certificates;
}

/**
 * Countersigners path-validated per judged message. Anyone on the way can add
 * countersignatures (up to maxSigners per signer, for up to maxSigners signers), and each
 * path search may verify up to 64 candidate links: unbounded, a message would cost a
 * thousand path searches. Each certificate is judged once per message.
 */
export const MAX_COUNTERSIGNERS_VALIDATED = 8;

interface CountersignerJudgements {
  /** By certificate, signing time and SignedData (the clock and the carried certificates are inputs too). */
  judged: Map<string, Pick<CountersignatureVerdict, 'trust' | 'trustFailure'>>;
  /** The certificates judged so far (the budget counts these). */
  certificates: Set<string>;
  layers: Map<SignedDataVerification, number>;
}

async function judgeCountersigner(c: SignerVerification & { certificate: Certificate }, p: PendingSigner, input: JudgeInput, validateSigner: SignerValidator, seen: CountersignerJudgements): Promise<Pick<CountersignatureVerdict, 'trust' | 'trustFailure'>> {
  const fp = c.certificate.fingerprint256;
  if (!seen.layers.has(p.verification)) seen.layers.set(p.verification, seen.layers.size);
  const key = `${fp}\n${c.signingTime?.getTime() ?? ''}\n${seen.layers.get(p.verification)}`;
  const known = seen.judged.get(key);
  if (known) return known;
  if (!seen.certificates.has(fp) && seen.certificates.size >= MAX_COUNTERSIGNERS_VALIDATED) {
    return { trustFailure: { code: 'LIMIT', message: `The message has countersignatures by more than ${MAX_COUNTERSIGNERS_VALIDATED} certificates; only the first ${MAX_COUNTERSIGNERS_VALIDATED} were path-validated.` } };
  }
  let judged: Pick<CountersignatureVerdict, 'trust' | 'trustFailure'>;
  // Anyone on the way can add a countersignature (an unsigned attribute) without breaking
  // the signature: a certificate that cannot even be judged fails the countersigner only.
  try {
    judged = {
      trust: await validateSigner({
        certificate: c.certificate,
        carried: carriedFor(p, input),
        carriedCrls: p.verification.crls,
        carriedOcsp: p.verification.ocspResponses,
        ...(c.signingTime ? { signingTime: c.signingTime } : {}),
        usage: 'signing',
        signatureAlgorithms: c.algorithmOids,
      }),
    };
  } catch (e) {
    if (!(e instanceof KakitomeError)) throw e;
    judged = { trustFailure: { code: e.code, message: e.message } };
  }
  seen.certificates.add(fp);
  seen.judged.set(key, judged);
  return judged;
}

/**
 * A countersignature as the verdict reports it. RFC 5652 11.4 makes it a signature
 * like any other, so one that verifies has its certificate judged by the signers'
 * validator, against the same trust anchors, with no From comparison (the
 * countersigner is not the author). Reported only: it never changes the verdict.
 */
async function countersignatureVerdict(c: SignerVerification, p: PendingSigner, input: JudgeInput, seen: CountersignerJudgements): Promise<CountersignatureVerdict> {
  const judged = c.status === 'valid' && c.certificate && input.validateSigner ? await judgeCountersigner({ ...c, certificate: c.certificate }, p, input, input.validateSigner, seen) : {};
  return {
    ...judged,
    identifier: describeIdentifier(c.identifier),
    ...(c.certificate ? { subject: certificateNames(c.certificate).subjectText, certificate: c.certificate } : {}),
    status: c.status,
    code: c.code,
    message: c.message,
    ...(c.signingTime ? { signingTime: c.signingTime } : {}),
    algorithms: { digest: c.digestAlgorithm, signature: c.signatureAlgorithm },
    warnings: [...c.warnings],
  };
}

/** In order, so the budget goes to the first ones. */
async function countersignatureVerdicts(list: SignerVerification[], p: PendingSigner, input: JudgeInput, seen: CountersignerJudgements): Promise<CountersignatureVerdict[]> {
  const out: CountersignatureVerdict[] = [];
  for (const c of list) out.push(await countersignatureVerdict(c, p, input, seen));
  return out;
}

export async function judgeMessage(input: JudgeInput): Promise<Judgement> {
  const { layers, pending, fromHeaders, outerHeaders, protectedHeaders, certsOnly, bodyFailure, unauthenticatedFrom, validateSigner, warnings } = input;
  // The sender to compare with signers: the protected From when present (RFC 9788), else the outer one.
  // What a reader sees must be the same person: the outer fields too, for programs without RFC 9788.
  const shown = readDisplayedSender(fromHeaders);
  const misleading: MisleadingSender[] = [...shown.misleading];
  if (outerHeaders !== fromHeaders) {
    for (const m of readDisplayedSender(outerHeaders).misleading) if (!misleading.some((x) => x.message === m.message)) misleading.push(m);
  }
  const { from, sender: senderAddr } = shown;
  for (const m of misleading) warnings.push(m.message);

  const signers: SignerVerdict[] = [];
  const countersigners: CountersignerJudgements = { judged: new Map(), certificates: new Set(), layers: new Map() };
  for (const p of pending) {
    const s = p.verification.signers[p.index]!;
    const cert = s.certificate;
    const names = cert ? certificateNames(cert) : undefined;
    const base = {
      subject: names ? names.subjectText : 'unknown signer (certificate not found)',
      ...(names?.emailAddresses[0] ? { email: names.emailAddresses[0] } : {}),
      ...(s.signingTime ? { signingTime: s.signingTime } : {}),
      algorithms: { digest: s.digestAlgorithm, signature: s.signatureAlgorithm },
      scope: p.scope,
      ...(cert ? { certificate: cert } : {}),
      ...(s.capabilities ? { capabilities: s.capabilities } : {}),
      ...(s.encryptionKeyPreference ? { encryptionKeyPreference: s.encryptionKeyPreference } : {}),
      carried: p.verification.certificates,
      ...(s.countersignatures ? { countersignatures: await countersignatureVerdicts(s.countersignatures, p, input, countersigners) } : {}),
    };
    if (s.status !== 'valid' || !cert) {
      signers.push({ ...base, status: 'invalid', code: s.code ?? 'BAD_SIG', message: s.message, identity: identityWithoutValidator(cert, from), warnings: [...s.warnings] });
      continue;
    }
    let code: ErrorCode | undefined;
    // The CMS layer's message hedges about trust; here trust is decided, so say it once.
    const message = `Signature valid: made by ${names!.subjectText} with ${s.signatureAlgorithm} over ${s.digestAlgorithm}.`;
    if (validateSigner) {
      const trust = await validateSigner({
        certificate: cert,
        carried: carriedFor(p, input),
        carriedCrls: p.verification.crls,
        carriedOcsp: p.verification.ocspResponses,
        ...(s.signingTime ? { signingTime: s.signingTime } : {}),
        from,
        ...(senderAddr ? { sender: senderAddr } : {}),
        usage: 'signing',
        // The algorithm policy judges the signature too (SHA-1 refused by default), not only the path.
        signatureAlgorithms: s.algorithmOids,
        ...timestampOf(s, [...p.verification.certificates, ...(input.certificates ?? [])]),
      });
      let senderOnly = '';
      if (trust.status !== 'trusted') code = trust.code ?? 'CERT_UNTRUSTED';
      else if (trust.identity.status === 'mismatch') code = 'IDENTITY_MISMATCH';
      else if (trust.identity.field === 'Sender') {
        // RFC 8550 section 3 lets the Sender match; a reader sees From, and From did not sign.
        code = 'IDENTITY_MISMATCH';
        senderOnly = ` But the certificate matches only the Sender (${trust.identity.from}), not the author a reader sees in From (${from.join(', ') || 'none'}).`;
      }
      // The policy's sentences on algorithm strength replace the CMS layer's generic ones.
      const warnings = [...new Set([...s.warnings.filter((w) => !s.weakAlgorithms.includes(w)), ...trust.warnings])];
      // A legacy form the CMS layer accepted (allowLegacy) makes the trust rest on it, as a legacy algorithm does.
      const judged = s.legacy ? { ...trust, legacy: [...(trust.legacy ?? []), ...s.legacy] } : trust;
      signers.push({ ...base, status: 'valid', code, message: `${message} ${trust.message}${senderOnly}`, trust: judged, identity: trust.identity, warnings });
    } else {
      const identity = identityWithoutValidator(cert, from);
      if (identity.status === 'mismatch') code = 'IDENTITY_MISMATCH';
      signers.push({ ...base, status: 'valid', code, message: `${message} The certificate chain was not checked.`, identity, warnings: [...s.warnings] });
    }
  }

  const bodySigners = signers.filter((s) => s.scope === 'message');
  const partSigners = signers.filter((s) => s.scope === 'part');
  let status: VerdictStatus;
  let code: ErrorCode | undefined;
  let summary: string;
  const who = (s: SignerVerdict): string => s.email ?? s.subject;
  const failed = bodySigners.find((s) => s.status === 'invalid');
  const flaggedStructure = layers.some((l) => l.coversBody && l.kind === 'signed' && l.warnings.some((w) => /no protocol parameter|does not match its S\/MIME/.test(w)));
  const fromMismatch = protectedHeaders?.mismatches.some((m) => /^Outer (from|sender) /.test(m)) ?? false;
  if (bodyFailure) {
    status = 'invalid';
    code = bodyFailure.code;
    summary = `The message's signature is NOT usable (${bodyFailure.code}): ${bodyFailure.message}`;
  } else if (failed) {
    status = 'invalid';
    code = failed.code;
    summary = `The signature by ${who(failed)} is NOT valid (${failed.code}): the message may have been altered. ${failed.message}`;
  } else if (bodySigners.length === 0) {
    if (partSigners.length > 0) {
      status = 'partial';
      code = 'PARTIAL_SIGNED';
      summary = 'Only part of this message is signed; the rest (including what you see around the signed part) is not covered by any signature.';
    } else {
      status = 'unsigned';
      code = undefined;
      summary = certsOnly ? `The message carries ${certsOnly.length} certificate(s) and no signature.` : layers.some((l) => l.decrypted === false) ? 'The message is encrypted and was not decrypted.' : 'The message is not signed.';
    }
  } else {
    const problem = bodySigners.find((s) => s.code !== undefined);
    const allTrusted = validateSigner !== undefined && bodySigners.every((s) => s.trust?.status === 'trusted' && s.identity.status === 'match');
    if (problem) {
      status = 'valid-untrusted';
      code = problem.code;
      summary = code === 'WEAK_ALG'
        ? `The signature by ${who(problem)} is valid, but it rests on a weak algorithm (WEAK_ALG). ${problem.trust?.message ?? ''}`.trimEnd()
        : code === 'REVOCATION_UNKNOWN'
        ? `The signature by ${who(problem)} is valid, but revocation unknown${revocationNote([problem]).replace(/^; revocation unknown/, '')} and policy requires it (REVOCATION_UNKNOWN).`
        : code === 'TIMESTAMP_INVALID'
        ? `The signature by ${who(problem)} is valid, but its timestamp, the clock the certificate is checked at, is not usable (TIMESTAMP_INVALID): ${problem.trust?.timestamp?.message ?? ''}`.trimEnd()
        : code === 'MALFORMED'
        ? `The signature by ${who(problem)} is valid, but its certificate is damaged and cannot be trusted (MALFORMED): ${problem.trust?.message ?? ''}`.trimEnd()
        : code !== 'IDENTITY_MISMATCH'
        ? `The signature by ${who(problem)} is valid, but the certificate is not trusted (${code}).`
        : problem.identity.status === 'match' && problem.identity.field === 'Sender'
          ? `The signature by ${who(problem)} is valid, but ${problem.identity.from} is only the Sender: the author a reader sees in From (${from.join(', ') || 'none'}) did not sign it.`
          : `The signature is valid, but the signer ${who(problem)} is not the sender shown in From.`;
    } else if (misleading.length > 0) {
      // Never 'trusted' when what a reader sees can differ from the certificate's identity.
      status = 'valid-untrusted';
      code = 'IDENTITY_MISMATCH';
      const m = misleading[0]!;
      summary = m.shown
        ? `The signature by ${bodySigners.map(who).join(', ')} is valid, but the sender a reader sees shows ${m.shown}: this message is NOT from ${m.shown}.`
        : `The signature by ${bodySigners.map(who).join(', ')} is valid, but the sender a reader sees may differ from the signer: ${m.message}`;
    } else if (allTrusted && !flaggedStructure && !fromMismatch) {
      status = 'trusted';
      code = undefined;
      // Issue 9 item 5: trust that rests on SHA-1 or a short RSA key says so where it is read first.
      // Item 7: so does a certificate of the path whose revocation is unknown.
      const legacy = bodySigners.flatMap((s) => s.trust?.legacy ?? []);
      const trusted = `Signed by ${bodySigners.map(who).join(', ')}: the signature is valid and the certificate is trusted${revocationNote(bodySigners)}${timestampNote(bodySigners)}`;
      summary = legacy.length === 0
        ? `${trusted}.`
        : `${trusted}, but only because legacy algorithms are allowed: ${legacy[0]}${legacy.length > 1 ? ` And ${legacy.length - 1} more: see the warnings.` : ''}`;
    } else {
      status = 'valid-untrusted';
      code = fromMismatch ? 'IDENTITY_MISMATCH' : undefined;
      summary = fromMismatch
        ? 'The signature is valid, but the visible From differs from the signed (protected) From.'
        : validateSigner
          ? `The signature by ${bodySigners.map(who).join(', ')} is valid, but the message structure was flagged: see warnings.`
          : `The signature by ${bodySigners.map(who).join(', ')} is valid; the certificate chain was not checked.`;
    }
    if (partSigners.length > 0) warnings.push('Signed parts inside the signed message were verified too; they are covered by the outer signature as well.');
  }
  // EFAIL: CBC content is authenticated only by a trusted signature of the From address made inside the
  // (last) CBC layer over all of it: the verdict is 'trusted' and one of its body signers is in there.
  const unauthenticatedContent = unauthenticatedFrom !== undefined && !(status === 'trusted' && pending.some((p, i) => i >= unauthenticatedFrom && p.scope === 'message'));
  if (unauthenticatedContent) {
    warnings.push('The content was encrypted with an unauthenticated cipher (CBC) and no trusted signature of the sender made inside the encryption covers it: it may have been altered in transit (UNAUTH_ENC, EFAIL).');
    if (status === 'unsigned') {
      code = 'UNAUTH_ENC';
      summary = 'The message was decrypted, but it is not signed and its encryption (CBC) does not detect tampering.';
    }
  }
  if (protectedHeaders && protectedHeaders.mismatches.length > 0 && status !== 'invalid') summary += ' Some visible headers differ from the protected ones.';
  const unsignedHeaders = status === 'trusted' || status === 'valid-untrusted' ? headersOutsideSignature(input) : [];
  if (unsignedHeaders.length > 0) {
    const fromChecked = unsignedHeaders.includes('From') ? ' The From address was compared with the signer\'s certificate.' : '';
    const why = protectedHeaders ? 'its RFC 9788 protected header fields lie outside the signature' : 'the message has no RFC 9788 header protection';
    warnings.push(`The signature covers the message body but not the header fields ${unsignedHeaders.join(', ')} (${why}): they can be changed in transit without breaking the signature.${fromChecked}`);
  }
  return { status, code, summary, signers, unauthenticatedContent, ...(unsignedHeaders.length > 0 ? { unsignedHeaders } : {}) };
}

/** The user-facing header fields present where a reader sees them that no signature covers (item 6 of issue 9). */
function headersOutsideSignature(input: JudgeInput): string[] {
  if (input.protectedHeaders && input.protectedHeadersSigned) return [];
  const present = new Set([...input.outerHeaders, ...input.fromHeaders].map((h) => h.name.toLowerCase()));
  return USER_FACING_HEADERS.filter((n) => present.has(n.toLowerCase()));
}
