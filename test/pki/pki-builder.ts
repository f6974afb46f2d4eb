/**
 * A small PKI builder for the trust tests: CAs and end entities with any
 * extension, CRLs (full and delta) built in TypeScript, a loopback HTTP server for
 * CRLs and caIssuers, and a real `openssl ocsp` responder. Everything is minted at
 * test time; nothing is committed.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueCertificate, type IssueOptions, type NameSpec } from '../../src/x509/issue.ts';
import type { Certificate } from '../../src/x509/certificate.ts';
import { x509SignatureAlgorithm, x509Sign } from '../../src/x509/algorithms.ts';
import { sequence, oid, octetString, boolean, integer, NULL, retag, unsignedInteger, time, explicit, implicit, tlv, bitString, utf8String } from '../../src/asn1/der.ts';
import { Tag } from '../../src/asn1/ber.ts';
import { OID } from '../../src/asn1/oids.ts';
import { encodePem } from '../../src/asn1/pem.ts';

export type KeyKind = 'p256' | 'rsa2048' | 'rsa1024' | 'ed25519' | 'secp256k1';

const keyCache = new Map<string, { publicKey: KeyObject; privateKey: KeyObject }>();

/** Keys are reused per (kind, slot) so a test file generates each only once. */
export function key(kind: KeyKind = 'p256', slot = 'default'): { publicKey: KeyObject; privateKey: KeyObject } {
  const k = `${kind}:${slot}`;
  let hit = keyCache.get(k);
  if (!hit) {
    hit =
      kind === 'p256' ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
      : kind === 'secp256k1' ? generateKeyPairSync('ec', { namedCurve: 'secp256k1' })
      : kind === 'ed25519' ? generateKeyPairSync('ed25519')
      : generateKeyPairSync('rsa', { modulusLength: kind === 'rsa2048' ? 2048 : 1024 });
    keyCache.set(k, hit);
  }
  return hit;
}

export interface Party {
  cert: Certificate;
  key: KeyObject;
}

export function rootCa(name: string, extra: Partial<IssueOptions> = {}, slot = name): Party {
  const k = key('p256', slot);
  const cert = issueCertificate({
    subject: { commonName: name, organization: 'Kakitome Trust Tests', country: 'JP' },
    publicKey: k.publicKey,
    signingKey: k.privateKey,
    ca: true,
    keyUsage: ['keyCertSign', 'cRLSign'],
    notBefore: new Date(Date.now() - 1000 * 86_400_000),
    notAfter: new Date(Date.now() + 3650 * 86_400_000),
    ...extra,
  });
  return { cert, key: k.privateKey };
}

export function subCa(issuer: Party, name: string, extra: Partial<IssueOptions> = {}, slot = name): Party {
  const k = key('p256', slot);
  const cert = issueCertificate({
    subject: { commonName: name, organization: 'Kakitome Trust Tests', country: 'JP' },
    publicKey: k.publicKey,
    issuer: issuer.cert,
    signingKey: issuer.key,
    ca: true,
    keyUsage: ['keyCertSign', 'cRLSign'],
    notBefore: new Date(Date.now() - 900 * 86_400_000),
    notAfter: new Date(Date.now() + 1825 * 86_400_000),
    ...extra,
  });
  return { cert, key: k.privateKey };
}

export function endEntity(issuer: Party, email: string, extra: Partial<IssueOptions> = {}, kind: KeyKind = 'p256', slot = email): Party {
  const k = key(kind, slot);
  const subject: NameSpec = { commonName: email.split('@')[0]!, organization: 'Kakitome Trust Tests' };
  const cert = issueCertificate({
    subject,
    publicKey: k.publicKey,
    issuer: issuer.cert,
    signingKey: issuer.key,
    keyUsage: ['digitalSignature', 'nonRepudiation', kind.startsWith('rsa') ? 'keyEncipherment' : 'keyAgreement'],
    extKeyUsage: [OID.emailProtection],
    emails: [email],
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 365 * 86_400_000),
    ...extra,
  });
  return { cert, key: k.privateKey };
}

/** An Extension SEQUENCE for IssueOptions.extraExtensions. */
export function extension(id: string, critical: boolean, value: Uint8Array): Buffer {
  return critical ? sequence(oid(id), boolean(true), octetString(value)) : sequence(oid(id), octetString(value));
}

