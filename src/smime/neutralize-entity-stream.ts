/**
 * The streaming twin of src/mime/neutralize-entity.ts, for content too large to
 * hold in memory (the gateway's large messages: CBC content nobody vouches for,
 * opened by policy or by an administrator's release, EFAIL). The same rebuilding,
 * from the same pieces, with bounded memory:
 *
 * - multiparts keep their shape (alternative, related, mixed; any other becomes
 *   mixed) under fresh boundaries; preamble, epilogue and every part's own header
 *   fields go;
 * - text/plain and text/html parts up to `maxTextBytes` (as received, still
 *   transfer-encoded) are rewritten exactly as in memory (neutralizeTextLeaf: HTML
 *   through neutralizeHtml, no URL survives);
 * - everything else becomes an application/octet-stream attachment, decoded and
 *   base64-encoded again as it streams (neutralize-entity's attachmentHeaders);
 * - what memory bounds change: a text/plain part larger than `maxTextBytes` becomes
 *   such an attachment too; a text/html part larger than that is **removed** and a
 *   short text/plain part says so (HTML cannot be made harmless without parsing it
 *   whole, and an HTML file is no safer as an attachment: a browser would fetch what
 *   it names).
 *
 * For a message whose text parts are within the bound, the output is the in-memory
 * form byte for byte, boundaries aside (test/smime/neutralize-entity-stream.test.ts).
 * Nothing of the input is copied as it was.
 */
import { KakitomeError } from '../errors.ts';
import type { Limits } from '../limits.ts';
import { buildEntity, formatHeaderSection } from '../mime/build-entity.ts';
import { Base64LineEncoder } from '../mime/encode-base64-lines.ts';
import { attachmentHeaders, neutralizedMultipart, neutralizeTextLeaf, textPart, type NeutralizeReport } from '../mime/neutralize-entity.ts';
import type { NeutralizeHtmlOptions } from '../mime/neutralize-html.ts';
import { MimeStreamWalker, type StreamEntityHeader } from '../mime/walk-mime-stream.ts';
import { decode as decodeQuotedPrintable } from 'libqp';
import { Base64StreamDecoder } from './decode-base64-stream.ts';

export interface NeutralizeStreamOptions {
  html?: NeutralizeHtmlOptions;
  /** The largest text part (as received) rewritten in memory. */
  maxTextBytes: number;
  limits: Limits;
}

/** What a text/html part too large to make harmless is replaced by. */
export function removedHtmlNotice(bytes: number): string {
  return `An HTML part of ${bytes} bytes or more was removed here: it was too large to make safe to show. / ここにあった HTML パート（${bytes} バイト以上）は、安全に表示できる形にするには大きすぎるため削除されました。`;
}

type Event = { t: 'header'; h: StreamEntityHeader } | { t: 'body'; b: Buffer } | { t: 'end' };

/** A leaf's body decoded as it streams: base64, quoted-printable or an identity encoding. */
interface BodyDecoder {
  write(b: Buffer): Promise<void>;
  end(): Promise<void>;
}

const IDENTITY = new Set(['7bit', '8bit', 'binary']);

function checkEncoding(h: StreamEntityHeader): void {
  if (h.transferEncoding !== 'base64' && h.transferEncoding !== 'quoted-printable' && !IDENTITY.has(h.transferEncoding)) {
    throw new KakitomeError('UNSUPPORTED_ALG', `Unknown Content-Transfer-Encoding "${h.transferEncoding}".`);
  }
}

/** Quoted-printable pieces longer than this without a line break are cut (where no escape, soft break or trailing blank spans the cut). */
const QP_PIECE = 64 * 1024;

/** libqp's decode, applied to whole lines (exactly the in-memory result: nothing it rewrites spans a line break). */
class QuotedPrintableStreamDecoder implements BodyDecoder {
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  readonly #emit: (b: Buffer) => Promise<void>;

  constructor(emit: (b: Buffer) => Promise<void>) {
    this.#emit = emit;
  }

