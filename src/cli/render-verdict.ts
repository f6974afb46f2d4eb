/**
 * The short human report printed on stderr: one summary line first (what a script
 * or a hurried reader needs), then one block per signer and the warnings. Nothing
 * here can print key material: a VerdictView holds none.
 */
import { attachedMessageLabel } from '../smime/open-attached-messages.ts';
import type { AttachedMessageView, SignerView, VerdictView } from '../smime/verdict-view.ts';

function headline(v: VerdictView, ok: boolean, command: string): string {
  const code = v.code ? ` (${v.code})` : '';
  const tag = ok ? `OK${code}` : `FAILED${code}`;
  // decrypt succeeds when it decrypts: say so before what the verdict says about signatures.
  const what = command === 'decrypt' && !v.summary.toLowerCase().includes('decrypted') ? `Decrypted. ${v.summary}` : v.summary;
  return `${tag}: ${what}`;
}

function signerLines(s: SignerView, n: number): string[] {
  const who = s.email.length > 0 ? `${s.email.join(', ')} (${s.subject})` : s.subject;
  const lines = [`signer ${n}: ${who}`];
  // The signer's message ends with the trust sentence, which has its own line below.
  const signature = s.message.endsWith(` ${s.trust.message}`) ? s.message.slice(0, -s.trust.message.length - 1) : s.message;
  lines.push(`  signature: ${s.status}${s.code ? ` (${s.code})` : ''}: ${signature}`);
  lines.push(`  trust:     ${s.trust.status}${s.trust.code ? ` (${s.trust.code})` : ''}: ${s.trust.message}`);
  if (s.chain.length > 0) lines.push(`  chain:     ${s.chain.join(' <- ')}`);
  lines.push(`  revocation: ${s.revocation.status}${s.revocation.source ? ` via ${s.revocation.source}` : ''}: ${s.revocation.message}`);
  // Each certificate below the anchor, when there is more than the signer's to tell.
  if (s.revocation.certificates.length > 1) {
    for (const c of s.revocation.certificates) lines.push(`    ${c.role === 'signer' ? 'signer' : 'CA'} ${c.subject}: ${c.status}${c.source ? ` via ${c.source}${c.cached ? ' (cached)' : ''}` : ''}`);
  }
  lines.push(`  identity:  ${s.identity.status}: ${s.identity.message}`);
  lines.push(`  signed at: ${s.signingTime ?? 'not stated by the signer'}`);
  const ts = s.trust.timestamp;
  if (ts) lines.push(`  timestamp: ${ts.status}${ts.code ? ` (${ts.code})` : ''}${ts.used ? ', used as the validity clock' : ''}: ${ts.message}`);
  // The JSON keeps every warning; a person needs to read each sentence once.
  for (const w of s.warnings) if (w !== s.revocation.message && w !== s.trust.message && w !== s.identity.message) lines.push(`  warning:   ${w}`);
  (s.countersignatures ?? []).forEach((c, i) => {
    lines.push(`  countersignature ${i + 1}: ${c.subject ?? `${c.identifier} (certificate not in the message)`}`);
    lines.push(`    signature: ${c.status}${c.code ? ` (${c.code})` : ''}: ${c.message}`);
    lines.push(`    trust:     ${c.trust.status}: ${c.trust.message}`);
    for (const w of c.warnings) lines.push(`    warning:   ${w}`);
  });
  return lines;
}

/** An attached (forwarded) message's own report, indented under the message holding it; its nested ones deeper. */
function attachedLines(a: AttachedMessageView, indent: string): string[] {
  const v = a.verdict;
  if (!v) return [`${indent}${a.summary}`];
  const lines = [`${indent}${attachedMessageLabel(a)}: ${v.status}${v.code ? ` (${v.code})` : ''}: ${v.summary}`];
  const inner = `${indent}  `;
  v.signers.forEach((s, i) => lines.push(...signerLines(s, i + 1).map((l) => inner + l)));
  for (const w of v.warnings) lines.push(`${inner}warning: ${w}`);
  for (const x of v.attachedMessages ?? []) lines.push(...attachedLines(x, inner));
  return lines;
}

/** The report for stderr, ending with a newline. */
export function renderVerdict(v: VerdictView, ok: boolean, command = ''): string {
  const lines = [headline(v, ok, command)];
  v.signers.forEach((s, i) => lines.push(...signerLines(s, i + 1)));
  for (const w of v.warnings) lines.push(`warning: ${w}`);
  for (const a of v.attachedMessages ?? []) lines.push(...attachedLines(a, ''));
  const harvested = v.details?.harvested as Array<{ email: string; fingerprint: string; created: boolean; filing: string }> | undefined;
  for (const h of harvested ?? []) {
    lines.push(h.filing === 'pending'
      ? `key store: recorded a new key for ${h.email} (${h.fingerprint.slice(0, 16)}), not used until accepted (kakitome certs accept ${h.fingerprint} --email ${h.email})`
      : `key store: ${h.created ? 'kept' : 'refreshed'} the certificate of ${h.email} (${h.fingerprint.slice(0, 16)}) for encrypting to them`);
  }
  const roots = v.details?.unknownRoots as Array<{ fingerprint: string; subject: string; declined: boolean }> | undefined;
  for (const r of roots ?? []) {
    if (!r.declined) lines.push(`key store: recorded CA root ${r.fingerprint.slice(0, 16)} ("${r.subject}") for a decision; to trust it after checking the whole fingerprint with its owner: kakitome certs roots trust ${r.fingerprint}`);
  }
  return lines.join('\n') + '\n';
}
