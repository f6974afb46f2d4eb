/**
 * Signs a MIME entity (content fields + body, no message headers) and returns the
 * signed entity: multipart/signed (RFC 1847 section 2.1, RFC 8551 section 3.5.3)
 * or opaque application/pkcs7-mime; smime-type=signed-data (RFC 8551 section
 * 3.5.2). The entity must already be canonical CRLF and 7-bit (prepareContent).
 */
import type { DigestName } from '../cms/algorithms/digest.ts';
import { signData, signerDigestName, type SignerOptions } from '../cms/signed-data/sign.ts';
import { buildEntity, createBoundary, formatHeaderField, formatHeaderSection, formatParameterizedValue, joinChunks, type HeaderInput } from '../mime/build-entity.ts';
import type { HeaderField } from '../mime/entity.ts';
import type { Certificate } from '../x509/certificate.ts';

export interface SignEntityOptions {
  signers: SignerOptions[];
  certificates?: Certificate[];
  /** Default false: multipart/signed. */
  opaque?: boolean;
  now?: Date;
}

/** RFC 8551 section 3.5.3.2 micalg names (RFC 5751 added the SHA-2 ones). */
const MICALG: Partial<Record<DigestName, string>> = {
  md5: 'md5',
  sha1: 'sha-1',
  sha224: 'sha-224',
  sha256: 'sha-256',
  sha384: 'sha-384',
  sha512: 'sha-512',
};

/**
 * The micalg parameter for a set of signers: their digest algorithms,
 * comma-separated when several (RFC 8551 section 3.5.3.2), "unknown" when one has
 * no registered name (SHAKE256 for Ed448, SHA-3).
 */
export function micalgFor(signers: readonly SignerOptions[]): string {
  if (signers.length === 1) return MICALG[signerDigestName(signers[0]!)] ?? 'unknown';
  const names = [...new Set(signers.map((s) => MICALG[signerDigestName(s)] ?? 'unknown'))];
  return names.length === 0 || names.includes('unknown') ? 'unknown' : names.join(',');
}

const PREAMBLE = 'This is a cryptographically signed message in MIME format.';

/** A signed entity before serialisation: callers that place it under message headers avoid re-parsing it. */
export interface EntityParts {
  headers: HeaderInput[];
  body: Buffer;
}

/** The signature part's header section and blank line: the same for every message. */
const SIGNATURE_PART_HEAD = formatHeaderSection([
  ['Content-Type', 'application/pkcs7-signature; name=smime.p7s'],
  ['Content-Transfer-Encoding', 'base64'],
  ['Content-Disposition', 'attachment; filename=smime.p7s'],
]).toString('latin1') + '\r\n';

const copyWithin = Uint8Array.prototype.copyWithin;

/** Same length as createBoundary()'s output and, like it, without whitespace: folding depends only on those. */
const BOUNDARY_PLACEHOLDER = `----=_Kakitome_${'A'.repeat(20)}`;
/** The field's value and raw bytes before and after the boundary, per micalg. */
interface ContentTypeTemplate {
  value: [string, string];
  raw: [Buffer, Buffer];
}
const contentTypeTemplates = new Map<string, ContentTypeTemplate>();

/**
 * The multipart/signed Content-Type field (RFC 1847 section 2.1), formatted and
 * folded as formatParameterizedValue and formatHeaderField write it. Those run
 * through libmime once per micalg with a placeholder boundary of the same length;
 * each message only splices its boundary in (folding depends on lengths and
 * whitespace alone). test/smime/sign-entity.test.ts compares with the general path.
 */
export function multipartSignedContentType(micalg: string, boundary: string): HeaderField {
  if (boundary.length !== BOUNDARY_PLACEHOLDER.length || !/^[\w=-]+$/.test(boundary)) {
    const value = formatParameterizedValue('multipart/signed', { protocol: 'application/pkcs7-signature', micalg, boundary });
    return { name: 'Content-Type', value, raw: formatHeaderField('Content-Type', value) };
  }
  return contentTypeFromTemplate(micalg, boundary);
}

