/**
 * Driver for Bouncy Castle 1.72 through test/peers/BcPeer.java, run as a single-file
 * program (`java -cp CP BcPeer.java`, no build step). A JVM costs about a second to
 * start and compile, so callers queue jobs on a BcBatch and run them all in one JVM.
 */
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { requirePeer, runPeerOk, type Workdir } from './run-peer.ts';
import type { Identity } from '../helpers/pki.ts';

const SOURCE = fileURLToPath(new URL('./BcPeer.java', import.meta.url));

/** Order matters: jakarta-mail before bcjmail, or a ServiceConfigurationError (interop-notes.md). */
const JARS: Array<[jar: string, pkg: string]> = [
  ['jakarta-mail.jar', 'libjakarta-mail-java'],
  ['jakarta-activation.jar', 'libjakarta-activation-java'],
  ['bcprov.jar', 'libbcprov-java'],
  ['bcpkix.jar', 'libbcpkix-java'],
  ['bcutil.jar', 'libbcutil-java'],
  ['bcjmail.jar', 'libbcjmail-java'],
];

export function bcClasspath(): string {
  requirePeer('java', 'default-jre-headless');
  return JARS.map(([jar, pkg]) => {
    const p = `/usr/share/java/${jar}`;
    if (!existsSync(p)) throw new Error(`Bouncy Castle peer: ${p} is missing: apt-get install ${pkg} (.ci/run installs it).`);
    return p;
  }).join(':');
}

/** JCA signature names BcPeer passes to JcaContentSignerBuilder. */
export type BcSignatureAlgorithm =
  | 'SHA256withRSA' | 'SHA384withRSA' | 'SHA512withRSA'
  | 'SHA256withRSAandMGF1' | 'SHA384withRSAandMGF1' | 'SHA512withRSAandMGF1'
  | 'SHA256withECDSA' | 'SHA384withECDSA' | 'SHA512withECDSA'
  | 'Ed25519' | 'Ed448';
export type BcCipher = 'aes128-cbc' | 'aes192-cbc' | 'aes256-cbc' | 'aes128-gcm' | 'aes192-gcm' | 'aes256-gcm' | 'chacha20-poly1305';
export type BcRecipientMode = 'rsa15' | 'oaep-sha1' | 'oaep-sha256' | 'ecdh-sha1' | 'ecdh-sha256' | 'ecdh-sha384' | 'ecdh-sha512';

export interface BcOutcome {
  ok: boolean;
  /** BcPeer's info (OK) or exception (ERR). */
  info: string;
  /** The file the job wrote (signature, envelope, verified or decrypted content). */
  output: Buffer;
}

interface Job {
  id: string;
  line: string[];
  out: string | undefined;
  resolve: (o: BcOutcome) => void;
}

/** Jobs queued now, executed by one JVM in `run()`; each job's promise settles then. */
export class BcBatch {
  readonly #w: Workdir;
  readonly #jobs: Job[] = [];

  constructor(w: Workdir) {
    this.#w = w;
  }

  #add(kind: string, args: string[], out: string | undefined): Promise<BcOutcome> {
    return new Promise((resolve) => {
      const id = `j${this.#jobs.length}`;
      this.#jobs.push({ id, line: [kind, id, ...args], out, resolve });
    });
  }

  sign(content: Uint8Array, signers: Array<{ id: Identity; alg: BcSignatureAlgorithm }>, o: { detached: boolean }): Promise<BcOutcome> {
    const out = this.#w.path('bc-signed.der');
    const args = [this.#w.write('content', content), out, o.detached ? 'detached' : 'encapsulated'];
    for (const s of signers) args.push(s.alg, s.id.certPath, s.id.keyPath);
    return this.#add('sign', args, out);
  }

  /** Verifies every signer (signature, issued by `caPath`, valid now); writes encapsulated content. */
  verify(der: Uint8Array, o: { caPath: string; detachedContent?: Uint8Array }): Promise<BcOutcome> {
    const out = o.detachedContent ? undefined : this.#w.path('bc-verified.out');
    const content = o.detachedContent ? this.#w.write('content', o.detachedContent) : '-';
    return this.#add('verify', [this.#w.write('sig.der', der), content, o.caPath, out ?? '-'], out);
  }

  encrypt(content: Uint8Array, recipients: Array<{ id: Identity; mode: BcRecipientMode }>, cipher: BcCipher): Promise<BcOutcome> {
    const out = this.#w.path('bc-enveloped.der');
    const args = [this.#w.write('content', content), out, cipher];
    for (const r of recipients) args.push(r.mode, r.id.certPath);
    return this.#add('encrypt', args, out);
  }

  decrypt(der: Uint8Array, id: Identity): Promise<BcOutcome> {
    const out = this.#w.path('bc-decrypted.out');
    return this.#add('decrypt', [this.#w.write('env.der', der), out, id.certPath, id.keyPath], out);
  }

  /** Adds a countersignature (RFC 5652 11.4) by `id` to the first signer of `der`; the countersigner's certificate joins the message's. */
  countersign(der: Uint8Array, id: Identity, alg: BcSignatureAlgorithm): Promise<BcOutcome> {
    const out = this.#w.path('bc-countersigned.der');
    return this.#add('countersign', [this.#w.write('sig.der', der), out, alg, id.certPath, id.keyPath], out);
  }

  /** CompressedData (RFC 3274, zlib) by CMSCompressedDataStreamGenerator. */
  compress(content: Uint8Array): Promise<BcOutcome> {
    const out = this.#w.path('bc-compressed.der');
    return this.#add('compress', [this.#w.write('content', content), out], out);
  }

  /** CMSCompressedData.getContent(ZlibExpanderProvider); info: the compression algorithm OID. */
  uncompress(der: Uint8Array): Promise<BcOutcome> {
    const out = this.#w.path('bc-uncompressed.out');
    return this.#add('uncompress', [this.#w.write('compressed.der', der), out], out);
  }

  /** Runs every queued job in one JVM; a job that BcPeer did not report fails the run. */
  async run(): Promise<void> {
    const jobs = this.#jobs.splice(0);
    if (!jobs.length) return;
    const file = this.#w.write('jobs.tsv', jobs.map((j) => j.line.join('\t')).join('\n') + '\n');
    const r = await runPeerOk('java', ['-cp', bcClasspath(), SOURCE, file], { timeoutMs: 120_000 });
    const results = new Map<string, { ok: boolean; info: string }>();
    for (const line of r.stdout.toString('utf8').split('\n')) {
      const [id, verdict, ...info] = line.split('\t');
      if (id && (verdict === 'OK' || verdict === 'ERR')) results.set(id, { ok: verdict === 'OK', info: info.join('\t') });
    }
    for (const j of jobs) {
      const res = results.get(j.id);
      if (!res) throw new Error(`BcPeer did not report job ${j.id} (${j.line[0]}): ${r.stderr}`);
      let output: Buffer = Buffer.alloc(0);
      if (res.ok && j.out) output = this.#w.read(j.out);
      j.resolve({ ...res, output });
    }
  }
}
