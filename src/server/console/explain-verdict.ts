/**
 * The library's verdict (the same view `kakitome verify --json` prints) in plain
 * words for the check page: one headline with its tone, the facts a person can
 * weigh (who signed, whether that is the sender, whether the mail was changed,
 * the certificate, revocation, the signing time, its countersignatures, the header
 * lines the signature covers) and what to do. Pure: it decides nothing the verdict did not; the
 * sentences come from the language's message file.
 */
import type { SignerView, VerdictView } from '../../smime/verdict-view.ts';
import type { Messages } from './messages/en.ts';
import type { Tone } from './render.ts';

export interface Fact {
  label: string;
  value: string;
}

export interface Explanation {
  tone: Tone;
  headline: string;
  notes: string[];
  facts: Fact[];
  advice: string;
  /** For the "technical details" box: the verdict's code and its own English summary. */
  code?: string;
  summary: string;
}

const CHANGED = new Set(['DIGEST_MISMATCH', 'BAD_SIG', 'ATTR_INVALID', 'MALFORMED', 'NO_SIGNERS', 'AMBIGUOUS_CONTENT']);

function who(s: SignerView | undefined): string {
  return s?.email[0] ?? s?.subject ?? '?';
}

function headline(t: Messages['verdict'], view: VerdictView, s: SignerView | undefined): { tone: Tone; text: string } {
  const name = who(s);
  const code = view.code ?? s?.code ?? s?.trust.code;
  switch (view.status) {
    case 'trusted': return { tone: 'good', text: t.genuine(name) };
    case 'partial': return { tone: 'bad', text: t.partial };
    case 'unsigned': return { tone: 'warn', text: t.unsigned };
    case 'invalid':
      if (code === 'CERT_REVOKED') return { tone: 'bad', text: t.revoked(name) };
      if (code === 'WEAK_ALG') return { tone: 'bad', text: t.weak(name) };
      return { tone: 'bad', text: t.changed };
    default:
      switch (code) {
        // The signer is the From address, yet the verdict says the visible header fields differ from the protected ones (RFC 9788).
        case 'IDENTITY_MISMATCH': return { tone: 'bad', text: s?.identity.status === 'match' ? t.headersDiffer(name) : t.mismatch(name, s?.identity.from ?? '?') };
        case 'CERT_REVOKED': return { tone: 'bad', text: t.revoked(name) };
        case 'CERT_EXPIRED': return { tone: 'warn', text: t.expired(name) };
        case 'REVOCATION_UNKNOWN': return { tone: 'warn', text: t.revocationUnknown(name) };
        case 'WEAK_ALG': return { tone: 'warn', text: t.weak(name) };
        case 'CERT_UNTRUSTED': return { tone: 'warn', text: t.untrusted(name) };
        default: return { tone: 'warn', text: t.otherUntrusted(name) };
      }
  }
}

function certificateFact(t: Messages['verdict'], s: SignerView, formatDate: (d: Date) => string): string {
  const code = s.trust.code ?? s.code;
  if (s.trust.status === 'trusted') return t.certTrusted(s.chain.at(-1) ?? s.issuer ?? '?');
  // A sender who is not the certificate's is judged after the chain, its revocation and its algorithms
  // passed (pki/create-signer-validator.ts): the certificate is trusted; the sender fact says what is wrong.
  if (code === 'IDENTITY_MISMATCH' && s.chain.length) return t.certTrusted(s.chain.at(-1)!);
  if (s.trust.status === 'not-checked') return t.certNotChecked;
  if (code === 'CERT_REVOKED') return t.certRevoked(s.revocation.revokedAt ? formatDate(new Date(s.revocation.revokedAt)) : '');
  if (code === 'CERT_EXPIRED') return t.certExpired;
  return t.certUntrusted;
}

function changedFact(t: Messages['verdict'], s: SignerView): string {
  if (s.status === 'invalid' && CHANGED.has(s.code ?? '')) return t.changedYes;
  if (s.status === 'valid' || s.status === 'untrusted') return t.changedNo;
  return t.changedUnknown;
}

