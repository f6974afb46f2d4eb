/**
 * Loading the administrator's trust anchors (RFC 5280 6.1.1 (d)): files holding a
 * PEM bundle or one DER certificate, and directories of such files (one level, like
 * OpenSSL's -CApath). Only the administrator's configuration reaches this function:
 * certificates carried in messages never become anchors (brief, "Safe verification").
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCertificates, type Certificate } from '../x509/certificate.ts';
import { KakitomeError } from '../errors.ts';
import type { TrustStore } from './types.ts';

/** Bounds: an anchor file larger than this is not a certificate bundle. */
const MAX_ANCHOR_FILE_BYTES = 16 * 1024 * 1024;
const MAX_ANCHORS = 10_000;
const CERT_FILE = /\.(pem|crt|cer|der)$/i;

/**
 * Reads trust anchors from files and directories. Duplicates (same DER) are
 * dropped. A file that is not a certificate fails with MALFORMED naming the file;
 * in a directory, files without a certificate extension (.pem .crt .cer .der) are skipped.
 *
 * @example const anchors = await loadTrustAnchors(['/etc/kakitome/anchors']);
 */
export async function loadTrustAnchors(paths: string[]): Promise<Certificate[]> {
  const seen = new Set<string>();
  const out: Certificate[] = [];
  const add = (certs: Certificate[]) => {
    for (const c of certs) {
      if (seen.has(c.fingerprint256)) continue;
      seen.add(c.fingerprint256);
      out.push(c);
      if (out.length > MAX_ANCHORS) throw new KakitomeError('LIMIT', `More than ${MAX_ANCHORS} trust anchors.`);
    }
  };
  for (const p of paths) {
    const s = await stat(p);
    if (s.isDirectory()) {
      const names = (await readdir(p)).filter((n) => CERT_FILE.test(n)).sort();
      for (const n of names) {
        const fp = join(p, n);
        if ((await stat(fp)).isFile()) add(await readCertificateFile(fp));
      }
    } else {
      add(await readCertificateFile(p));
    }
  }
  return out;
}

async function readCertificateFile(path: string): Promise<Certificate[]> {
  const s = await stat(path);
  if (s.size > MAX_ANCHOR_FILE_BYTES) throw new KakitomeError('LIMIT', `Trust anchor file ${path} is larger than ${MAX_ANCHOR_FILE_BYTES} bytes.`);
  const data = await readFile(path);
  try {
    return parseCertificates(data);
  } catch (e) {
    throw new KakitomeError('MALFORMED', `Trust anchor file ${path} holds no readable certificate.`, { cause: e });
  }
}

/** A TrustStore over a fixed list of anchors (and optional known intermediates). */
export function createStaticTrustStore(anchors: Certificate[], intermediates: Certificate[] = []): TrustStore {
  const bySubject = new Map<string, Certificate[]>();
  for (const c of intermediates) {
    const k = Buffer.from(c.subject).toString('hex');
    bySubject.set(k, [...(bySubject.get(k) ?? []), c]);
  }
  const frozen = [...anchors];
  return {
    anchors: async () => frozen,
    intermediates: async (subject) => bySubject.get(Buffer.from(subject).toString('hex')) ?? [],
  };
}
