/**
 * New key pairs, generated off the calling thread (node:crypto's generateKeyPair
 * runs in libuv's thread pool). RSA key generation takes tens of milliseconds for
 * 2048 bits and up to seconds for 3072 and 4096 (it searches for primes): on a
 * thread that serves (`kakitome serve`: identities issued over the API, the
 * console's certificates and its first-run CA) generateKeyPairSync would stop every
 * other request of that thread for as long. The CLI gets the same keys; its
 * commands await them as before.
 */
import { generateKeyPair, type KeyObject } from 'node:crypto';

export type KeyPairSpec =
  | { type: 'rsa'; modulusLength: 2048 | 3072 | 4096 }
  | { type: 'ec'; namedCurve: 'prime256v1' | 'secp384r1' | 'secp521r1' | (string & {}) }
  | { type: 'ed25519' };

export interface KeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

export function generateKeyPairOffThread(spec: KeyPairSpec): Promise<KeyPair> {
  return new Promise((resolve, reject) => {
    const done = (e: Error | null, publicKey: KeyObject, privateKey: KeyObject) => (e ? reject(e) : resolve({ publicKey, privateKey }));
    switch (spec.type) {
      case 'rsa': return generateKeyPair('rsa', { modulusLength: spec.modulusLength }, done);
      case 'ec': return generateKeyPair('ec', { namedCurve: spec.namedCurve }, done);
      case 'ed25519': return generateKeyPair('ed25519', {}, done);
    }
  });
}
