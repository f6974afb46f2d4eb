/** What the caller says about each recipient of an envelope (see enveloped-data/encrypt.ts). */
import type { Certificate } from '../../x509/certificate.ts';
import type { KeyObject } from 'node:crypto';

export interface RecipientOptions {
  /** RSA, EC (P-256/384/521), X25519, X448, ML-KEM-768/1024 public key. */
  certificate: Certificate;
  /** Default issuerAndSerialNumber (what every peer matches on). */
  identifier?: 'issuerAndSerialNumber' | 'subjectKeyIdentifier';
  /** Default 'pkcs1' (what Outlook, NSS and gpgsm decrypt); 'oaep' uses SHA-256 + MGF1-SHA-256. */
  rsaPadding?: 'pkcs1' | 'oaep';
  oaepHash?: 'sha256' | 'sha384' | 'sha512';
  /**
   * ECDH X9.63 KDF / X25519-X448 HKDF hash. Default sha256 for every curve: it is
   * what RFC 8551 2.7 and OpenSSL's `ecdh_kdf_md:sha256` agree on, and P-384/P-521
   * gain nothing from a longer hash when the KEK is at most 256 bits.
   */
  kdfHash?: 'sha256' | 'sha384' | 'sha512';
}

/** A private key offered for decryption; the certificate lets us match the recipient identifier. */
export interface DecryptKey {
  key: KeyObject;
  certificate?: Certificate;
}

export type KeyManagement = 'rsa-pkcs1' | 'rsa-oaep' | 'ecdh' | 'x25519' | 'x448' | 'ml-kem-512' | 'ml-kem-768' | 'ml-kem-1024';

/**
 * The result of opening one RecipientInfo with one key. `cek` is undefined when
 * the key layer detected the failure (OAEP decoding, key-wrap integrity, bad
 * originator key); callers never report that distinctly.
 */
export interface KeyAttempt {
  cek: Buffer | undefined;
  keyManagement: KeyManagement;
  warnings: string[];
  /** RSA PKCS#1 v1.5: a length mismatch may be implicit rejection's pseudo-random output. */
  implicitRejection: boolean;
}
