/**
 * DKIM-signs a finished message (RFC 6376; Ed25519 per RFC 8463): the last step
 * before mail leaves, after S/MIME signing or encryption, so the signature covers
 * the S/MIME structure as sent (its Content-Type with the boundary and protocol,
 * and the body whose bytes the S/MIME signature is over). DKIM never touches those
 * bytes: it only prepends its DKIM-Signature fields.
 *
 * - relaxed/relaxed canonicalization (RFC 6376 section 3.4.2, 3.4.4), which
 *   survives the whitespace changes relays make in header fields;
 * - signed header fields: the originator, recipient and identity fields, the MIME
 *   fields that say how the body is read, and the list fields a one-click
 *   unsubscribe needs signed (RFC 8058 section 4), every instance present;
 * - oversigned (RFC 6376 section 8.15): each field RFC 5322 allows once, and the
 *   MIME fields, is listed once more than it occurs, so nobody can add a second
 *   From, Subject or Content-Type (or one that was absent, such as Reply-To) to a
 *   signed message without breaking the signature;
 * - no l= (a body length limit lets anyone append content) and no x=.
 *
 * Why not mailauth's signer: it signs only the fields present, so it cannot
 * oversign; mailauth verifies (the gateway's inbound checks and the tests use it,
 * with dkimpy as the independent verifier). Crypto is node:crypto's.
 *
 * The message is put in canonical form first (bare LF becomes CRLF, RFC 5322
 * section 2.1): that is the form it travels in and the form verifiers hash.
 */
import { createHash, sign, type KeyObject } from 'node:crypto';
import { KakitomeError } from '../errors.ts';
import { resolveLimits } from '../limits.ts';
import { canonicalizeLineBreaks } from '../mime/canonicalize-line-breaks.ts';
import type { HeaderField } from '../mime/entity.ts';
import { parseHeaderSection } from '../mime/parse-header-section.ts';
import { checkDkimDomain, checkSelector, dkimKeyType, dkimSignatureAlgorithm } from './dkim-key.ts';
import { DkimBodyHash } from './dkim-body-hash.ts';

export interface DkimSigner {
  /** The signing domain (d=): for DMARC, the From address's domain or its organisational domain. */
  domain: string;
  selector: string;
  /** RSA (2048 to 4096 bits) or Ed25519 private key. */
  key: KeyObject;
}

export interface SignDkimOptions {
  /** One signature per signer, in order (e.g. RSA and Ed25519 for one domain). */
  signers: readonly DkimSigner[];
  /** The signing time (t=); default now. */
  time?: Date;
}

/** Signed when present, every instance. */
const SIGNED_FIELDS = [
  'from', 'sender', 'reply-to', 'to', 'cc', 'subject', 'date', 'message-id', 'in-reply-to', 'references',
  'mime-version', 'content-type', 'content-transfer-encoding', 'list-id', 'list-unsubscribe', 'list-unsubscribe-post',
];

/** Listed once more than they occur: RFC 5322's once-only fields and the MIME fields. Not the list fields, which mailing lists add. */
const OVERSIGNED_FIELDS = new Set([
  'from', 'sender', 'reply-to', 'to', 'cc', 'subject', 'date', 'message-id', 'in-reply-to', 'references',
  'mime-version', 'content-type', 'content-transfer-encoding',
]);

/**
 * RFC 6376 section 3.4.4: trailing whitespace off each line, inner runs to one space,
 * empty lines at the end removed, CRLF at the end of a non-empty body. The form written
 * out; signing hashes it as it streams (dkim-body-hash.ts), tested against this.
 */
export function canonicalizeBodyRelaxed(body: Buffer): Buffer {
  const text = body.toString('latin1');
  const lines = text.split('\r\n');
  // A body ending in CRLF splits into a last empty string: it is the end, not a line.
  if (lines.at(-1) === '') lines.pop();
  const out = lines.map((l) => l.replace(/[ \t]+/g, ' ').replace(/ $/, ''));
  while (out.length && out.at(-1) === '') out.pop();
  return out.length ? Buffer.from(`${out.join('\r\n')}\r\n`, 'latin1') : Buffer.alloc(0);
}

/** RFC 6376 section 3.4.2: lower-case name, unfolded value, whitespace runs to one space, none around the colon or at the ends. */
export function canonicalizeHeaderRelaxed(field: Pick<HeaderField, 'name' | 'raw'>): string {
  const raw = field.raw.toString('latin1');
  const value = raw.slice(raw.indexOf(':') + 1).replace(/\r?\n/g, '').replace(/[ \t]+/g, ' ').trim();
  return `${field.name.trim().toLowerCase()}:${value}`;
}

/**
 * The fields to sign and the h= list: for each name, its instances from the bottom
 * up (RFC 6376 section 5.4.2), then once more for an oversigned name (an entry that
 * matches no instance contributes nothing and stops one being added).
 */
