/**
 * A private key as PEM for another program: encrypted PKCS#8 ("ENCRYPTED PRIVATE
 * KEY", RFC 5958 3) under a passphrase unless the caller explicitly asks for the
 * key in the clear. Encryption is PBES2 with PBKDF2-HMAC-SHA256 at 600,000
 * iterations and AES-256-CBC (RFC 8018; OWASP 2023 for PBKDF2-SHA256), the scheme
 * of our PKCS#12 export, which OpenSSL, NSS and Java read (`openssl pkey -in F`).
 */
import type { KeyObject } from 'node:crypto';
import { sequence, octetString } from '../asn1/der.ts';
import { encodePem } from '../asn1/pem.ts';
import { KakitomeError } from '../errors.ts';
import { encryptPbes2 } from './pkcs12-pbe.ts';

export type PrivateKeyPemProtection = { passphrase: string; iterations?: number } | { unencrypted: true };

export function exportPrivateKeyPem(key: KeyObject, protection: PrivateKeyPemProtection): string {
  if (key.type !== 'private') throw new KakitomeError('KEY_INVALID', 'Only a private key is exported here.');
  const pkcs8 = key.export({ format: 'der', type: 'pkcs8' });
  try {
    if ('unencrypted' in protection) {
      if (protection.unencrypted !== true) throw new KakitomeError('INVALID_ARGUMENT', 'An unencrypted export must be asked for explicitly.');
      return encodePem('PRIVATE KEY', pkcs8);
    }
    if (protection.passphrase === '') throw new KakitomeError('INVALID_ARGUMENT', 'An encrypted key export needs a passphrase: an empty one protects nothing.');
    const iterations = protection.iterations ?? 600_000;
    if (!Number.isInteger(iterations) || iterations < 10_000 || iterations > 10_000_000) throw new KakitomeError('INVALID_ARGUMENT', 'PBKDF2 iterations must be between 10,000 and 10,000,000.');
    const { algorithm, ciphertext } = encryptPbes2(protection.passphrase, pkcs8, iterations);
    return encodePem('ENCRYPTED PRIVATE KEY', sequence(algorithm, octetString(ciphertext)));
  } finally {
    pkcs8.fill(0);
  }
}
