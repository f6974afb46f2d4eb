/**
 * worker_threads body for the all-cores message figures: signs (signMessage) or
 * verifies with trust validation (verifyMessage + createSignerValidator, warm
 * caches, revocation off) 2 KB messages for `ms` milliseconds and posts the count;
 * `raw` is the reference, crypto.sign of the same 2 KB with the same key.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseCertificate } from '../src/x509/certificate.ts';
import { loadPrivateKey } from '../src/keys/private-key.ts';
import { signMessage } from '../src/smime/sign-message.ts';
import { verifyMessage } from '../src/smime/verify-message.ts';
import { createSignerValidator } from '../src/pki/create-signer-validator.ts';
import { twoKilobyteEmail } from './messages.ts';

const { op, certPath, keyPath, caPath, email, ms, warmupMs } = workerData as { op: 'sign' | 'verify' | 'raw'; certPath: string; keyPath: string; caPath: string; email: string; ms: number; warmupMs: number };
const options = { signers: [{ certificate: parseCertificate(readFileSync(certPath)), key: loadPrivateKey(readFileSync(keyPath)) }] };
const msg = twoKilobyteEmail(email);
const signed = signMessage(msg, options);
const verifyOptions = { validateSigner: createSignerValidator({ anchors: [parseCertificate(readFileSync(caPath))], revocation: { mode: 'off' }, fetchCaIssuers: false }) };
const once = async (): Promise<void> => {
  if (op === 'raw') {
    sign('sha256', msg, options.signers[0]!.key);
    return;
  }
  if (op === 'sign') {
    signMessage(msg, options);
    return;
  }
  const v = await verifyMessage(signed, verifyOptions);
  if (v.status !== 'trusted') throw new Error(`bench worker: verdict ${v.status}`);
};
const spin = async (budget: number): Promise<number> => {
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < budget) {
    await once();
    n++;
  }
  return n;
};
await spin(warmupMs);
// Start together: wait for the go signal so all workers measure the same window.
parentPort!.once('message', () => {
  void (async () => {
    const t0 = performance.now();
    const n = await spin(ms);
    parentPort!.postMessage({ n, seconds: (performance.now() - t0) / 1000 });
  })();
});
parentPort!.postMessage('ready');