/** nameConstraints with rfc822Name and directoryName subtrees. */
export function nameConstraints(o: { permittedEmail?: string[]; excludedEmail?: string[]; permittedDn?: Uint8Array[]; excludedDn?: Uint8Array[] }): Buffer {
  const subtrees = (emails: string[] = [], dns: Uint8Array[] = []) => [
    ...emails.map((e) => sequence(implicit(1, false, Buffer.from(e, 'latin1')))),
    ...dns.map((d) => sequence(explicit(4, d))),
  ];
  const parts: Buffer[] = [];
  const p = subtrees(o.permittedEmail, o.permittedDn);
  const x = subtrees(o.excludedEmail, o.excludedDn);
  if (p.length) parts.push(implicit(0, true, ...p));
  if (x.length) parts.push(implicit(1, true, ...x));
  return extension(OID.nameConstraints, true, sequence(...parts));
}

export function certificatePolicies(...oids: string[]): Buffer {
  return extension(OID.certificatePolicies, false, sequence(...oids.map((o) => sequence(oid(o)))));
}

/** id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1): the responder's own certificate is not to be checked. */
export function ocspNoCheck(): Buffer {
  return extension('1.3.6.1.5.5.7.48.1.5', false, NULL);
}

/** policyMappings (RFC 5280 4.2.1.5), critical as it SHOULD be. */
export function policyMappings(...pairs: Array<[string, string]>): Buffer {
  return extension('2.5.29.33', true, sequence(...pairs.map(([a, b]) => sequence(oid(a), oid(b)))));
}

/** policyConstraints (RFC 5280 4.2.1.11), critical as it MUST be. */
export function policyConstraints(o: { requireExplicitPolicy?: number; inhibitPolicyMapping?: number }): Buffer {
  const parts: Buffer[] = [];
  if (o.requireExplicitPolicy !== undefined) parts.push(implicit(0, false, integer(o.requireExplicitPolicy).subarray(2)));
  if (o.inhibitPolicyMapping !== undefined) parts.push(implicit(1, false, integer(o.inhibitPolicyMapping).subarray(2)));
  return extension('2.5.29.36', true, sequence(...parts));
}

/** inhibitAnyPolicy (RFC 5280 4.2.1.14), critical as it MUST be. */
export function inhibitAnyPolicy(skipCerts: number): Buffer {
  return extension('2.5.29.54', true, integer(skipCerts));
}

/** subjectAltName with SmtpUTF8Mailbox otherNames (RFC 8398) and rfc822Names. */
export function smtpUtf8San(utf8: string[], rfc822: string[] = []): Buffer {
  const names = [
    ...rfc822.map((e) => implicit(1, false, Buffer.from(e, 'latin1'))),
    ...utf8.map((u) => implicit(0, true, oid('1.3.6.1.5.5.7.8.9'), explicit(0, utf8String(u)))),
  ];
  return extension(OID.subjectAltName, false, sequence(...names));
}

/** ReasonFlags named bits (RFC 5280 4.2.1.13) as a DER BIT STRING, retagged. */
export function reasonFlags(tag: number, bits: number[]): Buffer {
  let v = 0;
  for (const b of bits) v |= 0x8000 >> b;
  const bytes = v & 0xff ? Buffer.of(v >> 8, v & 0xff) : Buffer.of(v >> 8);
  const last = bytes[bytes.length - 1]!;
  let unused = 0;
  while (unused < 7 && !(last & (1 << unused))) unused++;
  return retag(bitString(bytes, unused), tag);
}

const uriName = (u: string) => implicit(6, false, Buffer.from(u, 'latin1'));

/** cRLDistributionPoints with reasons and cRLIssuer (RFC 5280 4.2.1.13). */
export function distributionPoints(dps: Array<{ uris?: string[]; reasons?: number[]; crlIssuer?: Uint8Array }>): Buffer {
  return extension(OID.crlDistributionPoints, false, sequence(...dps.map((dp) => sequence(
    ...(dp.uris?.length ? [explicit(0, implicit(0, true, ...dp.uris.map(uriName)))] : []),
    ...(dp.reasons ? [reasonFlags(0x81, dp.reasons)] : []),
    ...(dp.crlIssuer ? [implicit(2, true, explicit(4, dp.crlIssuer))] : []),
  ))));
}

