/**
 * Name constraints (RFC 5280 4.2.1.10, 6.1.3 (b)/(c)) for the two name forms that
 * matter to S/MIME: rfc822Name (and SmtpUTF8Mailbox, RFC 9598 3: constrained by
 * rfc822Name constraints after converting the domain to A-labels) and
 * directoryName. Other name forms in a constraint are ignored because S/MIME
 * certificates do not carry them (an S/MIME certificate with a dNSName is not
 * judged by its dNSName here).
 *
 * Distinguished names are compared after a light normalisation (RFC 4518 flavour:
 * trim, collapse spaces, case-fold) so that re-encoding a value as another string
 * type cannot step out of an excluded subtree.
 */
import { decode, readOid, readString, type Tlv } from '../asn1/ber.ts';
import { malformed } from '../errors.ts';
import type { GeneralSubtree, NameConstraints } from './read-certificate-extensions.ts';
import { mailDomainOf, splitMailbox } from '../x509/mailbox-address.ts';

/** Normalised RDN sequence: each RDN is its sorted "oid=value" members joined by '+'. */
export function normaliseName(der: Uint8Array): string[] {
  return decode(der, { der: true })
    .children()
    .map((rdn) =>
      rdn
        .children()
        .map((atv) => {
          const parts = atv.children();
          if (parts.length !== 2) malformed('AttributeTypeAndValue');
          const [type, value] = parts as [Tlv, Tlv];
          let v: string;
          try {
            v = readString(value).trim().replace(/\s+/g, ' ').toLowerCase();
          } catch {
            v = `#${Buffer.from(value.bytes).toString('hex')}`;
          }
          return `${readOid(type)}=${v}`;
        })
        .sort()
        .join('+'),
    );
}

function withinDirectorySubtree(name: string[], subtree: string[]): boolean {
  if (subtree.length > name.length) return false;
  return subtree.every((rdn, i) => name[i] === rdn);
}

/** A local part without its quotes and quoting backslashes (RFC 5321 4.1.2 quoted-string), else as it is. */
function unquoteLocalPart(local: string): string {
  const q = /^"((?:[^"\\]|\\.)*)"$/.exec(local);
  return q ? q[1]!.replace(/\\(.)/g, '$1') : local;
}

/** `m` is a split mailbox (splitMailbox). `excluded`: see the mailbox form below. */
function matchesRfc822Constraint(m: { local: string; domain: string }, written: string, excluded: boolean): boolean {
  // QUIRK: "@host" is no RFC 5280 form, but CAs write it; OpenSSL reads it as the host
  // form, and so do we (an excluded "@evil.example" excluded nothing before).
  const constraint = written.startsWith('@') ? written.slice(1) : written;
  if (constraint.includes('@')) {
    // A particular mailbox: domain case-insensitive; local part exact (RFC 5321 2.4)
    // for a permitted one. An excluded one is matched ignoring case: identity
    // matching accepts a From that differs from the certificate only in the case of
    // the local part (match-sender-identity.ts, QUIRK), so "CEO@corp.example" under
    // an excluded "ceo@corp.example" would otherwise vouch for ceo@corp.example.
    // Excluded ones are also matched unquoted: RFC 5321 4.1.2 makes "ceo"@ and c\eo
    // inside quotes the same mailbox as ceo@, and readers show them so.
    const c = splitMailbox(constraint);
    if (c === undefined || c.domain !== m.domain) return false;
    return excluded ? unquoteLocalPart(c.local).toLowerCase() === unquoteLocalPart(m.local).toLowerCase() : c.local === m.local;
  }
  // A final dot names the same domain (mailbox domains never have one: splitMailbox).
  const host = constraint.replace(/\.$/, '');
  const c = mailDomainOf(`@${host.replace(/^\./, '')}`);
  if (host.startsWith('.')) return m.domain.endsWith(`.${c}`);
  return m.domain === c;
}

export interface ConstrainedNames {
  /** Subject DN (DER). */
  subject: Uint8Array;
  /** rfc822Name, SmtpUTF8Mailbox and emailAddress values. */
  mailboxes: string[];
  /** directoryName entries of subjectAltName (DER). */
  directoryNames: Uint8Array[];
  /** The other name forms in subjectAltName (SubjectAltNames.otherForms, nameFormKey). */
  otherForms: string[];
}

/** Names of the GeneralName forms (RFC 5280 4.2.1.6) by tag, for the report. */
const FORM_NAMES: Record<number, string> = { 0xa0: 'otherName', 0x82: 'dNSName', 0xa3: 'x400Address', 0xa5: 'ediPartyName', 0x86: 'uniformResourceIdentifier', 0x87: 'iPAddress', 0x88: 'registeredID' };

/**
 * Checks names against one CA's constraints; returns the first violation as a
 * sentence, or undefined when every name is allowed.
 */
export function checkNameConstraints(names: ConstrainedNames, nc: NameConstraints, caName: string): string | undefined {
  const dns = [names.subject, ...names.directoryNames].map(normaliseName).filter((n) => n.length > 0);
  const mail = (list: GeneralSubtree[] | undefined) => (list ?? []).flatMap((s) => (s.kind === 'rfc822' ? [s.value] : []));
  const dir = (list: GeneralSubtree[] | undefined) => (list ?? []).flatMap((s) => (s.kind === 'directoryName' ? [normaliseName(s.value)] : []));
  const permittedMail = mail(nc.permitted);
  const excludedMail = mail(nc.excluded);
  const permittedDn = dir(nc.permitted);
  const excludedDn = dir(nc.excluded);
  for (const mbox of names.mailboxes) {
    if (!permittedMail.length && !excludedMail.length) break;
    // A name that is not a mailbox cannot be shown inside a permitted subtree or
    // outside an excluded one: refused (it used to step out of an excluded one).
    const m = splitMailbox(mbox);
    if (!m) return `${mbox} is not a mailbox that the mail name constraints of "${caName}" can be checked against`;
    if (permittedMail.length && !permittedMail.some((s) => matchesRfc822Constraint(m, s, false))) return `${mbox} is outside the mail domains permitted by "${caName}"`;
    const ex = excludedMail.find((s) => matchesRfc822Constraint(m, s, true));
    if (ex !== undefined) return `${mbox} is in the excluded mail name space ${ex} of "${caName}"`;
  }
  // RFC 5280 4.2.1.10: a constraint on a name form the application does not process
  // MUST make it reject a certificate that has a name of that form. S/MIME reads no
  // dNSName, URI or iPAddress, so these are not matched: refused. An otherName
  // constraint concerns its own type only (a UPN constraint says nothing of SmtpUTF8Mailbox).
  const unchecked = [...(nc.permitted ?? []), ...(nc.excluded ?? [])].find((s) => s.kind === 'other' && names.otherForms.includes(s.form));
  if (unchecked?.kind === 'other') {
    const form = FORM_NAMES[unchecked.tag] ?? `[${unchecked.tag & 0x1f}]`;
    return `"${caName}" constrains ${unchecked.tag === 0xa0 ? `${form} (${unchecked.form.split(':')[1]})` : form} names, which Kakitome does not match, and the certificate has one`;
  }
  for (const dn of dns) {
    if (permittedDn.length && !permittedDn.some((s) => withinDirectorySubtree(dn, s))) return `the name ${dn.join(', ')} is outside the directory subtrees permitted by "${caName}"`;
    if (excludedDn.some((s) => withinDirectorySubtree(dn, s))) return `the name ${dn.join(', ')} is in a directory subtree excluded by "${caName}"`;
  }
  return undefined;
}
