/**
 * Streaming decryption of EnvelopedData / AuthEnvelopedData (RFC 5652 6, RFC 5083)
 * with bounded memory and the brief's two rules:
 *
 * - No unauthenticated plaintext is released. The ciphertext is spooled while the
 *   input is read (memory, then an unlinked temporary file: only ciphertext ever
 *   touches the disk). The whole envelope, including the trailing authAttrs (the
 *   AAD, which RFC 5083 places after the content) and the mac, is then known. For
 *   decryptStream a first pass over the spool checks the tag (or, for CBC, the
 *   padding) and discards the plaintext; only a second pass writes to `output`.
 *   decryptFile needs one pass: plaintext goes to a temporary file beside the
 *   destination, renamed into place after final() succeeded, deleted otherwise.
 * - One indistinguishable failure: every cryptographic problem (wrong key, RSA/OAEP
 *   padding, key-wrap integrity, tag, CBC padding, ciphertext length, missing
 *   content) is the same DecryptionError. Only public facts differ (MALFORMED,
 *   UNSUPPORTED_ALG, NOT_RECIPIENT, LIMIT), exactly as for decryptData.
 *
 * AES-GCM and ChaCha20-Poly1305 decipherment runs at several GB/s here, so the
 * second pass costs little beside reading the input (see docs/performance.md).
 */
import type { Readable, Writable } from 'node:stream';
import { readFileChunks } from './read-file-chunks.ts';
import { createDecipheriv, type Decipheriv, type DecipherGCM } from 'node:crypto';
import { secretKey } from '../algorithms/secret-key.ts';
import { DecryptionError, KakitomeError } from '../../errors.ts';
import { resolveLimits, type Limits } from '../../limits.ts';
import type { ContentEncryptionParameters } from '../algorithms/content-encryption.ts';
import { parseEnvelope, type ParsedEnvelope } from '../enveloped-data/parse.ts';
import { contentKeyCandidates, type RecoveredContentKey } from '../enveloped-data/recover-content-key.ts';
import type { DecryptOptions, DecryptResult } from '../enveloped-data/decrypt.ts';
import { readEnvelopedDataStream, type EnvelopeStreamParts } from './read-enveloped-data-stream.ts';
import { ContentSpool, type SpoolOptions } from './content-spool.ts';
import { AtomicFile } from './atomic-file.ts';
import { endWritable, writeChunk } from './write-chunk.ts';

export interface DecryptStreamOptions extends DecryptOptions {
  /** Default true: end `output` after the plaintext. */
  end?: boolean;
  /** Where ciphertext waits (memory threshold, spill directory). */
  spool?: SpoolOptions;
}

/** DecryptResult without the in-memory content: the plaintext went to the output. */
export type DecryptStreamResult = Omit<DecryptResult, 'content'> & { contentLength: number };

/** An envelope whose ciphertext waits in a spool. */
export interface SpooledEnvelope {
  parsed: ParsedEnvelope;
  spool: ContentSpool;
}

/** The envelope once its reader ended (the ciphertext went to `spool`). */
export function parseSpooledEnvelope(parts: EnvelopeStreamParts, spool: ContentSpool, limits: Partial<Limits> | undefined): SpooledEnvelope {
  const parsed = parseEnvelope(parts.withoutContent, resolveLimits(limits), parts.contentType);
  // A detached encryptedContent cannot be decrypted from this input alone (as decryptData).
  if (!parts.hadContent) throw new DecryptionError();
  return { parsed, spool };
}

async function readEnvelope(input: Readable | AsyncIterable<Uint8Array>, options: DecryptStreamOptions): Promise<SpooledEnvelope> {
  const limits = resolveLimits(options.limits);
  const spool = new ContentSpool(options.spool);
  try {
    const parts = await readEnvelopedDataStream(input, (c) => spool.write(c), limits);
    return parseSpooledEnvelope(parts, spool, limits);
  } catch (e) {
    await spool.dispose();
    throw e;
  }
}

