/**
 * Finding a short text (a subject tag, a subject trigger) in a Subject as a reader
 * sees it, and removing it. The gateway's inbound tag ("[signed OK]") is worth
 * something only if a sender cannot write one that looks the same, so texts are
 * compared in a folded form, character by character:
 *
 * - compatibility forms folded (NFKC: "［" is "[", fullwidth letters are letters);
 * - invisible format characters (zero-width spaces and joiners, bidirectional
 *   controls, soft hyphen: Unicode category Cf) and combining marks removed;
 * - every run of white space (tab, no-break space, ideographic space) one space;
 * - Cyrillic and Greek letters that look like Latin ones, and the digits 0 and 1,
 *   read as those Latin letters (the part of Unicode TR39's confusables that matters
 *   for Latin text);
 * - case ignored;
 * - a text in brackets also in any other brackets ("[signed OK]" is "(signed OK)",
 *   "【署名確認済】" is "[署名確認済]"): a reader takes either for the tag.
 *
 * What is removed is the original characters a match covers. Other look-alikes
 * (Armenian, Cherokee, mathematical letters that NFKC does not fold) are not known.
 */
import { LOOK_ALIKES } from '../mime/look-alike-letters.ts';

/** Bracket pairs a reader reads alike (after NFKC: fullwidth ones are ASCII already). */
const BRACKETS = ['[]', '()', '{}', '<>', '【】', '〔〕', '〖〗', '〘〙', '〚〛', '「」', '『』', '《》', '〈〉', '‹›', '«»', '⟦⟧', '⟨⟩', '❨❩', '❲❳', '⦅⦆'];

/** `needle` (folded), and when it is a text in brackets, the same text in every other pair. */
function bracketVariants(needle: string): string[] {
  const chars = [...needle];
  const pair = BRACKETS.find((b) => b[0] === chars[0] && b[1] === chars[chars.length - 1]);
  if (!pair || chars.length < 3) return [needle];
  const inner = chars.slice(1, -1).join('');
  return BRACKETS.map((b) => `${b[0]}${inner}${b[1]}`);
}

const INVISIBLE = /^[\p{Cf}\p{Mn}\p{Me}]$/u;
const SPACE = /^\s$/u;

/** One character's folded form: '' when it is invisible, ' ' for white space. */
function foldCharacter(c: string): string {
  let out = '';
  for (const d of c.normalize('NFKC')) {
    if (INVISIBLE.test(d)) continue;
    if (SPACE.test(d)) out += ' ';
    else out += LOOK_ALIKES[d] ?? d.toLowerCase();
  }
  return out;
}

/** `text` folded, and for each folded UTF-16 unit the index of the original character it came from and that character's end. */
function fold(text: string): { folded: string; start: number[]; end: number[] } {
  let folded = '';
  const start: number[] = [];
  const end: number[] = [];
  let i = 0;
  for (const c of text) {
    // Printable ASCII folds to itself (lower-cased) except the two digits: the usual Subject stays cheap.
    const f = c.length === 1 && c > ' ' && c < '\x7f' && c !== '0' && c !== '1' ? c.toLowerCase() : foldCharacter(c);
    for (const u of f) {
      if (u === ' ' && (folded.length === 0 || folded.endsWith(' '))) continue;
      folded += u;
      start.push(i);
      end.push(i + c.length);
    }
    i += c.length;
  }
  return { folded, start, end };
}

/**
 * `text` without any occurrence of `texts` as a reader sees them (see above), white
 * space folded; and which of them were there.
 */
export function removeTexts(text: string, texts: readonly string[]): { text: string; removed: string[] } {
  const removed: string[] = [];
  let out = text;
  for (const t of texts) {
    const folded = fold(t).folded.trim();
    if (!folded) continue;
    let found = false;
    for (const needle of bracketVariants(folded)) {
      const hay = fold(out);
      const cuts: Array<[number, number]> = [];
      for (let at = hay.folded.indexOf(needle); at >= 0; at = hay.folded.indexOf(needle, at + needle.length)) {
        cuts.push([hay.start[at]!, hay.end[at + needle.length - 1]!]);
      }
      if (!cuts.length) continue;
      found = true;
      let next = '';
      let from = 0;
      for (const [a, b] of cuts) {
        next += `${out.slice(from, a)} `;
        from = b;
      }
      out = next + out.slice(from);
    }
    if (found) removed.push(t);
  }
  return { text: out.replace(/\s+/g, ' ').trim(), removed };
}