/** multipartSignedContentType for a boundary of createBoundary's (its length, no whitespace). */
function contentTypeFromTemplate(micalg: string, boundary: string): HeaderField {
  let t = contentTypeTemplates.get(micalg);
  if (!t) {
    const value = formatParameterizedValue('multipart/signed', { protocol: 'application/pkcs7-signature', micalg, boundary: BOUNDARY_PLACEHOLDER });
    const raw = formatHeaderField('Content-Type', value);
    const at = value.indexOf(BOUNDARY_PLACEHOLDER);
    const rawAt = raw.indexOf(BOUNDARY_PLACEHOLDER, 0, 'latin1');
    t = {
      value: [value.slice(0, at), value.slice(at + BOUNDARY_PLACEHOLDER.length)],
      raw: [Buffer.from(raw.subarray(0, rawAt)), Buffer.from(raw.subarray(rawAt + BOUNDARY_PLACEHOLDER.length))],
    };
    if (contentTypeTemplates.size < 16) contentTypeTemplates.set(micalg, t);
  }
  // The raw field written in place: no string of it to make and encode.
  const [head, tail] = t.raw;
  const raw = Buffer.allocUnsafe(head.length + BOUNDARY_PLACEHOLDER.length + tail.length);
  head.copy(raw, 0);
  raw.write(boundary, head.length, BOUNDARY_PLACEHOLDER.length, 'latin1');
  tail.copy(raw, head.length + BOUNDARY_PLACEHOLDER.length);
  return { name: 'Content-Type', value: t.value[0] + boundary + t.value[1], raw };
}

/**
 * Base64 in 76-character lines, each ended by CRLF (RFC 2045 section 6.8). One
 * native encoding into the tail of the output, then each line moved forward into
 * place: libbase64's wrap() inserts the breaks with regular expressions over
 * strings, a tenth of signing a small message with ECDSA.
 */
export function base64Lines(der: Uint8Array): Buffer {
  const src = Buffer.isBuffer(der) ? der : Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const out = Buffer.allocUnsafe(base64LinesLength(src.length));
  // Empty input is one empty line, as libbase64's wrap of "" plus the final CRLF gave.
  if (src.length === 0) out.write('\r\n', 0, 'latin1');
  else writeLinesFrom(out, src, 0);
  return out;
}

/** Input octets per full 76-character line. */
const LINE_OCTETS = 57;

function base64LinesLength(octets: number): number {
  const chars = Math.ceil(octets / 3) * 4;
  return chars + 2 * Math.max(1, Math.ceil(chars / 76));
}

/**
 * Writes the lines of src from octet `from` (a multiple of LINE_OCTETS) on into `out`,
 * sized by base64LinesLength for all of src, from the start of line from / LINE_OCTETS.
 * The unbroken text goes at the end of out; each line moves forward into place, never
 * over text not yet moved (line k moves to 78k from at least 76k + 2·lines).
 */
function writeLinesFrom(out: Buffer, src: Buffer, from: number): void {
  const chars = Math.ceil((src.length - from) / 3) * 4;
  const base = out.length - chars;
  out.write(src.toString('base64', from), base, 'latin1');
  let o = (from / LINE_OCTETS) * 78;
  for (let i = 0; i < chars; i += 76) {
    const n = Math.min(76, chars - i);
    copyWithin.call(out, o, base + i, base + i + n);
    out[o + n] = 0x0d;
    out[o + n + 1] = 0x0a;
    o += n + 2;
  }
}

/**
 * A run of whole lines kept, from the second line on: the octets they encode (from
 * LINE_OCTETS on), their text with line breaks, and the signature that last used them.
 */
interface KeptLines {
  octets: Buffer;
  lines: Buffer;
  used: number;
}

