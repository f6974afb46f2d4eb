/**
 * Driver for GnuPG's gpgsm 2.2 in batch mode, in a throwaway GNUPGHOME set up as
 * interop-notes.md says: loopback pinentry, no CRL checks, no dirmngr, and the test
 * CA in trustlist.txt with the "relax" flag.
 *
 * Keys: RSA identities are imported from legacy PKCS#12 (`openssl pkcs12 -export
 * -legacy`; gpgsm 2.2 reads nothing newer). Importing an EC PKCS#12 crashes gpgsm
 * 2.2.40 (SIGSEGV), so EC keys are written straight into the agent's key store as
 * canonical S-expressions named by their keygrip, which gpgsm reports after the
 * certificate is imported.
 */
import { createHash, createPrivateKey } from 'node:crypto';
import { mkdirSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { requirePeer, runPeer, runPeerOk, Workdir, type PeerResult } from './run-peer.ts';
import { opensslExportPkcs12 } from './openssl.ts';
import type { PeerDecryption, PeerVerdict } from './openssl.ts';
import type { Identity, TestPki } from '../helpers/pki.ts';

const PASS = 'interop';
const CURVE: Partial<Record<Identity['kind'], string>> = { p256: 'NIST P-256', p384: 'NIST P-384', p521: 'NIST P-521' };

export type GpgsmDigest = 'SHA256' | 'SHA384' | 'SHA512';
export type GpgsmCipher = 'AES128' | 'AES192' | 'AES256';

export class GpgsmPeer {
  readonly work: Workdir;
  readonly home: string;
  readonly env: NodeJS.ProcessEnv;

  private constructor(work: Workdir) {
    this.work = work;
    this.home = join(work.dir, 'gnupg');
    this.env = { ...process.env, GNUPGHOME: this.home, LC_ALL: 'C' };
  }

  /** A home trusting the test CA, holding the keys of `identities` (RSA or NIST EC). */
  static async create(pki: TestPki, identities: Identity[]): Promise<GpgsmPeer> {
    requirePeer('gpgsm', 'gpgsm');
    requirePeer('gpgconf', 'gpgconf');
    const work = new Workdir('gpgsm');
    const peer = new GpgsmPeer(work);
    mkdirSync(join(peer.home, 'private-keys-v1.d'), { recursive: true, mode: 0o700 });
    chmodSync(peer.home, 0o700);
    writeFileSync(join(peer.home, 'gpg-agent.conf'), 'allow-loopback-pinentry\n');
    writeFileSync(join(peer.home, 'gpgsm.conf'), 'disable-crl-checks\ndisable-dirmngr\n');
    const fpr = createHash('sha1').update(pki.caCert.der).digest('hex').toUpperCase().match(/../g)!.join(':');
    writeFileSync(join(peer.home, 'trustlist.txt'), `${fpr} S relax\n`);
    try {
      // Start the agent now and wait for it, rather than leave it to gpgsm's lazy start
      // inside the first import: one fewer moving part when the machine is loaded.
      await runPeerOk('gpgconf', ['--launch', 'gpg-agent'], { env: peer.env });
      await peer.gpgsm(['--import', pki.caPath]);
      for (const id of identities) {
        if (id.kind.startsWith('rsa')) {
          await peer.importRsaIdentity(id);
        } else {
          await peer.gpgsm(['--import', id.certPath]);
          await peer.writeEcKey(id);
        }
      }
    } catch (e) {
      await peer.cleanup(); // no agent left running, no home left behind
      throw e;
    }
    return peer;
  }

  /** Runs gpgsm in this home; a non-zero exit throws with gpgsm's stderr. */
  async gpgsm(args: string[], passphrase?: string): Promise<PeerResult> {
    const base = ['--batch', '--status-fd', '1'];
    if (passphrase !== undefined) base.push('--pinentry-mode', 'loopback', '--passphrase-fd', '0');
    return runPeerOk('gpgsm', [...base, ...args], { env: this.env, input: passphrase === undefined ? '' : `${passphrase}\n` });
  }

  /**
   * QUIRK (gpgsm 2.2.40): some of OpenSSL's legacy PKCS#12 files (1 in 150 measured) fail to import
   * ("decryption failed; trying charset ...", "data error at shrouded_key_bag.decrypted-text"),
   * depending only on the random salt: exporting the same key again fixes it. So the
   * driver re-exports (new salt) up to three times, keeping every error if all fail.
   */
  private async importRsaIdentity(id: Identity): Promise<void> {
    const errors: string[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      const p12 = await opensslExportPkcs12(this.work, id, PASS, true);
      try {
        await this.gpgsm(['--import', p12], PASS);
        return;
      } catch (e) {
        errors.push(String(e));
      }
    }
    throw new Error(`gpgsm could not import ${id.email} from three legacy PKCS#12 exports: ${errors.join(' / ')}`);
  }

  /** (private-key (ecc (curve NAME) (q POINT) (d SCALAR))) in canonical S-expression form. */
  private async writeEcKey(id: Identity): Promise<void> {
    const curve = CURVE[id.kind];
    if (!curve) throw new Error(`gpgsm driver: no curve name for ${id.kind}`);
    const r = await this.gpgsm(['--with-colons', '--with-keygrip', '--list-keys', id.email]);
    const grp = /^grp:(?:[^:]*:){8}([0-9A-F]{40}):/m.exec(r.stdout.toString('utf8'));
    if (!grp) throw new Error(`gpgsm driver: no keygrip for ${id.email}: ${r.stdout.toString()}`);
    const jwk = createPrivateKey(id.key.export({ format: 'pem', type: 'pkcs8' })).export({ format: 'jwk' });
    const b = (s: string | undefined) => Buffer.from(s ?? '', 'base64url');
    const atom = (v: string | Buffer) => {
      const x = Buffer.from(v);
      return Buffer.concat([Buffer.from(`${x.length}:`), x]);
    };
    const q = Buffer.concat([Buffer.of(4), b(jwk.x), b(jwk.y)]);
    const sexp = Buffer.concat([
      Buffer.from('('), atom('private-key'),
      Buffer.from('('), atom('ecc'),
      Buffer.from('('), atom('curve'), atom(curve), Buffer.from(')'),
      Buffer.from('('), atom('q'), atom(q), Buffer.from(')'),
      Buffer.from('('), atom('d'), atom(b(jwk.d)), Buffer.from(')'),
      Buffer.from('))'),
    ]);
    writeFileSync(join(this.home, 'private-keys-v1.d', `${grp[1]}.key`), sexp, { mode: 0o600 });
  }

  /**
   * `gpgsm --sign` (encapsulated) or `--detach-sign`, one or more signers (-u each).
   * `includeCerts` is gpgsm's --include-certs (default -1 here, all but the root; 0 leaves
   * every certificate out, the signer's own too, as KMail users' messages show).
   */
  async sign(content: Uint8Array, signers: Identity[], o: { detached: boolean; digest?: GpgsmDigest; includeCerts?: number }): Promise<Buffer> {
    const out = this.work.path('signed.der');
    const args = ['--include-certs', String(o.includeCerts ?? -1), '--digest-algo', o.digest ?? 'SHA256'];
    for (const s of signers) args.push('-u', s.email);
    args.push(o.detached ? '--detach-sign' : '--sign', '-o', out, this.work.write('content', content));
    await this.gpgsm(args, PASS);
    return this.work.read(out);
  }

  /**
   * `gpgsm --verify`: good only with a GOODSIG per signer, TRUST_FULLY and no
   * BADSIG/ERRSIG/TRUST_NEVER/TRUST_UNDEFINED status line.
   */
  async verify(der: Uint8Array, detachedContent?: Uint8Array): Promise<PeerVerdict & { status: string[] }> {
    const out = this.work.path('verified.out');
    const sig = this.work.write('sig.der', der);
    const args = ['--batch', '--status-fd', '1', '--verify', sig];
    if (detachedContent) args.push(this.work.write('content', detachedContent));
    else args.splice(3, 0, '-o', out);
    const r = await runPeer('gpgsm', args, { env: this.env });
    const status = r.stdout.toString('utf8').split('\n').filter((l) => l.startsWith('[GNUPG:] '));
    const has = (kw: string) => status.some((l) => l.startsWith(`[GNUPG:] ${kw}`));
    const verified = r.status === 0 && has('GOODSIG') && has('TRUST_FULLY')
      && !has('BADSIG') && !has('ERRSIG') && !has('TRUST_NEVER') && !has('TRUST_UNDEFINED');
    let content: Buffer = Buffer.alloc(0);
    if (!detachedContent) try { content = this.work.read(out); } catch { /* nothing written */ }
    return { verified, content, status, detail: `exit ${r.status}: ${status.join(' | ')} ${r.stderr.trim()}` };
  }

  /** `gpgsm --encrypt`: RSA v1.5 key transport, AES-CBC (2.2 writes nothing else). */
  async encrypt(content: Uint8Array, recipients: Identity[], cipher: GpgsmCipher): Promise<Buffer> {
    const out = this.work.path('enveloped.der');
    const args = ['--cipher-algo', cipher];
    for (const r of recipients) args.push('-r', r.email);
    args.push('--encrypt', '-o', out, this.work.write('content', content));
    await this.gpgsm(args);
    return this.work.read(out);
  }

  /** Returns gpgsm's refusal rather than throwing (e.g. EC recipients). */
  async tryEncrypt(content: Uint8Array, recipients: Identity[]): Promise<{ ok: boolean; detail: string }> {
    const args = ['--batch', '--status-fd', '1'];
    for (const r of recipients) args.push('-r', r.email);
    args.push('--encrypt', '-o', this.work.path('enveloped.der'), this.work.write('content', content));
    const r = await runPeer('gpgsm', args, { env: this.env });
    return { ok: r.status === 0, detail: `${r.stdout.toString().trim()} ${r.stderr.trim()}` };
  }

  async decrypt(der: Uint8Array): Promise<PeerDecryption> {
    const out = this.work.path('decrypted.out');
    const r = await runPeer('gpgsm', ['--batch', '--status-fd', '1', '--pinentry-mode', 'loopback', '--passphrase-fd', '0', '-o', out, '--decrypt', this.work.write('env.der', der)], { env: this.env, input: `${PASS}\n` });
    let content: Buffer = Buffer.alloc(0);
    try { content = this.work.read(out); } catch { /* nothing written */ }
    return { decrypted: r.status === 0, content, detail: `exit ${r.status}: ${r.stderr.trim()}` };
  }

  /** Stops this home's gpg-agent (only ours: gpgconf addresses it by GNUPGHOME) and removes the home. */
  async cleanup(): Promise<void> {
    await runPeer('gpgconf', ['--kill', 'all'], { env: this.env });
    // gpgconf returns before the agent has exited; it removes its socket last.
    for (let i = 0; i < 40 && existsSync(join(this.home, 'S.gpg-agent')); i++) await new Promise((r) => setTimeout(r, 50));
    this.work.cleanup();
  }
}
