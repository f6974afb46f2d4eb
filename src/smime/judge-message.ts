/**
 * The verdict rules (brief, "Safe verification"; verdict.ts documents the
 * statuses): per-signer trust and identity, then the message status from the
 * layers that cover the body, parts signed inside unsigned content, unusable
 * signatures and unauthenticated (CBC) encryption. Used by openMessage and by
 * any other reader that has gathered the same facts.
 */
import type { ErrorCode } from '../errors.ts';
import type { SignedDataVerification } from '../cms/signed-data/verify.ts';
import { certificateNames } from '../x509/certificate-names.ts';
import { getHeaderFields, type HeaderField } from '../mime/entity.ts';
import { findDisplayNameSpoofsIn, parseAddresses, parseMailboxes } from '../mime/parse-addresses.ts';
import type { IdentityReport, SignerValidator } from '../pki/types.ts';
import type { Certificate } from '../x509/certificate.ts';
import type { LayerReport, ProtectedHeadersReport, SignerVerdict, VerdictStatus } from './verdict.ts';

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
  fromHeaders: HeaderField[];
  protectedHeaders?: ProtectedHeadersReport;
  certsOnly?: Certificate[];
  /** A signature over the body that is unusable as a whole (NO_SIGNERS, AMBIGUOUS_CONTENT). */
  bodyFailure?: { code: ErrorCode; message: string };
  /** A CBC (unauthenticated) layer was decrypted. */
  unauthenticatedLayer: boolean;
  validateSigner?: SignerValidator;
  /** Appended to. */
  warnings: string[];
}

export interface Judgement {
  status: VerdictStatus;
  code: ErrorCode | undefined;
  summary: string;
  signers: SignerVerdict[];
}

export function identityWithoutValidator(cert: Certificate | undefined, from: string[]): IdentityReport {
  const certificateAddresses = cert ? certificateNames(cert).emailAddresses.map((a) => a.toLowerCase()) : [];
  if (from.length === 0) return { status: 'unknown', certificateAddresses, message: 'The message has no From address to compare with the signer.' };
  const hit = from.find((f) => certificateAddresses.includes(f));
  if (hit) return { status: 'match', from: hit, certificateAddresses, message: `The signer's certificate is issued to ${hit}, the From address.` };
  return {
    status: 'mismatch',
    from: from[0]!,
    certificateAddresses,
    message: `The From address ${from[0]} is not in the signer's certificate (${certificateAddresses.join(', ') || 'no e-mail address'}).`,
  };
}

export async function judgeMessage(input: JudgeInput): Promise<Judgement> {
  const { layers, pending, fromHeaders, protectedHeaders, certsOnly, bodyFailure, unauthenticatedLayer, validateSigner, warnings } = input;
  // The sender to compare with signers: the protected From when present (RFC 9788), else the outer one.
  const fromMailboxes = getHeaderFields({ headers: fromHeaders }, 'from').flatMap((f) => parseMailboxes(f.value));
  const from = fromMailboxes.map((m) => m.address);
  const senderAddr = getHeaderFields({ headers: fromHeaders }, 'sender').flatMap((f) => parseAddresses(f.value))[0];
  // A display name showing another address reads, in most clients, as that address.
  const spoofs = findDisplayNameSpoofsIn(fromMailboxes);
  for (const sp of spoofs) warnings.push(`The From display name shows ${sp.shown}, but the message is from ${sp.actual}.`);

  const signers: SignerVerdict[] = [];
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
    };
    if (s.status !== 'valid' || !cert) {
      signers.push({ ...base, status: 'invalid', code: s.code ?? 'BAD_SIG', message: s.message, identity: identityWithoutValidator(cert, from) });
      continue;
    }
    let code: ErrorCode | undefined;
    // The CMS layer's message hedges about trust; here trust is decided, so say it once.
    const message = `Signature valid: made by ${names!.subjectText} with ${s.signatureAlgorithm} over ${s.digestAlgorithm}.`;
    if (validateSigner) {
      const trust = await validateSigner({
        certificate: cert,
        carried: p.verification.certificates,
        carriedCrls: p.verification.crls,
        ...(s.signingTime ? { signingTime: s.signingTime } : {}),
        from,
        ...(senderAddr ? { sender: senderAddr } : {}),
        usage: 'signing',
      });
      if (trust.status !== 'trusted') code = trust.code ?? 'CERT_UNTRUSTED';
      else if (trust.identity.status === 'mismatch') code = 'IDENTITY_MISMATCH';
      signers.push({ ...base, status: 'valid', code, message: `${message} ${trust.message}`, trust, identity: trust.identity });
    } else {
      const identity = identityWithoutValidator(cert, from);
      if (identity.status === 'mismatch') code = 'IDENTITY_MISMATCH';
      signers.push({ ...base, status: 'valid', code, message: `${message} The certificate chain was not checked.`, identity });
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
      summary = code === 'IDENTITY_MISMATCH'
        ? `The signature is valid, but the signer ${who(problem)} is not the sender shown in From.`
        : `The signature by ${who(problem)} is valid, but the certificate is not trusted (${code}).`;
    } else if (allTrusted && spoofs.length > 0) {
      status = 'valid-untrusted';
      code = 'IDENTITY_MISMATCH';
      summary = `The signature by ${bodySigners.map(who).join(', ')} is valid, but the From display name shows ${spoofs[0]!.shown}: this message is NOT from ${spoofs[0]!.shown}.`;
    } else if (allTrusted && !flaggedStructure && !fromMismatch) {
      status = 'trusted';
      code = undefined;
      summary = `Signed by ${bodySigners.map(who).join(', ')}: the signature is valid and the certificate is trusted.`;
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
  if (unauthenticatedLayer) {
    // Brief: CBC content is unauthenticated unless a valid signature from the sender covers it.
    const covered = bodySigners.some((s) => s.status === 'valid' && s.identity.status === 'match');
    if (!covered) {
      warnings.push('The content was encrypted with an unauthenticated cipher (CBC) and no valid signature from the sender covers it: it may have been modified in transit (UNAUTH_ENC).');
      if (status === 'unsigned') {
        code = 'UNAUTH_ENC';
        summary = 'The message was decrypted, but it is not signed and its encryption (CBC) does not detect tampering.';
      }
    }
  }
  if (protectedHeaders && protectedHeaders.mismatches.length > 0 && status !== 'invalid') summary += ' Some visible headers differ from the protected ones.';
  return { status, code, summary, signers };
}
