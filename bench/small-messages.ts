/**
 * 2 KB messages through the in-memory APIs (signData, verifySignedData,
 * encryptData): the bulk-signer and gateway workloads of the brief. Each Kakitome
 * figure is measured in alternating rounds with its raw node:crypto counterpart
 * (same key, same 2 KB), one core, so the ratio survives a busy machine.
 */
import { randomBytes, sign, verify, publicEncrypt, constants } from 'node:crypto';
import { signData } from '../src/cms/signed-data/sign.ts';
import { verifySignedData } from '../src/cms/signed-data/verify.ts';
import { encryptData } from '../src/cms/enveloped-data/encrypt.ts';
import type { TestPki, Identity } from '../test/helpers/pki.ts';
import { measureInterleaved } from './harness/measure.ts';

export interface Pair {
  kakitome: number;
  raw: number;
  /** kakitome / raw, medians */
  ratio: number;
  /** kakitome / raw, best rounds: closer to the machine's capability when it is busy */
  bestRatio: number;
}

export interface SmallMessageFigures {
  signRsa2048: Pair;
  signP256: Pair;
  verifyRsa2048: Pair;
  verifyP256: Pair;
  /** raw = 100 RSA-2048 PKCS#1 v1.5 encryptions of a 32-byte key, as messages per second. */
  encrypt100Pkcs1: Pair;
  encrypt100Oaep: Pair;
}

/** A 2 KB MIME-like body (the brief's message size). */
export function twoKilobyteMessage(): Buffer {
  const head = Buffer.from('Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n');
  const body = randomBytes(1400).toString('base64').replace(/(.{76})/g, '$1\r\n');
  return Buffer.concat([head, Buffer.from(body)]).subarray(0, 2048);
}

function pair(r: { kakitome: { opsPerSec: number; rounds: number[] }; raw: { opsPerSec: number; rounds: number[] } }): Pair {
  return { kakitome: r.kakitome.opsPerSec, raw: r.raw.opsPerSec, ratio: r.kakitome.opsPerSec / r.raw.opsPerSec, bestRatio: Math.max(...r.kakitome.rounds) / Math.max(...r.raw.rounds) };
}

export function measureSmallMessages(pki: TestPki, quick: boolean): SmallMessageFigures {
  const opts = { ms: quick ? 300 : 1000, rounds: quick ? 3 : 7 };
  const msg = twoKilobyteMessage();
  const rsa = pki.identity('rsa2048', 'bench-rsa');
  const ec = pki.identity('p256', 'bench-ec');
  const signer = (id: Identity) => ({ signers: [{ certificate: id.cert, key: id.key }] });
  const rsaOpts = signer(rsa);
  const ecOpts = signer(ec);
  const rsaSigned = signData(msg, rsaOpts);
  const ecSigned = signData(msg, ecOpts);
  // Warm caches (parsed certificates, prepared signers) as a long-running gateway has them.
  if (verifySignedData(rsaSigned).status !== 'valid' || verifySignedData(ecSigned).status !== 'valid') throw new Error('bench: verification failed');
  const rsaSig = sign('sha256', msg, rsa.key);
  const ecSig = sign('sha256', msg, ec.key);
  const rsaPub = rsa.cert.publicKey;
  const ecPub = ec.cert.publicKey;

  const recipients: Identity[] = [];
  for (let i = 0; i < 100; i++) recipients.push(pki.identity('rsa2048', `bench-rcpt-${i}`));
  const pkcs1 = { recipients: recipients.map((r) => ({ certificate: r.cert })) };
  const oaep = { recipients: recipients.map((r) => ({ certificate: r.cert, rsaPadding: 'oaep' as const })) };
  const keys = recipients.map((r) => r.cert.publicKey);
  const cek = randomBytes(32);
  const wrapAll = (padding: number) => () => {
    for (const key of keys) publicEncrypt({ key, padding, oaepHash: 'sha256' }, cek);
  };

  return {
    signRsa2048: pair(measureInterleaved({ kakitome: () => signData(msg, rsaOpts), raw: () => sign('sha256', msg, rsa.key) }, opts)),
    signP256: pair(measureInterleaved({ kakitome: () => signData(msg, ecOpts), raw: () => sign('sha256', msg, ec.key) }, opts)),
    verifyRsa2048: pair(measureInterleaved({ kakitome: () => verifySignedData(rsaSigned), raw: () => verify('sha256', msg, rsaPub, rsaSig) }, opts)),
    verifyP256: pair(measureInterleaved({ kakitome: () => verifySignedData(ecSigned), raw: () => verify('sha256', msg, ecPub, ecSig) }, opts)),
    encrypt100Pkcs1: pair(measureInterleaved({ kakitome: () => encryptData(msg, pkcs1), raw: wrapAll(constants.RSA_PKCS1_PADDING) }, opts)),
    encrypt100Oaep: pair(measureInterleaved({ kakitome: () => encryptData(msg, oaep), raw: wrapAll(constants.RSA_PKCS1_OAEP_PADDING) }, opts)),
  };
}
