/**
 * Shared by the attack tests in test/security/: every reader path of the library
 * (verifyMessage, verifyMessageStream, decryptMessage, decryptMessageStream) run on
 * one attack, and message builders that do not parse what they wrap (an attacker's
 * tools do not refuse malformed messages, and Kakitome's writers do).
 */
import { PassThrough, Readable } from 'node:stream';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { verifyMessageStream } from '../../src/smime/verify-message-stream.ts';
import { decryptMessage } from '../../src/smime/decrypt-message.ts';
import { decryptMessageStream } from '../../src/smime/decrypt-message-stream.ts';
import { encryptData } from '../../src/cms/enveloped-data/encrypt.ts';
import type { DecryptKey } from '../../src/cms/enveloped-data/decrypt.ts';
import { buildEntity, buildMultipartBody, type HeaderInput } from '../../src/mime/build-entity.ts';
import { isKakitomeError } from '../../src/errors.ts';
import type { SignerValidator } from '../../src/pki/types.ts';
import type { Certificate } from '../../src/x509/certificate.ts';
import type { MessageVerdict } from '../../src/smime/verdict.ts';

/** The input in chunks of `size` bytes, so that every structure is split somewhere. */
export function chunks(b: Buffer, size: number): Readable {
  return Readable.from((function* () {
    for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
  })());
}

/** A verdict, or the code of the KakitomeError thrown instead. */
export type Outcome = { verdict: MessageVerdict } | { error: string };

export async function outcome(run: () => Promise<MessageVerdict>): Promise<Outcome> {
  try {
    return { verdict: await run() };
  } catch (e) {
    if (!isKakitomeError(e)) throw e;
    return { error: e.code };
  }
}

export interface Readers {
  validateSigner: SignerValidator;
  /** The recipient's keys, for the encrypted form. */
  keys: DecryptKey[];
  clockSkewMs?: number;
}

/** Every reader's outcome: `signed` verified, and `encrypted` (the same message encrypted) decrypted, in memory and streamed. */
export async function readEverywhere(signed: Buffer, encrypted: Buffer, r: Readers): Promise<Array<[string, Outcome]>> {
  const o = { validateSigner: r.validateSigner, ...(r.clockSkewMs !== undefined ? { clockSkewMs: r.clockSkewMs } : {}) };
  return [
    ['verifyMessage', await outcome(() => verifyMessage(signed, o))],
    ['verifyMessageStream', await outcome(() => verifyMessageStream(chunks(signed, 97), { ...o, output: new PassThrough().resume() }))],
    ['decryptMessage', await outcome(async () => (await decryptMessage(encrypted, { ...o, keys: r.keys })).verdict)],
    ['decryptMessageStream', await outcome(() => decryptMessageStream(chunks(encrypted, 89), { ...o, keys: r.keys, output: new PassThrough().resume() }))],
  ];
}

/** Base64 in 76-character lines. */
const base64Lines = (der: Buffer): Buffer => Buffer.from(der.toString('base64').replace(/.{76}/g, '$&\r\n') + '\r\n');

/**
 * `message` encrypted to `recipient` without parsing it: its content fields and body
 * inside (AES-256-GCM), its other fields outside, as encryptMessage lays it out
 * without header protection.
 */
export function encryptWithoutParsing(message: Buffer, recipient: Certificate): Buffer {
  const end = message.indexOf('\r\n\r\n');
  const lines = message.subarray(0, end).toString('latin1').split(/\r\n(?![ \t])/);
  const isContent = (l: string): boolean => /^(content-|mime-version)/i.test(l);
  const der = encryptData(Buffer.concat([Buffer.from(`${lines.filter(isContent).join('\r\n')}\r\n`, 'latin1'), message.subarray(end + 2)]), { recipients: [{ certificate: recipient }] });
  const outer = lines.filter((l) => !isContent(l)).map((l): HeaderInput => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]);
  return buildEntity([...outer, ['MIME-Version', '1.0'], ['Content-Type', 'application/pkcs7-mime; smime-type=authEnveloped-data; name="smime.p7m"'], ['Content-Transfer-Encoding', 'base64']], base64Lines(der));
}

/** A multipart/signed message: `headers` outside, `part` and a detached signature (DER) as its two parts. */
export function multipartSigned(headers: readonly HeaderInput[], part: Buffer, signature: Buffer): Buffer {
  const sigPart = buildEntity([['Content-Type', 'application/pkcs7-signature; name="smime.p7s"'], ['Content-Transfer-Encoding', 'base64']], base64Lines(signature));
  return buildEntity([...headers, ['Content-Type', 'multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="b1"']], buildMultipartBody('b1', [part, sigPart]));
}

/** An application/pkcs7-mime signed-data message: `headers` outside, the SignedData (DER) as its body. */
export function opaqueSigned(headers: readonly HeaderInput[], der: Buffer): Buffer {
  return buildEntity([...headers, ['Content-Type', 'application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"'], ['Content-Transfer-Encoding', 'base64']], base64Lines(der));
}
