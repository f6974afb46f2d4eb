/**
 * Driver for NSS 3.87 (Thunderbird's engine): a throwaway certificate database made
 * with certutil, identities imported from PKCS#12 with pk12util, and cmsutil for the
 * CMS operations. cmsutil reads and writes raw BER/DER CMS only.
 *
 * Exit status is what tells success here, so `cmsutil -h` is never used: with it the
 * status is 0 even for a bad signature (interop-notes.md).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { requirePeer, runPeer, runPeerOk, Workdir } from './run-peer.ts';
import { nicknameOf, opensslExportPkcs12 } from './openssl.ts';
import type { PeerDecryption, PeerVerdict } from './openssl.ts';
import type { Identity, TestPki } from '../helpers/pki.ts';

export type NssHash = 'SHA1' | 'SHA256' | 'SHA384' | 'SHA512';

export class NssPeer {
  readonly work: Workdir;
  readonly db: string;

  private constructor(work: Workdir) {
    this.work = work;
    this.db = `sql:${work.dir}/db`;
  }

  /**
   * A database that trusts the test CA for S/MIME (C,C,C) and holds the private keys
   * of `identities` (imported from PKCS#12) and the certificates of `others`.
   */
  static async create(pki: TestPki, identities: Identity[], others: Identity[] = []): Promise<NssPeer> {
    requirePeer('certutil', 'libnss3-tools');
    requirePeer('pk12util', 'libnss3-tools');
    requirePeer('cmsutil', 'libnss3-tools');
    const work = new Workdir('nss');
    const peer = new NssPeer(work);
    mkdirSync(join(work.dir, 'db'));
    await runPeerOk('certutil', ['-N', '-d', peer.db, '--empty-password']);
    await runPeerOk('certutil', ['-A', '-d', peer.db, '-n', 'kakitome-ca', '-t', 'C,C,C', '-i', pki.caPath]);
    for (const id of identities) {
      const p12 = await opensslExportPkcs12(work, id, 'interop', false);
      await runPeerOk('pk12util', ['-i', p12, '-d', peer.db, '-W', 'interop', '-K', '']);
    }
    for (const id of others) {
      await runPeerOk('certutil', ['-A', '-d', peer.db, '-n', nicknameOf(id), '-t', ',,', '-i', id.certPath]);
    }
    return peer;
  }

  /** `cmsutil -S`: one signer (cmsutil takes a single -N), signing certificate chain included. */
  async sign(content: Uint8Array, id: Identity, o: { hash: NssHash; detached: boolean }): Promise<Buffer> {
    const out = this.work.path('signed.der');
    const args = ['-S', '-d', this.db, '-N', nicknameOf(id), '-G', '-P', '-H', o.hash, '-i', this.work.write('content', content), '-o', out, '-p', ''];
    if (o.detached) args.push('-T');
    await runPeerOk('cmsutil', args);
    return this.work.read(out);
  }

  /** `cmsutil -D`: decodes and verifies every signer (signature, chain to a C-trusted CA). */
  async verify(der: Uint8Array, detachedContent?: Uint8Array): Promise<PeerVerdict> {
    const out = this.work.path('verified.out');
    const args = ['-D', '-d', this.db, '-i', this.work.write('sig.der', der), '-o', out, '-p', ''];
    if (detachedContent) args.push('-c', this.work.write('content', detachedContent));
    const r = await runPeer('cmsutil', args);
    let content: Buffer = Buffer.alloc(0);
    try { content = this.work.read(out); } catch { /* nothing written */ }
    return { verified: r.status === 0, content, detail: `exit ${r.status}: ${r.stderr.trim()}` };
  }

  /** `cmsutil -E`: NSS picks the cipher itself (AES-128-CBC) and RSA v1.5 key transport. */
  async encrypt(content: Uint8Array, recipients: Identity[]): Promise<Buffer> {
    const out = this.work.path('enveloped.der');
    const args = ['-E', '-d', this.db, '-i', this.work.write('content', content), '-o', out, '-p', ''];
    for (const r of recipients) args.push('-r', r.email);
    await runPeerOk('cmsutil', args);
    return this.work.read(out);
  }

  /** Returns the peer's refusal rather than throwing, so callers can assert on it. */
  async tryEncrypt(content: Uint8Array, recipients: Identity[]): Promise<{ ok: boolean; detail: string }> {
    const args = ['-E', '-d', this.db, '-i', this.work.write('content', content), '-o', this.work.path('enveloped.der'), '-p', ''];
    for (const r of recipients) args.push('-r', r.email);
    const r = await runPeer('cmsutil', args);
    return { ok: r.status === 0, detail: r.stderr.trim() };
  }

  /** `cmsutil -D` on an EnvelopedData: NSS finds the recipient key in its database. */
  async decrypt(der: Uint8Array): Promise<PeerDecryption> {
    const out = this.work.path('decrypted.out');
    const r = await runPeer('cmsutil', ['-D', '-d', this.db, '-p', '', '-i', this.work.write('env.der', der), '-o', out]);
    let content: Buffer = Buffer.alloc(0);
    try { content = this.work.read(out); } catch { /* nothing written */ }
    return { decrypted: r.status === 0, content, detail: `exit ${r.status}: ${r.stderr.trim()}` };
  }

  cleanup(): void {
    this.work.cleanup();
  }
}
