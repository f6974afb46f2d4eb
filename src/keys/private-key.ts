/**
 * Loading private keys in every form openssl writes: PEM or DER; PKCS#8 (plain or
 * encrypted), PKCS#1 (RSA), SEC1 (EC); passphrase-protected ones opened with the
 * passphrase. Parsing is node:crypto's; this adds format detection and coded errors.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { KakitomeError } from '../errors.ts';
import { isPem } from '../asn1/pem.ts';
import type { Certificate } from '../x509/certificate.ts';

export function loadPrivateKey(data: Uint8Array | string, passphrase?: string | Uint8Array): KeyObject {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
  const pass = passphrase === undefined ? undefined : Buffer.from(passphrase);
  const attempts: Parameters<typeof createPrivateKey>[0][] = isPem(bytes)
    ? [{ key: bytes.toString('latin1'), format: 'pem', passphrase: pass }]
    : [
        { key: bytes, format: 'der', type: 'pkcs8', passphrase: pass },
        { key: bytes, format: 'der', type: 'pkcs1' },
        { key: bytes, format: 'der', type: 'sec1' },
      ];
  let last: unknown;
  let passphraseProblem: 'missing' | 'wrong' | undefined;
  for (const a of attempts) {
    try {
      return createPrivateKey(a);
    } catch (e) {
      last = e;
      // Node/OpenSSL 3.5 report a missing passphrase as ERR_MISSING_PASSPHRASE (DER) or
      // "interrupted or cancelled" (PEM: the password callback had nothing to give), and a
      // wrong one as "bad decrypt". Remember it: later DER attempts fail for other reasons.
      const code = (e as { code?: string }).code ?? '';
      if (code === 'ERR_MISSING_PASSPHRASE' || code === 'ERR_OSSL_CRYPTO_INTERRUPTED_OR_CANCELLED') passphraseProblem ??= 'missing';
      else if (code === 'ERR_OSSL_BAD_DECRYPT' || /bad decrypt/i.test(String((e as Error).message))) passphraseProblem ??= 'wrong';
    }
  }
  if (passphraseProblem === 'missing' || (passphraseProblem === 'wrong' && !pass)) {
    throw new KakitomeError('KEY_INVALID', 'The private key is encrypted: give its passphrase.', { cause: last, remedy: 'passphrase' });
  }
  if (passphraseProblem === 'wrong') throw new KakitomeError('KEY_INVALID', 'The private key could not be opened: wrong passphrase.', { cause: last });
  throw new KakitomeError('KEY_INVALID', 'Not a private key in a known format (PEM or DER; PKCS#8, PKCS#1 or SEC1).', { cause: last });
}

/** True when `key` is the private half of the certificate's public key. */
export function keyMatchesCertificate(key: KeyObject, cert: Certificate): boolean {
  const pub = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return Buffer.compare(pub, cert.publicKey.export({ format: 'der', type: 'spki' })) === 0;
}
