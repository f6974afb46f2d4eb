/**
 * Private keys at rest: envelope encryption with a data key per private key; and
 * other records the store keeps sealed (held messages), the same way in segments.
 *
 *   sealed = 0x01 || wrapNonce(12) || AES-256-GCM(master, dataKey)(32) || wrapTag(16)
 *                 || keyNonce(12)  || AES-256-GCM(dataKey, PKCS#8 DER)   || keyTag(16)
 *
 * Both layers authenticate the key's record id as additional data, so a sealed blob
 * copied onto another record (or a swapped row) fails to open instead of silently
 * lending its key to another identity. The data key means a master-key rotation
 * re-wraps 32 bytes per key and never touches key material. Nonces are random: each
 * key (master or data) seals few messages, far below GCM's 2^32 random-nonce bound
 * (NIST SP 800-38D 8.3).
 *
 * Segments (SegmentSealer, held messages of any size): the same header (version
 * and the wrapped data key, under the record's purpose and id), then each segment
 * sealed alone under the data key with its position and whether it is the last in
 * the additional data, so segments cannot be reordered, dropped from the end, or
 * moved to another record.
 */
import { createCipheriv, createDecipheriv, createPrivateKey, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { KakitomeError } from '../errors.ts';
import type { MasterKey } from './master-key.ts';

const VERSION = 1;
const NONCE = 12;
const TAG = 16;

function aad(recordId: string, purpose = 'private key'): Buffer {
  return Buffer.from(`kakitome ${purpose} v1\0${recordId}`, 'utf8');
}

const WRAP_LEN = NONCE + 32 + TAG;

const asKeyObject = (key: KeyObject | Buffer): KeyObject => (Buffer.isBuffer(key) ? createSecretKey(key) : key);

function gcmSeal(key: KeyObject | Buffer, plain: Uint8Array, ad: Buffer): Buffer {
  const nonce = randomBytes(NONCE);
  // A KeyObject: node:crypto checks a Buffer key with a thrown exception per call (src/cms/algorithms/secret-key.ts).
  const c = createCipheriv('aes-256-gcm', asKeyObject(key), nonce, { authTagLength: TAG });
  c.setAAD(ad);
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([nonce, body, c.getAuthTag()]);
}

function gcmOpen(key: KeyObject | Buffer, sealed: Uint8Array, ad: Buffer): Buffer {
  const nonce = sealed.subarray(0, NONCE);
  const tag = sealed.subarray(sealed.length - TAG);
  const d = createDecipheriv('aes-256-gcm', asKeyObject(key), nonce, { authTagLength: TAG });
  d.setAAD(ad);
  d.setAuthTag(tag);
  return Buffer.concat([d.update(sealed.subarray(NONCE, sealed.length - TAG)), d.final()]);
}

export function sealPrivateKey(master: MasterKey, recordId: string, key: KeyObject): Buffer {
  if (key.type !== 'private') throw new KakitomeError('KEY_INVALID', 'Only private keys are sealed.');
  const dataKey = randomBytes(32);
  const pkcs8 = key.export({ format: 'der', type: 'pkcs8' });
  try {
    const ad = aad(recordId);
    return Buffer.concat([Buffer.of(VERSION), gcmSeal(master.key, dataKey, ad), gcmSeal(dataKey, pkcs8, ad)]);
  } finally {
    dataKey.fill(0);
    pkcs8.fill(0);
  }
}

/**
 * Opens a sealed key. Any failure (wrong master key, altered blob, wrong record)
 * is KEY_INVALID with one message: which layer failed is nobody's business.
 */
export function openSealedPrivateKey(master: MasterKey, recordId: string, sealed: Uint8Array): KeyObject {
  const wrapLen = WRAP_LEN;
  if (sealed.length < 1 + wrapLen + NONCE + TAG || sealed[0] !== VERSION) {
    throw new KakitomeError('KEY_INVALID', 'A stored private key is damaged or in an unknown format.');
  }
  const ad = aad(recordId);
  let dataKey: Buffer | undefined;
  let pkcs8: Buffer | undefined;
  try {
    dataKey = gcmOpen(master.key, sealed.subarray(1, 1 + wrapLen), ad);
    pkcs8 = gcmOpen(dataKey, sealed.subarray(1 + wrapLen), ad);
    return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  } catch (e) {
    throw new KakitomeError('KEY_INVALID', 'A stored private key could not be opened: wrong master key, or the record was altered.', { cause: e });
  } finally {
    dataKey?.fill(0);
    pkcs8?.fill(0);
  }
}

/** Re-wraps the data key under a new master key (rotation); the key material is not touched. A segment header (`purpose` other than a private key's) re-wraps the same way. */
export function rewrapSealedPrivateKey(from: MasterKey, to: MasterKey, recordId: string, sealed: Uint8Array, purpose?: string): Buffer {
  const wrapLen = WRAP_LEN;
  const ad = aad(recordId, purpose);
  let dataKey: Buffer | undefined;
  try {
    dataKey = gcmOpen(from.key, sealed.subarray(1, 1 + wrapLen), ad);
    return Buffer.concat([Buffer.of(VERSION), gcmSeal(to.key, dataKey, ad), Buffer.from(sealed.subarray(1 + wrapLen))]);
  } catch (e) {
    throw new KakitomeError('KEY_INVALID', 'A stored private key could not be re-wrapped: wrong master key, or the record was altered.', { cause: e });
  } finally {
    dataKey?.fill(0);
  }
}

/** Bytes of any length sealed segment by segment under one data key (see the top). */
export interface SegmentSealer {
  /** The version and the data key wrapped under the master key: stored with the record. */
  readonly header: Buffer;
  seal(seq: number, last: boolean, plain: Uint8Array): Buffer;
  /** KEY_INVALID for a segment that was altered, moved, or is not at `seq` / `last`. */
  open(seq: number, last: boolean, sealed: Uint8Array): Buffer;
  /** Wipes the data key. */
  dispose(): void;
}

function segmentSealer(dataKey: Buffer, ad: Buffer, header: Buffer): SegmentSealer {
  const at = (seq: number, last: boolean) => Buffer.concat([ad, Buffer.from(`\0segment ${seq}${last ? ' last' : ''}`, 'latin1')]);
  return {
    header,
    seal: (seq, last, plain) => gcmSeal(dataKey, plain, at(seq, last)),
    open(seq, last, sealed) {
      try {
        if (sealed.length < NONCE + TAG) throw new Error('short');
        return gcmOpen(dataKey, sealed, at(seq, last));
      } catch (e) {
        throw new KakitomeError('KEY_INVALID', 'A sealed record could not be opened: it was altered, truncated or moved to another record.', { cause: e });
      }
    },
    dispose: () => dataKey.fill(0),
  };
}

/** A new data key for the record `recordId` of kind `purpose` (its header to store with it). */
export function createSegmentSealer(master: MasterKey, purpose: string, recordId: string): SegmentSealer {
  const dataKey = randomBytes(32);
  const ad = aad(recordId, purpose);
  return segmentSealer(dataKey, ad, Buffer.concat([Buffer.of(VERSION), gcmSeal(master.key, dataKey, ad)]));
}

/** The data key of a stored header; KEY_INVALID for a wrong master key or a header of another record. */
export function openSegmentSealer(master: MasterKey, purpose: string, recordId: string, header: Uint8Array): SegmentSealer {
  const ad = aad(recordId, purpose);
  if (header.length !== 1 + WRAP_LEN || header[0] !== VERSION) throw new KakitomeError('KEY_INVALID', 'A sealed record is damaged or in an unknown format.');
  try {
    return segmentSealer(gcmOpen(master.key, header.subarray(1), ad), ad, Buffer.from(header));
  } catch (e) {
    throw new KakitomeError('KEY_INVALID', 'A sealed record could not be opened: wrong master key, or the record was altered or moved to another record.', { cause: e });
  }
}
