/**
 * The worker thread of import-pkcs12-off-thread.ts: reads one PKCS#12 file with
 * importPkcs12 (every bound of the file's own reading applies) and posts back its
 * contents, keys as KeyObjects (node clones them between threads) and
 * certificates as DER, or the error's code and message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isKakitomeError, remedyOf } from '../errors.ts';
import { importPkcs12 } from './import-pkcs12.ts';
import type { Pkcs12WorkerAnswer, Pkcs12WorkerTask } from './import-pkcs12-off-thread.ts';

const task = workerData as Pkcs12WorkerTask;
let answer: Pkcs12WorkerAnswer;
try {
  const p = importPkcs12(task.bytes, task.password, task.options);
  answer = {
    ok: true,
    ...(p.key ? { key: p.key } : {}),
    ...(p.certificate ? { certificate: p.certificate.der } : {}),
    chain: p.chain.map((c) => c.der),
    keys: p.keys,
    certificates: p.certificates.map((c) => c.der),
    ...(p.friendlyName !== undefined ? { friendlyName: p.friendlyName } : {}),
    skipped: p.skipped,
  };
} catch (e) {
  answer = isKakitomeError(e) ? { ok: false, code: e.code, message: e.message, ...remedyOf(e) } : { ok: false, message: String((e as Error)?.message ?? e) };
}
parentPort!.postMessage(answer);