function createContentDecipher(p: ContentEncryptionParameters, env: ParsedEnvelope, key: Uint8Array, ciphertextLength: number): Decipheriv {
  if (key.length !== p.cipher.keyLength) throw new DecryptionError();
  if (p.cipher.aead) {
    if (!env.mac || env.mac.length !== p.tagLength) throw new DecryptionError();
    const d: DecipherGCM = createDecipheriv(p.cipher.name as 'aes-256-gcm', secretKey(key), p.iv, { authTagLength: p.tagLength });
    d.setAuthTag(env.mac);
    if (env.aad && env.aad.length) d.setAAD(env.aad);
    return d;
  }
  // RFC 5652 6.3: CBC ciphertext is a non-empty whole number of blocks.
  const block = p.cipher.ivLength;
  if (ciphertextLength === 0 || ciphertextLength % block !== 0) throw new DecryptionError();
  return createDecipheriv(p.cipher.name, secretKey(key), p.iv);
}

/**
 * Ciphertext handed to the decipher at a time. Each update() returns a fresh buffer
 * that V8 frees only at its next collection; the plaintext is taken as a short
 * Latin-1 string (copied back into a Buffer where bytes are needed: see freshCopy in
 * byte-sink.ts for why) so that collections come every few MiB: peak RSS about
 * +20 MiB over 1 GiB instead of +50 to +60 MiB.
 */
const DECIPHER_SLICE = 64 * 1024;

/**
 * Runs the content decryption over the spool; `sink` sees plaintext pieces as they
 * are produced (so only pass it something that withholds them), and the last piece
 * only after final() succeeded. Every crypto failure becomes DecryptionError.
 */
export async function decipherSpool(env: SpooledEnvelope, key: Uint8Array, sink: ((piece: Buffer) => Promise<void> | void) | undefined): Promise<number> {
  return decipherSpoolText(env, key, sink && ((text) => sink(Buffer.from(text, 'latin1'))));
}

/** decipherSpool with the plaintext as Latin-1 strings (one byte per character), for passes that only look at it. */
export async function decipherSpoolText(env: SpooledEnvelope, key: Uint8Array, sink: ((piece: string) => Promise<void> | void) | undefined): Promise<number> {
  const p = env.parsed.contentEncryption;
  let d: Decipheriv;
  let total = 0;
  try {
    d = createContentDecipher(p, env.parsed, key, env.spool.size);
  } catch {
    throw new DecryptionError();
  }
  for await (const c of env.spool.replay({ reuse: true })) {
    for (let p = 0; p < c.length; p += DECIPHER_SLICE) {
      let piece: string;
      try {
        piece = d.update(c.subarray(p, p + DECIPHER_SLICE), undefined, 'latin1');
      } catch {
        throw new DecryptionError();
      }
      total += piece.length;
      if (sink && piece.length) await sink(piece);
    }
  }
  let last: string;
  try {
    last = d.final('latin1'); // AEAD: checks the tag; CBC: checks the padding
  } catch {
    throw new DecryptionError();
  }
  total += last.length;
  if (sink && last.length) await sink(last);
  return total;
}

export function describeDecryption(env: { parsed: ParsedEnvelope }, k: RecoveredContentKey, contentLength: number): DecryptStreamResult {
  const p = env.parsed.contentEncryption;
  const warnings: string[] = [];
  if (p.cipher.legacy) warnings.push('legacy 3DES content encryption: ask the sender to use AES');
  return {
    contentLength,
    contentType: env.parsed.contentType,
    contentEncryption: p.cipher.name,
    authenticated: env.parsed.type === 'authEnvelopedData',
    recipient: k.recipient,
    warnings: [...warnings, ...k.warnings],
    recipients: env.parsed.recipients.length,
  };
}

