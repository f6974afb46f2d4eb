/**
 * worker_threads body for the all-cores signing figure: signs 2 KB messages with
 * signData for `ms` milliseconds and posts how many it signed.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { parseCertificate } from '../src/x509/certificate.ts';
import { loadPrivateKey } from '../src/keys/private-key.ts';
import { signData } from '../src/cms/signed-data/sign.ts';
import { twoKilobyteMessage } from './small-messages.ts';

const { certPath, keyPath, ms, warmupMs } = workerData as { certPath: string; keyPath: string; ms: number; warmupMs: number };
const options = { signers: [{ certificate: parseCertificate(readFileSync(certPath)), key: loadPrivateKey(readFileSync(keyPath)) }] };
const msg = twoKilobyteMessage();
const spin = (budget: number): number => {
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < budget) {
    signData(msg, options);
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