export interface CrlSpec {
  issuer: Party;
  thisUpdate?: Date;
  nextUpdate?: Date;
  /** certificateIssuer (DER Name) is written on the entry when given (indirect CRLs, RFC 5280 5.3.3). */
  revoked?: Array<{ cert: Certificate; date?: Date; reason?: number; certificateIssuer?: Uint8Array }>;
  /** issuingDistributionPoint (RFC 5280 5.2.5), critical. */
  idp?: { uris?: string[]; onlySomeReasons?: number[]; indirectCRL?: boolean };
  crlNumber?: number;
  /** Makes a delta CRL for base number `deltaBase`. */
  deltaBase?: number;
  freshestCrl?: string;
}

/** A v2 CRL (RFC 5280 5.1) signed by the issuer. */
export function buildCrl(s: CrlSpec): Buffer {
  const sigAlg = x509SignatureAlgorithm(s.issuer.key);
  const thisUpdate = s.thisUpdate ?? new Date(Date.now() - 60_000);
  const nextUpdate = s.nextUpdate ?? new Date(Date.now() + 86_400_000);
  const entries = (s.revoked ?? []).map((r) => {
    const list: Buffer[] = [];
    if (r.reason !== undefined) list.push(sequence(oid('2.5.29.21'), octetString(tlv(Tag.ENUMERATED, Buffer.of(r.reason)))));
    if (r.certificateIssuer) list.push(extension('2.5.29.29', true, sequence(explicit(4, r.certificateIssuer))));
    return sequence(unsignedInteger(stripZero(r.cert.serial)), time(r.date ?? new Date(Date.now() - 30_000)), ...(list.length ? [sequence(...list)] : []));
  });
  const exts: Buffer[] = [extension('2.5.29.20', false, integer(s.crlNumber ?? 1))];
  if (s.deltaBase !== undefined) exts.push(extension('2.5.29.27', true, integer(s.deltaBase)));
  if (s.idp) {
    const parts: Buffer[] = [];
    if (s.idp.uris?.length) parts.push(explicit(0, implicit(0, true, ...s.idp.uris.map(uriName))));
    if (s.idp.onlySomeReasons) parts.push(reasonFlags(0x83, s.idp.onlySomeReasons));
    if (s.idp.indirectCRL) parts.push(implicit(4, false, Buffer.of(0xff)));
    exts.push(extension('2.5.29.28', true, sequence(...parts)));
  }
  if (s.freshestCrl) exts.push(extension('2.5.29.46', false, sequence(sequence(explicit(0, implicit(0, true, implicit(6, false, Buffer.from(s.freshestCrl, 'latin1'))))))));
  const tbs = sequence(integer(1), sigAlg, Buffer.from(s.issuer.cert.subject), time(thisUpdate), time(nextUpdate), ...(entries.length ? [sequence(...entries)] : []), explicit(0, sequence(...exts)));
  return sequence(tbs, sigAlg, bitString(x509Sign(s.issuer.key, tbs)));
}

function stripZero(b: Uint8Array): Uint8Array {
  return b.length > 1 && b[0] === 0 ? b.subarray(1) : b;
}

/** A loopback HTTP server serving whatever is in `files` (path → body). */
export class StaticHttpServer {
  readonly files = new Map<string, Uint8Array>();
  requests = 0;
  #server: Server | undefined;
  port = 0;

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      this.requests++;
      const body = this.files.get(req.url ?? '');
      if (!body) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/pkix-crl', 'content-length': body.length }).end(body);
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()));
  }
}

export { freePort } from '../helpers/free-port.ts';

function opensslTime(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
}

/**
 * A real OpenSSL OCSP responder (`openssl ocsp -index ... -port N`) on 127.0.0.1
 * answering for certificates issued by `ca`, signed by `signer` (the CA itself or
 * a delegated responder).
 */
export class OpensslOcspResponder {
  readonly dir: string;
  readonly port: number;
  #proc: ChildProcess | undefined;

