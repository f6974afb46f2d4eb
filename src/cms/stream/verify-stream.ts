/**
 * Streaming SignedData verification (RFC 5652 5.4, 5.6) with bounded memory: the
 * input is read once, the content is hashed as it flows with every digest algorithm
 * SignedData.digestAlgorithms announces (RFC 5652 5.1 lists them for exactly this
 * one-pass processing), and the signer checks are those of the in-memory verifier
 * (signed-data/verify.ts verifyParsedSignedData), applied to the same fields.
 *
 * Release rule (brief, "Safe verification"): the content reaches `contentOutput`
 * only after every signer verified. Until then it waits in a ContentSpool (memory,
 * then an unlinked temporary file) or, for verifyFile, in a temporary file beside
 * the destination that is renamed into place on success and deleted otherwise.
 */
import type { Readable, Writable } from 'node:stream';
import { readFileChunks } from './read-file-chunks.ts';
import type { Hash } from 'node:crypto';
import { KakitomeError } from '../../errors.ts';
import { resolveLimits } from '../../limits.ts';
import { createDigest, parseDigestAlgorithm, type DigestAlgorithm } from '../algorithms/digest.ts';
import { parseSignedData } from '../signed-data/parse.ts';
import { verifyParsedSignedData, type SignedDataVerification, type VerifyOptions } from '../signed-data/verify.ts';
import type { AlgorithmIdentifier } from '../algorithm-identifier.ts';
import { readSignedDataStream } from './read-signed-data-stream.ts';
import { ContentSpool, type SpoolOptions } from './content-spool.ts';
import { AtomicFile } from './atomic-file.ts';
import { endWritable, writeChunk } from './write-chunk.ts';

export interface VerifyStreamOptions extends Omit<VerifyOptions, 'detachedContent'> {
  /** The signed content, for a detached signature (read once). */
  detachedContent?: Readable | AsyncIterable<Uint8Array>;
  /** Receives the content after every signer verified; nothing on failure. */
  contentOutput?: Writable;
  /** Default true: end contentOutput after writing the content. */
  end?: boolean;
  /** Where content waits before release (memory threshold, spill directory). */
  spool?: SpoolOptions;
}

/** Where content waits until the verdict is known. */
interface ContentHold {
  write(chunk: Uint8Array): Promise<void>;
  release(): Promise<void>;
  discard(): Promise<void>;
  replay?(): AsyncIterable<Uint8Array>;
}

function spoolHold(target: Writable, end: boolean, opts: SpoolOptions | undefined): ContentHold {
  const spool = new ContentSpool(opts);
  return {
    write: (c) => spool.write(c),
    replay: () => spool.replay(),
    async release() {
      try {
        for await (const c of spool.replay()) await writeChunk(target, c);
        if (end) await endWritable(target);
      } finally {
        await spool.dispose();
      }
    },
    discard: () => spool.dispose(),
  };
}

const NO_HOLD: ContentHold = { write: async () => undefined, release: async () => undefined, discard: async () => undefined };

/**
 * Verifies a ContentInfo(SignedData) read from `input`. Returns the same structured
 * verdict as verifySignedData (its `content` is empty: the content went to
 * `contentOutput`, and only if the verdict is valid). Throws MALFORMED, LIMIT,
 * NO_SIGNERS and AMBIGUOUS_CONTENT like the in-memory verifier.
 *
 * @example
 * const v = await verifyStream(createReadStream('big.p7m'), { contentOutput: createWriteStream('big.eml') });
 * if (v.status !== 'valid') console.log(v.code, v.message);
 */
export async function verifyStream(input: Readable | AsyncIterable<Uint8Array>, options: VerifyStreamOptions = {}): Promise<SignedDataVerification> {
  const hold = options.contentOutput ? spoolHold(options.contentOutput, options.end !== false, options.spool) : NO_HOLD;
  return verifyWithHold(input, options, hold);
}

