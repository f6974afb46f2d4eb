/**
 * exportPkcs12 in a worker thread, for a server: a modern PKCS#12 costs its
 * password-based key derivation (600,000 PBKDF2-SHA256 iterations for the key and
 * as many for the MAC: about a second of CPU, several on a loaded machine), which
 * on a serving thread stalled every other request meanwhile (the console's
 * /me/certificate; the keep-alive timers of the thread's idle connections then
 * fired late and clients met resets reusing them). The same function with the
 * same checks; the key crosses as a KeyObject (node clones it), certificates as DER.
 */
import { Worker } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import { errorFromData, type ErrorCode, type Remedy } from '../errors.ts';
import type { ExportPkcs12Options } from './export-pkcs12.ts';

export interface Pkcs12ExportTask extends Omit<ExportPkcs12Options, 'certificate' | 'chain' | 'key' | 'others'> {
  key: KeyObject;
  certificate: Uint8Array;
  chain: Uint8Array[];
  others: Array<{ key: KeyObject; certificate: Uint8Array; friendlyName?: string }>;
}

export type Pkcs12ExportAnswer = { ok: true; file: Uint8Array } | { ok: false; code?: ErrorCode; message: string; remedy?: Remedy };

const WORKER = new URL(import.meta.url.endsWith('.ts') ? './export-pkcs12-worker.ts' : './export-pkcs12-worker.js', import.meta.url);

export function exportPkcs12OffThread(o: ExportPkcs12Options): Promise<Buffer> {
  const others = (o.others ?? []).map((i) => ({ key: i.key, certificate: i.certificate.der, ...(i.friendlyName !== undefined ? { friendlyName: i.friendlyName } : {}) }));
  const task: Pkcs12ExportTask = { ...o, certificate: o.certificate.der, chain: (o.chain ?? []).map((c) => c.der), others };
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER, { workerData: task, resourceLimits: { maxOldGenerationSizeMb: 128 }, stdout: true, stderr: true });
    let settled = false;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      void worker.terminate();
      f();
    };
    worker.once('message', (a: Pkcs12ExportAnswer) => settle(() => {
      if (!a.ok) return reject(a.code ? errorFromData({ ...a, code: a.code }) : new Error(`PKCS#12 export worker: ${a.message}`));
      resolve(Buffer.from(a.file.buffer, a.file.byteOffset, a.file.byteLength));
    }));
    worker.once('error', (e) => settle(() => reject(e)));
    worker.once('exit', (code) => settle(() => reject(new Error(`PKCS#12 export worker exited (${code}) without an answer`))));
  });
}
