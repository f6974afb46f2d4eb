/**
 * The names a certificate gives its subject, read from the DER (RFC 5280 4.2.1.6,
 * 4.1.2.6), and the one answer to "which mailboxes does this certificate name?"
 * (certificateMailboxes): the store files certificates by it, lookups and displays
 * read it, identity matching compares From with it and path validation's name
 * constraints check the same names. Before, the store read OpenSSL's subject text
 * with a regular expression (the first emailAddress only) and no SmtpUTF8Mailbox,
 * while identity matching read these: a certificate could be accepted for a sender
 * and still not be found to encrypt to that address.
 *
 * Every reader fails with MALFORMED on a damaged subjectAltName: a certificate
 * whose names cannot be read must not be half-trusted.
 */
import { decode, Tag, readOid, readString, type Tlv } from '../asn1/ber.ts';
import { OID } from '../asn1/oids.ts';
import { malformed } from '../errors.ts';
import type { Certificate } from './certificate.ts';

export interface SubjectAltNames {
  rfc822: string[];
  /** SmtpUTF8Mailbox otherName values (RFC 9598), UTF-8. */
  smtpUtf8: string[];
  /** directoryName entries, DER Name. */
  directoryNames: Uint8Array[];
  uris: string[];
  /**
   * The name forms present that no S/MIME decision reads, by nameFormKey (dNSName,
   * iPAddress, URI, each otherName type...): a CA's constraint on such a form
   * refuses the certificate (RFC 5280 4.2.1.10, pki/match-name-constraints.ts).
   */
  otherForms: string[];
}

/** One GeneralName form: its tag, and for otherName its type-id (a constraint on one otherName type says nothing of another). */
export function nameFormKey(tag: number, typeId?: string): string {
  return typeId === undefined ? `${tag}` : `${tag}:${typeId}`;
}

/** The contents of an IA5String-typed field (any tag) as text; MALFORMED for a byte outside printable ASCII. */
export function readIa5(t: Tlv, field: string): string {
  const v = t.value;
  for (const b of v) if (b > 0x7e || b < 0x20) malformed(`${field} contains a non-IA5 character`);
  return Buffer.from(v).toString('latin1');
}

/** GeneralNames ::= SEQUENCE OF GeneralName (RFC 5280 4.2.1.6). */
export function readGeneralNames(t: Tlv): SubjectAltNames {
  const out: SubjectAltNames = { rfc822: [], smtpUtf8: [], directoryNames: [], uris: [], otherForms: [] };
  const noteForm = (key: string) => {
    if (!out.otherForms.includes(key)) out.otherForms.push(key);
  };
  for (const gn of t.children()) {
    if (gn.tag !== 0x81 && gn.tag !== 0xa4 && gn.tag !== 0xa0) noteForm(nameFormKey(gn.tag));
    switch (gn.tag) {
      case 0xa0: {
        // otherName [0] { type-id OID, value [0] EXPLICIT ANY }
        const f = gn.fields('OtherName');
        const typeId = readOid(f.expect(Tag.OID, 'type-id'));
        const v = f.expect(0xa0, 'value');
        f.end();
        noteForm(nameFormKey(0xa0, typeId));
        if (typeId === OID.smtpUtf8Mailbox) {
          const s = v.children();
          if (s.length !== 1 || s[0]!.tag !== Tag.UTF8_STRING) malformed('SmtpUTF8Mailbox is not a UTF8String');
          out.smtpUtf8.push(readString(s[0]!));
        }
        break;
      }
      case 0x81:
        out.rfc822.push(readIa5(gn, 'rfc822Name'));
        break;
      case 0xa4: {
        const s = gn.children();
        if (s.length !== 1 || s[0]!.tag !== Tag.SEQUENCE) malformed('directoryName');
        out.directoryNames.push(s[0]!.bytes);
        break;
      }
      case 0x86:
        out.uris.push(readIa5(gn, 'uniformResourceIdentifier'));
        break;
      default:
        break; // dNSName, iPAddress...: not used for S/MIME decisions
    }
  }
  return out;
}

export function readSubjectAltNames(cert: Certificate): SubjectAltNames | undefined {
  const e = cert.extensions.get(OID.subjectAltName);
  return e ? readGeneralNames(decode(e.value, { der: true })) : undefined;
}

/**
 * Every emailAddress attribute (PKCS #9, 1.2.840.113549.1.9.1) of the subject Name,
 * in any RDN, multi-valued ones included, read from the DER: name constraints apply
 * to all of them (RFC 5280 4.2.1.10), not only to the first one a text rendering
 * shows. A value that is not a readable string comes back as "#" and its hex, which
 * is no mailbox (so any rfc822Name constraint refuses it).
 */
export function readSubjectEmailAddresses(cert: Certificate): string[] {
  return subjectEmailValues(cert, true);
}

/** `unreadableAsHex`: a value that is no readable string comes back as "#" and its hex; else it is left out. */
function subjectEmailValues(cert: Certificate, unreadableAsHex: boolean): string[] {
  const out: string[] = [];
  for (const rdn of decode(cert.subject, { der: true }).children()) {
    for (const atv of rdn.children()) {
      const [type, value] = atv.children();
      if (!type || !value || readOid(type) !== OID.emailAddress) continue;
      let v: string;
      try {
        v = readString(value);
      } catch {
        if (!unreadableAsHex) continue;
        v = `#${Buffer.from(value.bytes).toString('hex')}`;
      }
      if (!out.includes(v)) out.push(v);
    }
  }
  return out;
}

/**
 * The mailboxes a certificate names, as RFC 8550 3 reads them: the rfc822Name and
 * SmtpUTF8Mailbox entries of subjectAltName; the subject's emailAddress attributes
 * (every one, an unreadable value left out) only when subjectAltName names no
 * address (legacy certificates). As written in the certificate; compare them in
 * the one form of x509/mailbox-address.ts.
 */
export function certificateMailboxes(cert: Certificate): string[] {
  const san = readSubjectAltNames(cert);
  const fromSan = [...new Set([...(san?.rfc822 ?? []), ...(san?.smtpUtf8 ?? [])])];
  if (fromSan.length) return fromSan;
  return subjectEmailValues(cert, false);
}
