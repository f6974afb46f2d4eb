/**
 * The raw node:crypto limits on this machine, measured in the same run as the CMS
 * figures so that the ratios in docs/performance.md compare like with like:
 * one-shot crypto.sign/verify per second (RSA-2048 PKCS#1 v1.5, ECDSA P-256, both
 * SHA-256 over 2 KB), RSA-OAEP encryptions per second, SHA-256 and AES-256-GCM
 * throughput on 1 MiB buffers.
 */
import { generateKeyPairSync, sign, verify, publicEncrypt, createHash, createCipheriv, randomBytes, constants } from 'node:crypto';
import { measureSync } from './harness/measure.ts';

export interface RawCryptoFigures {
  rsa2048SignPerSec: number;
  rsa2048VerifyPerSec: number;
  p256SignPerSec: number;
  p256VerifyPerSec: number;
  rsa2048OaepEncryptPerSec: number;
  sha256GBps: number;
  aes256GcmGBps: number;
}

export function measureRawCrypto(quick: boolean): RawCryptoFigures {
  const opts = { ms: quick ? 300 : 1500, rounds: quick ? 3 : 5 };
  const msg = randomBytes(2048);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const rsaSig = sign('sha256', msg, rsa.privateKey);
  const ecSig = sign('sha256', msg, ec.privateKey);
  const cek = randomBytes(32);
  const mib = randomBytes(1 << 20);
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const gbps = (perSec: number) => (perSec * (1 << 20)) / 1e9;
  return {
    rsa2048SignPerSec: measureSync(() => sign('sha256', msg, rsa.privateKey), opts).opsPerSec,
    rsa2048VerifyPerSec: measureSync(() => verify('sha256', msg, rsa.publicKey, rsaSig), opts).opsPerSec,
    p256SignPerSec: measureSync(() => sign('sha256', msg, ec.privateKey), opts).opsPerSec,
    p256VerifyPerSec: measureSync(() => verify('sha256', msg, ec.publicKey, ecSig), opts).opsPerSec,
    rsa2048OaepEncryptPerSec: measureSync(() => publicEncrypt({ key: rsa.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, cek), opts).opsPerSec,
    sha256GBps: gbps(measureSync(() => createHash('sha256').update(mib).digest(), opts).opsPerSec),
    aes256GcmGBps: gbps(
      measureSync(() => {
        const c = createCipheriv('aes-256-gcm', key, iv);
        c.update(mib);
        c.final();
      }, opts).opsPerSec,
    ),
  };
}
