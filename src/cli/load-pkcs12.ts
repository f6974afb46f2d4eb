/**
 * --p12: keys and certificates from a PKCS#12 file (RFC 7292, modern and legacy
 * forms, RC2/RC4 included, via src/keys/import-pkcs12.ts; node:crypto cannot read
 * PKCS#12): the recipient's keys for decrypt, the signer for sign.
 */
import type { KeyObject } from 'node:crypto';
import { KakitomeError, isKakitomeError } from '../errors.ts';
import { importPkcs12, type Pkcs12Contents } from '../keys/import-pkcs12.ts';
import type { DecryptKey } from '../cms/recipients/recipient-options.ts';
import type { Certificate } from '../x509/certificate.ts';
import { readFileBounded } from './io.ts';

const MAX_PKCS12_BYTES = 4 * 1024 * 1024;

/** The file's contents; every failure names the option and the file. */
async function readPkcs12File(option: string, path: string, passphrase: string | undefined): Promise<Pkcs12Contents> {
  const data = await readFileBounded(path, `${option} ${path}`, MAX_PKCS12_BYTES);
  try {
    // No --pass: PKCS#12 files exported "without a password" use the empty one.
    return importPkcs12(data, passphrase ?? '');
  } catch (e) {
    if (isKakitomeError(e)) {
      throw new KakitomeError(e.code, `${option} ${path}: ${e.message}${passphrase === undefined ? ' (if the file has a password, give it with --pass)' : ''}`, { cause: e });
    }
    throw e;
  }
}

/** Every private key in the file; the one with a matching certificate first. */
export async function loadPkcs12File(option: string, path: string, passphrase: string | undefined): Promise<DecryptKey[]> {
  const contents = await readPkcs12File(option, path, passphrase);
  const keys: DecryptKey[] = [];
  if (contents.key !== undefined) keys.push(contents.certificate ? { key: contents.key, certificate: contents.certificate } : { key: contents.key });
  for (const k of contents.keys) if (k !== contents.key) keys.push({ key: k });
  if (keys.length === 0) throw new KakitomeError('KEY_INVALID', `${option} ${path}: the PKCS#12 file holds no private key.`);
  return keys;
}

/** The signer: the file's first key, its certificate (matched by public key) and the other certificates as the chain. */
export async function loadPkcs12Signer(option: string, path: string, passphrase: string | undefined): Promise<{ key: KeyObject; certificate: Certificate; chain: Certificate[] }> {
  const { key, certificate, chain } = await readPkcs12File(option, path, passphrase);
  if (key === undefined) throw new KakitomeError('KEY_INVALID', `${option} ${path}: the PKCS#12 file holds no private key.`);
  if (certificate === undefined) throw new KakitomeError('KEY_INVALID', `${option} ${path}: the PKCS#12 file holds no certificate for its private key.`);
  return { key, certificate, chain };
}