async function verifyWithHold(input: Readable | AsyncIterable<Uint8Array>, options: VerifyStreamOptions, hold: ContentHold): Promise<SignedDataVerification> {
  const limits = resolveLimits(options.limits);
  const hashes = new Map<string, { alg: DigestAlgorithm; hash: Hash }>();
  let hashList: Hash[] = [];
  const addDigest = (alg: DigestAlgorithm) => {
    if (hashes.has(alg.oid) || alg.weakness === 'refused') return;
    hashes.set(alg.oid, { alg, hash: createDigest(alg) });
    hashList = [...hashes.values()].map((h) => h.hash);
  };
  const feed = async (chunk: Uint8Array) => {
    for (const h of hashList) h.update(chunk);
    await hold.write(chunk);
  };
  try {
    const parts = await readSignedDataStream(
      input,
      {
        onDigestAlgorithms: (algs) => {
          for (const a of algs) {
            try {
              addDigest(parseDigestAlgorithm(a));
            } catch (e) {
              // An unknown digest is reported against the signer that uses it.
              if (!(e instanceof KakitomeError && e.code === 'UNSUPPORTED_ALG')) throw e;
            }
          }
        },
        onContent: (chunk) => {
          // RFC 5652 5.2: encapsulated content plus detached content is two readings.
          if (options.detachedContent !== undefined) {
            throw new KakitomeError('AMBIGUOUS_CONTENT', 'The signature encapsulates its content, but detached content was also given: two readings of one message.');
          }
          return feed(chunk);
        },
      },
      limits,
    );
    if (parts.hadContent && options.detachedContent !== undefined) {
      throw new KakitomeError('AMBIGUOUS_CONTENT', 'The signature encapsulates its content, but detached content was also given: two readings of one message.');
    }
    if (!parts.hadContent) {
      if (options.detachedContent === undefined) throw new KakitomeError('AMBIGUOUS_CONTENT', 'The signature is detached and no content was given to check it against.');
      for await (const raw of options.detachedContent as AsyncIterable<Uint8Array | string>) await feed(typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw);
    }
    const parsed = parseSignedData(parts.detachedForm, limits);
    await addMissingDigests(parsed.signerInfos.map((s) => s.digestAlgorithm), hashes, hold);
    const digests = new Map<string, Uint8Array>();
    for (const [oid, h] of hashes) digests.set(oid, h.hash.digest());
    const verdict = verifyParsedSignedData(
      parsed,
      (d) => {
        const v = digests.get(d.oid);
        // Only reachable for algorithms the verifier refuses before digesting.
        if (!v) throw new KakitomeError('UNSUPPORTED_ALG', `No digest was computed with ${d.name}.`);
        return v;
      },
      { detached: !parts.hadContent, certificates: options.certificates, limits: options.limits, now: options.now, clockSkewMs: options.clockSkewMs, allowLegacy: options.allowLegacy },
    );
    if (verdict.status === 'valid') await hold.release();
    else await hold.discard();
    return verdict;
  } catch (e) {
    await hold.discard();
    throw e;
  }
}

/**
 * A signer whose digest algorithm was not announced in digestAlgorithms (the
 * verifier warns about it): hash again from the held content when we hold it.
 */
async function addMissingDigests(signerDigests: AlgorithmIdentifier[], hashes: Map<string, { alg: DigestAlgorithm; hash: Hash }>, hold: ContentHold): Promise<void> {
  const missing: DigestAlgorithm[] = [];
  for (const a of signerDigests) {
    let alg: DigestAlgorithm;
    try {
      alg = parseDigestAlgorithm(a);
    } catch {
      continue; // reported per signer by the verifier
    }
    if (alg.weakness === 'refused' || hashes.has(alg.oid) || missing.some((m) => m.oid === alg.oid)) continue;
    missing.push(alg);
  }
  if (missing.length === 0) return;
  if (!hold.replay) {
    // QUIRK-free strictness: without the content in hand we cannot take a second pass.
    throw new KakitomeError('MALFORMED', `A signer uses ${missing[0]!.name}, which SignedData.digestAlgorithms does not announce; streaming verification needs it announced (RFC 5652 5.1) or a contentOutput.`);
  }
  const fresh = missing.map((alg) => ({ alg, hash: createDigest(alg) }));
  for await (const c of hold.replay()) for (const f of fresh) f.hash.update(c);
  for (const f of fresh) hashes.set(f.alg.oid, f);
}

