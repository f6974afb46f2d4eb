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
import type { TriggerMatch } from './find-encryption-triggers.ts';
import type { ResolvedPolicy } from './resolve-policy.ts';
import { describeSource } from './resolve-policy.ts';
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
  /** One sentence: what happens and why. */
  summary: string;
}

const because = (policy: ResolvedPolicy, setting: SettingName, value: string = JSON.stringify(policy.settings[setting])): Because => ({ setting, value, source: describeSource(policy.sources[setting]) });

export function recipientDomain(recipient: string): string {
  const a = recipient.trim().toLowerCase();
  return a.slice(a.lastIndexOf('@') + 1).replace(/\.$/, '');
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

function certificateText(c: CertificateFact | undefined): string {
  if (!c || c.status === 'missing') return 'no certificate is known for the recipient';
  if (c.status === 'refused') return `the recipient's certificate may not be used (${c.code}): ${c.message}`;
  return `certificate ${c.fingerprint.slice(0, 16)} ("${c.subject}")`;
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
    const why = wanted.because.map((b) => `${b.setting === 'trigger' ? `trigger ${b.value}` : `${b.setting}=${b.value}`} (${b.source})`).join(', ');
    return {
      recipient,
      action,
      sign,
      encrypt: { wanted, ...(certificate ? { certificate } : {}), encrypted: false },
      summary: `Encryption to ${recipient} is required by ${why} and ${certificateText(certificate)}: the message is ${action === 'bounce' ? 'not sent to them; the sender gets a delivery status notification saying why' : 'held in the store for an administrator'} (missingCertificate=${action}, ${describeSource(policy.sources.missingCertificate)}).`,
    };
  }
  const sign = decideSignMode(policy, recipient, hasSigner, usable);
  const action: RecipientAction = usable ? (sign.mode === 'none' ? 'encrypted' : 'signed-encrypted') : sign.mode === 'none' ? 'unchanged' : 'signed';
  const signText = sign.mode === 'none' ? `not signed (${sign.because.map((b) => `${b.setting}=${b.value}, ${b.source}`).join('; ')})` : sign.mode === 'opaque' ? 'signed (opaque application/pkcs7-mime)' : usable ? 'signed inside the encryption' : 'signed (multipart/signed)';
  const encryptText = usable ? `encrypted to ${certificateText(certificate)}` : wanted.mode === 'never' ? `not encrypted (encrypt=never, ${wanted.because[0]!.source})` : `not encrypted: ${certificateText(certificate)}`;
  return {
    recipient,
    action,
    sign,
    encrypt: { wanted, ...(certificate ? { certificate } : {}), encrypted: usable },
    summary: `${recipient}: ${signText}, ${encryptText}.`,
  };
}
