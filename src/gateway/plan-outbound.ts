/**
 * The one place that decides what outbound mail becomes (issue 13): the sender's
 * policy (resolved over its levels), the triggers in the message, the sender's
 * signing certificate and each recipient's validated certificate, then the pure
 * decisions of src/policy/decide-recipient.ts, and the variants the copies are made
 * from. The gateway executes the plan (process-outbound.ts); `kakitome gateway
 * explain` prints it. Nothing here signs, encrypts or relays.
 *
 * Variants: one copy per recipient in as few transactions as possible. Encrypted
 * recipients named in To/Cc share one envelope per way of signing; a recipient not
 * named there (Bcc) gets an envelope of their own, so no copy reveals a Bcc
 * recipient's certificate. Signed-only and plain copies are grouped by way of
 * signing. The cipher is the best all of a variant's recipients announced
 * (chooseContentEncryption).
 */
import { isKakitomeError } from '../errors.ts';
import { getHeaderFields, type HeaderField } from '../mime/entity.ts';
import { parseAddresses } from '../mime/parse-addresses.ts';
import { decideEncryptionWanted, decideRecipient, type CertificateFact, type RecipientDecision, type SignMode } from '../policy/decide-recipient.ts';
import { findEncryptionTriggers, type TriggerEdits } from '../policy/find-encryption-triggers.ts';
import type { ResolvedPolicy } from '../policy/resolve-policy.ts';
import { chooseContentEncryption, type ContentEncryptionName } from '../store/choose-content-encryption.ts';
import { CERTIFICATE_REFUSALS, findTrustedRecipientCertificate } from '../store/find-trusted-recipient-certificate.ts';
import type { CertificateRecord } from '../store/store.ts';
import type { Certificate } from '../x509/certificate.ts';
import { mailboxKey } from '../x509/mailbox-address.ts';
import type { GatewayContext } from './gateway-context.ts';

export type OutboundAction = 'signed' | 'signed-encrypted' | 'encrypted' | 'unchanged';

export interface VariantPlan {
  recipients: string[];
  action: OutboundAction;
  sign: SignMode;
  /** The recipients' certificates; empty: not encrypted. */
  encryptTo: CertificateRecord[];
  contentEncryption?: ContentEncryptionName;
}

export interface OutboundPlan {
  /** The envelope sender, whose policy applies. */
  sender: string;
  policy: ResolvedPolicy;
  /** The From header's address (the signing identity). */
  from?: string;
  signer?: Certificate;
  /** The From address is not the envelope sender: not signed (the log's FROM_NOT_SENDER). */
  fromNotSender?: true;
  triggers: TriggerEdits;
  decisions: RecipientDecision[];
  /** Copies to make and relay. */
  variants: VariantPlan[];
  /** Recipients whose copy is not sent: encryption required, no valid certificate. */
  bounce: RecipientDecision[];
  hold: RecipientDecision[];
}

export interface OutboundRequest {
  sender: string;
  recipients: readonly string[];
  /** The message's header fields. */
  fields: readonly HeaderField[];
}

async function findCertificate(ctx: GatewayContext, policy: ResolvedPolicy, address: string): Promise<{ fact: CertificateFact; record?: CertificateRecord }> {
  try {
    const found = await findTrustedRecipientCertificate(ctx.store, address, ctx.validator(policy.settings.recipientRevocation));
    if (!found) return { fact: { status: 'missing' } };
    return { fact: { status: 'valid', fingerprint: found.record.certificate.fingerprint256, subject: found.record.certificate.subjectText }, record: found.record };
  } catch (e) {
    // A refused certificate is a fact about the recipient; anything else (the store down) is thrown: 4xx.
    if (!(isKakitomeError(e) && CERTIFICATE_REFUSALS.has(e.code))) throw e;
    return { fact: { status: 'refused', code: e.code, message: e.message } };
  }
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const g = groups.get(k);
    if (g) g.push(item);
    else groups.set(k, [item]);
  }
  return [...groups.values()];
}

function variantsOf(decisions: readonly RecipientDecision[], records: ReadonlyMap<string, CertificateRecord>, visible: ReadonlySet<string>): VariantPlan[] {
  const sent = decisions.filter((d) => d.action !== 'bounce' && d.action !== 'hold');
  const encrypted = sent.filter((d) => d.encrypt.encrypted);
  const groups = [
    ...groupBy(encrypted.filter((d) => visible.has(d.recipient.toLowerCase())), (d) => d.sign.mode),
    ...encrypted.filter((d) => !visible.has(d.recipient.toLowerCase())).map((d) => [d]),
    ...groupBy(sent.filter((d) => !d.encrypt.encrypted), (d) => d.sign.mode),
  ];
  return groups.map((group) => {
    const encryptTo = group[0]!.encrypt.encrypted ? group.map((d) => records.get(d.recipient)!) : [];
    return {
      recipients: group.map((d) => d.recipient),
      action: group[0]!.action as OutboundAction,
      sign: group[0]!.sign.mode,
      encryptTo,
      ...(encryptTo.length ? { contentEncryption: chooseContentEncryption(group.map((d, i) => ({ recipient: d.recipient, ...(encryptTo[i]!.capabilities ? { capabilities: encryptTo[i]!.capabilities } : {}) }))).name } : {}),
    };
  });
}

/** The same mailbox, case aside (the signing key is found case-insensitively) and the domain in its one form (mailDomainOf). */
function sameMailbox(a: string, b: string): boolean {
  return mailboxKey(a.toLowerCase()) === mailboxKey(b.toLowerCase());
}

export async function planOutbound(ctx: GatewayContext, request: OutboundRequest): Promise<OutboundPlan> {
  const policy = ctx.policyFor(request.sender);
  const header = { headers: [...request.fields] };
  const from = getHeaderFields(header, 'from').flatMap((f) => parseAddresses(f.value))[0];
  const visible = new Set(['to', 'cc'].flatMap((n) => getHeaderFields(header, n)).flatMap((f) => parseAddresses(f.value)).map((a) => a.toLowerCase()));
  const triggers = findEncryptionTriggers(request.fields, policy.settings);
  // Signed only as the envelope sender: the gateway cannot tell who wrote the From field, and Postfix binds MAIL FROM to
  // a login (smtpd_sender_login_maps), never the From field; without this anyone it relays for signs as anyone.
  const fromNotSender = from !== undefined && !sameMailbox(from, request.sender);
  const signer = policy.settings.sign && from !== undefined && !fromNotSender ? await ctx.signingCertificate(from) : undefined;
  const records = new Map<string, CertificateRecord>();
  const decisions: RecipientDecision[] = [];
  for (const recipient of request.recipients) {
    const wanted = decideEncryptionWanted(policy, recipient, triggers.matches);
    let fact: CertificateFact | undefined;
    if (wanted.mode !== 'never') {
      const found = await findCertificate(ctx, policy, recipient);
      fact = found.fact;
      if (found.record) records.set(recipient, found.record);
    }
    decisions.push(decideRecipient(policy, recipient, wanted, signer !== undefined, fact));
  }
  return {
    sender: request.sender,
    policy,
    ...(from !== undefined ? { from } : {}),
    ...(signer ? { signer } : {}),
    ...(fromNotSender ? { fromNotSender } : {}),
    triggers,
    decisions,
    variants: variantsOf(decisions, records, visible),
    bounce: decisions.filter((d) => d.action === 'bounce'),
    hold: decisions.filter((d) => d.action === 'hold'),
  };
}
