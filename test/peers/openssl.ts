/**
 * Driver for OpenSSL 3.0 `openssl cms` (the system /usr/bin/openssl, not the
 * OpenSSL 3.5 inside Node 24): sign, verify, encrypt, decrypt, all in DER.
 * Flags are the ones /work/shared/interop-notes.md lists; `-binary` everywhere so
 * that OpenSSL does not rewrite line endings (RFC 8551 canonicalisation is the
 * MIME layer's job, not this one's).
 */
import { requirePeer, runPeer, runPeerOk, type Workdir } from './run-peer.ts';
import type { Identity } from '../helpers/pki.ts';

/** The system OpenSSL, not Node's: its path is fixed so PATH tweaks cannot swap it. */
export const OPENSSL = '/usr/bin/openssl';

export function requireOpenssl(): void {
  requirePeer(OPENSSL, 'openssl');
}

export type OpensslDigest = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export interface OpensslSigner {
  id: Identity;
  /** RSASSA-PSS (RFC 4055) with a salt as long as the digest; default PKCS#1 v1.5. */
  pss?: boolean;
}

export interface OpensslSignOptions {
  signers: OpensslSigner[];
  /** One digest for all signers (openssl cms has a single -md). */
  md?: OpensslDigest;
  detached: boolean;
  /** `-stream`: indefinite-length BER, content in chunks (OpenSSL streams only when producing). */
  stream?: boolean;
}

const SALT: Record<OpensslDigest, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

/** `openssl cms -sign`; returns the DER ContentInfo. */
export async function opensslSign(w: Workdir, content: Uint8Array, o: OpensslSignOptions): Promise<Buffer> {
  requireOpenssl();
  const md = o.md ?? 'sha256';
  const args = ['cms', '-sign', '-binary', '-in', w.write('content', content), '-outform', 'DER', '-md', md];
  for (const s of o.signers) {
    args.push('-signer', s.id.certPath, '-inkey', s.id.keyPath);
    if (s.pss) args.push('-keyopt', 'rsa_padding_mode:pss', '-keyopt', `rsa_pss_saltlen:${SALT[md]}`);
  }
  if (!o.detached) args.push('-nodetach');
  if (o.stream) args.push('-stream');
  const out = w.path('signed.der');
  args.push('-out', out);
  await runPeerOk(OPENSSL, args);
  return w.read(out);
}

export interface PeerVerdict {
  /** True only when the peer said the signature and the chain are good. */
  verified: boolean;
  /** The content the peer extracted (encapsulated) or echoed (detached). */
  content: Buffer;
  /** The peer's own words, for assertion messages. */
  detail: string;
}

/** `openssl cms -verify` against the test CA (chain and emailProtection purpose checked). */
export async function opensslVerify(w: Workdir, der: Uint8Array, o: { caPath: string; detachedContent?: Uint8Array }): Promise<PeerVerdict> {
  requireOpenssl();
  const out = w.path('verified.out');
  const args = ['cms', '-verify', '-binary', '-inform', 'DER', '-in', w.write('sig.der', der), '-CAfile', o.caPath, '-purpose', 'smimesign', '-out', out];
  if (o.detachedContent) args.push('-content', w.write('content', o.detachedContent));
  const r = await runPeer(OPENSSL, args);
  const verified = r.status === 0 && /Verification successful/.test(r.stderr);
  let content: Buffer = Buffer.alloc(0);
  try { content = w.read(out); } catch { /* nothing written on failure */ }
  return { verified, content, detail: `exit ${r.status}: ${r.stderr.trim()}` };
}

export type OpensslCipher = 'aes-128-cbc' | 'aes-192-cbc' | 'aes-256-cbc' | 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm';

export interface OpensslRecipient {
  id: Identity;
  /** RSA: 'pkcs1' (default) or OAEP with the given hash ('oaep' alone is OpenSSL's SHA-1 default). */
  rsa?: 'pkcs1' | 'oaep' | 'oaep-sha256';
  /** ECDH: the X9.63 KDF hash; omitted = OpenSSL's default (SHA-1). */
  kdf?: 'sha256' | 'sha384' | 'sha512';
}

/** `openssl cms -encrypt`; GCM ciphers produce AuthEnvelopedData. Returns DER. */
export async function opensslEncrypt(w: Workdir, content: Uint8Array, o: { recipients: OpensslRecipient[]; cipher: OpensslCipher; stream?: boolean }): Promise<Buffer> {
  requireOpenssl();
  const out = w.path('enveloped.der');
  const args = ['cms', '-encrypt', '-binary', `-${o.cipher}`, '-in', w.write('content', content), '-outform', 'DER', '-out', out];
  if (o.stream) args.push('-stream');
  for (const r of o.recipients) {
    args.push('-recip', r.id.certPath);
    if (r.rsa === 'oaep' || r.rsa === 'oaep-sha256') args.push('-keyopt', 'rsa_padding_mode:oaep');
    if (r.rsa === 'oaep-sha256') args.push('-keyopt', 'rsa_oaep_md:sha256', '-keyopt', 'rsa_mgf1_md:sha256');
    if (r.kdf) args.push('-keyopt', `ecdh_kdf_md:${r.kdf}`);
  }
  await runPeerOk(OPENSSL, args);
  return w.read(out);
}

export interface PeerDecryption {
  decrypted: boolean;
  content: Buffer;
  detail: string;
}

/** `openssl cms -decrypt` with one recipient's certificate and key. */
export async function opensslDecrypt(w: Workdir, der: Uint8Array, id: Identity): Promise<PeerDecryption> {
  requireOpenssl();
  const out = w.path('decrypted.out');
  const r = await runPeer(OPENSSL, ['cms', '-decrypt', '-binary', '-inform', 'DER', '-in', w.write('env.der', der), '-recip', id.certPath, '-inkey', id.keyPath, '-out', out]);
  let content: Buffer = Buffer.alloc(0);
  try { content = w.read(out); } catch { /* nothing written on failure */ }
  return { decrypted: r.status === 0, content, detail: `exit ${r.status}: ${r.stderr.trim()}` };
}

/** Legacy PKCS#12 (3DES/RC2, SHA-1 MAC) that gpgsm 2.2 and old Windows import. */
export async function opensslExportPkcs12(w: Workdir, id: Identity, password: string, legacy: boolean): Promise<string> {
  requireOpenssl();
  const out = w.path(`${id.kind}.p12`);
  const args = ['pkcs12', '-export', '-in', id.certPath, '-inkey', id.keyPath, '-name', nicknameOf(id), '-passout', `pass:${password}`, '-out', out];
  if (legacy) args.push('-legacy');
  await runPeerOk(OPENSSL, args);
  return out;
}

/** The nickname peers file an identity under: its e-mail local part. */
export function nicknameOf(id: Identity): string {
  return id.email.split('@')[0]!;
}
