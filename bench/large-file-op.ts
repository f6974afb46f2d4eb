/**
 * Child process for the large-content benchmark: runs one Kakitome file operation
 * so that its wall time and peak RSS can be measured from outside, exactly like the
 * `openssl cms` process beside it.
 *
 *   node bench/large-file-op.ts sign|verify|encrypt|decrypt IN OUT CERT.pem KEY.pem
 */
import { readFileSync } from 'node:fs';
import { parseCertificate } from '../src/x509/certificate.ts';
import { loadPrivateKey } from '../src/keys/private-key.ts';
import { signFile } from '../src/cms/stream/sign-stream.ts';
import { verifyFile } from '../src/cms/stream/verify-stream.ts';
import { encryptFile } from '../src/cms/stream/encrypt-stream.ts';
import { decryptFile } from '../src/cms/stream/decrypt-stream.ts';

const [op, inPath, outPath, certPath, keyPath] = process.argv.slice(2);
if (!op || !inPath || !outPath || !certPath || !keyPath) {
  console.error('usage: large-file-op.ts sign|verify|encrypt|decrypt IN OUT CERT KEY');
  process.exit(2);
}
const certificate = parseCertificate(readFileSync(certPath));
const key = loadPrivateKey(readFileSync(keyPath));
const t0 = performance.now();
switch (op) {
  case 'sign':
    await signFile(inPath, outPath, { signers: [{ certificate, key }] });
    break;
  case 'verify': {
    const v = await verifyFile(inPath, { contentPath: outPath });
    if (v.status !== 'valid') throw new Error(`verification failed: ${v.message}`);
    break;
  }
  case 'encrypt':
    await encryptFile(inPath, outPath, { recipients: [{ certificate, rsaPadding: 'oaep' }], contentEncryption: 'aes-256-gcm' });
    break;
  case 'decrypt':
    await decryptFile(inPath, outPath, { keys: [{ key, certificate }] });
    break;
  default:
    console.error(`unknown operation ${op}`);
    process.exit(2);
}
process.stdout.write(JSON.stringify({ op, seconds: (performance.now() - t0) / 1000, maxRssMiB: process.resourceUsage().maxRSS / 1024 }) + '\n');
