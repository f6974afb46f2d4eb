/**
 * RC2 and RC4 for legacy PKCS#12 files (Windows certificate export, macOS Keychain,
 * `openssl pkcs12 -export -legacy`, NSS `pk12util -C/-c` with RC2 or RC4).
 *
 * Node has these ciphers only in OpenSSL's legacy provider, which a process loads
 * when started with `--openssl-legacy-provider`; worker threads refuse that flag
 * (ERR_WORKER_INVALID_EXEC_ARGV), and turning the provider on in this process would
 * turn it on for everything else it does. So the blocks go to a short-lived child
 * process: this node (process.execPath) running pkcs12-legacy-cipher-child.ts with
 * the flag. RC2 and RC4 are never written by hand.
 *
 * What crosses: the derived key and IV of each block and its ciphertext, on the
 * child's standard input (never the password, never argv or the environment, which
 * other local users can read). Bounded: the batch by `maxBytes` (LIMIT before the
 * child starts), the answer by what was sent, the child's life by `timeoutMs`
 * (killed with SIGKILL). The child's environment is empty but for OPENSSL_MODULES,
 * so NODE_OPTIONS and friends do not follow it.
 *
 * Callers batch: an import starts at most one child for its encrypted top-level
 * blocks and one for its shrouded key bags, and none for a file without RC2/RC4.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { KakitomeError } from '../errors.ts';

export type LegacyCipher = 'rc2-40-cbc' | 'rc2-cbc' | 'rc4-40' | 'rc4';

/** One block to decrypt: the cipher, its key and IV (empty for RC4) and the ciphertext. */
export interface LegacyDecryption {
  cipher: LegacyCipher;
  key: Uint8Array;
  iv: Uint8Array;
  data: Uint8Array;
}

/** Decrypts a batch of blocks, in order. Injected into importPkcs12 (tests, other runtimes). */
export type LegacyDecipher = (batch: readonly LegacyDecryption[]) => Buffer[];

/** The child program, beside this file (.ts in a checkout, .js in the built package). */
export const LEGACY_CIPHER_CHILD = fileURLToPath(new URL(`./pkcs12-legacy-cipher-child${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

export interface LegacyDecipherOptions {
  /** Most ciphertext bytes in one batch (default 4 MiB, the default PKCS#12 file bound). */
  maxBytes?: number;
  /** How long the child may take (default 15,000 ms; it needs about 50 ms on an idle machine). */
  timeoutMs?: number;
  /** The child's arguments after process.execPath (default: the legacy-provider flag and LEGACY_CIPHER_CHILD). */
  args?: readonly string[];
}

const DEFAULT_MAX_BYTES = 4 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 15_000;
const STATUS_HEAD = 5;

const helperFailed = (what: string): KakitomeError =>
  new KakitomeError('UNSUPPORTED_ALG', `This PKCS#12 file protects content with RC2/RC4, which node runs only in a helper process with OpenSSL's legacy provider, and that helper ${what}. Re-export the file with AES (openssl pkcs12 -export without -legacy) or 3DES (-certpbe PBE-SHA1-3DES).`);

function encodeBatch(batch: readonly LegacyDecryption[]): Buffer {
  const parts: Buffer[] = [];
  for (const b of batch) {
    const name = Buffer.from(b.cipher, 'latin1');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.data.length, 0);
    parts.push(Buffer.from([name.length]), name, Buffer.from([b.key.length]), Buffer.from(b.key), Buffer.from([b.iv.length]), Buffer.from(b.iv), len, Buffer.from(b.data));
  }
  const out = Buffer.concat(parts);
  for (const p of parts) p.fill(0);
  return out;
}

/** Reads the child's answer strictly: one frame per block, no plaintext longer than its ciphertext, nothing after. */
function decodeAnswer(out: Buffer, batch: readonly LegacyDecryption[]): Buffer[] {
  const plains: Buffer[] = [];
  let at = 0;
  for (const b of batch) {
    if (at + STATUS_HEAD > out.length) throw helperFailed('gave a short answer');
    const status = out[at]!;
    const length = out.readUInt32BE(at + 1);
    at += STATUS_HEAD;
    if (status === 2) throw helperFailed('could not load OpenSSL\'s legacy provider (node built without it, or its module missing: see OPENSSL_MODULES)');
    // Padding failure: the MAC, checked first, normally catches a wrong password; the same words as for 3DES or AES.
    if (status === 1) throw new KakitomeError('KEY_INVALID', 'The PKCS#12 content could not be decrypted: wrong password or damaged file.');
    if (status !== 0 || length > b.data.length || at + length > out.length) throw helperFailed('gave a malformed answer');
    plains.push(out.subarray(at, at + length));
    at += length;
  }
  if (at !== out.length) throw helperFailed('gave a malformed answer');
  return plains;
}

export function createLegacyDecipher(options: LegacyDecipherOptions = {}): LegacyDecipher {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const args = options.args ?? ['--openssl-legacy-provider', LEGACY_CIPHER_CHILD];
  return (batch) => {
    if (batch.length === 0) return [];
    const total = batch.reduce((n, b) => n + b.data.length, 0);
    if (total > maxBytes) throw new KakitomeError('LIMIT', `The PKCS#12 file holds ${total} bytes of RC2/RC4-encrypted content; at most ${maxBytes} are decrypted.`);
    const input = encodeBatch(batch);
    const env: NodeJS.ProcessEnv = process.env.OPENSSL_MODULES === undefined ? {} : { OPENSSL_MODULES: process.env.OPENSSL_MODULES };
    let r;
    try {
      r = spawnSync(process.execPath, args, {
        input,
        env,
        stdio: 'pipe',
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        // The answer is never longer than the question; stderr shares the bound.
        maxBuffer: total + STATUS_HEAD * batch.length + 64 * 1024,
        windowsHide: true,
      });
    } catch (e) {
      // Thrown rather than reported: spawning refused outright (the permission model, bad options).
      throw helperFailed(`could not be started (${(e as NodeJS.ErrnoException).code ?? 'spawn refused'})`);
    } finally {
      input.fill(0);
    }
    const code = (r.error as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ETIMEDOUT') throw helperFailed(`did not answer within ${timeoutMs} ms and was stopped`);
    if (code === 'ENOBUFS') throw helperFailed('answered more than it was asked and was stopped');
    if (r.error) throw helperFailed(`could not be started (${code ?? r.error.message})`);
    if (r.signal) throw helperFailed(`was ended by ${r.signal}`);
    if (r.status !== 0) throw helperFailed(`ended with exit status ${r.status}`);
    return decodeAnswer(r.stdout, batch);
  };
}
