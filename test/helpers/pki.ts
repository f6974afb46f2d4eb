/**
 * A throwaway PKI minted at test time (nothing is committed): a root CA, and end
 * entities of every key type with S/MIME extensions (RSA keys from rsaKeyPair's pool). PEM files are written to a
 * temporary directory so that the peers (openssl, cmsutil, gpgsm, Java) can read them.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { issueCertificate, type KeyUsageName } from '../../src/x509/issue.ts';
import { x509Sign } from '../../src/x509/algorithms.ts';
import { Certificate } from '../../src/x509/certificate.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { decode } from '../../src/asn1/ber.ts';
import { bitString, sequence } from '../../src/asn1/der.ts';
import { OID } from '../../src/asn1/oids.ts';

export type KeyKind =
  | 'rsa2048' | 'rsa3072' | 'rsa1024'
  | 'p256' | 'p384' | 'p521'
  | 'ed25519' | 'ed448' | 'x25519' | 'x448'
  | 'mlkem768' | 'mlkem1024' | 'mldsa44' | 'mldsa65' | 'mldsa87';

export interface Identity {
  kind: KeyKind;
  email: string;
  cert: Certificate;
  key: KeyObject;
  certPath: string;
  keyPath: string;
}

const RSA_KEYS = fileURLToPath(new URL('../../node_modules/.cache/kakitome-tests/rsa-keys/', import.meta.url));
const rsaTaken = new Map<number, number>();

/**
 * An RSA key pair that no other call in this process returned: the process's n-th
 * RSA key of this size is the n-th of a pool kept in node_modules/.cache (per user,
 * gone with node_modules), made by whichever test file first needed it. Every key a
 * file sees is still distinct from every other it sees; only files (processes, each
 * with stores of their own) share them. RSA key generation is the one slow step of a
 * throwaway PKI (2048 bits: 60-200 ms of CPU; 3072: 0.3-1.2 s), and the suite made
 * hundreds of them.
 */
