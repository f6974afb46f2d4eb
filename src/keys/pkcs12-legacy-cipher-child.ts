/**
 * The child process that runs RC2 and RC4 for legacy PKCS#12 files. Node keeps
 * those ciphers in OpenSSL's legacy provider, which only a process started with
 * `--openssl-legacy-provider` loads (worker threads refuse the flag), so
 * pkcs12-legacy-cipher.ts starts this file as
 * `<process.execPath> --openssl-legacy-provider <this file>` and talks to it over
 * its standard input and output. Nothing here implements a cipher: it is
 * node:crypto's createDecipheriv, in a process that has the provider.
 *
 * It receives derived keys and IVs, never the password. Input (stdin, until EOF),
 * one frame per block:
 *   u8 name length, cipher name (ASCII), u8 key length, key, u8 IV length, IV,
 *   u32 (big-endian) ciphertext length, ciphertext.
 * Output (stdout), one frame per block, in order:
 *   u8 status (0 decrypted, 1 could not be decrypted, 2 cipher unavailable),
 *   u32 plaintext length, plaintext.
 * A request it cannot read ends it with exit status 2 and nothing on stdout.
 * Imports only node built-ins, so it starts in the time node itself takes.
 */
import { createDecipheriv } from 'node:crypto';

/** The only ciphers it runs, with the key and IV lengths RFC 7292 appendix C gives them. */
const CIPHERS: Record<string, { key: number; iv: number }> = {
  'rc2-40-cbc': { key: 5, iv: 8 },
  'rc2-cbc': { key: 16, iv: 8 },
  'rc4-40': { key: 5, iv: 0 },
  rc4: { key: 16, iv: 0 },
};

/** Far above what the parent sends (it bounds a batch by the PKCS#12 file size). */
const MAX_INPUT_BYTES = 256 * 1024 * 1024;

function refuse(reason: string): never {
  process.stderr.write(`pkcs12-legacy-cipher-child: ${reason}\n`);
  process.exit(2);
}

function decryptFrames(input: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  const take = (n: number): Buffer => {
    if (at + n > input.length) refuse('truncated request');
    const b = input.subarray(at, at + n);
    at += n;
    return b;
  };
  while (at < input.length) {
    const name = take(take(1)[0]!).toString('latin1');
    const key = take(take(1)[0]!);
    const iv = take(take(1)[0]!);
    const data = take(take(4).readUInt32BE(0));
    const cipher = CIPHERS[name];
    if (!cipher || cipher.key !== key.length || cipher.iv !== iv.length) refuse(`cipher ${JSON.stringify(name)} with these lengths is not one this helper runs`);
    let status = 0;
    let plain = Buffer.alloc(0);
    try {
      const d = createDecipheriv(name, key, cipher.iv === 0 ? null : iv);
      plain = Buffer.concat([d.update(data), d.final()]);
    } catch (e) {
      // ERR_OSSL_EVP_UNSUPPORTED: this node could not load the legacy provider.
      status = (e as { code?: string }).code === 'ERR_OSSL_EVP_UNSUPPORTED' ? 2 : 1;
    }
    const head = Buffer.alloc(5);
    head[0] = status;
    head.writeUInt32BE(plain.length, 1);
    out.push(head, plain);
  }
  return out;
}

const chunks: Buffer[] = [];
let size = 0;
for await (const chunk of process.stdin) {
  size += (chunk as Buffer).length;
  if (size > MAX_INPUT_BYTES) refuse('request too large');
  chunks.push(chunk as Buffer);
}
const input = Buffer.concat(chunks);
for (const c of chunks) c.fill(0);
const answer = decryptFrames(input);
input.fill(0);
process.stdout.write(Buffer.concat(answer));
