/**
 * libmime, loaded on first use. Its charset support (iconv-lite, encoding-japanese:
 * some forty modules and their tables) costs about 50 ms of CPU to load in every
 * thread that imports it, and most messages never need it: Kakitome's own fast
 * paths read and write plain header fields, and libmime is called only for what
 * they leave (encoded-words, RFC 2231 parameters, folding long fields, legacy
 * charsets). `kakitome --help`, a batch's workers and the main thread that only
 * reports on them start without it.
 */
import { createRequire } from 'node:module';

type Libmime = typeof import('libmime').default;
type Charset = typeof import('libmime/lib/charset.js');

const require = createRequire(import.meta.url);
let loaded: Libmime | undefined;
let charset: Charset | undefined;

export function libmime(): Libmime {
  return (loaded ??= require('libmime') as Libmime);
}

/** libmime's charset conversion (iconv-lite, encoding-japanese). */
export function libmimeCharset(): Charset {
  return (charset ??= require('libmime/lib/charset.js') as Charset);
}
