/**
 * Child process for the large-message benchmark: one message-level streaming
 * operation, so its wall time and peak RSS are measured from outside like the
 * `openssl smime` process beside it.
 *
 *   node bench/large-message-op.ts sign|encrypt|verify|decrypt IN OUT CERT.pem KEY.pem CA.pem
 *
 * There is no message-level streaming decrypt yet: 'decrypt' strips the header of
 * the application/pkcs7-mime message, base64-decodes its body as it streams and
 * hands the DER to the CMS-level decryptStream (src/cms/stream/decrypt-stream.ts).
 */
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { parseCertificate } from '../src/x509/certificate.ts';
import { loadPrivateKey } from '../src/keys/private-key.ts';
import { signMessageStream } from '../src/smime/sign-message-stream.ts';
import { encryptMessageStream } from '../src/smime/encrypt-message-stream.ts';
import { verifyMessageStream } from '../src/smime/verify-message-stream.ts';
import { createSignerValidator } from '../src/pki/create-signer-validator.ts';
import { decryptStream } from '../src/cms/stream/decrypt-stream.ts';

const [op, inPath, outPath, certPath, keyPath, caPath] = process.argv.slice(2);
if (!op || !inPath || !outPath || !certPath || !keyPath || !caPath) {
  console.error('usage: large-message-op.ts sign|encrypt|verify|decrypt IN OUT CERT KEY CA');
  process.exit(2);
}
const certificate = parseCertificate(readFileSync(certPath));
const key = loadPrivateKey(readFileSync(keyPath));

/** The body of a MIME message (after the first empty line), base64-decoded in 4-character groups as it streams. */
async function* base64Body(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let head: Buffer | undefined = Buffer.alloc(0);
  let carry = '';
  for await (const chunk of chunks) {
    let data = chunk;
    if (head) {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 1 << 20) throw new Error('no end of header within 1 MiB');
        continue;
      }
      data = head.subarray(end + 4);
      head = undefined;
    }
    const text = carry + data.toString('latin1').replace(/[\r\n]/g, '');
    const whole = text.length - (text.length % 4);
    carry = text.slice(whole);
    if (whole) yield Buffer.from(text.slice(0, whole), 'base64');
  }
  if (carry) yield Buffer.from(carry, 'base64');
}

// The defaults refuse messages and CMS objects over 512 MiB (src/limits.ts); the bench raises them for its 1 GiB input.
const limits = { maxMessageBytes: 2 ** 31, maxCmsBytes: 2 ** 31 };
const t0 = performance.now();
const input = createReadStream(inPath, { highWaterMark: 1 << 20 });
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
  case 'decrypt':
    await decryptStream(base64Body(input), output, { keys: [{ key, certificate }], limits });
    break;
  default:
    console.error(`unknown operation ${op}`);
    process.exit(2);
}
if (!output.writableFinished) await new Promise<void>((resolve) => output.once('finish', () => resolve()));
process.stdout.write(JSON.stringify({ op, seconds: (performance.now() - t0) / 1000, maxRssMiB: process.resourceUsage().maxRSS / 1024 }) + '\n');
