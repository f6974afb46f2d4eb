/**
 * What happens to one outbound recipient's copy, decided from the sender's
 * resolved policy and the facts the gateway found (issue 13, "Policy"). Pure: the
 * gateway (src/gateway/plan-outbound.ts) gathers the facts and calls these, and
 * `kakitome gateway explain` prints the same decisions, so explain and delivery
 * cannot disagree.
 *
 * Encryption is `required` when policy says so (`encrypt`), when the message carries
 * a trigger, or when the recipient's domain is in `requireEncryptionDomains`; a
 * required copy without a valid certificate is never sent: it is bounced or held
 * (`missingCertificate`). Otherwise `if-possible` encrypts when a validated
 * certificate is known and `never` does not look.
 *
 * Signing: off by `sign`, skipped for `skipSignDomains`, impossible without the
 * sender's key (the copy passes unsigned and is counted); an encrypted copy is
 * signed inside the encryption (multipart/signed, which no relay can touch), a
 * signed-only copy is opaque for `opaqueSignDomains`, multipart/signed otherwise.
 */
import type { ErrorCode } from '../errors.ts';
import { mailDomainOf } from '../x509/mailbox-address.ts';
import type { TriggerMatch } from './find-encryption-triggers.ts';
import type { ResolvedPolicy } from './resolve-policy.ts';
import { describeSource } from './resolve-policy.ts';
import { ENGLISH_DECISION_WORDS, type OutboundFacts } from './decision-words.ts';
import type { SettingName } from './policy-settings.ts';

/** A setting that shaped a decision, its value and the level that set it (for explain and the DSN). */
export interface Because {
  setting: SettingName | 'trigger' | 'signer' | 'certificate';
  value: string;
  /** The level ("default", "global", "domain example.com", "address a@example.com"), or what was found. */
  source: string;
}

export interface EncryptionWanted {
  mode: 'never' | 'if-possible' | 'required';
  because: Because[];
}

export type CertificateFact =
  | { status: 'valid'; fingerprint: string; subject: string }
  | { status: 'missing' }
  | { status: 'refused'; code: ErrorCode; message: string };

export type RecipientAction = 'signed' | 'signed-encrypted' | 'encrypted' | 'unchanged' | 'bounce' | 'hold';
export type SignMode = 'detached' | 'opaque' | 'none';

export interface RecipientDecision {
  recipient: string;
  action: RecipientAction;
  sign: { mode: SignMode; because: Because[] };
  encrypt: { wanted: EncryptionWanted; certificate?: CertificateFact; encrypted: boolean };
  /** One sentence: what happens and why (ENGLISH_DECISION_WORDS.outbound; other languages render the same data). */
  summary: string;
}

const because = (policy: ResolvedPolicy, setting: SettingName, value: string = JSON.stringify(policy.settings[setting])): Because => ({ setting, value, source: describeSource(policy.sources[setting]) });

/** The recipient's domain as the policy's domain lists write it (ASCII: bob@例え.jp is in xn--r8jz45g.jp's lists). */
export function recipientDomain(recipient: string): string {
  return mailDomainOf(recipient.trim());
}

/** Whether (and why) encryption is wanted for this recipient: decides whether the gateway looks for a certificate. */
export function decideEncryptionWanted(policy: ResolvedPolicy, recipient: string, triggers: readonly TriggerMatch[]): EncryptionWanted {
  const required: Because[] = [];
  if (policy.settings.encrypt === 'required') required.push(because(policy, 'encrypt'));
  for (const t of triggers) required.push({ setting: 'trigger', value: JSON.stringify(t.trigger), source: `${t.kind === 'subject' ? 'subjectTriggers' : 'headerTriggers'} (${describeSource(policy.sources[t.kind === 'subject' ? 'subjectTriggers' : 'headerTriggers'])})` });
  const domain = recipientDomain(recipient);
  if (policy.settings.requireEncryptionDomains.includes(domain)) required.push(because(policy, 'requireEncryptionDomains', JSON.stringify(domain)));
  if (required.length) return { mode: 'required', because: required };
  return { mode: policy.settings.encrypt, because: [because(policy, 'encrypt')] };
}

function decideSignMode(policy: ResolvedPolicy, recipient: string, hasSigner: boolean, encrypted: boolean): { mode: SignMode; because: Because[] } {
  const domain = recipientDomain(recipient);
  if (!policy.settings.sign) return { mode: 'none', because: [because(policy, 'sign')] };
  if (policy.settings.skipSignDomains.includes(domain)) return { mode: 'none', because: [because(policy, 'skipSignDomains', JSON.stringify(domain))] };
  if (!hasSigner) return { mode: 'none', because: [{ setting: 'signer', value: 'none', source: 'the From address has no current signing key in the store' }] };
  if (encrypted) return { mode: 'detached', because: [because(policy, 'sign')] };
  if (policy.settings.opaqueSignDomains.includes(domain)) return { mode: 'opaque', because: [because(policy, 'opaqueSignDomains', JSON.stringify(domain))] };
  return { mode: 'detached', because: [because(policy, 'sign')] };
}

/** The decision's data as the words take it (decision-words.ts). */
export function outboundFacts(d: Omit<RecipientDecision, 'summary'>): OutboundFacts {
  return { recipient: d.recipient, action: d.action, sign: d.sign, wanted: d.encrypt.wanted.mode, wantedBecause: d.encrypt.wanted.because, certificate: d.encrypt.certificate, encrypted: d.encrypt.encrypted };
}

function withSummary(d: Omit<RecipientDecision, 'summary'>): RecipientDecision {
  return { ...d, summary: ENGLISH_DECISION_WORDS.outbound(outboundFacts(d)) };
}

/**
 * The decision for one recipient. `certificate` is what the lookup found, or
 * undefined when encryption was not wanted (`never`: nothing was looked up).
 */
export function decideRecipient(policy: ResolvedPolicy, recipient: string, wanted: EncryptionWanted, hasSigner: boolean, certificate: CertificateFact | undefined): RecipientDecision {
  const usable = wanted.mode !== 'never' && certificate?.status === 'valid';
  if (wanted.mode === 'required' && !usable) {
    const action = policy.settings.missingCertificate;
    const sign = { mode: 'none' as const, because: [because(policy, 'missingCertificate')] };
    return withSummary({ recipient, action, sign, encrypt: { wanted, ...(certificate ? { certificate } : {}), encrypted: false } });
  }
  const sign = decideSignMode(policy, recipient, hasSigner, usable);
  const action: RecipientAction = usable ? (sign.mode === 'none' ? 'encrypted' : 'signed-encrypted') : sign.mode === 'none' ? 'unchanged' : 'signed';
  return withSummary({ recipient, action, sign, encrypt: { wanted, ...(certificate ? { certificate } : {}), encrypted: usable } });
}
