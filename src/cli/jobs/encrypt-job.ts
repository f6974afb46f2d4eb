/**
 * The encrypt job: loads the recipients (and the signer for sign-then-encrypt)
 * once, then encrypts message after message.
 */
import { KakitomeError } from '../../errors.ts';
import type { Certificate } from '../../x509/certificate.ts';
import { encryptMessage, type EncryptMessageOptions } from '../../smime/encrypt-message.ts';
import { EXIT_OK } from '../exit-codes.ts';
import type { Job } from '../job.ts';
import { assertKeyMatches, loadCertificateFile, loadKeyFile, loadLeafCertificate } from '../load-credentials.ts';
import type { CipherChoice } from '../commands/encrypt.ts';

export interface EncryptJobOptions {
  to: string[];
  cipher: CipherChoice;
  oaep: boolean;
  signCert?: string;
  signKey?: string;
  passphrase?: string;
}

export async function createEncryptJob(o: EncryptJobOptions): Promise<Job> {
  const certificates: Certificate[] = [];
  for (const path of o.to) certificates.push(...(await loadCertificateFile('--to', path)));
  if (certificates.length === 0) throw new KakitomeError('INVALID_ARGUMENT', 'encrypt needs at least one recipient: --to CERT.');
  const recipients = certificates.map((certificate) => ({ certificate, ...(o.oaep ? { rsaPadding: 'oaep' as const } : {}) }));
  let sign: EncryptMessageOptions['sign'];
  if (o.signCert !== undefined && o.signKey !== undefined) {
    const { leaf, extra } = await loadLeafCertificate('--sign-cert', o.signCert);
    const key = await loadKeyFile('--sign-key', o.signKey, o.passphrase);
    assertKeyMatches(key, leaf, '--sign-key', '--sign-cert');
    sign = { signers: [{ certificate: leaf, key }], certificates: extra };
  }
  return async (message) => ({
    exitCode: EXIT_OK,
    output: encryptMessage(message, { recipients, contentEncryption: o.cipher, ...(sign ? { sign } : {}) }),
  });
}
