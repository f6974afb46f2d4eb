/**
 * Encryption triggers (issue 13, "Policy"): a text in the Subject
 * (`subjectTriggers`, e.g. "[secure]", "[暗号化]") or a header field
 * (`headerTriggers`, e.g. "X-Kakitome-Encrypt: yes") with which a sender asks for
 * encryption; a trigger makes encryption `required` for the message, whatever
 * `encrypt` says. Pure: header fields and settings in, matches and the edits out.
 *
 * What does not leave the organisation: each subject trigger's text is removed from
 * the Subject (every occurrence, as a reader sees it: remove-texts.ts, in the decoded text), and a
 * trigger field of ours (X-Kakitome-) is removed. Other trigger fields stay, since
 * they mean something to mail clients (Outlook's "Sensitivity: Company-Confidential").
 */
import type { HeaderField } from '../mime/entity.ts';
import { decodeHeaderText } from '../mime/decode-header-text.ts';
import type { PolicySettings } from './policy-settings.ts';
import { removeTexts } from './remove-texts.ts';

export interface TriggerMatch {
  kind: 'subject' | 'header';
  /** The trigger as configured ("[secure]", "X-Kakitome-Encrypt: yes"). */
  trigger: string;
}

export interface TriggerEdits {
  matches: TriggerMatch[];
  /** The Subject without the subject triggers' texts, when one was found. */
  subject?: string;
  /** Header fields to remove (ours). */
  removeField(field: HeaderField): boolean;
}

function fieldMatches(field: HeaderField, trigger: string): boolean {
  const colon = trigger.indexOf(':');
  const name = colon < 0 ? trigger : trigger.slice(0, colon);
  if (field.name.toLowerCase() !== name.toLowerCase()) return false;
  return colon < 0 || decodeHeaderText(field.value).trim().toLowerCase() === trigger.slice(colon + 1).trim().toLowerCase();
}

export function findEncryptionTriggers(fields: readonly HeaderField[], settings: Pick<PolicySettings, 'subjectTriggers' | 'headerTriggers'>): TriggerEdits {
  const matches: TriggerMatch[] = [];
  const subjectField = fields.find((f) => f.name.toLowerCase() === 'subject');
  let subject: string | undefined;
  if (subjectField && settings.subjectTriggers.length) {
    const found = removeTexts(decodeHeaderText(subjectField.value), settings.subjectTriggers);
    for (const trigger of found.removed) matches.push({ kind: 'subject', trigger });
    if (found.removed.length) subject = found.text;
  }
  const fieldTriggers = settings.headerTriggers.filter((t) => fields.some((f) => fieldMatches(f, t)));
  for (const trigger of fieldTriggers) matches.push({ kind: 'header', trigger });
  return {
    matches,
    ...(subject !== undefined ? { subject } : {}),
    removeField: (f) => f.name.toLowerCase().startsWith('x-kakitome-') && fieldTriggers.some((t) => fieldMatches(f, t)),
  };
}
