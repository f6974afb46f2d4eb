/**
 * An iPhone/iPad configuration profile (.mobileconfig, Apple's Configuration
 * Profile Reference) that installs a person's certificate and key, and the
 * organisation's root CA so that colleagues' signed mail verifies:
 * - com.apple.security.pkcs12: the PKCS#12 file as it is (PayloadContent data),
 *   without its password: iOS asks for it at installation, so the profile on its
 *   own opens nothing;
 * - com.apple.security.root: the root certificate (DER);
 * - com.apple.mail.managed, when the organisation's mail servers are known
 *   (store/mail-server-settings.ts): the IMAP account for the person's address,
 *   with S/MIME signing and encryption on and both pointing at the PKCS#12
 *   payload's UUID (SMIMESigningCertificateUUID, SMIMEEncryptionCertificateUUID),
 *   and the iOS 12 keys that leave the person the choice (signing, encryption by
 *   default, the identities, the per-message switch: Apple's Mail payload
 *   reference). No password is put in the profile: iOS asks for it.
 * The profile is an XML property list written here (a plist is small and fixed:
 * dict, string, integer, boolean, data, array), every string escaped; the console
 * signs it (sign-mobileconfig.ts).
 */
import { randomUUID } from 'node:crypto';
import type { MailServerSettings } from '../../store/mail-server-settings.ts';
import type { Certificate } from '../../x509/certificate.ts';

type PlistValue = string | number | boolean | Buffer | PlistValue[] | { [key: string]: PlistValue };

function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`).replace(/[\x00-\x08\x0b\x0c\x0e-\x1f]/g, '');
}

function plistValue(v: PlistValue, indent: string): string {
  if (typeof v === 'string') return `${indent}<string>${escapeXml(v)}</string>`;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new TypeError('plist integers only');
    return `${indent}<integer>${v}</integer>`;
  }
  if (typeof v === 'boolean') return `${indent}<${v}/>`;
  if (Buffer.isBuffer(v)) return `${indent}<data>\n${(v.toString('base64').match(/.{1,68}/g) ?? []).map((l) => `${indent}${l}`).join('\n')}\n${indent}</data>`;
  if (Array.isArray(v)) return `${indent}<array>\n${v.map((x) => plistValue(x, `${indent}\t`)).join('\n')}\n${indent}</array>`;
  const entries = Object.entries(v).map(([k, x]) => `${indent}\t<key>${escapeXml(k)}</key>\n${plistValue(x, `${indent}\t`)}`);
  return `${indent}<dict>\n${entries.join('\n')}\n${indent}</dict>`;
}

export function writePlist(root: PlistValue): Buffer {
  return Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
${plistValue(root, '')}
</plist>
`, 'utf8');
}

export interface MobileconfigInput {
  /** The person's mailbox (names the profile and the identity). */
  email: string;
  organisation: string;
  /** The console's host name, reversed into the payload identifiers (com.example.console...). */
  host: string;
  pkcs12: Buffer;
  /** The organisation's root CA, installed as trusted (com.apple.security.root); omitted when unknown. */
  root?: Certificate;
  /** The organisation's mail servers: with them, a Mail account payload with S/MIME on. */
  mail?: MailServerSettings;
  /** Text of the profile in the person's language. */
  text: { displayName: string; description: string; identityName: string; rootName: string; accountName?: string };
}

/** The Mail account payload's content (Apple's com.apple.mail.managed keys). */
function mailAccount(o: MobileconfigInput, mail: MailServerSettings, identityUuid: string): Record<string, PlistValue> {
  const username = mail.username === 'address' ? o.email : o.email.slice(0, o.email.lastIndexOf('@'));
  return {
    EmailAccountType: 'EmailTypeIMAP',
    EmailAccountDescription: o.text.accountName ?? o.email,
    EmailAddress: o.email,
    IncomingMailServerHostName: mail.imap.host,
    IncomingMailServerPortNumber: mail.imap.port,
    IncomingMailServerUseSSL: true,
    IncomingMailServerAuthentication: 'EmailAuthPassword',
    IncomingMailServerUsername: username,
    OutgoingMailServerHostName: mail.smtp.host,
    OutgoingMailServerPortNumber: mail.smtp.port,
    OutgoingMailServerUseSSL: true,
    OutgoingMailServerAuthentication: 'EmailAuthPassword',
    OutgoingMailServerUsername: username,
    OutgoingPasswordSameAsIncomingPassword: true,
    SMIMESigningEnabled: true,
    SMIMESigningCertificateUUID: identityUuid,
    SMIMEEncryptionEnabled: true,
    SMIMEEncryptionCertificateUUID: identityUuid,
    SMIMESigningUserOverrideable: true,
    SMIMESigningCertificateUUIDUserOverrideable: true,
    SMIMEEncryptByDefault: false,
    SMIMEEncryptByDefaultUserOverrideable: true,
    SMIMEEncryptionCertificateUUIDUserOverrideable: true,
    SMIMEEnableEncryptionPerMessageSwitch: true,
  };
}

/** A reverse-DNS identifier prefix from a host name: kakitome.jp.co.example.console. */
function identifierPrefix(host: string): string {
  const labels = host.toLowerCase().replace(/:\d+$/, '').split('.').filter((l) => /^[a-z0-9-]{1,63}$/.test(l));
  return ['kakitome', ...labels.reverse()].join('.') || 'kakitome';
}

export function buildMobileconfig(o: MobileconfigInput): Buffer {
  const prefix = `${identifierPrefix(o.host)}.smime.${o.email.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  const payload = (type: string, name: string, suffix: string, content: Record<string, PlistValue>): Record<string, PlistValue> => ({
    PayloadType: type, PayloadVersion: 1, PayloadIdentifier: `${prefix}.${suffix}`, PayloadUUID: randomUUID().toUpperCase(), PayloadDisplayName: name, ...content,
  });
  const identity = payload('com.apple.security.pkcs12', o.text.identityName, 'identity', { PayloadCertificateFileName: `${o.email}.p12`, PayloadContent: o.pkcs12 });
  const content: PlistValue[] = [identity];
  if (o.root) content.push(payload('com.apple.security.root', o.text.rootName, 'root', { PayloadCertificateFileName: 'root-ca.cer', PayloadContent: Buffer.from(o.root.der) }));
  if (o.mail) content.push(payload('com.apple.mail.managed', o.text.accountName ?? o.email, 'mail', mailAccount(o, o.mail, identity.PayloadUUID as string)));
  return writePlist({
    PayloadType: 'Configuration', PayloadVersion: 1, PayloadIdentifier: prefix, PayloadUUID: randomUUID().toUpperCase(),
    PayloadDisplayName: o.text.displayName, PayloadDescription: o.text.description, PayloadOrganization: o.organisation,
    PayloadRemovalDisallowed: false, PayloadContent: content,
  });
}
