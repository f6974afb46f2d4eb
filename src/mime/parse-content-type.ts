/**
 * Content-Type (RFC 2045 section 5, RFC 2231 parameter continuations and charsets).
 * The parameter grammar and RFC 2231 decoding are libmime's; this file adds the
 * RFC 2045 section 5.2 defaults and the lower-casing of names.
 *
 * Speed: libmime reads a value one character at a time through string
 * concatenations, a large share of parsing a small message. Values in the plain
 * form nearly every agent writes (`type/subtype; name=token; name="quoted"`, ASCII,
 * no comments, escapes or RFC 2231 names) are read by readSimpleParameterizedValue,
 * which gives exactly libmime's result for them and declines everything else
 * (test/mime/parse-content-type.test.ts compares the two on generated values).
 */
import { libmime } from './libmime.ts';
import type { ContentType } from './entity.ts';
import { malformed } from '../errors.ts';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/** RFC 2045 token characters (printable ASCII except SPACE and tspecials). */
const TOKEN_CHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TOKEN_CHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TOKEN_CHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TOKEN_CHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TOKEN_CHAR[c] = 1;
/** Parameter names: tokens without "*", so no RFC 2231 continuation or charset form reaches the fast path. */
const NAME_CHAR = TOKEN_CHAR.slice();
NAME_CHAR[0x2a] = 0;
/** Unquoted parameter values: printable ASCII except '"', '(', ')', ';' and '\' (which libmime treats specially). */
const VALUE_CHAR = new Uint8Array(128);
for (let c = 0x21; c <= 0x7e; c++) VALUE_CHAR[c] = 1;
for (const c of '"();\\') VALUE_CHAR[c.charCodeAt(0)] = 0;

/**
 * Parameter maps inherit nothing (no toString, no __proto__ setter: "__proto__" is a
 * name like any other, as with libmime's own-property writes). Instances of a
 * constructor whose prototype has a null prototype, rather than Object.create(null):
 * V8 keeps those in dictionary mode, which made reading one Content-Type ten times
 * slower (bench, 2026-11-23).
 */
function Params(): void {}
Params.prototype = Object.create(null);
function newParams(): Record<string, string> {
  return new (Params as unknown as new () => Record<string, string>)();
}

export interface ParameterizedValue {
  value: string;
  params: Record<string, string>;
}

/**
 * Reads `type/subtype *(OWS ";" OWS name=value) [OWS ";"]` where value is a token or
 * a quoted string without backslashes, all ASCII, no duplicated names. Returns
 * undefined for anything else, which the caller hands to libmime.
 */
export function readSimpleParameterizedValue(s: string): ParameterizedValue | undefined {
  const n = s.length;
  let i = 0;
  while (i < n && (s.charCodeAt(i) === 0x20 || s.charCodeAt(i) === 0x09)) i++;
  const vStart = i;
  while (i < n && TOKEN_CHAR[s.charCodeAt(i)] === 1) i++;
  if (i === vStart || s.charCodeAt(i) !== 0x2f) return undefined;
  i++;
  const subStart = i;
  while (i < n && TOKEN_CHAR[s.charCodeAt(i)] === 1) i++;
  if (i === subStart) return undefined;
  const value = s.slice(vStart, i);
  const params = newParams();
  for (;;) {
    while (i < n && (s.charCodeAt(i) === 0x20 || s.charCodeAt(i) === 0x09)) i++;
    if (i === n) return { value, params };
    if (s.charCodeAt(i) !== 0x3b) return undefined;
    i++;
    while (i < n && (s.charCodeAt(i) === 0x20 || s.charCodeAt(i) === 0x09)) i++;
    if (i === n) return { value, params };
    const nameStart = i;
    while (i < n && NAME_CHAR[s.charCodeAt(i)] === 1) i++;
    if (i === nameStart || s.charCodeAt(i) !== 0x3d) return undefined;
    const name = s.slice(nameStart, i).toLowerCase();
    if (Object.hasOwn(params, name)) return undefined;
    i++;
    let v: string;
    if (s.charCodeAt(i) === 0x22) {
      const qStart = ++i;
      for (;;) {
        if (i === n) return undefined;
        const c = s.charCodeAt(i);
        if (c === 0x22) break;
        if (c === 0x5c || c > 0x7e || (c < 0x20 && c !== 0x09)) return undefined;
        i++;
      }
      v = s.slice(qStart, i);
      i++;
    } else {
      const tStart = i;
      while (i < n && VALUE_CHAR[s.charCodeAt(i)] === 1) i++;
      if (i === tStart) return undefined;
      v = s.slice(tStart, i);
    }
    params[name] = v;
  }
}

