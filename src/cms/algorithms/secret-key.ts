/**
 * A symmetric key for node:crypto's createCipheriv, createDecipheriv and createHmac,
 * as a KeyObject. Given a Buffer, those functions (Node 24, prepareSecretKey) first
 * ask whether it is a KeyObject by reading a private field and catching the
 * TypeError: an exception, with its stack trace, on every call. createSecretKey
 * takes a buffer without that check. Measured (2026-12-06, loaded machine, one
 * process, alternating): createDecipheriv and 2 KB of AES-256-CBC 60-150 µs with a
 * Buffer key against 12-37 µs with createSecretKey(buffer) first, more with deep
 * (async) stacks; the content decryption of every message the gateway opens paid it.
 * The key bytes are copied into the KeyObject, whose errors (a wrong key length)
 * are the same.
 */
import { createSecretKey, type KeyObject } from 'node:crypto';

export function secretKey(key: Uint8Array | KeyObject): KeyObject {
  return key instanceof Uint8Array ? createSecretKey(key) : key;
}
