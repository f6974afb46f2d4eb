/**
 * The verdict as every front end shows it: `kakitome verify --json` writes this
 * object (and the CLI's human report on stderr is rendered from it), the signing
 * service answers it (POST /api/v1/verify, /decrypt) and the console words it.
 * Plain data (strings, numbers, arrays), so it crosses worker threads and prints
 * as stable JSON.
 */
import type { AttachedMessageVerdict, CountersignatureVerdict, MessageVerdict, SignerVerdict } from './verdict.ts';
import type { TrustReport } from '../pki/types.ts';
import { certificateNames } from '../x509/certificate-names.ts';
export interface SignerView {
  /** valid | invalid | untrusted (signature good, trust failed). */
  status: string;
  code?: string;
  message: string;
  /** Addresses in the signer's certificate (subjectAltName rfc822Name, else emailAddress). */
  email: string[];
  /** The signer certificate's subject, RFC 4514 string. */
  subject: string;
  issuer?: string;
  serial?: string;
  /** Certification path, leaf first, anchor last (subjects). Empty when no path was found. */
  chain: string[];
  /** legacy: SHA-1 or short RSA keys the policy accepted (--allow-legacy); the trust rests on them. */
  trust: { status: string; code?: string; message: string; clock?: { source: string; time: string }; legacy?: string[]; timestamp?: TimestampView };
  revocation: RevocationView & { certificates: Array<RevocationView & { role: string; subject: string; serial: string; cached?: boolean }> };
  /** `field`: on a match, 'From' or 'Sender' (a Sender-only match is never trusted). */
  identity: { status: string; from?: string; field?: string; certificateAddresses: string[]; message: string };
  /** ISO 8601, from the signingTime attribute; absent when the signer did not say. */
  signingTime?: string;
  digestAlgorithm?: string;
  signatureAlgorithm?: string;
  warnings: string[];
  /** Countersignatures on this signature (RFC 5652 11.4), first level only; absent when none. Never part of `status` or `trust`. */
  countersignatures?: CountersignatureView[];
}

/**
 * One countersignature: checked cryptographically over the countersigned signature
 * value; when it verifies, its certificate is path-validated against the signers' trust
 * anchors (`trust`: trusted or untrusted with a code; 'not-checked' when it does not
 * verify or no anchors were given). Never part of the signer's or the message's status.
 */
export interface CountersignatureView {
  /** valid | invalid (cryptographic check only). */
  status: string;
  code?: string;
  message: string;
  /** The SignerInfo's signer identifier: 'serial 0A1B...' or 'key id ...'. */
  identifier: string;
  /** Present when the countersigner's certificate was found among the message's certificates. */
  subject?: string;
  issuer?: string;
  serial?: string;
  signingTime?: string;
  digestAlgorithm: string;
  signatureAlgorithm: string;
  /** `anchor`: the trust anchor's subject, when the path was valid. */
  trust: { status: 'trusted' | 'untrusted' | 'not-checked'; code?: string; message: string; anchor?: string };
  warnings: string[];
}

/** The signer's RFC 3161 signature timestamp: verified, refused (code, why) or not-checked (validity clock now); `used` when it was the clock. */
export interface TimestampView {
  status: string;
  code?: string;
  time?: string;
  tsa?: string;
  used: boolean;
  message: string;
}

/** One revocation answer: the path's as a whole, or one certificate's. */
export interface RevocationView {
  status: string;
  source?: string;
  time?: string;
  revokedAt?: string;
  reason?: string;
  message: string;
}

export interface VerdictView {
  /** The overall status, e.g. valid, invalid, untrusted, unsigned, partially-signed. */
  status: string;
  /** The stable code of the first failure; absent when valid. */
  code?: string;
  /** One sentence for people. */
  summary: string;
  signers: SignerView[];
  /** Header fields a reader sees that no signature covers (no RFC 9788 header protection), e.g. ["From", "To", "Subject", "Date"]; a warning says so too. */
  unsignedHeaders?: string[];
  warnings: string[];
  /**
   * Attached (forwarded) messages, each judged on its own and never part of this
   * verdict's status, code or exit status: present when the reader looked and found any.
   */
  attachedMessages?: AttachedMessageView[];
  /** What else the library reported (protected headers, encryption layer...), as plain JSON. */
  details?: Record<string, unknown>;
}

