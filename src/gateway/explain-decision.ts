/**
 * `kakitome gateway explain` (issue 13, "Policy"): what the gateway would do with a
 * message from A to B, C..., per recipient, and which level set each value. It
 * calls what the gateway calls, with the same store: classifyRecipients,
 * planOutbound (policy, triggers, signing certificate, each recipient's validated
 * certificate, the variants and their cipher) and planInbound. Only the signing key
 * is not opened: the signing certificate is found by the same store query
 * (createGatewayContext with openKeys false). What it prints is therefore what the
 * gateway does for a message with these header fields, until the store changes.
 */
import { formatHeaderField } from '../mime/build-entity.ts';
import type { Because, RecipientDecision } from '../policy/decide-recipient.ts';
import { ENGLISH_DECISION_WORDS, type DecisionWords, type InboundFacts, type OutboundFacts } from '../policy/decision-words.ts';
import { SETTING_NAMES, SETTINGS, type SettingScope } from '../policy/policy-settings.ts';
import { describeSource, type ResolvedPolicy } from '../policy/resolve-policy.ts';
import { classifyRecipients, type Direction } from './classify-recipients.ts';
import type { GatewayContext } from './gateway-context.ts';
import { planInbound } from './plan-inbound.ts';
import { planOutbound } from './plan-outbound.ts';
import { readHeaderFields } from './rewrite-header-section.ts';
import { subjectTagFor } from './tag-subject.ts';

export interface ExplainRequest {
  from: string;
  to: readonly string[];
  subject?: string;
  /** Further header fields, "Name: value". */
  headers?: readonly string[];
}

export interface SettingExplained {
  value: unknown;
  source: string;
}

export interface RecipientExplained {
  recipient: string;
  direction: Direction;
  /** Outbound: signed, signed-encrypted, encrypted, unchanged, bounce, hold. Inbound: verify-and-label. Pass: unchanged. */
  action: string;
  /** In English (ENGLISH_DECISION_WORDS); formatExplanation renders it from the data in any language. */
  summary: string;
  /** Whose levels apply (the sender outbound, the recipient inbound). */
  policyOf?: string;
  sign?: { mode: string; certificate?: string; because: Because[] };
  encrypt?: { wanted: string; because: Because[]; certificate?: unknown; cipher?: string; encrypted: boolean };
  inbound?: Record<string, SettingExplained>;
  /** Inbound: what the gateway does, as data (the summary's words come from it). */
  inboundFacts?: InboundFacts;
}

export interface Explanation {
  from: string;
  triggers: Array<{ kind: string; trigger: string }>;
  recipients: RecipientExplained[];
  /** The resolved policy of each party whose levels were read, every setting with its source. */
  policies: Record<string, Record<string, SettingExplained>>;
}

function settingsOf(policy: ResolvedPolicy, scopes: readonly SettingScope[]): Record<string, SettingExplained> {
  const out: Record<string, SettingExplained> = {};
  for (const n of SETTING_NAMES) if (scopes.includes(SETTINGS[n].scope)) out[n] = { value: policy.settings[n], source: describeSource(policy.sources[n]) };
  return out;
}

/** A header section with these fields, parsed as the gateway parses a message's. */
function headerFields(request: ExplainRequest) {
  const given = (request.headers ?? []).map((h) => {
    const colon = h.indexOf(':');
    return [h.slice(0, colon).trim(), h.slice(colon + 1).trim()] as const;
  });
  const has = (name: string) => given.some(([n]) => n.toLowerCase() === name);
  const fields = [
    ...(has('from') ? [] : [formatHeaderField('From', request.from)]),
    ...(has('to') ? [] : [formatHeaderField('To', request.to.join(', '))]),
    ...(request.subject !== undefined ? [formatHeaderField('Subject', request.subject)] : []),
    ...given.map(([n, v]) => formatHeaderField(n, v)),
  ];
  return readHeaderFields(Buffer.concat([...fields, Buffer.from('\r\n')]));
}

function outboundRecipient(d: RecipientDecision, signer: string | undefined, owner: string, variants: Awaited<ReturnType<typeof planOutbound>>['variants']): RecipientExplained {
  const variant = variants.find((v) => v.recipients.includes(d.recipient));
  return {
    recipient: d.recipient,
    direction: 'outbound',
    action: d.action,
    summary: d.summary,
    policyOf: owner,
    sign: { mode: d.sign.mode, ...(d.sign.mode !== 'none' && signer ? { certificate: signer } : {}), because: d.sign.because },
    encrypt: {
      wanted: d.encrypt.wanted.mode,
      because: d.encrypt.wanted.because,
      ...(d.encrypt.certificate ? { certificate: d.encrypt.certificate } : {}),
      ...(variant?.contentEncryption ? { cipher: variant.contentEncryption } : {}),
      encrypted: d.encrypt.encrypted,
    },
  };
}

