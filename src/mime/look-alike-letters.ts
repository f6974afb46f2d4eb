/**
 * Letters of other scripts that a reader takes for Latin ones: the part of Unicode
 * TR39's confusables (skeletons of one Latin letter) that matters for Latin text, for
 * Cyrillic and Greek, and the digits 0 and 1 (read as o and l). Used where a reader's
 * impression decides: the gateway's Subject tag (src/policy/remove-texts.ts) and the
 * domain of a From address (src/smime/read-displayed-sender.ts).
 */

/** Cyrillic and Greek letters drawn like a Latin letter (TR39 confusables, those whose skeleton is one Latin letter); 0 and 1 as o and l. */
export const LOOK_ALIKES: Readonly<Record<string, string>> = Object.freeze({
  // Cyrillic
  'А': 'a', 'В': 'b', 'Е': 'e', 'К': 'k', 'М': 'm', 'Н': 'h', 'О': 'o', 'Р': 'p', 'С': 'c', 'Т': 't', 'У': 'y', 'Х': 'x',
  'Ѕ': 's', 'І': 'i', 'Ј': 'j', 'Ԛ': 'q', 'Ԝ': 'w', 'Ӏ': 'l', 'Һ': 'h',
  'а': 'a', 'е': 'e', 'о': 'o', 'р': 'p', 'с': 'c', 'у': 'y', 'х': 'x', 'ѕ': 's', 'і': 'i', 'ј': 'j', 'һ': 'h', 'ԁ': 'd',
  'ԛ': 'q', 'ԝ': 'w', 'ӏ': 'l', 'ь': 'b', 'ɡ': 'g', 'ɑ': 'a', 'ı': 'i',
  // Greek
  'Α': 'a', 'Β': 'b', 'Ε': 'e', 'Ζ': 'z', 'Η': 'h', 'Ι': 'i', 'Κ': 'k', 'Μ': 'm', 'Ν': 'n', 'Ο': 'o', 'Ρ': 'p', 'Τ': 't',
  'Υ': 'y', 'Χ': 'x', 'α': 'a', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p', 'υ': 'u', 'χ': 'x', 'ϲ': 'c', 'ϳ': 'j',
  '0': 'o', '1': 'l',
});

/** Letters of the scripts LOOK_ALIKES draws from, besides Latin. */
const CONFUSABLE_SCRIPTS: ReadonlyArray<[string, RegExp]> = [['Cyrillic', /\p{Script=Cyrillic}/u], ['Greek', /\p{Script=Greek}/u], ['Armenian', /\p{Script=Armenian}/u]];
const LATIN = /\p{Script=Latin}/u;

/**
 * How a word reads when it is not what it looks like: a word that mixes Latin letters
 * with Cyrillic, Greek or Armenian ones, or whose letters are all look-alikes of Latin
 * ones, gives its Latin reading ("exаmple" with a Cyrillic "а": "example") and the
 * scripts; anything else, undefined. As browsers decide whether to show a domain label
 * as Unicode or as punycode (Chromium's IDN display policy), for those scripts.
 */
export function readAsLatin(word: string): { reading: string; scripts: string[] } | undefined {
  if (/^[\x00-\x7f]*$/.test(word)) return undefined;
  const scripts = new Set<string>();
  let reading = '';
  let allLookAlike = true;
  for (const c of word.normalize('NFKC')) {
    const other = CONFUSABLE_SCRIPTS.find(([, re]) => re.test(c));
    if (other) scripts.add(other[0]);
    else if (LATIN.test(c)) scripts.add('Latin');
    const latin = LOOK_ALIKES[c];
    if (latin !== undefined && c > '\x7f') reading += latin;
    else {
      reading += c.toLowerCase();
      if (c > '\x7f') allLookAlike = false;
    }
  }
  if (scripts.size > 1 && scripts.has('Latin')) return { reading, scripts: [...scripts] };
  if (allLookAlike && scripts.size === 1 && !scripts.has('Latin')) return { reading, scripts: [...scripts] };
  return undefined;
}
