/**
 * The gateway policy's settings (issue 13, "Policy"), declared once: each setting's
 * default, the levels it may be set at, its check (a wrong value is refused with
 * the setting's name and what it must be), how the CLI reads it from words, and
 * which way of mail it concerns. The store, the policy file, the CLI, the gateway
 * and `gateway explain` all read this table; a new setting (e.g. `dkim`) is one
 * more entry here and one more field in PolicySettings, with no migration (the
 * store keeps one row per setting set at a level: src/store/policy-directory.ts).
 *
 * Defaults keep the gateway's behaviour before levels existed: sign everything,
 * encrypt where a validated certificate is known, never open unauthenticated (CBC)
 * encryption, no triggers, no subject tags.
 */
import { KakitomeError } from '../errors.ts';
import type { RevocationMode } from '../pki/check-revocation.ts';

export type RevocationSetting = Extract<RevocationMode, 'require' | 'allow-unknown' | 'off'>;

export interface PolicySettings {
  /** Sign outbound mail with the sender's current key. */
  sign: boolean;
  /** never | if-possible (a recipient with a validated certificate gets an encrypted copy) | required (no encrypted copy, no delivery). */
  encrypt: 'never' | 'if-possible' | 'required';
  /** What `required` does for a recipient without a usable certificate: bounce (a DSN to the sender that says why) or hold (kept in the store for an administrator). */
  missingCertificate: 'bounce' | 'hold';
  /** Subject texts that make encryption required for the message (matched case-insensitively in the decoded Subject, then removed from it). */
  subjectTriggers: string[];
  /** Header fields that make encryption required: "Name: value" (value compared case-insensitively) or "Name" (any value). */
  headerTriggers: string[];
  /** Recipient domains to which encryption is required, as if a trigger were present. */
  requireEncryptionDomains: string[];
  /** Recipient domains whose copies are not signed (relays there damage signatures). */
  skipSignDomains: string[];
  /** Recipient domains whose signed (not encrypted) copies are opaque application/pkcs7-mime instead of multipart/signed. */
  opaqueSignDomains: string[];
  /** Encryption hides the Subject outside (RFC 9788 hcp_baseline); false: readable (hcp_no_confidentiality). */
  hideSubject: boolean;
  /** DKIM-sign outbound copies after S/MIME with the From domain's active DKIM keys (kakitome dkim add). */
  dkim: boolean;
  /** Check DKIM, SPF and DMARC of inbound mail (DNS lookups, bounded per message) and write them beside smime in Authentication-Results. */
  senderAuthentication: boolean;
  /** Revocation checking of inbound signers. */
  revocation: RevocationSetting;
  /** Revocation checking of outbound recipients' certificates. */
  recipientRevocation: RevocationSetting;
  /** Subject tags on inbound mail: off, or the language of the default texts. */
  subjectTags: 'off' | 'en' | 'ja';
  /** The tag for smime=pass ('' = the language's default). */
  subjectTagSigned: string;
  /** The tag for smime=fail ('' = the language's default). */
  subjectTagInvalid: string;
  /**
   * Inbound CBC content no trusted signature of the sender covers (EFAIL, UNAUTH_ENC).
   * 'deliver-encrypted': the original, still encrypted, in a message with a notice,
   * never opened. 'deliver-decrypted': opened, every part rebuilt so that nothing can
   * fetch (no URL in HTML, other parts as plain attachments), under a warning.
   * 'hold': kept in the store as received (still encrypted) for an administrator,
   * the recipient told in a short notice (noticeLanguage).
   */
  unauthenticatedEncryption: 'deliver-encrypted' | 'deliver-decrypted' | 'hold';
  /** The language of the notice the gateway itself writes to a recipient (a held message): both, en or ja. */
  noticeLanguage: 'both' | 'en' | 'ja';
  /** Process-wide: the largest message accepted, in bytes. */
  maxMessageBytes: number;
  /** Process-wide: messages larger than this are not read into memory but spooled and processed streaming. */
  streamAboveBytes: number;
  /** Process-wide: spooled messages whose copies are made at once (each holds some tens of MiB); more wait. */
  maxStreamedMessages: number;
  /** Process-wide: connections served at once. */
  maxConnections: number;
  /** Process-wide: milliseconds the next hop may take before the gateway answers 4xx. */
  relayTimeoutMs: number;
  /** Process-wide: transactions admitted beyond one per crypto worker, waiting for one (backpressure to the MTA beyond). */
  maxQueuedMessages: number;
  /** Process-wide: how long a transaction may wait at MAIL FROM for a place before it is answered 451 4.3.2. */
  queueWaitMs: number;
  /** Process-wide: a command line must arrive within this from its first byte (also DATA's grace before minDataRate). */
  commandTimeoutMs: number;
  /** Process-wide: the least average DATA rate in bytes/s after the grace. */
  minDataRate: number;
  /** Process-wide: a connection ends at the first pause between transactions after this. */
  sessionTimeoutMs: number;
}

