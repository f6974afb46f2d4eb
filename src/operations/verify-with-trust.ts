/**
 * Verifying a message against a trust context, as every front end verifies: the
 * library's verdict (smime/verify-message.ts, or its stream form), its view
 * (smime/verdict-view.ts: what `kakitome verify --json` prints, the signing
 * service answers and the console words) and, with a harvest, each trusted
 * signer's certificate and capabilities kept in the key store for encrypting to
 * them (harvest-verdict-signers.ts), what it kept or refused said in the view.
 * The front end decides only what it does with the verdict (the CLI: an exit
 * status, and OUT only when trusted).
 */
import type { Writable } from 'node:stream';
import type { SignerValidator } from '../pki/types.ts';
import { viewVerdict, type VerdictView } from '../smime/verdict-view.ts';
import type { MessageVerdict } from '../smime/verdict.ts';
import { verifyMessage } from '../smime/verify-message.ts';
import { verifyMessageStream } from '../smime/verify-message-stream.ts';
import type { Store } from '../store/store.ts';
import type { Certificate } from '../x509/certificate.ts';
import { harvestQuietly } from './harvest-verdict-signers.ts';

/** What signers are judged with, kept for message after message. */
export interface TrustContext {
  /** From create-trust-validator.ts (or one a long-running front end keeps between requests). */
  validateSigner: SignerValidator;
  /** Where a signer certificate the message leaves out is looked for (and intermediates): never anchors. */
  certificates: Certificate[];
  /** Read signatures on legacy algorithms (as the validator's allowLegacy). */
  allowLegacy: boolean;
  /**
   * Keep trusted signers' certificates in this store; `seen` (one per job or
   * process) skips a signer already kept. Absent: nothing is kept (the signing
   * service and the console: one tenant's check must not change the directory
   * every tenant encrypts with).
   */
  harvest?: { store: Store; seen: Set<string> };
}

/** A verdict and its view (the view carries the harvest's warnings). */
export interface ViewedVerdict {
  verdict: MessageVerdict;
  view: VerdictView;
}

/** The verdict's `output` is the message without its signature layer, for the caller to release only when trusted. */
export async function verifyWithTrust(message: Buffer, trust: TrustContext): Promise<ViewedVerdict> {
  const verdict = await verifyMessage(message, { validateSigner: trust.validateSigner, certificates: trust.certificates, allowLegacy: trust.allowLegacy });
  return { verdict, view: await viewAndHarvest(verdict, trust) };
}

/**
 * The same over a message read as it streams: the message without its signature
 * layer goes to `output` (never ended), after the verdict; the caller discards it
 * unless the verdict lets it through.
 */
export async function verifyStreamWithTrust(input: AsyncIterable<Buffer>, output: Writable, trust: TrustContext): Promise<ViewedVerdict> {
  const verdict = await verifyMessageStream(input, { validateSigner: trust.validateSigner, certificates: trust.certificates, allowLegacy: trust.allowLegacy, output, end: false });
  return { verdict, view: await viewAndHarvest(verdict, trust) };
}

/** The view of a verdict, after the harvest (when the context has one) added what it kept or refused. */
export async function viewAndHarvest(verdict: MessageVerdict, trust: TrustContext): Promise<VerdictView> {
  const view = viewVerdict(verdict);
  if (trust.harvest) await harvestQuietly(trust.harvest.store, verdict, view, trust.harvest.seen, trust.validateSigner);
  return view;
}
