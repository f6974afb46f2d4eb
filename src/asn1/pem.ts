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

/** True when the bytes look like PEM text rather than DER. */
export function isPem(data: Uint8Array): boolean {
  const head = Buffer.from(data.subarray(0, 2048)).toString('latin1');
  return head.includes('-----BEGIN ');
}
