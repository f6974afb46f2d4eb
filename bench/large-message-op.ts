/**
 * Child process for the large-message benchmark: one message-level streaming
 * operation, so its wall time and peak RSS are measured from outside like the
 * `openssl smime` process beside it.
 *
 *   node bench/large-message-op.ts sign|encrypt|verify|decrypt IN OUT CERT.pem KEY.pem CA.pem
 */
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { parseCertificate } from '../src/x509/certificate.ts';
import { loadPrivateKey } from '../src/keys/private-key.ts';
import { signMessageStream } from '../src/smime/sign-message-stream.ts';
import { encryptMessageStream } from '../src/smime/encrypt-message-stream.ts';
import { verifyMessageStream } from '../src/smime/verify-message-stream.ts';
import { createSignerValidator } from '../src/pki/create-signer-validator.ts';
import { decryptMessageStream } from '../src/smime/decrypt-message-stream.ts';
import { readFileChunks } from '../src/cms/stream/read-file-chunks.ts';

const [op, inPath, outPath, certPath, keyPath, caPath] = process.argv.slice(2);
if (!op || !inPath || !outPath || !certPath || !keyPath || !caPath) {
  console.error('usage: large-message-op.ts sign|encrypt|verify|decrypt IN OUT CERT KEY CA');
  process.exit(2);
}
const certificate = parseCertificate(readFileSync(certPath));
const key = loadPrivateKey(readFileSync(keyPath));

// The defaults refuse messages and CMS objects over 512 MiB (src/limits.ts); the bench raises them for its 1 GiB input.
const limits = { maxMessageBytes: 2 ** 31, maxCmsBytes: 2 ** 31 };
const t0 = performance.now();
const input = process.env.BENCH_INPUT === 'chunks' ? readFileChunks(inPath, 1 << 20) : createReadStream(inPath, { highWaterMark: Number(process.env.BENCH_HWM ?? 1 << 20) });
const output = createWriteStream(outPath);
switch (op) {
  case 'sign':
    await signMessageStream(input, output, { signers: [{ certificate, key }], limits });
    break;
  case 'encrypt':
    await encryptMessageStream(input, output, { recipients: [{ certificate, rsaPadding: 'oaep' }], contentEncryption: 'aes-256-gcm', limits });
    break;
  case 'verify': {
    const validateSigner = createSignerValidator({ anchors: [parseCertificate(readFileSync(caPath))], revocation: { mode: 'off' }, fetchCaIssuers: false });
    const v = await verifyMessageStream(input, { validateSigner, output, limits });
    if (v.status !== 'trusted') throw new Error(`verification: ${v.status} ${v.summary}`);
    break;
  }
  case 'decrypt': {
    const v = await decryptMessageStream(input, { keys: [{ key, certificate }], output, limits });
    if (!v.encryption?.authenticated) throw new Error(`decryption: ${v.status} ${v.summary}`);
    break;
  }
  default:
    console.error(`unknown operation ${op}`);
    process.exit(2);
}
if (!output.writableFinished) await new Promise<void>((resolve) => output.once('finish', () => resolve()));
process.stdout.write(JSON.stringify({ op, seconds: (performance.now() - t0) / 1000, maxRssMiB: process.resourceUsage().maxRSS / 1024 }) + '\n');
