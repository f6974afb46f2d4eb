/**
 * Private keys at rest: envelope encryption with a data key per private key.
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
 */
import { createCipheriv, createDecipheriv, createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { KakitomeError } from '../errors.ts';
import type { MasterKey } from './master-key.ts';

const VERSION = 1;
const NONCE = 12;
const TAG = 16;

function aad(recordId: string): Buffer {
  return Buffer.from(`kakitome private key v1\0${recordId}`, 'utf8');
}

function gcmSeal(key: KeyObject | Buffer, plain: Uint8Array, ad: Buffer): Buffer {
  const nonce = randomBytes(NONCE);
  const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG });
  c.setAAD(ad);
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([nonce, body, c.getAuthTag()]);
}

function gcmOpen(key: KeyObject | Buffer, sealed: Uint8Array, ad: Buffer): Buffer {
  const nonce = sealed.subarray(0, NONCE);
  const tag = sealed.subarray(sealed.length - TAG);
  const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG });
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
  const wrapLen = NONCE + 32 + TAG;
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

/** Re-wraps the data key under a new master key (rotation); the key material is not touched. */
export function rewrapSealedPrivateKey(from: MasterKey, to: MasterKey, recordId: string, sealed: Uint8Array): Buffer {
  const wrapLen = NONCE + 32 + TAG;
  const ad = aad(recordId);
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
