/**
 * The words of a gateway decision: what `kakitome gateway explain`, the console's
 * explain view and the gateway's delivery notices say about each recipient,
 * rendered from the decision's data (decide-recipient.ts, explain-decision.ts),
 * never stored as text in it. ENGLISH_DECISION_WORDS is the library's (the CLI's
 * output and the decision's summary); the console brings a Japanese set of the
 * same shape (messages/ja.ts), so each language is one object and a missing
 * sentence fails tsc.
 */
import type { Because, CertificateFact } from './decide-recipient.ts';

/** What the gateway does with outbound mail for one recipient, as data (a RecipientDecision, or its explanation). */
export interface OutboundFacts {
  recipient: string;
  action: string;
  sign: { mode: string; because: readonly Because[] };
  wanted: string;
  wantedBecause: readonly Because[];
  certificate?: CertificateFact | undefined;
  encrypted: boolean;
}

/** What the gateway does with inbound mail for one recipient, as data. */
export interface InboundFacts {
  revocation: string;
  revocationSource: string;
  unauthenticatedEncryption: string;
  unauthenticatedSource: string;
  noticeLanguage: string;
  /** Off, or the subject tags on smime=pass and smime=fail. */
  subjectTags: 'off' | { pass: string; fail: string };
  subjectTagsSource: string;
}

export interface DecisionWords {
  /** A level or what was found ("default", "global", "domain x", "address y", ...). */
  source(source: string): string;
  /** The recipient's certificate in a sentence. */
  certificate(c: CertificateFact | undefined): string;
  /** The recipient's certificate in a line's short form (undefined: not looked up). */
  certificateShort(c: CertificateFact | undefined): string;
  /** One sentence for an outbound recipient: what happens and why. */
  outbound(d: OutboundFacts): string;
  /** Neither party in the gateway's domains. */
  pass(recipient: string): string;
  inbound(recipient: string, f: InboundFacts): string;
  triggers(found: ReadonlyArray<{ kind: string; trigger: string }>): string;
  /** The first line of a recipient: from, to, direction, action. */
  heading(from: string, recipient: string, direction: string, action: string): string;
  signLine(sign: { mode: string; certificate?: string; because: readonly Because[] }, encrypted: boolean): string;
  encryptLine(encrypt: { wanted: string; because: readonly Because[]; certificate?: CertificateFact | undefined; cipher?: string; encrypted: boolean }): string;
  policyOf(owner: string): string;
}

const why = (w: DecisionWords, b: readonly Because[]) => b.map((x) => `${x.setting}=${x.value}, ${w.source(x.source)}`).join('; ');

export const ENGLISH_DECISION_WORDS: DecisionWords = {
  source: (s) => s,
  certificate(c) {
    if (!c || c.status === 'missing') return 'no certificate is known for the recipient';
    if (c.status === 'refused') return `the recipient's certificate may not be used (${c.code}): ${c.message}`;
    return `certificate ${c.fingerprint.slice(0, 16)} ("${c.subject}")`;
  },
  certificateShort(c) {
    if (!c) return 'not looked up';
    return c.status === 'valid' ? `certificate ${c.fingerprint.slice(0, 16)} "${c.subject}"` : c.status === 'missing' ? 'no certificate known' : `certificate refused (${c.code})`;
  },
  outbound(d) {
    const w = ENGLISH_DECISION_WORDS;
    const certificate = d.certificate;
    if (d.action === 'bounce' || d.action === 'hold') {
      const required = d.wantedBecause.map((b) => `${b.setting === 'trigger' ? `trigger ${b.value}` : `${b.setting}=${b.value}`} (${b.source})`).join(', ');
      return `Encryption to ${d.recipient} is required by ${required} and ${w.certificate(certificate)}: the message is ${d.action === 'bounce' ? 'not sent to them; the sender gets a delivery status notification saying why' : 'held in the store for an administrator'} (missingCertificate=${d.action}, ${d.sign.because[0]!.source}).`;
    }
    const usable = d.encrypted;
    const sign = d.sign.mode === 'none' ? `not signed (${d.sign.because.map((b) => `${b.setting}=${b.value}, ${b.source}`).join('; ')})` : d.sign.mode === 'opaque' ? 'signed (opaque application/pkcs7-mime)' : usable ? 'signed inside the encryption' : 'signed (multipart/signed)';
    const encrypt = usable ? `encrypted to ${w.certificate(certificate)}` : d.wanted === 'never' ? `not encrypted (encrypt=never, ${d.wantedBecause[0]!.source})` : `not encrypted: ${w.certificate(certificate)}`;
    return `${d.recipient}: ${sign}, ${encrypt}.`;
  },
  pass: (r) => `${r}: neither the sender nor the recipient is in the gateway's domains: passed on unchanged.`,
  inbound(r, f) {
    const tags = f.subjectTags === 'off' ? 'no subject tags' : `subject tag "${f.subjectTags.pass}" on smime=pass, "${f.subjectTags.fail}" on smime=fail`;
    return `${r}: inbound: decrypted with any key the store ever held for it, verified with revocation=${f.revocation} (${f.revocationSource}), labelled with Authentication-Results; unauthenticated (CBC) encryption: ${f.unauthenticatedEncryption}${f.unauthenticatedEncryption === 'hold' ? ` (held for an administrator, still encrypted; the recipient gets a notice in ${f.noticeLanguage})` : ''} (${f.unauthenticatedSource}); ${tags} (${f.subjectTagsSource}).`;
  },
  triggers: (found) => `Triggers found: ${found.map((t) => `${t.kind} ${JSON.stringify(t.trigger)}`).join(', ')} (encryption required; removed before the message leaves when they are in the Subject or an X-Kakitome- field).`,
  heading: (from, r, direction, action) => `${from} -> ${r}: ${direction}, ${action}`,
  signLine(sign, encrypted) {
    return `  sign:    ${sign.mode === 'none' ? 'no' : sign.mode === 'opaque' ? 'yes, opaque (application/pkcs7-mime)' : encrypted ? 'yes, inside the encryption' : 'yes, multipart/signed'}${sign.certificate ? `, certificate ${sign.certificate.slice(0, 16)}` : ''}  [${why(ENGLISH_DECISION_WORDS, sign.because)}]`;
  },
  encryptLine(e) {
    const cert = ENGLISH_DECISION_WORDS.certificateShort(e.certificate);
    return `  encrypt: ${e.encrypted ? `yes, ${cert}${e.cipher ? `, ${e.cipher}` : ''}` : `no (${e.wanted}; ${cert})`}  [${why(ENGLISH_DECISION_WORDS, e.because)}]`;
  },
  policyOf: (owner) => `Policy of ${owner || '(global)'}:`,
};
