/**
 * Address fields such as From, Sender or To (RFC 5322 section 3.4), read the way a
 * mail program reads them: the structure (quoted strings, comments, angle
 * addresses, groups, commas) is parsed from the field as written, and only then
 * are RFC 2047 encoded-words decoded, in display names and comments (RFC 2047
 * section 5). Decoding first would let an encoded-word that decodes to
 * `<alice@example.com>` or `,` change which address the field holds ("Johnny, you
 * are fired", 2019).
 *
 * Strictness: what the grammar does not allow (an unterminated quoted string,
 * comment or angle address, text after an angle address, a source route, a word
 * where an addr-spec belongs) is reported in `problems`, and the element is not
 * taken as a mailbox. The caller decides what an unreadable field means: for the
 * sender of a signed message it means the reader may see another sender than the
 * one compared with the certificate. Hand-written because the address parsers in
 * the nodemailer family are internal modules of larger packages.
 */
import { decodeHeaderText } from './decode-header-text.ts';

export interface Mailbox {
  /** The addr-spec, lower-cased; a quoted local part that needs no quotes is unquoted (RFC 5321 section 4.1.2). */
  address: string;
  /** The display name as a reader sees it: quoted strings unquoted, encoded-words decoded; possibly empty. */
  displayName: string;
  /** The display name as written (quoted strings unquoted, encoded-words not decoded). */
  displayNameRaw: string;
}

export interface AddressList {
  mailboxes: Mailbox[];
  /** Comment texts anywhere in the field, encoded-words decoded: programs that show "address (Name)" show them as the name. */
  comments: string[];
  /** Comment texts as written. */
  commentsRaw: string[];
  /** Display names of groups (RFC 5322 section 3.4: "name: a@b, c@d;"), decoded. */
  groups: string[];
  /** What could not be read as RFC 5322 address syntax, in plain words; empty when the whole field was read. */
  problems: string[];
}

type Token =
  | { kind: 'word'; text: string; quoted: boolean; space: boolean }
  | { kind: 'literal'; text: string; space: boolean }
  | { kind: 'special'; text: string; space: boolean }
  | { kind: 'comment'; text: string; space: boolean };

/** RFC 5322 specials that are tokens of their own (quotes, comments and literals are read whole). */
const SPECIALS = new Set(['<', '>', '@', ',', ';', ':', '.', '\\', ')', ']']);
/** By character code: ends an atom (white space, specials, and the starts of quoted strings, comments and literals). */
const ENDS_ATOM = new Uint8Array(128);
for (const c of ' \t\r\n"([)]<>@,;:.\\') ENDS_ATOM[c.charCodeAt(0)] = 1;

/** Splits the field into RFC 5322 lexical tokens; `problems` gets unterminated constructs. */
function tokenize(value: string, problems: string[]): Token[] {
  const tokens: Token[] = [];
  let space = false;
  let i = 0;
  const n = value.length;
  while (i < n) {
    const c = value[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      space = true;
      i++;
      continue;
    }
    if (c === '"' || c === '(' || c === '[') {
      // Quoted string, comment (nested, RFC 5322 section 3.2.2) or domain literal; quoted-pairs unescaped.
      const close = c === '"' ? '"' : c === '(' ? ')' : ']';
      let depth = 1;
      let text = '';
      let j = i + 1;
      for (; j < n; j++) {
        const d = value[j]!;
        if (d === '\\' && c !== '[') {
          text += value[++j] ?? '';
          continue;
        }
        if (c === '(' && d === '(') depth++;
        else if (d === close && --depth === 0) break;
        text += d;
      }
      if (j >= n) problems.push(c === '"' ? 'a quoted string is not closed' : c === '(' ? 'a comment is not closed' : 'a domain literal is not closed');
      tokens.push(c === '"' ? { kind: 'word', text, quoted: true, space } : c === '(' ? { kind: 'comment', text, space } : { kind: 'literal', text: `[${text}]`, space });
      i = j + 1;
      space = false;
      continue;
    }
    if (SPECIALS.has(c)) {
      tokens.push({ kind: 'special', text: c, space });
      i++;
      space = false;
      continue;
    }
    let j = i;
    while (j < n) {
      const d = value.charCodeAt(j);
      if (d < 128 && ENDS_ATOM[d] === 1) break;
      j++;
    }
    tokens.push({ kind: 'word', text: value.slice(i, j), quoted: false, space });
    i = j;
    space = false;
  }
  return tokens;
}

/** The tokens as a reader sees them written: words and specials, one space where the field had white space. */
function joinText(tokens: readonly Token[]): string {
  let out = '';
  for (const t of tokens) out += (t.space && out ? ' ' : '') + t.text;
  return out;
}

/** A dot-atom's text (RFC 5322 section 3.2.3): atext and UTF-8 (RFC 6532), dots between. */
const DOT_ATOM = /^[^\s"(),.:;<>@[\\\]\x00-\x1f\x7f]+(?:\.[^\s"(),.:;<>@[\\\]\x00-\x1f\x7f]+)*$/u;