function identityFact(t: Messages['verdict'], s: SignerView): string {
  if (s.identity.status === 'match') return t.matchYes(s.identity.from ?? who(s));
  if (s.identity.status === 'mismatch') return t.matchNo(s.identity.from ?? '?', s.identity.certificateAddresses.join(', ') || s.subject);
  return t.matchUnknown;
}

function revocationFact(t: Messages['verdict'], s: SignerView): string | undefined {
  switch (s.revocation.status) {
    case 'good': return t.revocationGood;
    case 'revoked': return t.revocationRevoked;
    case 'unknown': return t.revocationUnknownText;
    default: return undefined;
  }
}

/**
 * A countersignature (RFC 5652 11.4) under the signer it countersigns: whether it verifies over that
 * signature and, when it does, whether its certificate is trusted (path-validated against the signers'
 * anchors). Reported only: it never changes the headline.
 */
function countersignatureFacts(t: Messages['verdict'], s: SignerView): Fact[] {
  const all = s.countersignatures ?? [];
  return all.map((c, i) => {
    const by = c.subject ?? t.countersignerNotInMessage(c.identifier);
    return {
      label: all.length > 1 ? `${t.countersignature} ${i + 1}` : t.countersignature,
      value: c.status === 'valid' ? t.countersignatureValid(by, countersignerTrust(t, c)) : t.countersignatureInvalid(by, c.code ?? c.status),
    };
  });
}

function countersignerTrust(t: Messages['verdict'], c: NonNullable<SignerView['countersignatures']>[number]): string {
  if (c.trust.status === 'trusted') return t.countersignerTrusted(c.trust.anchor ?? '');
  if (c.trust.status === 'untrusted') return t.countersignerUntrusted(c.trust.code ?? 'CERT_UNTRUSTED');
  return t.countersignerNotChecked;
}

/** The header names the signature protects (RFC 9788) and those a reader sees that nothing protects. */
function headersFact(t: Messages['verdict'], view: VerdictView): string {
  const ph = view.details?.protectedHeaders as { headers?: Array<[string, string]> } | undefined;
  const covered = [...new Set((ph?.headers ?? []).map(([name]) => name))];
  const parts: string[] = [];
  if (covered.length) parts.push(t.headersCovered(covered.join(', ')));
  if (view.unsignedHeaders?.length) parts.push(t.headersNotCovered(view.unsignedHeaders.join(', ')));
  return parts.length ? parts.join(' ') : t.headersNone;
}

function adviceFor(t: Messages['verdict'], tone: Tone, view: VerdictView, s: SignerView | undefined): string {
  if (tone === 'good') return t.adviceGenuine;
  if (view.status === 'unsigned') return t.adviceUnsigned;
  if ((view.code ?? s?.code) === 'IDENTITY_MISMATCH') return t.adviceMismatch;
  if (tone === 'bad') return t.adviceChanged;
  return t.adviceUntrusted;
}

export function explainVerdict(m: Messages, view: VerdictView, formatDateTime: (d: Date) => string): Explanation {
  const t = m.verdict;
  const s = view.signers[0];
  const { tone, text } = headline(t, view, s);
  const notes: string[] = [];
  if (view.status === 'trusted' && s?.revocation.status === 'unknown') notes.push(t.genuineStaleRevocation);
  if (view.attachedMessages?.length) notes.push(t.attached(view.attachedMessages.length));
  const facts: Fact[] = [{ label: t.whoSigned, value: view.signers.length ? view.signers.map(who).join(', ') : t.nobody }];
  if (s) {
    facts.push({ label: t.matchesSender, value: identityFact(t, s) });
    facts.push({ label: t.changedLabel, value: changedFact(t, s) });
    facts.push({ label: t.certificate, value: certificateFact(t, s, formatDateTime) });
    const revocation = revocationFact(t, s);
    if (revocation) facts.push({ label: t.revocationLabel, value: revocation });
    if (s.signingTime) facts.push({ label: t.signedAt, value: formatDateTime(new Date(s.signingTime)) });
    facts.push(...countersignatureFacts(t, s));
    facts.push({ label: t.headers, value: headersFact(t, view) });
  }
  return { tone, headline: text, notes, facts, advice: adviceFor(t, tone, view, s), ...(view.code ? { code: view.code } : {}), summary: view.summary };
}