/** One attached message: where it is, and its own verdict (this same shape) or why it was not opened. */
export interface AttachedMessageView {
  /** IMAP part number in the message (with its S/MIME layers removed): "2", "1.3". */
  part: string;
  filename?: string;
  summary: string;
  verdict?: VerdictView;
  error?: { code: string; message: string };
}

const iso = (d: Date | undefined): string | undefined => (d === undefined || Number.isNaN(d.getTime()) ? undefined : d.toISOString());

function viewTrust(t: TrustReport | undefined): SignerView['trust'] {
  if (t === undefined) return { status: 'not-checked', message: 'The certificate chain was not checked.' };
  const view: SignerView['trust'] = { status: t.status, message: t.message, clock: { source: t.clock.source, time: iso(t.clock.time) ?? '' } };
  if (t.code !== undefined) view.code = t.code;
  if (t.legacy !== undefined) view.legacy = [...t.legacy];
  if (t.timestamp !== undefined) {
    const { status, code, time, tsa, used, message } = t.timestamp;
    view.timestamp = { status, ...(code ? { code } : {}), ...(time ? { time: iso(time)! } : {}), ...(tsa ? { tsa } : {}), used, message };
  }
  return view;
}

function viewRevocation(t: TrustReport | undefined): SignerView['revocation'] {
  if (t === undefined) return { status: 'not-checked', message: 'Revocation was not checked.', certificates: [] };
  const r = t.revocation;
  return {
    ...viewAnswer(r),
    certificates: r.certificates.map((c) => ({ role: c.role, subject: c.subject, serial: c.serial, ...viewAnswer(c), ...(c.cached ? { cached: true } : {}) })),
  };
}

function viewAnswer(r: { status: string; source?: string | undefined; time?: Date | undefined; revokedAt?: Date | undefined; reason?: string | undefined; message: string }): RevocationView {
  const view: RevocationView = { status: r.status, message: r.message };
  if (r.source !== undefined) view.source = r.source;
  const time = iso(r.time);
  if (time !== undefined) view.time = time;
  const revokedAt = iso(r.revokedAt);
  if (revokedAt !== undefined) view.revokedAt = revokedAt;
  if (r.reason !== undefined) view.reason = r.reason;
  return view;
}

function viewSigner(s: SignerVerdict): SignerView {
  const cert = s.certificate;
  // certificateNames: a subjectAltName too damaged to read shows no address (the verdict says why), never a thrown view.
  const addresses = s.identity.certificateAddresses.length > 0 ? s.identity.certificateAddresses : (cert ? certificateNames(cert).emailAddresses : undefined) ?? (s.email ? [s.email] : []);
  const view: SignerView = {
    status: s.status === 'valid' && s.trust !== undefined && s.trust.status !== 'trusted' ? 'untrusted' : s.status,
    message: s.message,
    email: [...addresses],
    subject: s.subject,
    chain: s.trust?.path.map((c) => c.subjectText) ?? [],
    trust: viewTrust(s.trust),
    revocation: viewRevocation(s.trust),
    identity: { status: s.identity.status, certificateAddresses: [...s.identity.certificateAddresses], message: s.identity.message },
    digestAlgorithm: s.algorithms.digest,
    signatureAlgorithm: s.algorithms.signature,
    warnings: [...s.warnings],
  };
  if (s.code !== undefined) view.code = s.code;
  if (cert !== undefined) {
    view.issuer = cert.issuerText;
    view.serial = cert.serialHex;
  }
  if (s.identity.from !== undefined) view.identity.from = s.identity.from;
  if (s.identity.field !== undefined) view.identity.field = s.identity.field;
  const signingTime = iso(s.signingTime);
  if (signingTime !== undefined) view.signingTime = signingTime;
  if (s.scope === 'part') view.warnings.unshift('This signature covers only a part inside unsigned content.');
  if (s.countersignatures !== undefined) view.countersignatures = s.countersignatures.map(viewCountersignature);
  return view;
}