export async function explainDecision(ctx: GatewayContext, request: ExplainRequest): Promise<Explanation> {
  const fields = headerFields(request);
  const out: Explanation = { from: request.from, triggers: [], recipients: [], policies: {} };
  for (const [direction, recipients] of classifyRecipients(request.from, request.to, ctx.domains)) {
    if (direction === 'pass') {
      for (const r of recipients) out.recipients.push({ recipient: r, direction, action: 'unchanged', summary: ENGLISH_DECISION_WORDS.pass(r) });
      continue;
    }
    if (direction === 'outbound') {
      const plan = await planOutbound(ctx, { sender: request.from, recipients, fields });
      out.triggers = plan.triggers.matches;
      out.policies[plan.policy.owner] = settingsOf(plan.policy, ['outbound', 'process']);
      for (const d of plan.decisions) out.recipients.push(outboundRecipient(d, plan.signer?.fingerprint256, plan.policy.owner, plan.variants));
      continue;
    }
    for (const group of planInbound(ctx, recipients)) {
      const s = group.policy.settings;
      for (const r of group.recipients) {
        const policy = ctx.policyFor(r);
        out.policies[policy.owner] = settingsOf(policy, ['inbound', 'process']);
        const facts: InboundFacts = {
          revocation: s.revocation, revocationSource: describeSource(policy.sources.revocation),
          unauthenticatedEncryption: s.unauthenticatedEncryption, unauthenticatedSource: describeSource(policy.sources.unauthenticatedEncryption), noticeLanguage: s.noticeLanguage,
          subjectTags: s.subjectTags === 'off' ? 'off' : { pass: String(subjectTagFor('pass', s)), fail: String(subjectTagFor('fail', s)) }, subjectTagsSource: describeSource(policy.sources.subjectTags),
        };
        out.recipients.push({
          recipient: r,
          direction,
          action: 'verify-and-label',
          summary: ENGLISH_DECISION_WORDS.inbound(r, facts),
          policyOf: policy.owner,
          inbound: settingsOf(policy, ['inbound']),
          inboundFacts: facts,
        });
      }
    }
  }
  // In the order the recipients were given.
  const order = new Map(request.to.map((r, i) => [r.toLowerCase(), i]));
  out.recipients.sort((a, b) => (order.get(a.recipient.toLowerCase()) ?? 0) - (order.get(b.recipient.toLowerCase()) ?? 0));
  return out;
}

/** An outbound recipient's explanation as the words take it. */
function explainedFacts(r: RecipientExplained): OutboundFacts {
  return { recipient: r.recipient, action: r.action, sign: r.sign!, wanted: r.encrypt!.wanted, wantedBecause: r.encrypt!.because, certificate: r.encrypt!.certificate as OutboundFacts['certificate'], encrypted: r.encrypt!.encrypted };
}

/** The recipient's one sentence in `words` (the summary, which is English, rendered again from the data). */
function summaryIn(words: DecisionWords, r: RecipientExplained): string {
  if (r.sign && r.encrypt) return words.outbound(explainedFacts(r));
  if (r.inboundFacts) return words.inbound(r.recipient, r.inboundFacts);
  return r.direction === 'pass' ? words.pass(r.recipient) : r.summary;
}

/** The explanation as lines for a person, in English (the CLI) or the words given (the console's languages). */
export function formatExplanation(e: Explanation, words: DecisionWords = ENGLISH_DECISION_WORDS): string[] {
  const lines: string[] = [];
  if (e.triggers.length) lines.push(words.triggers(e.triggers));
  for (const r of e.recipients) {
    lines.push(words.heading(e.from, r.recipient, r.direction, r.action));
    if (r.sign && r.encrypt) {
      lines.push(words.signLine(r.sign, r.encrypt.encrypted));
      lines.push(words.encryptLine({ ...r.encrypt, certificate: r.encrypt.certificate as OutboundFacts['certificate'] }));
    }
    lines.push(`  ${summaryIn(words, r)}`);
  }
  for (const [owner, settings] of Object.entries(e.policies)) {
    lines.push(words.policyOf(owner));
    const width = Math.max(...Object.keys(settings).map((k) => k.length));
    for (const [name, s] of Object.entries(settings)) lines.push(`  ${name.padEnd(width)}  ${JSON.stringify(s.value)}  (${words.source(s.source)})`);
  }
  return lines;
}