  constructor(port: number) {
    this.dir = mkdtempSync(join(tmpdir(), 'kakitome-ocsp-'));
    this.port = port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(ca: Party, signer: Party, entries: Array<{ cert: Certificate; revoked?: { date: Date; reason?: string } }>, validMinutes = 60): Promise<void> {
    const lines = entries.map(({ cert, revoked }) => {
      const status = revoked ? 'R' : 'V';
      const rev = revoked ? `${opensslTime(revoked.date)}${revoked.reason ? `,${revoked.reason}` : ''}` : '';
      return [status, opensslTime(cert.notAfter), rev, Buffer.from(stripZero(cert.serial)).toString('hex').toUpperCase(), 'unknown', `/CN=${cert.serialHex}`].join('\t');
    });
    writeFileSync(join(this.dir, 'index.txt'), lines.join('\n') + '\n');
    writeFileSync(join(this.dir, 'ca.pem'), encodePem('CERTIFICATE', ca.cert.der));
    writeFileSync(join(this.dir, 'rsigner.pem'), encodePem('CERTIFICATE', signer.cert.der));
    writeFileSync(join(this.dir, 'rkey.pem'), signer.key.export({ format: 'pem', type: 'pkcs8' }) as string);
    this.#proc = spawn('openssl', ['ocsp', '-index', 'index.txt', '-port', String(this.port), '-rsigner', 'rsigner.pem', '-rkey', 'rkey.pem', '-CA', 'ca.pem', '-nmin', String(validMinutes)], {
      cwd: this.dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    // Readiness is read from its log, not probed: the responder is single-threaded
    // and an empty probe connection would block it forever.
    const proc = this.#proc;
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`openssl ocsp did not start: ${stderr}`)), 10_000);
      proc.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('waiting for OCSP client connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', () => {
        clearTimeout(timer);
        reject(new Error(`openssl ocsp exited: ${stderr}`));
      });
    });
  }

  async stop(): Promise<void> {
    const p = this.#proc;
    if (p && p.exitCode === null) {
      const done = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await done;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A signature for rawCertificate: the AlgorithmIdentifier written (in tbs and outside) and how to sign. */
export interface RawSigner {
  algorithm: Uint8Array;
  sign: (tbs: Buffer) => Buffer;
}

/** The usual signer for a key: ECDSA/RSA with SHA-256 (x509SignatureAlgorithm). */
export function signerOf(k: KeyObject): RawSigner {
  return { algorithm: x509SignatureAlgorithm(k), sign: (tbs) => x509Sign(k, tbs) };
}

/**
 * A certificate written field by field, for hostile shapes issueCertificate refuses to
 * make: any subject Name, any version (null: none, v1), any SPKI, any extension list
 * (nothing added), a tbs signature AlgorithmIdentifier that differs from the outer one.
 * Returns the DER: some of these shapes are refused by Certificate.fromDer itself.
 */
export function rawCertificate(o: {
  subject: Uint8Array;
  spki: Uint8Array;
  issuer?: Certificate;
  signer: RawSigner;
  extensions?: Uint8Array[];
  version?: number | null;
  /** The whole serialNumber INTEGER (DER), any value: zero, negative, over 20 octets. */
  serial?: Uint8Array;
  tbsAlgorithm?: Uint8Array;
  notBefore?: Date;
  notAfter?: Date;
}): Buffer {
  const tbs = sequence(
    ...(o.version === null ? [] : [explicit(0, integer(o.version ?? 2))]),
    o.serial ? Buffer.from(o.serial) : unsignedInteger(Buffer.from('4a1b2c3d4e5f', 'hex')),
    Buffer.from(o.tbsAlgorithm ?? o.signer.algorithm),
    Buffer.from(o.issuer ? o.issuer.subject : o.subject),
    sequence(time(o.notBefore ?? new Date(Date.now() - 86_400_000)), time(o.notAfter ?? new Date(Date.now() + 300 * 86_400_000))),
    Buffer.from(o.subject),
    Buffer.from(o.spki),
    ...(o.extensions?.length ? [explicit(3, sequence(...o.extensions))] : []),
  );
  return sequence(tbs, Buffer.from(o.signer.algorithm), bitString(o.signer.sign(tbs)));
}

/** `openssl verify -x509_strict -purpose PURPOSE` of leaf over chain to root: true when OpenSSL accepts. */
export function opensslVerifies(leaf: Uint8Array, chain: Uint8Array[], root: Uint8Array, purpose = 'smimesign'): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'kakitome-verify-'));
  try {
    writeFileSync(join(dir, 'root.pem'), encodePem('CERTIFICATE', root));
    writeFileSync(join(dir, 'chain.pem'), chain.map((c) => encodePem('CERTIFICATE', c)).join(''));
    writeFileSync(join(dir, 'leaf.pem'), encodePem('CERTIFICATE', leaf));
    const args = ['verify', '-purpose', purpose, '-x509_strict', '-CAfile', join(dir, 'root.pem'), ...(chain.length ? ['-untrusted', join(dir, 'chain.pem')] : []), join(dir, 'leaf.pem')];
    return spawnSync('openssl', args, { encoding: 'utf8' }).status === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