export type SettingName = keyof PolicySettings;

/** Where a setting applies: outbound mail (the sender's policy), inbound mail (the recipient's), or the whole process. */
export type SettingScope = 'outbound' | 'inbound' | 'process';

interface SettingSpec {
  default: PolicySettings[SettingName];
  scope: SettingScope;
  /** Process-wide settings exist at the global level only. */
  globalOnly?: boolean;
  /** The normalised value, or undefined when the value is wrong. */
  check(value: unknown): PolicySettings[SettingName] | undefined;
  expected: string;
  /** The value from the CLI's words (`kakitome policy set NAME WORD...`). */
  fromWords(words: readonly string[]): unknown;
  help: string;
}

const MAX_LIST = 64;
const MAX_TEXT = 100;
const DOMAIN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** RFC 5322 3.6.8 field name: printable ASCII but colon. */
const FIELD_NAME = /^[!-9;-~]{1,76}$/;

const oneWord = (words: readonly string[]): unknown => (words.length === 1 ? words[0] : words);
const boolWord = (words: readonly string[]): unknown => {
  const w = words.length === 1 ? words[0]!.toLowerCase() : '';
  return w === 'true' || w === 'on' || w === 'yes' ? true : w === 'false' || w === 'off' || w === 'no' ? false : words.join(' ');
};
const intWord = (words: readonly string[]): unknown => (words.length === 1 && /^\d{1,12}$/.test(words[0]!) ? Number(words[0]) : words.join(' '));
const listWords = (words: readonly string[]): unknown => [...words];

function oneOf<T extends string>(...values: T[]) {
  return { check: (v: unknown) => (typeof v === 'string' && (values as string[]).includes(v) ? v : undefined), expected: values.map((x) => `"${x}"`).join(', ').replace(/, ([^,]*)$/, ' or $1'), fromWords: oneWord };
}

const bool = { check: (v: unknown) => (typeof v === 'boolean' ? v : undefined), expected: 'true or false', fromWords: boolWord };

function integer(min: number, max: number) {
  return { check: (v: unknown) => (Number.isInteger(v) && (v as number) >= min && (v as number) <= max ? (v as number) : undefined), expected: `an integer from ${min} to ${max}`, fromWords: intWord };
}

/** Printable text without line breaks or control characters, trimmed, 1 to MAX_TEXT characters. */
function cleanText(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  if (!t || t.length > MAX_TEXT || /[\x00-\x1f\x7f]/.test(t)) return undefined;
  return t;
}

function list(item: (v: unknown) => string | undefined, what: string) {
  return {
    check: (v: unknown) => {
      if (!Array.isArray(v) || v.length > MAX_LIST) return undefined;
      const out: string[] = [];
      for (const x of v) {
        const c = item(x);
        if (c === undefined) return undefined;
        if (!out.includes(c)) out.push(c);
      }
      return out;
    },
    expected: `a list of at most ${MAX_LIST} ${what}`,
    fromWords: listWords,
  };
}

export function normalizePolicyDomain(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const d = v.trim().toLowerCase().replace(/\.$/, '');
  return DOMAIN.test(d) ? d : undefined;
}

function headerTrigger(v: unknown): string | undefined {
  const t = cleanText(v);
  if (t === undefined) return undefined;
  const colon = t.indexOf(':');
  const name = (colon < 0 ? t : t.slice(0, colon)).trim();
  if (!FIELD_NAME.test(name)) return undefined;
  return colon < 0 ? name : `${name}: ${t.slice(colon + 1).trim()}`;
}

const revocation = oneOf<RevocationSetting>('require', 'allow-unknown', 'off');

