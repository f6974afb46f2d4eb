/** PEM (RFC 7468) framing: base64 between BEGIN/END lines of a given label. */
import { malformed } from '../errors.ts';

export interface PemBlock {
  label: string;
  der: Buffer;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/** Every PEM block in `text`, in order. Headers (Proc-Type...) are skipped over. */
export function decodePem(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const body = m[2]!
      .split(/\r?\n/)
      .filter((l) => !l.includes(':'))
      .join('');
    if (!/^[A-Za-z0-9+/=\s]*$/.test(body)) malformed(`PEM block ${m[1]} is not base64`);
    out.push({ label: m[1]!, der: Buffer.from(body, 'base64') });
  }
  return out;
}

export function encodePem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * True when the bytes are PEM text rather than DER: a BEGIN line anywhere in them.
 * QUIRK: text before the first block (what `openssl x509 -text` writes above the
 * certificate, often several KiB) is skipped, as OpenSSL's PEM reader skips it;
 * decodePem reads only what lies between BEGIN and END lines. Input that is one
 * BER/DER SEQUENCE spanning exactly its own length is binary, whatever bytes it
 * happens to contain.
 */
export function isPem(data: Uint8Array): boolean {
  if (isOneSequence(data)) return false;
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).indexOf('-----BEGIN ', 0, 'latin1') >= 0;
}

/** A SEQUENCE tag whose (definite or indefinite) length form fits the input: DER certificates, PKCS#12, CMS. */
function isOneSequence(data: Uint8Array): boolean {
  if (data.length < 2 || data[0] !== 0x30) return false;
  const first = data[1]!;
  if (first === 0x80) return true; // indefinite length (BER): never the start of PEM text ("0" then a control byte)
  if (first < 0x80) return 2 + first === data.length;
  const n = first & 0x7f;
  if (n > 4 || data.length < 2 + n) return false;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + data[2 + i]!;
  return 2 + n + len === data.length;
}
