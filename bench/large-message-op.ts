/**
 * Child process for the large-message benchmark: one message-level streaming
 * operation, so its wall time and peak RSS are measured from outside like the
 * `openssl smime` process beside it.
 *
 *   node bench/large-message-op.ts sign|encrypt|verify|decrypt IN OUT CERT.pem KEY.pem CA.pem
 *
 * Each operation imports only its own modules, as a command-line tool would: the
 * module graph is a large part of a Node process's memory (about 65 MiB for
 * decryption alone, 76 MiB for all four), and the target is peak RSS < 128 MiB.
 *
 * Verify and decrypt read their input with readFileChunks (three reused 1 MiB
 * buffers: both finish with each chunk before asking for the one after next); sign
 * and encrypt read with fs.createReadStream, and so do verify and decrypt when
 * BENCH_INPUT=stream (BENCH_HWM sets its highWaterMark, default 1 MiB). A fresh
 * buffer per chunk is freed late by V8, which costs verify up to ~45 MiB more at
 * peak (docs/performance.md).
 */
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { parseCertificate } from '../src/x509/certificate.ts';
import { loadPrivateKey } from '../src/keys/private-key.ts';
import { readFileChunks } from '../src/cms/stream/read-file-chunks.ts';

const [op, inPath, outPath, certPath, keyPath, caPath] = process.argv.slice(2);
if (!op || !inPath || !outPath || !certPath || !keyPath || !caPath) {
  console.error('usage: large-message-op.ts sign|encrypt|verify|decrypt IN OUT CERT KEY CA');
  process.exit(2);
}
const certificate = parseCertificate(readFileSync(certPath));
const key = loadPrivateKey(readFileSync(keyPath));

const t0 = performance.now();
const c0 = process.cpuUsage();
// readFileChunks only where the consumer is known to finish with each chunk before the next-but-one
// (verifyMessageStream, decryptMessageStream); the signer and encryptor get fresh chunks.
const reusable = (op === 'verify' || op === 'decrypt') && process.env.BENCH_INPUT !== 'stream';
const input = reusable ? readFileChunks(inPath, 1 << 20) : createReadStream(inPath, { highWaterMark: Number(process.env.BENCH_HWM ?? 1 << 20) });
const output = createWriteStream(outPath);
switch (op) {
  case 'sign': {
    // The in-memory limits (512 MiB) still bound the streaming signer and encryptor: raised for the 1 GiB input.
    const { signMessageStream } = await import('../src/smime/sign-message-stream.ts');
    await signMessageStream(input, output, { signers: [{ certificate, key }], limits: { maxMessageBytes: 2 ** 31, maxCmsBytes: 2 ** 31 } });
    break;
  }
  case 'encrypt': {
    const { encryptMessageStream } = await import('../src/smime/encrypt-message-stream.ts');
    await encryptMessageStream(input, output, { recipients: [{ certificate, rsaPadding: 'oaep' }], contentEncryption: 'aes-256-gcm', limits: { maxMessageBytes: 2 ** 31, maxCmsBytes: 2 ** 31 } });
    break;
  }
  case 'verify': {
    // Default limits: the streaming readers are bounded by maxStreamMessageBytes (16 GiB).
    const { verifyMessageStream } = await import('../src/smime/verify-message-stream.ts');
    const { createSignerValidator } = await import('../src/pki/create-signer-validator.ts');
    const validateSigner = createSignerValidator({ anchors: [parseCertificate(readFileSync(caPath))], revocation: { mode: 'off' }, fetchCaIssuers: false });
    const v = await verifyMessageStream(input, { validateSigner, output });
    if (v.status !== 'trusted') throw new Error(`verification: ${v.status} ${v.summary}`);
    break;
  }
  case 'decrypt': {
    const { decryptMessageStream } = await import('../src/smime/decrypt-message-stream.ts');
    const v = await decryptMessageStream(input, { keys: [{ key, certificate }], output });
    if (!v.layers.some((l) => l.decrypted)) throw new Error(`decryption: ${v.status} ${v.summary}`);
    break;
  }
  default:
    console.error(`unknown operation ${op}`);
    process.exit(2);
}
if (!output.writableFinished) await new Promise<void>((resolve) => output.once('finish', () => resolve()));
const cpu = process.cpuUsage(c0);
process.stdout.write(JSON.stringify({ op, seconds: (performance.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6, maxRssMiB: process.resourceUsage().maxRSS / 1024 }) + '\n');
