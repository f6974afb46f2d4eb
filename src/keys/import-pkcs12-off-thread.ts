/**
 * importPkcs12 in a worker thread, for a server: reading a PKCS#12 file costs what
 * the file asks for, within importPkcs12's bounds (up to a few seconds of key
 * derivation, and for RC2/RC4 files a helper process waited for synchronously),
 * and none of it may stall the requests the server is answering meanwhile. The
 * same function with the same bounds as on the CLI's thread; the worker adds a
 * memory ceiling and a deadline of its own, and an error keeps its code.
 */
import { Worker } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import { errorFromData, KakitomeError, type ErrorCode, type Remedy } from '../errors.ts';
import { Certificate } from '../x509/certificate.ts';
import type { ImportPkcs12Options, Pkcs12Contents } from './import-pkcs12.ts';

export type Pkcs12ReadBounds = Pick<ImportPkcs12Options, 'maxBytes' | 'maxBags' | 'limits'>;

export interface Pkcs12WorkerTask {
  bytes: Uint8Array;
  password: string;
  options: Pkcs12ReadBounds;
}

export type Pkcs12WorkerAnswer =
  | { ok: true; key?: KeyObject; certificate?: Uint8Array; chain: Uint8Array[]; keys: KeyObject[]; certificates: Uint8Array[]; friendlyName?: string; skipped: string[] }
  | { ok: false; code?: ErrorCode; message: string; remedy?: Remedy };

export interface OffThreadOptions extends Pkcs12ReadBounds {
  /** The worker is stopped after this long (default 60 s; importPkcs12's own bounds end it much sooner). */
  timeoutMs?: number;
}

const WORKER = new URL(import.meta.url.endsWith('.ts') ? './import-pkcs12-worker.ts' : './import-pkcs12-worker.js', import.meta.url);

export function importPkcs12OffThread(bytes: Uint8Array, password: string, options: OffThreadOptions = {}): Promise<Pkcs12Contents> {
  const { timeoutMs = 60_000, ...rest } = options;
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER, { workerData: { bytes, password, options: rest } satisfies Pkcs12WorkerTask, resourceLimits: { maxOldGenerationSizeMb: 128 }, stdout: true, stderr: true });
    let settled = false;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      f();
    };
    const timer = setTimeout(() => settle(() => reject(new KakitomeError('LIMIT', `Reading the PKCS#12 file took longer than ${timeoutMs} ms; it was stopped.`))), timeoutMs);
    worker.once('message', (a: Pkcs12WorkerAnswer) => settle(() => {
      if (!a.ok) return reject(a.code ? errorFromData({ ...a, code: a.code }) : new Error(`PKCS#12 worker: ${a.message}`));
      resolve({
        ...(a.key ? { key: a.key } : {}),
        ...(a.certificate ? { certificate: Certificate.fromDer(a.certificate) } : {}),
        chain: a.chain.map((d) => Certificate.fromDer(d)),
        keys: a.keys,
        certificates: a.certificates.map((d) => Certificate.fromDer(d)),
        ...(a.friendlyName !== undefined ? { friendlyName: a.friendlyName } : {}),
        skipped: a.skipped,
      });
    }));
    worker.once('error', (e: Error & { code?: string }) => settle(() => reject(e.code === 'ERR_WORKER_OUT_OF_MEMORY'
      ? new KakitomeError('LIMIT', 'Reading the PKCS#12 file needed more memory than allowed; it was stopped.')
      : e)));
    worker.once('exit', (code) => settle(() => reject(new Error(`PKCS#12 worker exited (${code}) without an answer`))));
  });
}
