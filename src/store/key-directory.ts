/**
 * The lookups the S/MIME operations and front ends need from a store, as a small
 * interface (style guide, "Store"): sign as an address, encrypt to an address,
 * decrypt whatever key the envelope names. Store implements it on SQLite and
 * PostgreSQL; a test can pass Store over `openSqliteEngine(':memory:')`, or any
 * object of this shape.
 *
 * Callers that sign in bulk should resolve the signing identity once per sender and
 * reuse it: each call opens (and audits) the private key.
 */
import type { KeyObject } from 'node:crypto';
import type { CmsIdentifier } from '../cms/identifier.ts';
import type { Certificate } from '../x509/certificate.ts';
import type { CertificateRecord } from './store.ts';

export interface SigningIdentity {
  key: KeyObject;
  certificate: Certificate;
  /** Issuer certificates from the store, nearest first. */
  chain: Certificate[];
  keyId: string;
}

export interface KeyDirectory {
  /** Keys for the envelope's recipient identifiers, whatever their expiry or status (key history). */
  findDecryptionKeys(ids: readonly CmsIdentifier[]): Promise<{ key: KeyObject; certificate: Certificate; keyId: string }[]>;
  /** The current signing identity for an address at `now`, if the store holds its key. */
  findSigningIdentity(email: string, now?: Date): Promise<SigningIdentity | undefined>;
  /**
   * The best current certificate to encrypt to an address at `now`, by the store's
   * ranking. Validate it when using it (findTrustedRecipientCertificate does both).
   */
  findRecipientCertificate(email: string, now?: Date): Promise<CertificateRecord | undefined>;
}
