/**
 * The master key as a value: 32 random bytes held in a KeyObject, and a public id
 * that names it (in the store's records and in errors) without revealing it.
 */
import { createHash, createSecretKey, type KeyObject } from 'node:crypto';
import { KakitomeError } from '../errors.ts';

export interface MasterKey {
  /** A public identifier of the key (not derived reversibly): lets a wrong key be named. */
  readonly id: string;
  readonly key: KeyObject;
}

export function masterKeyFromBytes(raw: Uint8Array): MasterKey {
  if (raw.length !== 32) throw new KakitomeError('KEY_INVALID', 'A master key is 32 bytes.');
  const id = createHash('sha256').update('kakitome master key id\0').update(raw).digest('hex').slice(0, 16);
  return { id, key: createSecretKey(Buffer.from(raw)) };
}
