/**
 * The worker thread of export-pkcs12-off-thread.ts: writes one PKCS#12 file with
 * exportPkcs12 and posts it back, or the error's code and message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isKakitomeError, remedyOf } from '../errors.ts';
import { Certificate } from '../x509/certificate.ts';
import { exportPkcs12 } from './export-pkcs12.ts';
import type { Pkcs12ExportAnswer, Pkcs12ExportTask } from './export-pkcs12-off-thread.ts';

const task = workerData as Pkcs12ExportTask;
let answer: Pkcs12ExportAnswer;
try {
  const others = task.others.map((i) => ({ ...i, certificate: Certificate.fromDer(i.certificate) }));
  const file = exportPkcs12({ ...task, certificate: Certificate.fromDer(task.certificate), chain: task.chain.map((d) => Certificate.fromDer(d)), others });
  answer = { ok: true, file };
} catch (e) {
  answer = isKakitomeError(e) ? { ok: false, code: e.code, message: e.message, ...remedyOf(e) } : { ok: false, message: String((e as Error)?.message ?? e) };
}
parentPort!.postMessage(answer);