/**
 * Verifies the SignedData file at `inPath`. With `contentPath` the content is written
 * there, and the file appears only if every signer verified: no file is left behind
 * on any failure. `detachedContentPath` names the content of a detached signature.
 */
export async function verifyFile(inPath: string, options: Omit<VerifyStreamOptions, 'contentOutput' | 'detachedContent' | 'end'> & { contentPath?: string; detachedContentPath?: string } = {}): Promise<SignedDataVerification> {
  const { contentPath, detachedContentPath, ...rest } = options;
  const opts: VerifyStreamOptions = { ...rest };
  if (detachedContentPath) opts.detachedContent = readFileChunks(detachedContentPath);
  if (!contentPath) return verifyWithHold(readFileChunks(inPath), opts, NO_HOLD);
  const file = await AtomicFile.create(contentPath);
  const hold: ContentHold = {
    write: (c) => file.write(c),
    release: () => file.commit(),
    discard: () => file.abort(),
  };
  return verifyWithHold(readFileChunks(inPath), opts, hold);
}


/**
 * Verifies a detached signature (a ContentInfo/SignedData in memory) over content the
 * caller has already hashed as it streamed: `hashed` maps digest OIDs to the content's
 * digests, and `rehash` is asked for any a signer needs that was not computed (one
 * more pass over the content). The checks are those of verifyStream.
 */
export async function verifyDetachedPrehashed(
  signature: Uint8Array,
  hashed: ReadonlyMap<string, Uint8Array>,
  rehash: (missing: DigestAlgorithm[]) => Promise<Map<string, Uint8Array>>,
  options: Pick<VerifyStreamOptions, 'certificates' | 'limits' | 'now' | 'clockSkewMs' | 'allowLegacy'> = {},
): Promise<SignedDataVerification> {
  const limits = resolveLimits(options.limits);
  const parts = await readSignedDataStream(
    (async function* () {
      yield signature;
    })(),
    {
      onDigestAlgorithms: () => undefined,
      onContent: () => {
        throw new KakitomeError('AMBIGUOUS_CONTENT', 'The signature encapsulates its content, but detached content was also given: two readings of one message.');
      },
    },
    limits,
  );
  if (parts.hadContent) throw new KakitomeError('AMBIGUOUS_CONTENT', 'The signature encapsulates its content, but detached content was also given: two readings of one message.');
  const parsed = parseSignedData(parts.detachedForm, limits);
  const digests = new Map(hashed);
  const missing: DigestAlgorithm[] = [];
  for (const s of parsed.signerInfos) {
    let alg: DigestAlgorithm;
    try {
      alg = parseDigestAlgorithm(s.digestAlgorithm);
    } catch {
      continue; // reported per signer by the verifier
    }
    if (alg.weakness !== 'refused' && !digests.has(alg.oid) && !missing.some((m) => m.oid === alg.oid)) missing.push(alg);
  }
  if (missing.length) for (const [oid, d] of await rehash(missing)) digests.set(oid, d);
  return verifyParsedSignedData(
    parsed,
    (d) => {
      const v = digests.get(d.oid);
      if (!v) throw new KakitomeError('UNSUPPORTED_ALG', `No digest was computed with ${d.name}.`);
      return v;
    },
    { detached: true, certificates: options.certificates, limits: options.limits, now: options.now, clockSkewMs: options.clockSkewMs, allowLegacy: options.allowLegacy },
  );
}
