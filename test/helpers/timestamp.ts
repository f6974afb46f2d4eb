/**
 * A real RFC 3161 time-stamping authority for tests: `openssl ts -query` and
 * `openssl ts -reply` with a minimal tsa.cnf, the token taken out with -token_out.
 * And the surgery that adds a token to a signed message as the unsigned attribute
 * id-aa-signatureTimeStampToken (RFC 3161 appendix A): the SignerInfo gains
 * unsignedAttrs [1], which the signature does not cover, so the signature stays valid.
 */
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueCertificate } from '../../src/x509/issue.ts';
import type { Certificate } from '../../src/x509/certificate.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { OID } from '../../src/asn1/oids.ts';
import { sequence, oid, boolean, octetString, setOf, retag, explicit } from '../../src/asn1/der.ts';
import { Tag, decode } from '../../src/asn1/ber.ts';
import { parseContentInfo } from '../../src/cms/content-info.ts';
import { generateKey } from './pki.ts';
import type { KeyObject } from 'node:crypto';
import { OPENSSL, requireOpenssl } from '../peers/openssl.ts';
import { runPeerOk } from '../peers/run-peer.ts';

export interface Tsa {
  name: string;
  cert: Certificate;
  key: KeyObject;
  certPath: string;
  keyPath: string;
}

/**
 * A TSA certificate issued by `issuer`. Default: RFC 3161 2.3 (critical extendedKeyUsage
 * naming only id-kp-timeStamping, digitalSignature); `eku` and `ekuCritical` make wrong ones.
 */
export function issueTsa(dir: string, name: string, issuer: { cert: Certificate; key: KeyObject }, o: { eku?: string[]; ekuCritical?: boolean; notAfter?: Date } = {}): Tsa {
  const { publicKey, privateKey } = generateKey('rsa2048');
  const eku = sequence(...(o.eku ?? [OID.timeStamping]).map((p) => oid(p)));
  const critical = o.ekuCritical ?? true;
  const cert = issueCertificate({
    subject: { commonName: name, organization: 'Kakitome Test TSA' },
    publicKey,
    issuer: issuer.cert,
    signingKey: issuer.key,
    keyUsage: ['digitalSignature', 'nonRepudiation'],
    extraExtensions: [critical ? sequence(oid(OID.extKeyUsage), boolean(true), octetString(eku)) : sequence(oid(OID.extKeyUsage), octetString(eku))],
    notBefore: new Date(Date.now() - 86_400_000),
    notAfter: o.notAfter ?? new Date(Date.now() + 5 * 365 * 86_400_000),
  });
  const certPath = join(dir, `${name.replace(/\W/g, '_')}.pem`);
  const keyPath = join(dir, `${name.replace(/\W/g, '_')}.key`);
  writeFileSync(certPath, encodePem('CERTIFICATE', cert.der));
  writeFileSync(keyPath, privateKey.export({ format: 'pem', type: 'pkcs8' }));
  return { name, cert, key: privateKey, certPath, keyPath };
}

let serial = 0;

/**
 * A timestamp token from `openssl ts -reply` over `data` (the bytes the imprint
 * hashes: a signature value). The token carries the TSA certificate (-cert).
 */
export async function opensslTimestamp(dir: string, tsa: Tsa, data: Uint8Array, hash: 'sha256' | 'sha1' | 'sha512' = 'sha256'): Promise<Buffer> {
  requireOpenssl();
  const n = ++serial;
  const file = (x: string) => join(dir, `ts${n}.${x}`);
  writeFileSync(file('serial'), '01\n');
  writeFileSync(file('cnf'), [
    '[ tsa ]',
    'default_tsa = tsa_config1',
    '[ tsa_config1 ]',
    `serial = ${file('serial')}`,
    'crypto_device = builtin',
    'signer_digest = sha256',
    'default_policy = 1.3.6.1.4.1.99999.1',
    'digests = sha1, sha256, sha384, sha512',
    'accuracy = secs:1',
    'ordering = no',
    'tsa_name = yes',
    'ess_cert_id_alg = sha256',
    '',
  ].join('\n'));
  writeFileSync(file('bin'), data);
  await runPeerOk(OPENSSL, ['ts', '-query', '-data', file('bin'), `-${hash}`, '-cert', '-out', file('tsq')]);
  await runPeerOk(OPENSSL, ['ts', '-reply', '-queryfile', file('tsq'), '-config', file('cnf'), '-inkey', tsa.keyPath, '-signer', tsa.certPath, '-out', file('tsr')]);
  await runPeerOk(OPENSSL, ['ts', '-reply', '-in', file('tsr'), '-token_out', '-out', file('tst')]);
  return readFileSync(file('tst'));
}

/** The signature value of SignerInfo `index` of a ContentInfo(SignedData). */
export function signatureValueOf(cms: Uint8Array, index = 0): Buffer {
  const si = signerInfosOf(cms)[index]!;
  const sig = si.children().find((c) => c.tag === Tag.OCTET_STRING)!;
  return Buffer.from(sig.value);
}

function signedDataOf(cms: Uint8Array) {
  return parseContentInfo(cms).content;
}

function signerInfosOf(cms: Uint8Array) {
  const sd = signedDataOf(cms).children();
  return sd[sd.length - 1]!.children();
}

/** Encodes id-aa-signatureTimeStampToken with the given values (one token, normally). */
export function timestampAttribute(...tokens: Uint8Array[]): Buffer {
  return sequence(oid(OID.signatureTimeStampToken), setOf(tokens));
}

/**
 * The ContentInfo(SignedData) with `attributes` as the unsignedAttrs [1] of
 * SignerInfo `index` (replacing any). Everything else keeps its bytes.
 */
export function withUnsignedAttributes(cms: Uint8Array, attributes: Uint8Array[], index = 0): Buffer {
  const sd = signedDataOf(cms).children();
  const infos = sd[sd.length - 1]!.children().map((si, i) => {
    if (i !== index) return si.bytes;
    const fields = si.children().filter((c) => c.tag !== 0xa1).map((c) => c.bytes);
    return sequence(...fields, retag(setOf(attributes), 0xa1));
  });
  const signedData = sequence(...sd.slice(0, -1).map((c) => c.bytes), setOf(infos));
  return sequence(oid(OID.signedData), explicit(0, signedData));
}

/** Replaces the base64 body of the application/(x-)pkcs7-signature part of a multipart/signed message. */
export function replaceDetachedSignature(message: Uint8Array, transform: (cms: Buffer) => Uint8Array): Buffer {
  const text = Buffer.from(message).toString('latin1');
  const m = /(Content-Type:\s*application\/(?:x-)?pkcs7-signature[^]*?\r?\n\r?\n)([A-Za-z0-9+/=\r\n]+?)(\r?\n--)/i.exec(text);
  if (!m) throw new Error('no detached signature part found');
  const cms = Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64');
  decode(cms); // the premise: one whole DER object
  const eol = m[1]!.endsWith('\r\n\r\n') ? '\r\n' : '\n';
  const b64 = Buffer.from(transform(cms)).toString('base64').replace(/.{1,76}/g, (l) => l + eol).slice(0, -eol.length);
  return Buffer.from(text.slice(0, m.index) + m[1] + b64 + m[3] + text.slice(m.index + m[0].length), 'latin1');
}