/** The parameters that decide how an entity is split and read; a second value of one is a second message. */
const STRUCTURAL = new Set(['boundary', 'protocol', 'smime-type']);

/**
 * The first structural parameter written more than once: plain twice, plain and the
 * RFC 2231 extended or continued form, or one continuation segment twice. libmime
 * (and Thunderbird) take the extended form over the plain one and the first of two
 * plain ones; Python's email package and OpenSSL take the plain one: whichever we
 * took, some reader sees other parts (RFC 2045 section 5.1 allows a parameter once).
 * Only these names: `name` and `filename` often come in both forms on purpose.
 * Quoted strings are blanked first, so text inside one names no parameter.
 */
function findRepeatedStructuralParameter(value: string): string | undefined {
  const bare = value.replace(/"(?:[^"\\]|\\.)*"?/g, '""');
  const forms = new Map<string, Set<string>>();
  for (const m of bare.matchAll(/;[ \t\r\n]*([^ \t\r\n;=*]+)(\*[0-9]*\*?)?[ \t\r\n]*=/g)) {
    const name = m[1]!.toLowerCase();
    if (!STRUCTURAL.has(name)) continue;
    // A plain or an extended value stands alone; a continuation is one value in numbered segments.
    const star = m[2] ?? '';
    const segment = /^\*[0-9]/.exec(star) ? `*${Number.parseInt(star.slice(1), 10)}` : star === '' ? 'plain' : 'extended';
    const seen = forms.get(name);
    if (!seen) {
      forms.set(name, new Set([segment]));
      continue;
    }
    const continued = segment.startsWith('*') && [...seen].every((s) => s.startsWith('*'));
    if (!continued || seen.has(segment)) return name;
    seen.add(segment);
  }
  return undefined;
}

/**
 * Parses a Content-Type field value. `undefined` or an unparsable value gives the
 * default (text/plain; charset=us-ascii, or message/rfc822 inside multipart/digest)
 * with `defaulted` set, as RFC 2045 section 5.2 requires.
 */
export function parseContentType(value: string | undefined, digestParent = false): ContentType {
  const fallback = (): ContentType =>
    digestParent
      ? { mediaType: 'message/rfc822', type: 'message', subtype: 'rfc822', params: {}, defaulted: true }
      : { mediaType: 'text/plain', type: 'text', subtype: 'plain', params: { charset: 'us-ascii' }, defaulted: true };
  if (value === undefined) return fallback();
  const simple = readSimpleParameterizedValue(value);
  if (simple) {
    // Its type and subtype are tokens and its parameter names are lower-case already.
    const mediaType = simple.value.toLowerCase();
    const slash = mediaType.indexOf('/');
    return { mediaType, type: mediaType.slice(0, slash), subtype: mediaType.slice(slash + 1), params: simple.params, defaulted: false };
  }
  const repeated = findRepeatedStructuralParameter(value);
  if (repeated) malformed(`the Content-Type parameter "${repeated}" is given more than once: readers differ on which one counts`);
  const parsed = libmime().parseHeaderValue(value);
  const mediaType = String(parsed.value ?? '').trim().toLowerCase();
  const slash = mediaType.indexOf('/');
  if (slash <= 0) return fallback();
  const type = mediaType.slice(0, slash);
  const subtype = mediaType.slice(slash + 1);
  if (!TOKEN.test(type) || !TOKEN.test(subtype)) return fallback();
  const params = newParams();
  for (const [k, v] of Object.entries(parsed.params ?? {})) params[k.toLowerCase()] = String(v);
  return { mediaType, type, subtype, params, defaulted: false };
}
