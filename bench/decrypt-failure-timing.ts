/**
 * Whether a decryption's failure cause shows in its time (docs/security.md section 23):
 * decryptData on one RSA-2048 (PKCS#1 v1.5) envelope, damaged in the key layer (the
 * encrypted key) or in the content (CBC padding, GCM tag), the cases interleaved in a
 * random order per round, wall time per call; p25 and median are what to compare
 * (the tail is the machine's load).
 *
 *   flock /tmp/bench.lock node bench/decrypt-failure-timing.ts [rounds=2000]
 */
import { generateKeyPairSync } from 'node:crypto';
import { decode } from '../src/asn1/ber.ts';
import { explicit, octetString, sequence, tlv } from '../src/asn1/der.ts';
import { decryptData } from '../src/cms/enveloped-data/decrypt.ts';
import { encryptData } from '../src/cms/enveloped-data/encrypt.ts';
import { issueCertificate } from '../src/x509/issue.ts';

const rounds = Number(process.argv[2] ?? 2000);
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const certificate = issueCertificate({ subject: { commonName: 'timing' }, publicKey, signingKey: privateKey, keyUsage: ['keyEncipherment'] });
const keys = [{ key: privateKey, certificate }];
const content = Buffer.from(`Content-Type: text/plain\r\n\r\n${'Secret line.\r\n'.repeat(200)}`);

/** The envelope's fields edited: `f` gets them as DER. */
function edit(der: Buffer, f: (fields: Buffer[]) => Buffer[]): Buffer {
  const [type, wrapped] = decode(der).children();
  return sequence(Buffer.from(type!.bytes), explicit(0, sequence(...f(wrapped!.children()[0]!.children().map((x) => Buffer.from(x.bytes))))));
}
const eci = (f: Buffer[]): number => f.findIndex((b) => b[0] === 0x30 && decode(b).children()[0]!.tag === 0x06);
const damageKey = (f: Buffer[]): Buffer[] => {
  const i = f.findIndex((b) => b[0] === 0x31);
  const ktri: Buffer[] = decode(f[i]!).children()[0]!.children().map((x) => Buffer.from(x.bytes));
  const ek = Buffer.from(decode(ktri[3]!).value);
  ek[5]! ^= 0x40;
  ktri[3] = octetString(ek);
  return f.map((b, j) => (j === i ? tlv(0x31, sequence(...ktri)) : b));
};
const damageContent = (f: Buffer[]): Buffer[] => {
  const i = eci(f);
  const [ct, alg, body] = decode(f[i]!).children().map((x) => Buffer.from(x.bytes));
  const b = Buffer.from(body!);
  b[b.length - 20]! ^= 1;
  return f.map((x, j) => (j === i ? sequence(ct!, alg!, b) : x));
};
const damageTag = (f: Buffer[]): Buffer[] => {
  const i = f.findIndex((b, j) => j > eci(f) && b[0] === 0x04);
  const tag = Buffer.from(decode(f[i]!).value);
  tag[0]! ^= 1;
  return f.map((x, j) => (j === i ? octetString(tag) : x));
};
const cbc = encryptData(content, { recipients: [{ certificate }], contentEncryption: 'aes-256-cbc' });
const gcm = encryptData(content, { recipients: [{ certificate }] });
const cases: Record<string, Buffer> = {
  'cbc, key layer damaged': edit(cbc, damageKey),
  'cbc, padding damaged': edit(cbc, damageContent),
  'gcm, key layer damaged': edit(gcm, damageKey),
  'gcm, tag damaged': edit(gcm, damageTag),
};
const names = Object.keys(cases);
const times = new Map(names.map((n) => [n, [] as number[]]));
/** A random stand-in key passes the CBC padding check about once in 256 tries and "decrypts" to garbage (docs/security.md section 3): not a failure of the bench. */
const run = (n: string): void => {
  try {
    decryptData(cases[n]!, { keys });
  } catch (e) {
    if ((e as { code?: string }).code !== 'DECRYPT_FAILED') throw e;
  }
};
for (let w = 0; w < 100; w++) for (const n of names) run(n);
for (let r = 0; r < rounds; r++) {
  for (const n of [...names].sort(() => Math.random() - 0.5)) {
    const t = process.hrtime.bigint();
    run(n);
    times.get(n)!.push(Number(process.hrtime.bigint() - t) / 1000);
  }
}
for (const n of names) {
  const t = times.get(n)!.sort((a, b) => a - b);
  const q = (p: number): string => t[Math.floor(p * t.length)]!.toFixed(1);
  console.log(`${n.padEnd(24)} p25 ${q(0.25)} µs  median ${q(0.5)} µs  p75 ${q(0.75)} µs`);
}
