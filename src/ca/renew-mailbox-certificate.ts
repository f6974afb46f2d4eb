/**
 * Renewal: a new certificate for the same mailbox and use, by default with a new
 * key. The old certificate and its key stay in the store (key history), so mail
 * encrypted to the old certificate still decrypts.
 */
import type { KeyObject } from 'node:crypto';
import { KakitomeError } from '../errors.ts';
import type { Store } from '../store/store.ts';
import { listCertificateAuthorities } from './certificate-authority.ts';
import { issueMailboxCertificate, type IssuedCertificate, type MailboxKeyType, type MailboxUsage } from './issue-mailbox-certificate.ts';

export interface RenewOptions {
  /** Keep the old key (default false: a new key, as S/MIME practice recommends). */
  keepKey?: boolean;
  validityDays?: number;
  now?: Date;
}

function keyTypeOf(pub: KeyObject): MailboxKeyType {
  if (pub.asymmetricKeyType === 'rsa') return (pub.asymmetricKeyDetails?.modulusLength ?? 2048) >= 3072 ? 'rsa3072' : 'rsa2048';
  if (pub.asymmetricKeyType === 'ec') return pub.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'p384' : 'p256';
  throw new KakitomeError('UNSUPPORTED_ALG', `Cannot renew a ${pub.asymmetricKeyType} certificate with a new key; renew with keepKey.`);
}

export async function renewMailboxCertificate(store: Store, fingerprint: string, o: RenewOptions = {}): Promise<IssuedCertificate> {
  const rec = await store.findCertificateByFingerprint(fingerprint);
  if (!rec) throw new KakitomeError('INVALID_ARGUMENT', `No certificate ${fingerprint} in the store.`);
  const rows = await store.engine.all('SELECT ca_id, profile FROM issued_certificates WHERE certificate_id = ?', [rec.id]);
  const issued = rows[0];
  if (!issued || !String(issued.profile).startsWith('mailbox-strict-')) throw new KakitomeError('INVALID_ARGUMENT', 'Only mailbox certificates this CA issued can be renewed here.');
  const ca = (await listCertificateAuthorities(store)).find((c) => c.id === String(issued.ca_id));
  if (!ca) throw new KakitomeError('INVALID_ARGUMENT', 'The issuing CA of this certificate is not in the store.');
  const usage = String(issued.profile).slice('mailbox-strict-'.length) as MailboxUsage;
  const email = rec.emails[0];
  if (!email) throw new KakitomeError('INVALID_ARGUMENT', 'The certificate names no mailbox.');
  const pub = rec.certificate.publicKey;
  const [out] = await issueMailboxCertificate(store, {
    email,
    usage,
    caName: ca.name,
    ...(o.keepKey ? { publicKey: pub } : { keyType: keyTypeOf(pub) }),
    ...(o.validityDays ? { validityDays: o.validityDays } : {}),
    ...(o.now ? { now: o.now } : {}),
    renewedFrom: rec.certificate.fingerprint256,
  });
  return out!;
}