/** At most this many kept runs, and DERs to learn from (a few signers in turn; ECDSA's DER of each signature length). */
const MAX_KEPT = 4;
/** Signatures larger than this are encoded whole and not kept (a SignedData carrying its content: opaque signing). */
const MAX_KEPT_OCTETS = 16 * 1024;

/**
 * base64Lines for the SignedData of signature after signature: a signer's DER repeats
 * everything from its first few octets up to its signed attributes (version, digest
 * algorithms, its certificates: about two thirds of a detached P-256 signature), so
 * the lines of the longest run two signatures shared are kept and copied, and only
 * the rest is encoded (the 3.1 KB string of a 2,348-octet DER was the largest
 * allocation of a signed message).
 *
 * The first line (LINE_OCTETS octets) is always encoded: it holds the outer lengths
 * (ContentInfo, [0], SignedData), which follow the DER's length, and ECDSA signatures
 * differ in length by an octet or two. Runs are kept and compared from the second
 * line on, so one run serves a signer's DERs of every length; keeping them from the
 * first octet needed a run per length, and runs as long as a whole DER (the same
 * message signed again within a second) pushed out the ones that last. A DER whose
 * kept run covers less than half of it (a new signer) is compared with the last few
 * such DERs to keep a longer run, one shared with a DER of another length when it
 * covers half; when runs are full, the one least recently used goes. The output is byte for byte base64Lines's: a kept run is used only when the
 * DER has exactly its octets there (test/smime/sign-entity.test.ts,
 * test/server/batch-signature-lines.test.ts).
 */
export class SignatureLines {
  /** Longest first. */
  #kept: KeptLines[] = [];
  /** Copies of the last DERs no kept run covered by half, newest first. */
  #recent: Buffer[] = [];
  /** Signatures encoded, for least-recently-used eviction. */
  #count = 0;
  /** Octets whose lines were copied rather than encoded, over every signature (tests read it). */
  copiedOctets = 0;

  encode(der: Uint8Array): Buffer {
    const src = Buffer.isBuffer(der) ? der : Buffer.from(der.buffer, der.byteOffset, der.byteLength);
    if (src.length > MAX_KEPT_OCTETS || src.length <= LINE_OCTETS) return base64Lines(src);
    const count = ++this.#count;
    let out: Buffer | undefined;
    let covered = 0;
    for (const k of this.#kept) {
      const n = k.octets.length;
      // compare(target, targetStart, targetEnd): the kept octets against src's, with no view made.
      if (src.length > LINE_OCTETS + n && k.octets.compare(src, LINE_OCTETS, LINE_OCTETS + n) === 0) {
        out = Buffer.allocUnsafe(base64LinesLength(src.length));
        writeFirstLine(out, src);
        k.lines.copy(out, 78);
        writeLinesFrom(out, src, LINE_OCTETS + n);
        k.used = count;
        covered = n;
        break;
      }
    }
    out ??= base64Lines(src);
    this.copiedOctets += covered;
    if (2 * covered < src.length) this.#learn(src, out, covered, count);
    return out;
  }

