/**
 * The Kakitome side of every interop exchange: sign/encrypt with Kakitome, and the
 * assertions that a peer's output verifies or decrypts in Kakitome (or is refused
 * with the right code when tampered with). Shared by test/interop/*.test.ts so that
 * every peer is held to the same standard.
 */
import assert from 'node:assert/strict';
import { signData } from '../../src/cms/signed-data/sign.ts';
import { verifySignedData } from '../../src/cms/signed-data/verify.ts';
import { encryptData } from '../../src/cms/enveloped-data/encrypt.ts';
import { decryptData } from '../../src/cms/enveloped-data/decrypt.ts';
import type { Identity, TestPki } from '../helpers/pki.ts';

export type KHash = 'sha256' | 'sha384' | 'sha512';
export type KCipher = 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm' | 'chacha20-poly1305' | 'aes-128-cbc' | 'aes-192-cbc' | 'aes-256-cbc';

export interface KSigner {
  id: Identity;
  hash?: KHash;
  rsaPadding?: 'pkcs1' | 'pss';
  /** SignerIdentifier choice; Kakitome's default is issuerAndSerialNumber. */
  identifier?: 'issuerAndSerialNumber' | 'subjectKeyIdentifier';
}

/** Kakitome signs; the signer certificates travel in the message (peers need them). */
export async function kakitomeSign(content: Uint8Array, signers: KSigner[], detached: boolean): Promise<Buffer> {
  const der = await signData(content, {
    signers: signers.map((s) => ({
      certificate: s.id.cert,
      key: s.id.key,
      ...(s.hash ? { hash: s.hash } : {}),
      ...(s.rsaPadding ? { rsaPadding: s.rsaPadding } : {}),
      ...(s.identifier ? { identifier: s.identifier } : {}),
    })),
    detached,
  });
  return Buffer.from(der);
}

export interface KRecipient {
  id: Identity;
  rsaPadding?: 'pkcs1' | 'oaep';
  kdfHash?: KHash;
  /** RecipientIdentifier choice; Kakitome's default is issuerAndSerialNumber. */
  identifier?: 'issuerAndSerialNumber' | 'subjectKeyIdentifier';
}

export async function kakitomeEncrypt(content: Uint8Array, recipients: KRecipient[], contentEncryption: KCipher): Promise<Buffer> {
  const der = await encryptData(content, {
    recipients: recipients.map((r) => ({
      certificate: r.id.cert,
      ...(r.rsaPadding ? { rsaPadding: r.rsaPadding } : {}),
      ...(r.kdfHash ? { kdfHash: r.kdfHash } : {}),
      ...(r.identifier ? { identifier: r.identifier } : {}),
    })),
    contentEncryption,
  });
  return Buffer.from(der);
}

/**
 * A peer's SignedData must verify in Kakitome: overall valid, every signer valid,
 * the expected number of signers, and (encapsulated) the content byte for byte.
 */
export async function assertKakitomeVerifies(
  der: Uint8Array,
  o: { content: Uint8Array; detached: boolean; signers: number; label: string },
): Promise<void> {
  const r = await verifySignedData(der, o.detached ? { detachedContent: o.content } : {});
  const why = `${o.label}: ${r.status} ${r.code ?? ''} ${r.message ?? ''} ${r.signers.map((s) => `[${s.status} ${s.code ?? ''} ${s.message ?? ''}]`).join(' ')}`;
  assert.equal(r.status, 'valid', why);
  assert.equal(r.signers.length, o.signers, why);
  for (const s of r.signers) assert.equal(s.status, 'valid', why);
  if (!o.detached) assert.deepEqual(Buffer.from(r.content ?? []), Buffer.from(o.content), `${o.label}: encapsulated content`);
}

/** Tampered detached content: Kakitome must say invalid, with DIGEST_MISMATCH on the signer. */
export async function assertKakitomeRejectsTampered(der: Uint8Array, tampered: Uint8Array, label: string): Promise<void> {
  const r = await verifySignedData(der, { detachedContent: tampered });
  assert.equal(r.status, 'invalid', `${label}: tampered content accepted`);
  assert.ok(r.signers.length > 0, `${label}: no signer reported`);
  for (const s of r.signers) assert.equal(s.code, 'DIGEST_MISMATCH', `${label}: ${s.code} ${s.message}`);
}

/** A peer's envelope must open in Kakitome with the recipient's key, giving back the content. */
export async function assertKakitomeDecrypts(
  der: Uint8Array,
  id: Identity,
  o: { content: Uint8Array; label: string; contentEncryption?: string; authenticated?: boolean },
): Promise<void> {
  const r = await decryptData(der, { keys: [{ key: id.key, certificate: id.cert }] });
  assert.deepEqual(Buffer.from(r.content), Buffer.from(o.content), `${o.label}: content`);
  if (o.contentEncryption) assert.equal(r.contentEncryption, o.contentEncryption, `${o.label}: contentEncryption`);
  if (o.authenticated !== undefined) assert.equal(r.authenticated, o.authenticated, `${o.label}: authenticated`);
}

/** Flips one byte of the content inside a DER/BER blob (first occurrence of `needle`). */
export function tamperInside(der: Uint8Array, needle: Uint8Array): Buffer {
  const b = Buffer.from(der);
  const at = b.indexOf(Buffer.from(needle));
  assert.ok(at >= 0, 'tamperInside: content not found in the encoding');
  b[at] = b[at]! ^ 0x01;
  return b;
}

/**
 * The content every interop test exchanges (7-bit MIME, 40 lines naming the peer) and
 * a copy with one letter changed, for the "tampered content fails" checks.
 */
export function interopContent(peerName: string): { content: Buffer; tampered: Buffer } {
  const content = Buffer.from('Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n' + `Interop with ${peerName}.\r\n`.repeat(40));
  const tampered = Buffer.from(content);
  tampered[content.indexOf('Interop')] = 0x69; // 'I' -> 'i'
  return { content, tampered };
}

export type StandardIdentities = Record<'rsa' | 'rsaB' | 'p256' | 'p384' | 'p521', Identity>;

/** The RSA and ECDSA identities every peer supports. */
export function standardIdentities(pki: TestPki): StandardIdentities {
  return {
    rsa: pki.identity('rsa2048', 'rsa'),
    rsaB: pki.identity('rsa3072', 'rsa-b'),
    p256: pki.identity('p256'),
    p384: pki.identity('p384'),
    p521: pki.identity('p521'),
  };
}