/**
 * Decrypts the ContentInfo read from `input` and writes the plaintext to `output`,
 * but only after the whole content was authenticated (AEAD tag) or, for CBC, decrypted
 * with valid padding. On any failure nothing is written to `output` (and it is not
 * ended). Failures: DecryptionError (DECRYPT_FAILED) for every cryptographic cause;
 * MALFORMED, UNSUPPORTED_ALG, NOT_RECIPIENT, LIMIT for public facts.
 *
 * @example
 * const r = await decryptStream(createReadStream('big.p7m'), createWriteStream('big.eml'), { keys: [{ key, certificate }] });
 */
export async function decryptStream(input: Readable | AsyncIterable<Uint8Array>, output: Writable, options: DecryptStreamOptions): Promise<DecryptStreamResult> {
  const env = await readEnvelope(input, options);
  try {
    const p = env.parsed.contentEncryption;
    for (const k of contentKeyCandidates(env.parsed, options.keys, p.cipher.keyLength)) {
      try {
        // Pass 1: authenticate, discarding the plaintext.
        try {
          await decipherSpool(env, k.cek, undefined);
        } catch (e) {
          if (e instanceof DecryptionError) continue; // the caller learns only the final DecryptionError
          throw e;
        }
        // Pass 2: the same ciphertext (held by an unlinked file only we can reach), now released.
        const n = await decipherSpool(env, k.cek, (piece) => writeChunk(output, piece));
        if (options.end !== false) await endWritable(output);
        return describeDecryption(env, k, n);
      } finally {
        k.cek.fill(0);
      }
    }
    throw new DecryptionError();
  } finally {
    await env.spool.dispose();
  }
}

/**
 * Decrypts the file at `inPath` into `outPath`. The output file appears only after
 * the content was authenticated; on any failure no output file is left behind.
 *
 * The input is a file, so it is read twice instead of spooling its ciphertext: a
 * first pass reads the envelope (recipients, parameters, and the authAttrs and mac
 * that follow the content), a second deciphers into a temporary file beside the
 * destination. Both passes must see the same envelope fields; if the file changed
 * in between, the content may differ too, and the tag check (AEAD) or the padding
 * check (CBC) decides as for any ciphertext.
 */
export async function decryptFile(inPath: string, outPath: string, options: DecryptStreamOptions): Promise<DecryptStreamResult> {
  const limits = resolveLimits(options.limits);
  const read = () => readFileChunks(inPath);
  const first = await readEnvelopedDataStream(read(), () => undefined, limits);
  const parsed = parseEnvelope(first.withoutContent, limits, first.contentType);
  if (!first.hadContent) throw new DecryptionError();
  const p = parsed.contentEncryption;
  for (const k of contentKeyCandidates(parsed, options.keys, p.cipher.keyLength)) {
    const file = await AtomicFile.create(outPath);
    try {
      let d: Decipheriv;
      try {
        d = createContentDecipher(p, parsed, k.cek, first.ciphertextBytes);
      } catch {
        throw new DecryptionError();
      }
      let n = 0;
      const second = await readEnvelopedDataStream(
        read(),
        async (c) => {
          let piece: Buffer;
          try {
            piece = d.update(c);
          } catch {
            throw new DecryptionError();
          }
          n += piece.length;
          if (piece.length) await file.write(piece);
        },
        limits,
      );
      if (!Buffer.from(second.contentInfo).equals(Buffer.from(first.contentInfo)) || second.ciphertextBytes !== first.ciphertextBytes) {
        throw new KakitomeError('MALFORMED', 'The input file changed while it was being decrypted.');
      }
      let last: Buffer;
      try {
        last = d.final(); // AEAD: checks the tag; CBC: checks the padding
      } catch {
        throw new DecryptionError();
      }
      n += last.length;
      if (last.length) await file.write(last);
      await file.commit();
      return describeDecryption({ parsed }, k, n);
    } catch (e) {
      await file.abort();
      if (!(e instanceof DecryptionError)) throw e;
    } finally {
      k.cek.fill(0);
    }
  }
  throw new DecryptionError();
}
