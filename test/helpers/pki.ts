/**
 * A throwaway PKI minted at test time (nothing is committed): a root CA, and end
 * entities of every key type with S/MIME extensions. PEM files are written to a
 * temporary directory so that the peers (openssl, cmsutil, gpgsm, Java) can read them.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueCertificate } from '../../src/x509/issue.ts';
import type { Certificate } from '../../src/x509/certificate.ts';
import { encodePem } from '../../src/asn1/pem.ts';
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

export function generateKey(kind: KeyKind): { publicKey: KeyObject; privateKey: KeyObject } {
  switch (kind) {
    case 'rsa1024': return generateKeyPairSync('rsa', { modulusLength: 1024 });
    case 'rsa2048': return generateKeyPairSync('rsa', { modulusLength: 2048 });
    case 'rsa3072': return generateKeyPairSync('rsa', { modulusLength: 3072 });
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
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
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

  /** An end entity of the given key type, created once per name. */
  identity(kind: KeyKind, name: string = kind, opts: { notBefore?: Date; notAfter?: Date } = {}): Identity {
    const id = `${name}`;
    const hit = this.#ids.get(id);
    if (hit) return hit;
    const { publicKey, privateKey } = generateKey(kind);
    const email = `${name}@example.com`;
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
      ...opts,
    });
    const certPath = join(this.dir, `${name}.pem`);
    const keyPath = join(this.dir, `${name}.key`);
    writeFileSync(certPath, encodePem('CERTIFICATE', cert.der));
    writeFileSync(keyPath, privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const ident: Identity = { kind, email, cert, key: privateKey, certPath, keyPath };
    this.#ids.set(id, ident);
    return ident;
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
