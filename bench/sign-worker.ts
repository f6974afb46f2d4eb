/**
 * worker_threads body for the all-cores signing figures: signs 2 KB messages for
 * `ms` milliseconds and posts how many it signed. With certPath/keyPath: CMS
 * signData with that identity; with `raw`: one-shot crypto.sign (SHA-256) with a
 * fresh RSA-2048 or P-256 key, the raw limit (bench/serve-sign.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { generateKeyPairSync, sign } from 'node:crypto';
import { parseCertificate } from '../src/x509/certificate.ts';
import { loadPrivateKey } from '../src/keys/private-key.ts';
import { signData } from '../src/cms/signed-data/sign.ts';
import { twoKilobyteMessage } from './small-messages.ts';

const { certPath, keyPath, raw, ms, warmupMs } = workerData as { certPath?: string; keyPath?: string; raw?: 'rsa2048' | 'p256'; ms: number; warmupMs: number };
const msg = twoKilobyteMessage();
let op: () => unknown;
if (raw) {
  const { privateKey } = raw === 'rsa2048' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  op = () => sign('sha256', msg, privateKey);
} else {
  const options = { signers: [{ certificate: parseCertificate(readFileSync(certPath!)), key: loadPrivateKey(readFileSync(keyPath!)) }] };
  op = () => signData(msg, options);
}
const spin = (budget: number): number => {
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < budget) {
    op();
    n++;
  }
  return n;
};
spin(warmupMs);
// Start together: wait for the go signal so all workers measure the same window.
parentPort!.once('message', () => {
  const t0 = performance.now();
  const n = spin(ms);
  parentPort!.postMessage({ n, seconds: (performance.now() - t0) / 1000 });
});
parentPort!.postMessage('ready');
