/**
 * Harvesting from verified signed mail (RFC 8551 2.5.2, 2.5.3; RFC 8550 4.1): the
 * certificate to encrypt to the sender (the one its SMIMEEncryptionKeyPreference
 * names among the carried certificates, else the signer's own) is kept with the
 * announced SMIMECapabilities, so the next message to that correspondent can be
 * encrypted with what they can read.
 *
 * A message carries whatever certificates its author likes, so nothing is kept on
 * the message's word (issue 9, item 1, certificate-directory poisoning):
 *
 * - only a signer whose signature is valid, whose chain is trusted and whose
 *   certificate matches the From address is harvested;
 * - each certificate to keep is validated on its own by the signer validator for
 *   usage "encryption" (a path to a trust anchor for e-mail protection, a
 *   key-management key usage, revocation) with the verified From address, which
 *   it must name;
 * - it is filed under that From address only, never under the other addresses it
 *   names, never above an imported or trusted certificate, and a new key for an
 *   address already known waits for an administrator (Store.harvestCertificate).
 */
import type { ErrorCode, Remedy } from '../errors.ts';
import { KakitomeError } from '../errors.ts';
import { encodeSmimeCapabilities } from '../cms/capabilities.ts';
import { identifierMatches } from '../cms/identifier.ts';
import type { SignerVerification } from '../cms/signed-data/verify.ts';
import type { SignerValidator, TrustReport } from '../pki/types.ts';
import type { Certificate } from '../x509/certificate.ts';
import { SOUND_RECIPIENT_KEY, weakRecipientKeyProblem } from '../x509/key-management-usage.ts';
import type { HarvestResult, Store } from './store.ts';

export interface HarvestInput {
  signer: Pick<SignerVerification, 'status' | 'certificate' | 'capabilities' | 'encryptionKeyPreference'>;
  trust: Pick<TrustReport, 'status' | 'identity'>;
  /** Certificates carried in the message (where a preferred encryption certificate is found; candidate intermediates). */
  carried?: readonly Certificate[];
}

/** A certificate the message offered for encryption that was not kept, and why. */
export interface HarvestRefusal {
  certificate: Certificate;
  /** The sender named it in SMIMEEncryptionKeyPreference (a refusal worth showing). */
  preferred: boolean;
  code: ErrorCode;
  reason: string;
}

export interface HarvestOutcome {
  kept: HarvestResult[];
  refused: HarvestRefusal[];
}

export async function harvestSigner(store: Store, input: HarvestInput, validate: SignerValidator): Promise<HarvestOutcome> {
  const { signer, trust } = input;
  if (signer.status !== 'valid' || !signer.certificate) throw new KakitomeError('BAD_SIG', 'Only a valid signature can be harvested.');
  if (trust.status !== 'trusted') throw new KakitomeError('CERT_UNTRUSTED', 'Only a signer with a trusted chain is harvested.');
  const from = trust.identity.from;
  if (trust.identity.status !== 'match' || from === undefined) throw new KakitomeError('IDENTITY_MISMATCH', 'The signer does not match the From address; nothing harvested.');
  const capabilities = signer.capabilities ? encodeSmimeCapabilities(signer.capabilities) : undefined;
  const carried = [...(input.carried ?? [])];
  const out: HarvestOutcome = { kept: [], refused: [] };
  for (const { certificate, preferred } of encryptionCandidates(signer.certificate, signer.encryptionKeyPreference, carried)) {
    const r = await harvestCandidate(store, validate, { certificate, carried, address: from, preferred, ...(capabilities ? { capabilities } : {}) });
    if ('refused' in r) out.refused.push(r.refused);
    else out.kept.push(r.kept);
  }
  return out;
}

/** One certificate to keep for encrypting to `address`: validated on its own for encryption, then filed (Store.harvestCertificate). */
export interface HarvestCandidate {
  certificate: Certificate;
  /** Candidates for intermediates (never anchors). */
  carried: Certificate[];
  address: string;
  preferred: boolean;
  capabilities?: Uint8Array;
}

/**
 * Validates one candidate for encryption to its address (path to an anchor,
 * key-management usage, revocation, the address named) and files it, or says why
 * not. harvestSigner's step, and the one the waiting certificates of a root an
 * administrator just trusted take (decide-unknown-root.ts).
 */
export async function harvestCandidate(store: Store, validate: SignerValidator, c: HarvestCandidate): Promise<{ kept: HarvestResult } | { refused: HarvestRefusal }> {
  const problem = encryptionKeyProblem(c.certificate) ?? encryptionProblem(await validate({ certificate: c.certificate, carried: c.carried, usage: 'encryption', from: [c.address] }), c.address);
  if (problem) return { refused: { certificate: c.certificate, preferred: c.preferred, ...problem } };
  return { kept: await store.harvestCertificate(c.certificate, { address: c.address, preferred: c.preferred, ...(c.capabilities ? { capabilities: c.capabilities } : {}) }) };
}

/**
 * The signer's certificate, and the one its encryption key preference names (RFC
 * 8551 2.5.3) when the message carries it; the named one is the preferred one.
 */
export function encryptionCandidates(own: Certificate, preference: SignerVerification['encryptionKeyPreference'], carried: Certificate[]): Array<{ certificate: Certificate; preferred: boolean }> {
  if (!preference) return [{ certificate: own, preferred: true }];
  const named = [own, ...carried].find((c) => identifierMatches(preference, c));
  if (named?.fingerprint256 === own.fingerprint256) return [{ certificate: own, preferred: true }];
  // A preference naming a certificate the message does not carry prefers nothing we have.
  return named ? [{ certificate: own, preferred: false }, { certificate: named, preferred: true }] : [{ certificate: own, preferred: false }];
}

/**
 * Why no encryption would take the certificate's key (x509/key-management-usage.ts:
 * an RSA exponent of 1, a short modulus, a curve we do not use...), asked before it is
 * validated: the harvest keeps no such certificate, the recipient lookup offers none.
 */
export function encryptionKeyProblem(certificate: Certificate): { code: ErrorCode; reason: string; remedy: Remedy } | undefined {
  const weak = weakRecipientKeyProblem(certificate);
  return weak ? { code: 'WEAK_ALG', reason: `${weak}. ${SOUND_RECIPIENT_KEY}`, remedy: 'recipientCertificate' } : undefined;
}

/** Why a validated certificate may not be used to encrypt to `address`; undefined when it may. */
export function encryptionProblem(report: TrustReport, address: string): { code: ErrorCode; reason: string } | undefined {
  if (report.status !== 'trusted') return { code: report.code ?? 'CERT_UNTRUSTED', reason: report.message };
  // A validator that allows legacy algorithms (to read old mail) never makes them something to encrypt to.
  if (report.legacy?.length) return { code: 'WEAK_ALG', reason: `Its trust rests on legacy algorithms (${report.legacy.join('; ')}).` };
  if (report.identity.status !== 'match') return { code: 'IDENTITY_MISMATCH', reason: `The certificate does not name ${address}.` };
  return undefined;
}
