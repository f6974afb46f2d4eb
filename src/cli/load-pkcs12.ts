/**
 * --p12: the recipient's keys and certificate from a PKCS#12 file (RFC 7292, modern
 * and legacy forms, via src/keys/import-pkcs12.ts; node:crypto cannot read PKCS#12).
 */
import { KakitomeError, isKakitomeError } from '../errors.ts';
import { importPkcs12 } from '../keys/import-pkcs12.ts';
import type { DecryptKey } from '../cms/recipients/recipient-options.ts';
import { readFileBounded } from './io.ts';

const MAX_PKCS12_BYTES = 4 * 1024 * 1024;

/** Every private key in the file; the one with a matching certificate first. */
export async function loadPkcs12File(option: string, path: string, passphrase: string | undefined): Promise<DecryptKey[]> {
  const data = await readFileBounded(path, `${option} ${path}`, MAX_PKCS12_BYTES);
  let contents;
  try {
    // No --pass: PKCS#12 files exported "without a password" use the empty one.
    contents = importPkcs12(data, passphrase ?? '');
  } catch (e) {
    if (isKakitomeError(e)) {
      throw new KakitomeError(e.code, `${option} ${path}: ${e.message}${passphrase === undefined ? ' (if the file has a password, give it with --pass)' : ''}`, { cause: e });
    }
    throw e;
  }
  const keys: DecryptKey[] = [];
  if (contents.key !== undefined) keys.push(contents.certificate ? { key: contents.key, certificate: contents.certificate } : { key: contents.key });
  for (const k of contents.keys) if (k !== contents.key) keys.push({ key: k });
  if (keys.length === 0) throw new KakitomeError('KEY_INVALID', `${option} ${path}: the PKCS#12 file holds no private key.`);
  return keys;
}