  /** Keeps the whole lines from the second on that src shares with a recent DER, when they are more than `covered`. */
  #learn(src: Buffer, out: Buffer, covered: number, count: number): void {
    // The longest run shared with a DER of another length and with one of the same length:
    // a run that spans a length (the SignerInfos' SET header, after the certificates) serves
    // that length only, so one shared across lengths is preferred when it covers half.
    let sameLength = 0;
    let otherLength = 0;
    for (const r of this.#recent) {
      // The longest shared run from LINE_OCTETS on, by halving (native comparisons, no loop over octets).
      let lo = 0;
      let hi = Math.min(src.length, r.length) - LINE_OCTETS;
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (src.compare(r, LINE_OCTETS, LINE_OCTETS + mid, LINE_OCTETS, LINE_OCTETS + mid) === 0) lo = mid;
        else hi = mid - 1;
      }
      if (r.length === src.length) sameLength = Math.max(sameLength, lo);
      else otherLength = Math.max(otherLength, lo);
    }
    const best = 2 * otherLength >= src.length ? otherLength : Math.max(sameLength, otherLength);
    // Whole lines only, and never the last octets of src: something is always left to encode after a run.
    const octets = Math.floor(Math.min(best, src.length - LINE_OCTETS - 1) / LINE_OCTETS) * LINE_OCTETS;
    if (octets > covered) {
      if (this.#kept.length >= MAX_KEPT) {
        let oldest = 0;
        for (let i = 1; i < this.#kept.length; i++) if (this.#kept[i]!.used < this.#kept[oldest]!.used) oldest = i;
        this.#kept.splice(oldest, 1);
      }
      this.#kept.push({ octets: Buffer.from(src.subarray(LINE_OCTETS, LINE_OCTETS + octets)), lines: Buffer.from(out.subarray(78, 78 + (octets / LINE_OCTETS) * 78)), used: count });
      this.#kept.sort((x, y) => y.octets.length - x.octets.length);
    }
    this.#recent.unshift(Buffer.from(src));
    if (this.#recent.length > MAX_KEPT) this.#recent.pop();
  }
}

/** The first line of src (more than LINE_OCTETS octets) at the start of out. */
function writeFirstLine(out: Buffer, src: Buffer): void {
  out.write(src.toString('base64', 0, LINE_OCTETS), 0, 76, 'latin1');
  out[76] = 0x0d;
  out[77] = 0x0a;
}

const signatureLines = new SignatureLines();

export function signEntity(entity: Buffer, options: SignEntityOptions): Buffer {
  const parts = signEntityParts(entity, options);
  return buildEntity(parts.headers, parts.body);
}

export function signEntityParts(entity: Buffer, options: SignEntityOptions): EntityParts {
  const c = signEntityChunks(entity, options);
  return { headers: c.headers, body: joinChunks(c.body) };
}

/** A signed entity whose body is still in pieces (ASCII strings and bytes), for a caller that writes it once under more header fields. */
export interface EntityChunks {
  headers: HeaderInput[];
  body: Array<Uint8Array | string>;
}

export function signEntityChunks(entity: Buffer, options: SignEntityOptions): EntityChunks {
  const der = signData(entity, { signers: options.signers, certificates: options.certificates, now: options.now, detached: !options.opaque });
  if (options.opaque) {
    return {
      headers: [
        ['Content-Type', 'application/pkcs7-mime; smime-type=signed-data; name=smime.p7m'],
        ['Content-Transfer-Encoding', 'base64'],
        ['Content-Disposition', 'attachment; filename=smime.p7m'],
      ],
      body: [base64Lines(der)],
    };
  }
  const boundary = createBoundary();
  const contentType = contentTypeFromTemplate(micalgFor(options.signers), boundary);
  // RFC 1847 section 2.1 / RFC 2046 section 5.1.1: what buildMultipartBody(boundary,
  // [entity, signature part], preamble) writes, in pieces: the fixed text as shared
  // Buffers and the boundary as it is (a string made of the three would be flattened,
  // that is copied again, when written).
  const body = [BODY_OPEN, boundary, CRLF, entity, DASHES_BEFORE, boundary, SIGNATURE_PART_OPEN, signatureLines.encode(der), DASHES_BEFORE, boundary, BODY_CLOSE];
  return { headers: [contentType], body };
}

const BODY_OPEN = Buffer.from(`${PREAMBLE}\r\n\r\n--`, 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');
const DASHES_BEFORE = Buffer.from('\r\n--', 'latin1');
const SIGNATURE_PART_OPEN = Buffer.from(`\r\n${SIGNATURE_PART_HEAD}`, 'latin1');
const BODY_CLOSE = Buffer.from('--\r\n', 'latin1');