export const SETTINGS: Readonly<Record<SettingName, SettingSpec>> = {
  sign: { default: true, scope: 'outbound', ...bool, help: 'sign outbound mail with the sender\'s current key' },
  encrypt: { default: 'if-possible', scope: 'outbound', ...oneOf('never', 'if-possible', 'required'), help: 'encrypt outbound mail: never, if-possible (to every recipient with a valid certificate), required (no valid certificate: missingCertificate decides)' },
  missingCertificate: { default: 'bounce', scope: 'outbound', ...oneOf('bounce', 'hold'), help: 'when encryption is required and a recipient has no valid certificate: bounce (a DSN to the sender saying why) or hold (kept in the store for an administrator)' },
  subjectTriggers: { default: [], scope: 'outbound', ...list(cleanText, `texts of 1 to ${MAX_TEXT} printable characters`), help: 'Subject texts that make encryption required (removed from the Subject)' },
  headerTriggers: { default: [], scope: 'outbound', ...list(headerTrigger, '"Name: value" or "Name" header fields'), help: 'header fields that make encryption required ("X-Kakitome-Encrypt: yes"; X-Kakitome- fields are removed)' },
  requireEncryptionDomains: { default: [], scope: 'outbound', ...list(normalizePolicyDomain, 'mail domains'), help: 'recipient domains to which encryption is required' },
  skipSignDomains: { default: [], scope: 'outbound', ...list(normalizePolicyDomain, 'mail domains'), help: 'recipient domains whose copies are not signed' },
  opaqueSignDomains: { default: [], scope: 'outbound', ...list(normalizePolicyDomain, 'mail domains'), help: 'recipient domains whose signed copies are opaque (application/pkcs7-mime)' },
  hideSubject: { default: false, scope: 'outbound', ...bool, help: 'encryption hides the Subject outside (RFC 9788)' },
  dkim: { default: false, scope: 'outbound', ...bool, help: 'DKIM-sign outbound mail after S/MIME with the From domain\'s active DKIM keys (added to the store; no key: sent without DKIM, counted)' },
  senderAuthentication: { default: false, scope: 'inbound', ...bool, help: 'check DKIM, SPF and DMARC of inbound mail and write the results beside smime in Authentication-Results (needs DNS: the resolver the gateway is started with)' },
  revocation: { default: 'require', scope: 'inbound', ...revocation, help: 'revocation checking of inbound signers' },
  recipientRevocation: { default: 'allow-unknown', scope: 'outbound', ...revocation, help: 'revocation checking of recipients\' certificates' },
  subjectTags: { default: 'off', scope: 'inbound', ...oneOf('off', 'en', 'ja'), help: 'tag the Subject of inbound mail by its S/MIME result: off, en ([signed OK], [signature INVALID]) or ja ([署名確認済], [署名不正])' },
  subjectTagSigned: { default: '', scope: 'inbound', check: (v) => (v === '' ? '' : cleanText(v)), expected: `"" (the language's) or a text of 1 to ${MAX_TEXT} printable characters`, fromWords: (w) => w.join(' '), help: 'the tag for a valid trusted signature (default: the language\'s)' },
  subjectTagInvalid: { default: '', scope: 'inbound', check: (v) => (v === '' ? '' : cleanText(v)), expected: `"" (the language's) or a text of 1 to ${MAX_TEXT} printable characters`, fromWords: (w) => w.join(' '), help: 'the tag for a failing signature (default: the language\'s)' },
  unauthenticatedEncryption: { default: 'deliver-encrypted', scope: 'inbound', ...oneOf('deliver-encrypted', 'deliver-decrypted', 'hold'), help: 'inbound CBC encryption without a trusted signature inside: deliver-encrypted (unopened, with a notice), deliver-decrypted (opened, every part rebuilt so nothing can fetch, under a warning) or hold (kept still encrypted for an administrator to release or bounce, the recipient told)' },
  noticeLanguage: { default: 'both', scope: 'inbound', ...oneOf('both', 'en', 'ja'), help: 'the language of the notice a recipient gets when a message to them is held: both (English and Japanese), en or ja' },
  // Up to the streaming APIs' own bound (limits.maxStreamMessageBytes): messages over streamAboveBytes stream.
  maxMessageBytes: { default: 1024 ** 3, scope: 'process', globalOnly: true, ...integer(1024, 16 * 1024 ** 3), help: 'the largest message accepted (552 above); messages over streamAboveBytes are spooled and streamed, not held in memory' },
  streamAboveBytes: { default: 4 * 1024 * 1024, scope: 'process', globalOnly: true, ...integer(1024, 512 * 1024 * 1024), help: 'messages larger than this are spooled to a file and processed streaming, not read into memory' },
  maxStreamedMessages: { default: 2, scope: 'process', globalOnly: true, ...integer(1, 64), help: 'spooled messages processed at once; more wait (up to queueWaitMs, then 451)' },
  maxConnections: { default: 20, scope: 'process', globalOnly: true, ...integer(1, 10_000), help: 'connections served at once' },
  relayTimeoutMs: { default: 120_000, scope: 'process', globalOnly: true, ...integer(1000, 3_600_000), help: 'milliseconds the next hop may take before the gateway answers 4xx' },
  maxQueuedMessages: { default: 8, scope: 'process', globalOnly: true, ...integer(0, 10_000), help: 'transactions admitted beyond one per crypto worker thread of the gateway; more wait at MAIL FROM' },
  // Under Postfix's smtp_mail_timeout (300 s), so that Postfix gets our 451 rather than timing out.
  queueWaitMs: { default: 60_000, scope: 'process', globalOnly: true, ...integer(0, 240_000), help: 'milliseconds a transaction may wait at MAIL FROM for a place before the gateway answers 451 4.3.2 (Postfix retries later)' },
  // Slow clients (src/smtp/client-deadlines.ts). Postfix's own values: before-queue, Postfix passes an outside
  // client's pace on, and its smtpd_timeout (300 s) and smtpd_min_data_rate (500 bytes/s) are what it lets clients take.
  commandTimeoutMs: { default: 300_000, scope: 'process', globalOnly: true, ...integer(1000, 600_000), help: 'milliseconds a command line may take from its first byte to its end (also the grace before minDataRate counts); slower: 421 4.4.2' },
  minDataRate: { default: 500, scope: 'process', globalOnly: true, ...integer(1, 1024 ** 3), help: 'the least average rate of a message\'s DATA in bytes a second, after commandTimeoutMs; slower: 421 4.4.2, the message not taken' },
  sessionTimeoutMs: { default: 1_800_000, scope: 'process', globalOnly: true, ...integer(1000, 86_400_000), help: 'milliseconds a connection may last; it then ends (421 4.4.2) at the first pause between transactions' },
};