  async write(b: Buffer): Promise<void> {
    const nl = b.lastIndexOf(0x0a);
    if (nl < 0) {
      this.#pending.push(Buffer.from(b));
      this.#pendingBytes += b.length;
      if (this.#pendingBytes > QP_PIECE) await this.#cutLongLine();
      return;
    }
    const whole = Buffer.concat([...this.#pending, b.subarray(0, nl + 1)]);
    // Copied: the input's buffers may be reused once this returns.
    this.#pending = nl + 1 < b.length ? [Buffer.from(b.subarray(nl + 1))] : [];
    this.#pendingBytes = b.length - nl - 1;
    await this.#emit(decodeQuotedPrintable(whole));
  }

  async #cutLongLine(): Promise<void> {
    const all = Buffer.concat(this.#pending);
    let cut = all.length;
    while (cut > 0 && (all[cut - 1] === 0x3d || all[cut - 2] === 0x3d || all[cut - 1] === 0x20 || all[cut - 1] === 0x09 || all[cut - 1] === 0x0d)) cut--;
    if (cut === 0) cut = all.length;
    this.#pending = cut < all.length ? [all.subarray(cut)] : [];
    this.#pendingBytes = all.length - cut;
    await this.#emit(decodeQuotedPrintable(all.subarray(0, cut)));
  }

  async end(): Promise<void> {
    if (this.#pendingBytes) await this.#emit(decodeQuotedPrintable(Buffer.concat(this.#pending)));
    this.#pending = [];
    this.#pendingBytes = 0;
  }
}

function decoderFor(encoding: string, emit: (b: Buffer) => Promise<void>): BodyDecoder {
  if (encoding === 'base64') {
    const d = new Base64StreamDecoder(emit);
    return { write: (b) => d.write(b), end: () => d.end() };
  }
  if (encoding === 'quoted-printable') return new QuotedPrintableStreamDecoder(emit);
  return { write: emit, end: async () => undefined };
}

/** A leaf being rebuilt: a text part gathered, an attachment streaming, or an HTML part too large (dropped). */
type Leaf =
  | { kind: 'text'; h: StreamEntityHeader; chunks: Buffer[]; bytes: number }
  | { kind: 'attachment'; decoder: BodyDecoder; encoder: Base64LineEncoder }
  | { kind: 'dropped'; bytes: number };

/**
 * Reads the entity `input` (a whole decrypted message) and writes its neutralised
 * form to `write` (its header section, Content-Type and what goes with it, blank
 * line and body; what neutralizeEntity(...).entity is in memory).
 */
export async function neutralizeEntityStream(input: AsyncIterable<Uint8Array>, write: (b: Buffer) => Promise<void>, o: NeutralizeStreamOptions): Promise<NeutralizeReport> {
  const report: NeutralizeReport = { htmlParts: 0, attachments: 0, removed: 0 };
  const html = o.html ?? {};
  const open: Array<{ depth: number; boundary: string; children: number }> = [];
  let leaf: Leaf | undefined;
  const events: Event[] = [];
  const walker = new MimeStreamWalker({
    header: (h) => events.push({ t: 'header', h }),
    body: (b) => events.push({ t: 'body', b }),
    bodyEnd: () => events.push({ t: 'end' }),
    structure: () => undefined,
  }, o.limits);

  const startAttachment = async (h: Pick<StreamEntityHeader, 'fields' | 'contentType' | 'transferEncoding'>): Promise<Leaf & { kind: 'attachment' }> => {
    report.attachments++;
    await write(formatHeaderSection(attachmentHeaders({ headers: h.fields, contentType: h.contentType })));
    await write(Buffer.from('\r\n'));
    const encoder = new Base64LineEncoder();
    const decoder = decoderFor(h.transferEncoding, async (bytes) => {
      const lines = encoder.push(bytes);
      if (lines) await write(lines);
    });
    return { kind: 'attachment', decoder, encoder };
  };

  const header = async (h: StreamEntityHeader): Promise<void> => {
    while (open.length && open[open.length - 1]!.depth >= h.depth) await write(Buffer.from(`\r\n--${open.pop()!.boundary}--\r\n`));
    const parent = open[open.length - 1];
    if (parent) await write(Buffer.from(`${parent.children++ === 0 ? '' : '\r\n'}--${parent.boundary}\r\n`));
    if (h.contentType.type === 'multipart') {
      const { boundary, headers } = neutralizedMultipart(h.contentType.subtype);
      await write(buildEntity(headers, Buffer.alloc(0)));
      open.push({ depth: h.depth, boundary, children: 0 });
      return;
    }
    checkEncoding(h);
    const { mediaType } = h.contentType;
    leaf = mediaType === 'text/plain' || mediaType === 'text/html' ? { kind: 'text', h, chunks: [], bytes: 0 } : await startAttachment(h);
  };

  const body = async (b: Buffer): Promise<void> => {
    if (!leaf) return;
    if (leaf.kind === 'dropped') {
      leaf.bytes += b.length;
      return;
    }
    if (leaf.kind === 'attachment') return leaf.decoder.write(b);
    leaf.chunks.push(Buffer.from(b));
    leaf.bytes += b.length;
    if (leaf.bytes <= o.maxTextBytes) return;
    // Too large for memory: plain text goes on as an attachment, HTML is dropped.
    if (leaf.h.contentType.mediaType === 'text/html') {
      leaf = { kind: 'dropped', bytes: leaf.bytes };
      return;
    }
    const gathered = leaf.chunks;
    const attachment = await startAttachment(leaf.h);
    leaf = attachment;
    for (const c of gathered) await attachment.decoder.write(c);
  };

  const end = async (): Promise<void> => {
    const l = leaf;
    leaf = undefined;
    if (!l) return;
    if (l.kind === 'text') {
      await write(neutralizeTextLeaf({ body: Buffer.concat(l.chunks), transferEncoding: l.h.transferEncoding, contentType: l.h.contentType }, html, report)!);
    } else if (l.kind === 'attachment') {
      await l.decoder.end();
      const last = l.encoder.end();
      if (last) await write(last);
    } else {
      report.removed++;
      await write(textPart('text/plain', removedHtmlNotice(l.bytes)));
    }
  };

  const drain = async (): Promise<void> => {
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      if (e.t === 'header') await header(e.h);
      else if (e.t === 'body') await body(e.b);
      else await end();
    }
    events.length = 0;
  };

  for await (const chunk of input) {
    walker.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    await drain();
  }
  walker.end();
  await drain();
  while (open.length) await write(Buffer.from(`\r\n--${open.pop()!.boundary}--\r\n`));
  return report;
}
