/**
 * Certificates, keys and trust anchors named on the command line. Every failure
 * names the option and the file, so the user knows which argument to fix.
 */
import type { KeyObject } from 'node:crypto';
import { KakitomeError, isKakitomeError, remedyOf } from '../errors.ts';
import { parseCertificates, type Certificate } from '../x509/certificate.ts';
import { loadPrivateKey, keyMatchesCertificate } from '../keys/private-key.ts';
import { readFileBounded } from './io.ts';

/** Certificate and key files are small; anything bigger is the wrong file. */
const MAX_CREDENTIAL_BYTES = 16 * 1024 * 1024;

/** Re-throws with the option and file named, keeping the stable code. */
function withSource(option: string, path: string, e: unknown): never {
  if (isKakitomeError(e)) {
    const prefix = `${option} ${path}: `;
    throw new KakitomeError(e.code, e.message.startsWith(prefix) ? e.message : prefix + e.message, { cause: e, ...remedyOf(e) });
  }
  throw e;
}

/** All certificates in a PEM (any number of blocks) or DER file. */
export async function loadCertificateFile(option: string, path: string): Promise<Certificate[]> {
  try {
    const data = await readFileBounded(path, `${option} ${path}`, MAX_CREDENTIAL_BYTES);
    return parseCertificates(data);
  } catch (e) {
    return withSource(option, path, e);
  }
}

/** Exactly one certificate (the first of a PEM bundle, the rest are returned as extras). */
export async function loadLeafCertificate(option: string, path: string): Promise<{ leaf: Certificate; extra: Certificate[] }> {
  const all = await loadCertificateFile(option, path);
  const [leaf, ...extra] = all;
  if (leaf === undefined) throw new KakitomeError('MALFORMED', `${option} ${path}: no certificate in the file.`);
  return { leaf, extra };
}

/** A private key (PEM or DER; PKCS#8, PKCS#1 or SEC1; encrypted ones opened with the passphrase). */
export async function loadKeyFile(option: string, path: string, passphrase: string | undefined): Promise<KeyObject> {
  try {
    const data = await readFileBounded(path, `${option} ${path}`, MAX_CREDENTIAL_BYTES);
    return loadPrivateKey(data, passphrase);
  } catch (e) {
    return withSource(option, path, e);
  }
}

/** Refuses a key that is not the certificate's: the error would otherwise surface later as a bad signature. */
export function assertKeyMatches(key: KeyObject, cert: Certificate, keyOption: string, certOption: string): void {
  let matches: boolean;
  try {
    matches = keyMatchesCertificate(key, cert);
  } catch (e) {
    throw new KakitomeError('KEY_INVALID', `${keyOption}: the key cannot be compared with the ${certOption} certificate.`, { cause: e });
  }
  if (!matches) {
    throw new KakitomeError('KEY_INVALID', `${keyOption} does not belong to the ${certOption} certificate: give the private key that was certified with it.`);
  }
}