/** The addr-spec local-part "@" domain (obsolete forms with white space between tokens accepted), or why not. */
function readAddrSpec(tokens: readonly Token[]): string | { problem: string } {
  const at = tokens.findIndex((t) => t.kind === 'special' && t.text === '@');
  if (at < 0) return { problem: `"${joinText(tokens).slice(0, 80)}" is not an address (no @)` };
  const local = tokens.slice(0, at);
  const domain = tokens.slice(at + 1);
  if (local.length === 0 || domain.length === 0) return { problem: 'an address has an empty local part or domain' };
  // local-part = word *("." word); a quoted word that needs no quotes is the same mailbox unquoted.
  let localText = '';
  for (let k = 0; k < local.length; k++) {
    const t = local[k]!;
    const wantWord = k % 2 === 0;
    if (wantWord && t.kind === 'word') localText += t.quoted && !DOT_ATOM.test(t.text) ? `"${t.text.replace(/["\\]/g, '\\$&')}"` : t.text;
    else if (!wantWord && t.kind === 'special' && t.text === '.') localText += '.';
    else return { problem: `the local part of "${joinText(tokens).slice(0, 80)}" is not RFC 5322 syntax` };
  }
  if (local.length % 2 === 0) return { problem: `the local part of "${joinText(tokens).slice(0, 80)}" ends with a dot` };
  let domainText = '';
  if (domain.length === 1 && domain[0]!.kind === 'literal') domainText = domain[0]!.text;
  else {
    for (let k = 0; k < domain.length; k++) {
      const t = domain[k]!;
      const wantWord = k % 2 === 0;
      if (wantWord && t.kind === 'word' && !t.quoted) domainText += t.text;
      else if (!wantWord && t.kind === 'special' && t.text === '.') domainText += '.';
      else return { problem: `the domain of "${joinText(tokens).slice(0, 80)}" is not RFC 5322 syntax` };
    }
    if (domain.length % 2 === 0) return { problem: `the domain of "${joinText(tokens).slice(0, 80)}" ends with a dot` };
  }
  const spec = `${localText}@${domainText}`;
  if (/[\x00-\x1f\x7f]/.test(spec)) return { problem: 'an address contains control characters' };
  return spec.toLowerCase();
}

/** Reads an address field: mailboxes, groups, comments, and what could not be read. */
export function parseAddressList(value: string): AddressList {
  const problems: string[] = [];
  const tokens = tokenize(value, problems);
  const out: AddressList = { mailboxes: [], comments: [], commentsRaw: [], groups: [], problems };
  let phrase: Token[] = [];
  let angle: Token[] | undefined;
  let angleClosed = false;
  let afterAngle = false;
  let inGroup = false;
  /** problems.length when the current element started: an element with a problem yields no mailbox. */
  let elementStart = problems.length;

  const finish = (): void => {
    if (problems.length > elementStart) {
      // Not read cleanly: no address is taken from it (the caller sees the problem).
    } else if (angle !== undefined) {
      if (!angleClosed) problems.push('an angle address is not closed');
      else if (angle.length === 0) {
        // "<>" (RFC 5321 null path): no mailbox to compare.
        problems.push('an address is empty ("<>")');
      } else {
        const spec = readAddrSpec(angle);
        if (typeof spec === 'string') {
          const raw = joinText(phrase);
          out.mailboxes.push({ address: spec, displayName: decodeHeaderText(raw).replace(/\s+/g, ' ').trim(), displayNameRaw: raw });
        } else problems.push(spec.problem);
      }
    } else if (phrase.length > 0) {
      const spec = readAddrSpec(phrase);
      if (typeof spec === 'string') out.mailboxes.push({ address: spec, displayName: '', displayNameRaw: '' });
      else problems.push(spec.problem);
    }
    phrase = [];
    angle = undefined;
    angleClosed = false;
    afterAngle = false;
    elementStart = problems.length;
  };

  for (const t of tokens) {
    if (t.kind === 'comment') {
      out.commentsRaw.push(t.text);
      out.comments.push(decodeHeaderText(t.text));
      continue;
    }
    const s = t.kind === 'special' ? t.text : undefined;
    if (angle !== undefined && !angleClosed) {
      if (s === '>') {
        angleClosed = true;
        afterAngle = true;
      } else if (s === '<' || s === ',' || s === ':' || s === ';') {
        // A route (obs-route "@a,@b:") or a second "<": two readings of one address.
        problems.push(s === '<' ? 'an angle address contains "<"' : `an angle address contains "${s}" (a source route or two addresses)`);
        angle.push(t);
      } else angle.push(t);
      continue;
    }
    if (s === ',') finish();
    else if (s === ';') {
      if (!inGroup) problems.push('";" outside a group');
      finish();
      inGroup = false;
    } else if (s === ':' && !afterAngle && angle === undefined) {
      if (inGroup) problems.push('a group inside a group');
      out.groups.push(decodeHeaderText(joinText(phrase)).replace(/\s+/g, ' ').trim());
      phrase = [];
      inGroup = true;
    } else if (s === '<') {
      if (angle !== undefined) problems.push('two angle addresses in one mailbox');
      angle = [];
      angleClosed = false;
    } else if (afterAngle) {
      problems.push(`text after an angle address ("${t.text}")`);
    } else if (s === '>' || s === ')' || s === ']' || s === '\\') {
      problems.push(`a stray "${s}"`);
      phrase.push(t);
    } else phrase.push(t);
  }
  finish();
  if (inGroup) problems.push('a group is not closed with ";"');
  return out;
}

/** Mailboxes with their display names, in order of appearance. */
export function parseMailboxes(value: string): Mailbox[] {
  return parseAddressList(value).mailboxes;
}

/** Lower-cased addr-specs in order of appearance. */
export function parseAddresses(value: string): string[] {
  return parseMailboxes(value).map((m) => m.address);
}