function selectFields(fields: readonly HeaderField[]): { names: string[]; signed: HeaderField[] } {
  const names: string[] = [];
  const signed: HeaderField[] = [];
  for (const name of SIGNED_FIELDS) {
    const instances = fields.filter((f) => f.name.trim().toLowerCase() === name).reverse();
    for (const f of instances) {
      names.push(name);
      signed.push(f);
    }
    if (OVERSIGNED_FIELDS.has(name)) names.push(name);
  }
  return { names, signed };
}

/**
 * Tag-list text folded to lines of at most 76 characters (RFC 6376 section 3.2
 * allows FWS around tags and, in h=, around each colon). A tag is a list of atoms
 * joined without space unless a line has to be broken between them.
 */
function fold(tags: ReadonlyArray<readonly string[]>, firstLine: number): string {
  let out = '';
  let line = firstLine;
  tags.forEach((atoms) => {
    atoms.forEach((atom, a) => {
      const piece = a === atoms.length - 1 ? `${atom};` : atom;
      const gap = a === 0 && out ? ' ' : '';
      if (out && line + gap.length + piece.length > 76) {
        out += '\r\n\t';
        line = 8;
      } else {
        out += gap;
        line += gap.length;
      }
      out += piece;
      line += piece.length;
    });
  });
  return out;
}

/** b= value split into lines of 72 base64 characters (folding whitespace is ignored inside it, RFC 6376 section 3.5). */
function foldSignature(b64: string): string {
  const parts: string[] = [];
  for (let i = 0; i < b64.length; i += 72) parts.push(b64.slice(i, i + 72));
  return parts.join('\r\n\t');
}

function signOne(signer: DkimSigner, fields: readonly HeaderField[], bodyHash: string, time: Date): Buffer {
  const type = dkimKeyType(signer.key);
  if (signer.key.type !== 'private') throw new KakitomeError('KEY_INVALID', 'DKIM signing needs a private key.');
  const { names, signed } = selectFields(fields);
  const tags = [
    ...['v=1', `a=${dkimSignatureAlgorithm(type)}`, 'c=relaxed/relaxed', `d=${checkDkimDomain(signer.domain)}`, `s=${checkSelector(signer.selector)}`, `t=${Math.floor(time.getTime() / 1000)}`].map((t) => [t]),
    names.map((n, i) => `${i === 0 ? 'h=' : ''}${n}${i < names.length - 1 ? ':' : ''}`),
    [`bh=${bodyHash}`],
  ];
  const unsigned = `DKIM-Signature: ${fold(tags, 'DKIM-Signature: '.length)}\r\n\tb=`;
  // The data: each selected field canonicalized with its CRLF, then this field with an empty b= and no CRLF (section 3.7).
  const data = Buffer.from(signed.map((f) => `${canonicalizeHeaderRelaxed(f)}\r\n`).join('') + canonicalizeHeaderRelaxed({ name: 'DKIM-Signature', raw: Buffer.from(unsigned, 'latin1') }), 'latin1');
  // RSA: RSASSA-PKCS1-v1_5 with SHA-256 over the data; Ed25519: PureEdDSA over the SHA-256 of the data (RFC 8463 section 3).
  const signature = type === 'rsa' ? sign('sha256', data, signer.key) : sign(null, createHash('sha256').update(data).digest(), signer.key);
  return Buffer.from(`${unsigned}${foldSignature(signature.toString('base64'))}\r\n`, 'latin1');
}

/** The message with one DKIM-Signature field per signer prepended; the rest is the message in canonical (CRLF) form, byte for byte. */
export function signDkim(message: Buffer, options: SignDkimOptions): Buffer {
  const canonical = canonicalizeLineBreaks(message);
  const section = parseHeaderSection(canonical, 0, canonical.length, resolveLimits(), true);
  const bodyHash = new DkimBodyHash().update(canonical.subarray(section.bodyStart)).digest();
  return Buffer.concat([...dkimSignatureFields(section.fields, bodyHash, options), canonical]);
}

/**
 * The DKIM-Signature fields (one per signer) for a message whose header fields are
 * `fields` and whose body hash (DkimBodyHash, over the body as sent) is `bodyHash`:
 * what signDkim prepends, for a message that streams (the gateway's large messages).
 */
export function dkimSignatureFields(fields: readonly HeaderField[], bodyHash: string, options: SignDkimOptions): Buffer[] {
  if (!options.signers.length) throw new KakitomeError('INVALID_ARGUMENT', 'DKIM signing needs at least one key.');
  if (!fields.some((f) => f.name.trim().toLowerCase() === 'from')) throw new KakitomeError('MALFORMED', 'The message has no From field: DKIM signs the From field (RFC 6376 section 5.4), and no mail should leave without one.');
  const time = options.time ?? new Date();
  return options.signers.map((s) => signOne(s, fields, bodyHash, time));
}
