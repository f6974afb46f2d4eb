/**
 * Subject tags on inbound mail (issue 13, policy `subjectTags`, off by default), for
 * mail clients that show nothing of S/MIME: smime=pass gets "[signed OK]" /
 * "[署名確認済]", smime=fail "[signature INVALID]" / "[署名不正]" (or the texts set in
 * `subjectTagSigned` / `subjectTagInvalid`); any other result gets no tag.
 *
 * A tag is worth something only if the sender cannot write it: with tags on, every
 * occurrence of any tag text (both languages' and the configured ones, compared in
 * the decoded Subject as a reader sees it: look-alike characters, invisible ones and
 * other spacing count, src/policy/remove-texts.ts) is removed before ours is added, and a
 * second Subject field is dropped (a client might show either). The tag is written
 * in the outer header only: a signature over the body still verifies.
 */
import { formatHeaderField } from '../mime/build-entity.ts';
import { decodeHeaderText } from '../mime/decode-header-text.ts';
import { removeTexts } from '../policy/remove-texts.ts';
import type { PolicySettings } from '../policy/policy-settings.ts';
import type { SmimeResult } from './authentication-results.ts';
import { readHeaderFields, rewriteHeaderSection } from './rewrite-header-section.ts';

export const SUBJECT_TAGS = {
  en: { signed: '[signed OK]', invalid: '[signature INVALID]' },
  ja: { signed: '[署名確認済]', invalid: '[署名不正]' },
} as const;

type TagSettings = Pick<PolicySettings, 'subjectTags' | 'subjectTagSigned' | 'subjectTagInvalid'>;

/** The tag for `result` under `settings`, or undefined (tags off, or a result that gets none). */
export function subjectTagFor(result: SmimeResult, settings: TagSettings): string | undefined {
  if (settings.subjectTags === 'off') return undefined;
  const texts = SUBJECT_TAGS[settings.subjectTags];
  if (result === 'pass') return settings.subjectTagSigned || texts.signed;
  if (result === 'fail') return settings.subjectTagInvalid || texts.invalid;
  return undefined;
}

/** The Subject text with every tag text removed and `tag` in front. */
export function retagSubject(subject: string, tag: string | undefined, settings: TagSettings): string {
  const known = [SUBJECT_TAGS.en.signed, SUBJECT_TAGS.en.invalid, SUBJECT_TAGS.ja.signed, SUBJECT_TAGS.ja.invalid, settings.subjectTagSigned, settings.subjectTagInvalid].filter(Boolean);
  const text = removeTexts(subject, known).text;
  return tag ? (text ? `${tag} ${text}` : tag) : text;
}

export function tagSubject(message: Buffer, result: SmimeResult, settings: TagSettings): Buffer {
  if (settings.subjectTags === 'off') return message;
  const tag = subjectTagFor(result, settings);
  const subjects = readHeaderFields(message).filter((f) => f.name.toLowerCase() === 'subject');
  const before = subjects[0] ? decodeHeaderText(subjects[0].value) : '';
  const after = retagSubject(before, tag, settings);
  if (after === before && subjects.length <= 1) return message;
  // A control character an encoded word carried (NUL, ESC...) is written as U+FFFD, never raw: RFC 5322 allows none in a field.
  const field = formatHeaderField('Subject', after.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '\ufffd'));
  if (!subjects.length) return rewriteHeaderSection(message, { prepend: [field] });
  // Both parse the same bytes: a field is known by where it starts.
  const first = subjects[0]!.raw.byteOffset;
  return rewriteHeaderSection(message, {
    remove: (f) => f.name.toLowerCase() === 'subject' && f.raw.byteOffset !== first,
    replace: (f) => (f.raw.byteOffset === first ? field : undefined),
  });
}