const lowerFirstLetter = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

/** What the view says of a countersigner's certificate: a countersignature never changes the verdict, whatever its trust. */
function countersignerTrust(c: CountersignatureVerdict): CountersignatureView['trust'] {
  const never = 'A countersignature never changes the signer\'s or the message\'s result.';
  if (c.trustFailure?.code === 'LIMIT') return { status: 'not-checked', code: 'LIMIT', message: `The countersigner's certificate was not checked: ${lowerFirstLetter(c.trustFailure.message)} ${never}` };
  if (c.trustFailure) return { status: 'untrusted', code: c.trustFailure.code, message: `The countersigner's certificate could not be judged: ${c.trustFailure.message} ${never}` };
  if (!c.trust) {
    const why = c.status === 'valid' ? 'no trust anchors were given to judge it' : 'the countersignature does not verify, so nothing it claims is believed';
    return { status: 'not-checked', message: `The countersigner's certificate was not checked: ${why}. ${never}` };
  }
  const t: CountersignatureView['trust'] = { status: c.trust.status, message: `${c.trust.message} (Judged against the trust anchors the signers are judged against, without comparing the sender. ${never})` };
  if (c.trust.code !== undefined) t.code = c.trust.code;
  if (c.trust.status === 'trusted' && c.trust.anchor) t.anchor = c.trust.anchor.subjectText;
  return t;
}

function viewCountersignature(c: CountersignatureVerdict): CountersignatureView {
  const view: CountersignatureView = {
    status: c.status,
    message: c.message,
    identifier: c.identifier,
    digestAlgorithm: c.algorithms.digest,
    signatureAlgorithm: c.algorithms.signature,
    trust: countersignerTrust(c),
    warnings: [...c.warnings],
  };
  if (c.code !== undefined) view.code = c.code;
  if (c.subject !== undefined) view.subject = c.subject;
  if (c.certificate !== undefined) {
    view.issuer = c.certificate.issuerText;
    view.serial = c.certificate.serialHex;
  }
  const signingTime = iso(c.signingTime);
  if (signingTime !== undefined) view.signingTime = signingTime;
  return view;
}

/** The printable view of a library verdict. */
export function viewVerdict(v: MessageVerdict): VerdictView {
  const view: VerdictView = {
    status: v.status,
    summary: v.summary,
    signers: v.signers.map(viewSigner),
    warnings: [...v.warnings],
    details: {
      layers: v.layers.map((l) => ({ ...l, warnings: [...l.warnings] })),
      ...(v.encryption ? { encryption: { ...v.encryption } } : {}),
      ...(v.protectedHeaders ? { protectedHeaders: { mode: v.protectedHeaders.mode, headers: v.protectedHeaders.headers.map(([n, val]) => [n, val]), mismatches: [...v.protectedHeaders.mismatches] } } : {}),
    },
  };
  if (v.code !== undefined) view.code = v.code;
  if (v.unsignedHeaders !== undefined) view.unsignedHeaders = [...v.unsignedHeaders];
  if (v.attachedMessages !== undefined) view.attachedMessages = v.attachedMessages.map(viewAttached);
  return view;
}

function viewAttached(a: AttachedMessageVerdict): AttachedMessageView {
  return {
    part: a.part,
    ...(a.filename !== undefined ? { filename: a.filename } : {}),
    summary: a.summary,
    ...(a.verdict ? { verdict: viewVerdict(a.verdict) } : {}),
    ...(a.error ? { error: { ...a.error } } : {}),
  };
}