export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

export const DEFAULT_SETTINGS: Readonly<PolicySettings> = Object.freeze(Object.fromEntries(SETTING_NAMES.map((n) => [n, SETTINGS[n].default])) as unknown as PolicySettings);

export type PartialSettings = Partial<PolicySettings>;

export function isSettingName(name: string): name is SettingName {
  return Object.hasOwn(SETTINGS, name);
}

/** The setting's name, or INVALID_ARGUMENT naming the unknown one and listing the known. */
export function requireSettingName(name: string, where: string): SettingName {
  if (!isSettingName(name)) throw new KakitomeError('INVALID_ARGUMENT', `${where}: unknown setting "${name}" (known: ${SETTING_NAMES.join(', ')}).`);
  return name;
}

/**
 * One setting's value checked and normalised for a level ('global' or not): a
 * process-wide setting below the global level, or a wrong value, is refused with
 * the setting's name and what it must be.
 */
export function checkSetting(name: string, value: unknown, where: string, global: boolean): PolicySettings[SettingName] {
  const spec = SETTINGS[requireSettingName(name, where)];
  if (spec.globalOnly && !global) throw new KakitomeError('INVALID_ARGUMENT', `${where}: "${name}" is process-wide and is set at the global level only.`);
  const checked = spec.check(value);
  if (checked === undefined) throw new KakitomeError('INVALID_ARGUMENT', `${where}: "${name}" must be ${spec.expected}; it is ${JSON.stringify(value)?.slice(0, 200)}.`);
  return checked;
}

/** An object of settings (the settings of one level), each checked. */
export function checkSettings(doc: unknown, where: string, global: boolean): PartialSettings {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new KakitomeError('INVALID_ARGUMENT', `${where}: settings must be a JSON object, e.g. {"sign": true, "encrypt": "if-possible"}.`);
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(doc)) out[name] = checkSetting(name, value, where, global);
  return out as PartialSettings;
}

/** The value `kakitome policy set NAME WORD...` means, checked. */
export function settingFromWords(name: string, words: readonly string[], where: string, global: boolean): PolicySettings[SettingName] {
  const spec = SETTINGS[requireSettingName(name, where)];
  return checkSetting(name, spec.fromWords(words), where, global);
}
