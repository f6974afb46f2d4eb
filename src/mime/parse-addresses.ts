/**
 * Mailbox addresses (addr-spec) from an address-list field such as From or To
 * (RFC 5322 section 3.4). Only the addr-specs are extracted, for comparing a
 * sender with a certificate (RFC 8550 section 3): display names and groups are
 * skipped. Hand-written because the address parsers in the nodemailer family are
 * internal modules of larger packages; the grammar handled here is small: quoted
 * strings, comments, angle addresses, and commas as separators.
 */
import { decodeHeaderText } from './decode-header-text.ts';

/** Lower-cased addr-specs in order of appearance. */
export function parseAddresses(value: string): string[] {
  const text = decodeHeaderText(value);
  const out: string[] = [];
  let cur = '';
  let angle: string | undefined;
  let inAngle = false;
  let depth = 0;
  let quoted = false;
  const flush = (): void => {
    const candidate = (angle ?? cur).trim();
    // Group syntax "name: a@b, c@d;" leaves "name:" before the first address.
    const spec = candidate.replace(/^[^:<>"]*:\s*/, '').replace(/;$/, '').trim();
    if (/^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+$/.test(spec)) out.push(spec.toLowerCase());
    cur = '';
    angle = undefined;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
      continue;
    }
    if (depth > 0) {
      if (c === '\\') i++;
      else if (c === '(') depth++;
      else if (c === ')') depth--;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === '(') depth = 1;
    else if (c === '<') {
      inAngle = true;
      angle = '';
    } else if (c === '>') inAngle = false;
    else if (inAngle) angle += c;
    else if (c === ',' || c === ';') flush();
    else cur += c;
  }
  flush();
  return out;
}
