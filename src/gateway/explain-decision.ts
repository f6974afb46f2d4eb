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
  summary: string;
  /** Whose levels apply (the sender outbound, the recipient inbound). */
  policyOf?: string;
  sign?: { mode: string; certificate?: string; because: Because[] };
  encrypt?: { wanted: string; because: Because[]; certificate?: unknown; cipher?: string; encrypted: boolean };
  inbound?: Record<string, SettingExplained>;
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
      for (const r of recipients) out.recipients.push({ recipient: r, direction, action: 'unchanged', summary: `${r}: neither the sender nor the recipient is in the gateway's domains: passed on unchanged.` });
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
        const tags = s.subjectTags === 'off' ? 'no subject tags' : `subject tag "${subjectTagFor('pass', s)}" on smime=pass, "${subjectTagFor('fail', s)}" on smime=fail`;
        out.recipients.push({
          recipient: r,
          direction,
          action: 'verify-and-label',
          summary: `${r}: inbound: decrypted with any key the store ever held for it, verified with revocation=${s.revocation} (${describeSource(policy.sources.revocation)}), labelled with Authentication-Results; unauthenticated (CBC) encryption: ${s.unauthenticatedEncryption}${s.unauthenticatedEncryption === 'hold' ? ` (held for an administrator, still encrypted; the recipient gets a notice in ${s.noticeLanguage})` : ''} (${describeSource(policy.sources.unauthenticatedEncryption)}); ${tags} (${describeSource(policy.sources.subjectTags)}).`,
          policyOf: policy.owner,
          inbound: settingsOf(policy, ['inbound']),
        });
      }
    }
  }
  // In the order the recipients were given.
  const order = new Map(request.to.map((r, i) => [r.toLowerCase(), i]));
  out.recipients.sort((a, b) => (order.get(a.recipient.toLowerCase()) ?? 0) - (order.get(b.recipient.toLowerCase()) ?? 0));
  return out;
}

const why = (b: readonly Because[]) => b.map((x) => `${x.setting}=${x.value}, ${x.source}`).join('; ');

/** The explanation as lines for a person. */
export function formatExplanation(e: Explanation): string[] {
  const lines: string[] = [];
  if (e.triggers.length) lines.push(`Triggers found: ${e.triggers.map((t) => `${t.kind} ${JSON.stringify(t.trigger)}`).join(', ')} (encryption required; removed before the message leaves when they are in the Subject or an X-Kakitome- field).`);
  for (const r of e.recipients) {
    lines.push(`${e.from} -> ${r.recipient}: ${r.direction}, ${r.action}`);
    if (r.sign && r.encrypt) {
      lines.push(`  sign:    ${r.sign.mode === 'none' ? 'no' : r.sign.mode === 'opaque' ? 'yes, opaque (application/pkcs7-mime)' : r.encrypt.encrypted ? 'yes, inside the encryption' : 'yes, multipart/signed'}${r.sign.certificate ? `, certificate ${r.sign.certificate.slice(0, 16)}` : ''}  [${why(r.sign.because)}]`);
      const cert = r.encrypt.certificate as { status: string; fingerprint?: string; subject?: string; code?: string } | undefined;
      const certText = !cert ? 'not looked up' : cert.status === 'valid' ? `certificate ${cert.fingerprint!.slice(0, 16)} "${cert.subject}"` : cert.status === 'missing' ? 'no certificate known' : `certificate refused (${cert.code})`;
      lines.push(`  encrypt: ${r.encrypt.encrypted ? `yes, ${certText}${r.encrypt.cipher ? `, ${r.encrypt.cipher}` : ''}` : `no (${r.encrypt.wanted}; ${certText})`}  [${why(r.encrypt.because)}]`);
    }
    lines.push(`  ${r.summary}`);
  }
  for (const [owner, settings] of Object.entries(e.policies)) {
    lines.push(`Policy of ${owner || '(global)'}:`);
    const width = Math.max(...Object.keys(settings).map((k) => k.length));
    for (const [name, s] of Object.entries(settings)) lines.push(`  ${name.padEnd(width)}  ${JSON.stringify(s.value)}  (${s.source})`);
  }
  return lines;
}