export function rsaKeyPair(modulusLength: 2048 | 3072): { publicKey: KeyObject; privateKey: KeyObject } {
  const n = rsaTaken.get(modulusLength) ?? 0;
  rsaTaken.set(modulusLength, n + 1);
  const file = join(RSA_KEYS, `rsa${modulusLength}-${n}.pem`);
  if (existsSync(file)) {
    const privateKey = createPrivateKey(readFileSync(file));
    return { publicKey: createPublicKey(privateKey), privateKey };
  }
  const pair = generateKeyPairSync('rsa', { modulusLength });
  try {
    mkdirSync(RSA_KEYS, { recursive: true });
    const staged = `${file}.${process.pid}`;
    writeFileSync(staged, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    // link, not rename: a file that made the same entry first keeps it (this process keeps its own key).
    try { linkSync(staged, file); } catch { /* made by another file at the same time */ }
    rmSync(staged, { force: true });
  } catch {
    // A read-only checkout: the key stays this process's only.
  }
  return pair;
}

export function generateKey(kind: KeyKind): { publicKey: KeyObject; privateKey: KeyObject } {
  switch (kind) {
    case 'rsa1024': return generateKeyPairSync('rsa', { modulusLength: 1024 });
    case 'rsa2048': return rsaKeyPair(2048);
    case 'rsa3072': return rsaKeyPair(3072);
    case 'p256': return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    case 'p384': return generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    case 'p521': return generateKeyPairSync('ec', { namedCurve: 'secp521r1' });
    case 'ed25519': return generateKeyPairSync('ed25519');
    case 'ed448': return generateKeyPairSync('ed448');
    case 'x25519': return generateKeyPairSync('x25519');
    case 'x448': return generateKeyPairSync('x448');
    case 'mlkem768': return generateKeyPairSync('ml-kem-768');
    case 'mlkem1024': return generateKeyPairSync('ml-kem-1024');
    case 'mldsa44': return generateKeyPairSync('ml-dsa-44');
    case 'mldsa65': return generateKeyPairSync('ml-dsa-65');
    case 'mldsa87': return generateKeyPairSync('ml-dsa-87');
  }
}

const SIGNING: KeyKind[] = ['ed25519', 'ed448', 'mldsa44', 'mldsa65', 'mldsa87'];
const AGREEMENT: KeyKind[] = ['x25519', 'x448', 'mlkem768', 'mlkem1024'];

export class TestPki {
  readonly dir: string;
  readonly caKey: KeyObject;
  readonly caCert: Certificate;
  readonly caPath: string;
  readonly #ids = new Map<string, Identity>();

  constructor(name = 'Kakitome Test Root') {
    this.dir = mkdtempSync(join(tmpdir(), 'kakitome-pki-'));
    const { publicKey, privateKey } = rsaKeyPair(2048);
    this.caKey = privateKey;
    this.caCert = issueCertificate({
      subject: { commonName: name, organization: 'Kakitome Tests', country: 'JP' },
      publicKey,
      signingKey: privateKey,
      ca: true,
      keyUsage: ['keyCertSign', 'cRLSign'],
      notAfter: new Date(Date.now() + 10 * 365 * 86_400_000),
    });
    this.caPath = join(this.dir, 'ca.pem');
    writeFileSync(this.caPath, encodePem('CERTIFICATE', this.caCert.der));
    writeFileSync(join(this.dir, 'ca.key'), privateKey.export({ format: 'pem', type: 'pkcs8' }));
  }

  /** An end entity of the given key type, created once per name (its address name@example.com, or at `domain`). */
  identity(kind: KeyKind, name: string = kind, opts: { notBefore?: Date; notAfter?: Date; domain?: string } = {}): Identity {
    const id = `${name}`;
    const hit = this.#ids.get(id);
    if (hit) return hit;
    const { publicKey, privateKey } = generateKey(kind);
    const { domain = 'example.com', ...validity } = opts;
    const email = `${name}@${domain}`;
    const keyUsage = SIGNING.includes(kind)
      ? (['digitalSignature', 'nonRepudiation'] as const)
      : AGREEMENT.includes(kind)
        ? (kind.startsWith('mlkem') ? (['keyEncipherment'] as const) : (['keyAgreement'] as const))
        : kind.startsWith('rsa')
          ? (['digitalSignature', 'nonRepudiation', 'keyEncipherment'] as const)
          : (['digitalSignature', 'nonRepudiation', 'keyAgreement'] as const);
    const cert = issueCertificate({
      subject: { commonName: `Test ${name}`, emailAddress: email },
      publicKey,
      issuer: this.caCert,
      signingKey: this.caKey,
      keyUsage: [...keyUsage],
      extKeyUsage: [OID.emailProtection],
      emails: [email],
      ...validity,
    });
    const certPath = join(this.dir, `${name}.pem`);
    const keyPath = join(this.dir, `${name}.key`);
    writeFileSync(certPath, encodePem('CERTIFICATE', cert.der));
    writeFileSync(keyPath, privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const ident: Identity = { kind, email, cert, key: privateKey, certPath, keyPath };
    this.#ids.set(id, ident);
    return ident;
  }

  /**
   * A certificate this CA signs for name@example.com over any SubjectPublicKeyInfo
   * (DER), also one node:crypto will not make or read (an RSA exponent of 1, an EC
   * point off its curve): issued for a placeholder key, whose SubjectPublicKeyInfo
   * is then swapped in the TBSCertificate (RFC 5280 4.1, its seventh field) and the
   * whole signed again by the CA's key. Its subjectKeyIdentifier stays the
   * placeholder's (RFC 5280 4.2.1.2 leaves the method to the CA).
   */
  certifyPublicKeyInfo(name: string, spki: Uint8Array, keyUsage: KeyUsageName[]): { cert: Certificate; certPath: string; email: string } {
    const email = `${name}@example.com`;
    const placeholder = issueCertificate({
      subject: { commonName: `Test ${name}`, emailAddress: email },
      publicKey: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey,
      issuer: this.caCert,
      signingKey: this.caKey,
      keyUsage,
      extKeyUsage: [OID.emailProtection],
      emails: [email],
    });
    const fields = decode(placeholder.tbs, { der: true }).children();
    const tbs = sequence(...fields.map((f, i) => (i === 6 ? spki : f.bytes)));
    const signatureAlgorithm = decode(placeholder.der, { der: true }).children()[1]!.bytes;
    const cert = Certificate.fromDer(sequence(tbs, signatureAlgorithm, bitString(x509Sign(this.caKey, tbs))));
    const certPath = join(this.dir, `${name}.pem`);
    writeFileSync(certPath, encodePem('CERTIFICATE', cert.der));
    return { cert, certPath, email };
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
