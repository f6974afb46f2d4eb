/**
 * docs/security.md section 22 ("Hostile certification paths"): chains built to make
 * path validation (RFC 5280 6.1, RFC 8550 4) trust what it must not. Each case is
 * decided by Kakitome's validator and, on the same bytes, by `openssl verify
 * -x509_strict` where OpenSSL decides it the same way; the cases where it does not
 * are docs/interop.md q20-q22. Last, RFC 5652 11.4 countersigners: path-validated and reported.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createHash, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createSignerValidator, type SignerValidatorOptions } from '../../src/pki/create-signer-validator.ts';
import { Certificate } from '../../src/x509/certificate.ts';
import { encodeName, keyIdentifier, toPublic } from '../../src/x509/issue.ts';
import { OID } from '../../src/asn1/oids.ts';
import { sequence, set, setOf, oid, ia5String, utf8String, implicit, explicit, octetString, boolean, bitString, integer, retag, time } from '../../src/asn1/der.ts';
import { encodeAttribute } from '../../src/cms/attributes.ts';
import { encodeIdentifier, identifierFor } from '../../src/cms/identifier.ts';
import { verifyMessage } from '../../src/smime/verify-message.ts';
import { viewVerdict } from '../../src/smime/verdict-view.ts';
import { rootCa, subCa, endEntity, key, extension, nameConstraints, rawCertificate, signerOf, opensslVerifies, type Party, type RawSigner } from '../pki/pki-builder.ts';
import { errorCode } from '../helpers/error-code.ts';

const root = rootCa('Hostile Paths Root');

async function judge(leaf: Certificate, carried: Certificate[], from: string, more: SignerValidatorOptions = {}, anchor = root.cert) {
  return createSignerValidator({ anchors: [anchor], revocation: { mode: 'off' }, ...more })({ certificate: leaf, carried, usage: 'signing', from: [from] });
}

const spkiOf = (k: KeyObject) => toPublic(k).export({ format: 'der', type: 'spki' });
const ku = (bits: number, unused: number) => extension(OID.keyUsage, true, bitString(Buffer.of(bits), unused));
const caExtensions = (k: KeyObject) => [extension(OID.basicConstraints, true, sequence(boolean(true))), ku(0x06, 1), extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(k)))];
const sanExtension = (...names: Buffer[]) => extension(OID.subjectAltName, false, sequence(...names));
const rfc822 = (s: string) => implicit(1, false, Buffer.from(s, 'latin1'));
const dnsName = (s: string) => implicit(2, false, Buffer.from(s, 'latin1'));
const signerLeafExtensions = [ku(0x80, 7), extension(OID.extKeyUsage, false, sequence(oid(OID.emailProtection)))];
const emailAttribute = (v: string) => sequence(oid(OID.emailAddress), ia5String(v));
const cnAttribute = (v: string) => sequence(oid(OID.commonName), utf8String(v));

/** authorityKeyIdentifier, which `openssl verify -x509_strict` requires (else it refuses for that alone). */
const akiOf = (ca: Party) => extension(OID.authorityKeyIdentifier, false, sequence(implicit(0, false, ca.cert.subjectKeyIdentifier!)));

function leafUnder(ca: Party, subject: Uint8Array, extensions: Uint8Array[], k = key('p256', 'hostile-leaf')): Certificate {
  return Certificate.fromDer(rawCertificate({ subject, spki: spkiOf(k.publicKey), issuer: ca.cert, signer: signerOf(ca.key), extensions: [...extensions, akiOf(ca)] }));
}

test('an rfc822Name that is not a mailbox (no @, a final dot) cannot step out of an excluded subtree', async () => {
  const ca = subCa(root, 'Excludes evil.example', { extraExtensions: [nameConstraints({ excludedEmail: ['evil.example', '.evil.example'] })] });
  for (const name of ['evil.example', 'boss@evil.example.', 'boss@sub.evil.example.']) {
    const leaf = leafUnder(ca, encodeName({ commonName: 'x' }), [...signerLeafExtensions, sanExtension(rfc822(name))]);
    const r = await judge(leaf, [ca.cert], name);
    assert.equal(r.code, 'CERT_UNTRUSTED', `${name}: ${r.message}`);
    assert.match(r.message, /name constraints violated/);
  }
  // OpenSSL refuses the name without @ too; it lets the final dot through (interop.md q20).
  const noAt = leafUnder(ca, encodeName({ commonName: 'x' }), [...signerLeafExtensions, sanExtension(rfc822('evil.example'))]);
  assert.equal(opensslVerifies(noAt.der, [ca.cert.der], root.cert.der), false);
  // Under a permitted subtree the same names were already refused; a well-formed one passes.
  const permits = subCa(root, 'Permits good.example', { extraExtensions: [nameConstraints({ permittedEmail: ['good.example'] })] });
  const ok = leafUnder(permits, encodeName({ commonName: 'x' }), [...signerLeafExtensions, sanExtension(rfc822('a@GOOD.example'))]);
  assert.equal((await judge(ok, [permits.cert], 'a@good.example')).status, 'trusted');
  assert.equal(opensslVerifies(ok.der, [permits.cert.der], root.cert.der), true, 'the control passes OpenSSL');
});

test('an excluded mailbox is excluded whatever the case of its local part, as identity matching folds it', async () => {
  const ca = subCa(root, 'Excludes the CEO', { extraExtensions: [nameConstraints({ excludedEmail: ['ceo@corp.example'] })] });
  const leaf = leafUnder(ca, encodeName({ commonName: 'x' }), [...signerLeafExtensions, sanExtension(rfc822('CEO@corp.example'))]);
  // Before: trusted, matching From ceo@corp.example with only a case-folding warning.
  const r = await judge(leaf, [ca.cert], 'ceo@corp.example');
  assert.equal(r.code, 'CERT_UNTRUSTED', r.message);
  assert.match(r.message, /excluded mail name space ceo@corp.example/);
});

test('every emailAddress attribute of the subject is under the rfc822Name constraints, in any RDN', async () => {
  const ca = subCa(root, 'Permits good.example only', { extraExtensions: [nameConstraints({ permittedEmail: ['good.example'] })] });
  const twice = sequence(set(cnAttribute('two')), set(emailAttribute('ok@good.example')), set(emailAttribute('boss@evil.example')));
  const multiValued = sequence(set(cnAttribute('m'), emailAttribute('boss@evil.example')));
  for (const subject of [twice, multiValued]) {
    const leaf = leafUnder(ca, subject, signerLeafExtensions);
    const r = await judge(leaf, [ca.cert], 'ok@good.example');
    assert.equal(r.code, 'CERT_UNTRUSTED', r.message);
    assert.match(r.message, /boss@evil.example is outside the mail domains permitted/);
    assert.equal(opensslVerifies(leaf.der, [ca.cert.der], root.cert.der), false, 'OpenSSL refuses it too');
  }
  const once = leafUnder(ca, sequence(set(cnAttribute('one')), set(emailAttribute('ok@good.example'))), signerLeafExtensions);
  const r = await judge(once, [ca.cert], 'ok@good.example');
  assert.equal(r.status, 'trusted', r.message);
  assert.equal(r.identity.status, 'match');
  assert.equal(opensslVerifies(once.der, [ca.cert.der], root.cert.der), true, 'the control passes OpenSSL');
});

test('a critical constraint on a name form Kakitome does not match (dNSName) refuses certificates carrying that form', async () => {
  const nc = extension(OID.nameConstraints, true, sequence(implicit(0, true, sequence(dnsName('good.example')))));
  const ca = subCa(root, 'Permits dNSName good.example', { extraExtensions: [nc] });
  const outside = leafUnder(ca, encodeName({ commonName: 'x' }), [...signerLeafExtensions, sanExtension(rfc822('b@good.example'), dnsName('evil.example'))]);
  const r = await judge(outside, [ca.cert], 'b@good.example');
  assert.equal(r.code, 'CERT_UNTRUSTED', r.message);
  assert.match(r.message, /dNSName/);
  assert.equal(opensslVerifies(outside.der, [ca.cert.der], root.cert.der), false, 'OpenSSL refuses it too');
  // RFC 5280 4.2.1.10: a constraint on one form says nothing about the others.
  // (A common name that is no host name: OpenSSL checks one that looks like a host against dNSName constraints.)
  const mailOnly = leafUnder(ca, encodeName({ commonName: 'Mail User' }), [...signerLeafExtensions, sanExtension(rfc822('b@other.example'))]);
  assert.equal((await judge(mailOnly, [ca.cert], 'b@other.example')).status, 'trusted');
  assert.equal(opensslVerifies(mailOnly.der, [ca.cert.der], root.cert.der), true);
  // An otherName constraint concerns its own type: a UPN constraint (Microsoft, 1.3.6.1.4.1.311.20.2.3)
  // refuses a UPN it cannot match, not an SmtpUTF8Mailbox (which rfc822Name constraints govern, RFC 9598).
  const upn = '1.3.6.1.4.1.311.20.2.3';
  const otherName = (type: string, v: string) => implicit(0, true, oid(type), explicit(0, utf8String(v)));
  const upnCa = subCa(root, 'Permits UPN @corp.example', { extraExtensions: [extension(OID.nameConstraints, true, sequence(implicit(0, true, sequence(otherName(upn, '@corp.example')))))] });
  const withUpn = leafUnder(upnCa, encodeName({ commonName: 'Mail User' }), [...signerLeafExtensions, sanExtension(rfc822('u@good.example'), otherName(upn, 'u@evil.example'))]);
  const u = await judge(withUpn, [upnCa.cert], 'u@good.example');
  assert.equal(u.code, 'CERT_UNTRUSTED', u.message);
  assert.match(u.message, /otherName \(1\.3\.6\.1\.4\.1\.311\.20\.2\.3\)/);
  const withUtf8 = leafUnder(upnCa, encodeName({ commonName: 'Mail User' }), [...signerLeafExtensions, sanExtension(rfc822('u@good.example'), otherName('1.3.6.1.5.5.7.8.9', 'ü@good.example'))]);
  assert.equal((await judge(withUtf8, [upnCa.cert], 'u@good.example')).status, 'trusted');
  assert.equal(opensslVerifies(withUtf8.der, [upnCa.cert.der], root.cert.der), true);
});

test('a v1 or v2 certificate with extensions is malformed (RFC 5280 4.1.2.1, 4.1.2.9)', () => {
  const k = key('p256', 'v1-with-extensions');
  for (const version of [null, 1]) {
    const der = rawCertificate({ subject: encodeName({ commonName: 'v1 CA' }), spki: spkiOf(k.publicKey), issuer: root.cert, signer: signerOf(root.key), extensions: caExtensions(k.publicKey), version });
    assert.equal(errorCode(() => Certificate.fromDer(der)), 'MALFORMED');
  }
});

const rsaRoot = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaRootParty: Party = {
  key: rsaRoot.privateKey,
  cert: Certificate.fromDer(rawCertificate({ subject: encodeName({ commonName: 'Hostile RSA Root' }), spki: spkiOf(rsaRoot.publicKey), signer: signerOf(rsaRoot.privateKey), extensions: caExtensions(rsaRoot.publicKey) })),
};

test('an intermediate signed with RSASSA-PSS over SHA-1 is SHA-1 to the algorithm policy', async () => {
  const pssSha1: RawSigner = { algorithm: sequence(oid(OID.rsassaPss), sequence()), sign: (tbs) => cryptoSign('sha1', tbs, { key: rsaRoot.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 20 }) };
  const ik = key('p256', 'pss-sha1-intermediate');
  const inter: Party = { key: ik.privateKey, cert: Certificate.fromDer(rawCertificate({ subject: encodeName({ commonName: 'PSS SHA-1 CA' }), spki: spkiOf(ik.publicKey), issuer: rsaRootParty.cert, signer: pssSha1, extensions: caExtensions(ik.publicKey) })) };
  const leaf = endEntity(inter, 'a@good.example').cert;
  // Before: trusted, with no word of SHA-1 (the policy read the hash from the OID only).
  const r = await judge(leaf, [inter.cert], 'a@good.example', {}, rsaRootParty.cert);
  assert.equal(r.code, 'WEAK_ALG', r.message);
  assert.match(r.message, /SHA-1/);
  const legacy = await judge(leaf, [inter.cert], 'a@good.example', { allowLegacy: true }, rsaRootParty.cert);
  assert.equal(legacy.status, 'trusted', legacy.message);
  assert.ok(legacy.legacy?.some((l) => /SHA-1/.test(l)));
  // RSASSA-PSS over SHA-256 is not legacy.
  const pssSha256Params = sequence(explicit(0, sequence(oid(OID.sha256))), explicit(1, sequence(oid(OID.mgf1), sequence(oid(OID.sha256)))), explicit(2, integer(32)));
  const pss256: RawSigner = { algorithm: sequence(oid(OID.rsassaPss), pssSha256Params), sign: (tbs) => cryptoSign('sha256', tbs, { key: rsaRoot.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }) };
  const ik2 = key('p256', 'pss-sha256-intermediate');
  const inter2: Party = { key: ik2.privateKey, cert: Certificate.fromDer(rawCertificate({ subject: encodeName({ commonName: 'PSS SHA-256 CA' }), spki: spkiOf(ik2.publicKey), issuer: rsaRootParty.cert, signer: pss256, extensions: caExtensions(ik2.publicKey) })) };
  const leaf2 = endEntity(inter2, 'a@good.example').cert;
  const ok = await judge(leaf2, [inter2.cert], 'a@good.example', {}, rsaRootParty.cert);
  assert.equal(ok.status, 'trusted', ok.message);
  assert.equal(ok.legacy, undefined);
  // A trust anchor's self-signature is never verified nor judged: odd PSS parameters (NULL) there change nothing.
  const oddSelfSignature: RawSigner = { algorithm: sequence(oid(OID.rsassaPss), Buffer.of(0x05, 0x00)), sign: () => Buffer.alloc(256, 1) };
  const oddAnchor = Certificate.fromDer(rawCertificate({ subject: rsaRootParty.cert.subject, spki: spkiOf(rsaRoot.publicKey), signer: oddSelfSignature, extensions: caExtensions(rsaRoot.publicKey) }));
  const viaOdd = await judge(leaf2, [inter2.cert], 'a@good.example', {}, oddAnchor);
  assert.equal(viaOdd.status, 'trusted', viaOdd.message);
});

test('a key with explicit EC parameters is refused (RFC 5480 2.1.1: specifiedCurve MUST NOT be used)', async () => {
  const pem = execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-param_enc', 'explicit', '-genkey', '-noout']);
  const spki = execFileSync('openssl', ['ec', '-pubout', '-outform', 'DER'], { input: pem, stdio: ['pipe', 'pipe', 'ignore'] });
  const ca = subCa(root, 'Explicit Curve Issuer');
  const leaf = Certificate.fromDer(rawCertificate({ subject: encodeName({ commonName: 'explicit' }), spki, issuer: ca.cert, signer: signerOf(ca.key), extensions: [...signerLeafExtensions, sanExtension(rfc822('a@good.example')), akiOf(ca)] }));
  assert.equal(leaf.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1', 'OpenSSL names the curve it recognises in the explicit parameters');
  const r = await judge(leaf, [ca.cert], 'a@good.example');
  assert.equal(r.code, 'WEAK_ALG', r.message);
  assert.match(r.message, /explicit/);
  assert.equal(opensslVerifies(leaf.der, [ca.cert.der], root.cert.der), false, 'OpenSSL -x509_strict refuses it too');
  const named = leafUnder(ca, encodeName({ commonName: 'named' }), [...signerLeafExtensions, sanExtension(rfc822('a@good.example'))]);
  assert.equal((await judge(named, [ca.cert], 'a@good.example')).status, 'trusted');
  assert.equal(opensslVerifies(named.der, [ca.cert.der], root.cert.der), true, 'the control passes OpenSSL');
});


// RFC 5652 11.4: a countersignature is a signature (on the countersigned signature value), made
// with a certificate like any other; built by hand and signed for real.
function countersignedMail(signer: Party, countersigner: Party | Party[], carried: Certificate[]): Buffer {
  const SHA256 = sequence(oid(OID.sha256));
  const ECDSA_SHA256 = sequence(oid(OID.ecdsaWithSHA256));
  const digest = (b: Uint8Array) => octetString(createHash('sha256').update(b).digest());
  const signerInfo = (p: Party, attrs: Buffer[], unsigned: Buffer[] = [], signature?: Buffer) => {
    const signed = setOf(attrs);
    const value = signature ?? cryptoSign('sha256', signed, p.key);
    return { der: sequence(integer(1), encodeIdentifier(identifierFor(p.cert)), SHA256, retag(signed, 0xa0), ECDSA_SHA256, octetString(value), ...(unsigned.length ? [retag(setOf(unsigned), 0xa1)] : [])), signature: value };
  };
  const content = Buffer.from('Content-Type: text/plain; charset=utf-8\r\n\r\nCountersigned.\r\n');
  const attrs = [encodeAttribute(OID.contentType, oid(OID.data)), encodeAttribute(OID.messageDigest, digest(content)), encodeAttribute(OID.signingTime, time(new Date(Date.now() - 60_000)))];
  const main = signerInfo(signer, attrs);
  const at = time(new Date(Date.now() - 30_000)); // one time for all: each certificate is then judged once
  const cs = (Array.isArray(countersigner) ? countersigner : [countersigner]).map((c) => signerInfo(c, [encodeAttribute(OID.messageDigest, digest(main.signature)), encodeAttribute(OID.signingTime, at)]).der);
  const si = signerInfo(signer, attrs, [encodeAttribute(OID.counterSignature, ...cs)], main.signature);
  const sd = sequence(integer(1), set(SHA256), sequence(oid(OID.data), explicit(0, octetString(content))), implicit(0, true, ...carried.map((c) => c.der)), set(si.der));
  const der = sequence(oid(OID.signedData), explicit(0, sd));
  return Buffer.from(`From: <${signer.cert.emailAddresses[0]}>\r\nTo: taro@example.com\r\nSubject: Countersigned\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n${der.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`);
}

test('a countersigner\'s certificate is path-validated against the signers\' trust anchors, reported, and never changes the verdict', async () => {
  const issuing = subCa(root, 'Countersign Issuing CA');
  const signer = endEntity(issuing, 'aiko@example.com');
  const notary = endEntity(issuing, 'notary@example.com');
  const strangerRoot = rootCa('Countersign Stranger Root');
  const stranger = endEntity(strangerRoot, 'stranger@example.com');
  const serverOnly = endEntity(issuing, 'server@example.com', { extKeyUsage: ['1.3.6.1.5.5.7.3.1'] });
  const validateSigner = createSignerValidator({ anchors: [root.cert], revocation: { mode: 'off' } });
  const cases: Array<[Party, Certificate[], string, string | undefined]> = [
    [notary, [signer.cert, notary.cert, issuing.cert], 'trusted', undefined],
    [stranger, [signer.cert, stranger.cert, issuing.cert, strangerRoot.cert], 'untrusted', 'CERT_UNTRUSTED'],
    [serverOnly, [signer.cert, serverOnly.cert, issuing.cert], 'untrusted', 'CERT_USAGE'],
  ];
  for (const [countersigner, carried, status, code] of cases) {
    const verdict = await verifyMessage(countersignedMail(signer, countersigner, carried), { validateSigner });
    assert.equal(verdict.status, 'trusted', verdict.summary);
    const c = verdict.signers[0]!.countersignatures![0]!;
    assert.equal(c.status, 'valid', c.message);
    // Before: no trust at all, and the view said `not-checked` whatever the certificate.
    assert.equal(c.trust?.status, status, c.trust?.message);
    assert.equal(c.trust?.code, code);
    assert.equal(c.trust?.identity.status, 'unknown', 'a countersigner is not the author: no From comparison');
    const view = viewVerdict(verdict).signers[0]!.countersignatures![0]!;
    assert.equal(view.trust.status, status);
    assert.equal(view.trust.code, code);
    assert.match(view.trust.message, /the trust anchors the signers are judged against/);
    if (status === 'trusted') assert.equal(view.trust.anchor, root.cert.subjectText);
  }
  // A countersignature that does not verify is not path-validated: nothing it claims is believed.
  const forged = countersignedMail(signer, { cert: notary.cert, key: stranger.key }, [signer.cert, notary.cert, issuing.cert]);
  const f = viewVerdict(await verifyMessage(forged, { validateSigner })).signers[0]!.countersignatures![0]!;
  assert.equal(f.status, 'invalid');
  assert.equal(f.trust.status, 'not-checked');
  // Without a validator nothing is trusted, the countersigner included.
  const none = viewVerdict(await verifyMessage(countersignedMail(signer, notary, [signer.cert, notary.cert, issuing.cert]))).signers[0]!.countersignatures![0]!;
  assert.equal(none.trust.status, 'not-checked');
});

test('an intermediate whose extendedKeyUsage is only anyExtendedKeyUsage does not pass email protection on (Mozilla, NSS and OpenSSL practice)', async () => {
  // RFC 8550 4.4.4's anyExtendedKeyUsage rule is for the certificate whose key signs or
  // encrypts; a CA's EKU constrains the certificates below it, and must name the purpose.
  const anyCa = subCa(root, 'anyEKU CA', { extKeyUsage: [OID.anyExtendedKeyUsage] });
  const leaf = endEntity(anyCa, 'a@good.example').cert;
  const r = await judge(leaf, [anyCa.cert], 'a@good.example');
  assert.equal(r.code, 'CERT_USAGE', r.message);
  assert.equal(opensslVerifies(leaf.der, [anyCa.cert.der], root.cert.der), false, 'OpenSSL refuses it too (and NSS vfychain: -8101)');
  const emailCa = subCa(root, 'email and anyEKU CA', { extKeyUsage: [OID.emailProtection, OID.anyExtendedKeyUsage] });
  assert.equal((await judge(endEntity(emailCa, 'a@good.example').cert, [emailCa.cert], 'a@good.example')).status, 'trusted');
  // The signer's own anyExtendedKeyUsage stays accepted (RFC 8550 4.4.4 MUST), with a warning: path-validation.test.ts.
});

test('an excluded constraint written "@domain" or with a final dot still excludes that domain', async () => {
  // "@evil.example" is no RFC 5280 form, but CAs write it and OpenSSL reads it as the host form;
  // a final dot names the same domain. Before, both excluded nothing.
  const ca = subCa(root, 'Excludes oddly written', { extraExtensions: [nameConstraints({ excludedEmail: ['@evil.example', 'other.example.'] })] });
  for (const name of ['boss@evil.example', 'boss@other.example']) {
    const leaf = leafUnder(ca, encodeName({ commonName: 'Mail User' }), [...signerLeafExtensions, sanExtension(rfc822(name))]);
    const r = await judge(leaf, [ca.cert], name);
    assert.equal(r.code, 'CERT_UNTRUSTED', `${name}: ${r.message}`);
  }
  const at = leafUnder(ca, encodeName({ commonName: 'Mail User' }), [...signerLeafExtensions, sanExtension(rfc822('boss@evil.example'))]);
  assert.equal(opensslVerifies(at.der, [ca.cert.der], root.cert.der), false, 'OpenSSL reads "@evil.example" so too');
  const elsewhere = leafUnder(ca, encodeName({ commonName: 'Mail User' }), [...signerLeafExtensions, sanExtension(rfc822('boss@good.example'))]);
  assert.equal((await judge(elsewhere, [ca.cert], 'boss@good.example')).status, 'trusted');
  assert.equal(opensslVerifies(elsewhere.der, [ca.cert.der], root.cert.der), true);
});

test('a countersigner\'s certificate that cannot even be judged leaves the verdict as it was', async () => {
  // Anyone on the way can add a countersignature (an unsigned attribute) without breaking
  // the signature: judging its certificate must never fail the message.
  const issuing = subCa(root, 'Countersign Issuing CA 2');
  const signer = endEntity(issuing, 'aiko@example.com');
  const k = key('p256', 'broken-san');
  const broken: Party = {
    key: k.privateKey,
    // A subjectAltName rfc822Name with a byte outside IA5String: MALFORMED when read.
    cert: Certificate.fromDer(rawCertificate({ subject: encodeName({ commonName: 'Broken' }), spki: spkiOf(k.publicKey), issuer: issuing.cert, signer: signerOf(issuing.key), extensions: [...signerLeafExtensions, sanExtension(implicit(1, false, Buffer.from('b\u00e9@example.com', 'latin1'))), akiOf(issuing)] })),
  };
  const validateSigner = createSignerValidator({ anchors: [root.cert], revocation: { mode: 'off' } });
  const verdict = await verifyMessage(countersignedMail(signer, broken, [signer.cert, broken.cert, issuing.cert]), { validateSigner });
  assert.equal(verdict.status, 'trusted', verdict.summary);
  const c = viewVerdict(verdict).signers[0]!.countersignatures![0]!;
  assert.equal(c.status, 'valid', c.message);
  assert.equal(c.trust.status, 'untrusted');
  assert.equal(c.trust.code, 'MALFORMED');
});

test('countersigners path-validated per message are bounded (8) and each certificate is judged once', async () => {
  // Anyone can add countersignatures (up to maxSigners per signer, 32 signers): each path
  // search may verify up to 64 candidate links, so an unbounded number would multiply that.
  const issuing = subCa(root, 'Countersign Issuing CA 3');
  const signer = endEntity(issuing, 'aiko@example.com');
  const many = Array.from({ length: 10 }, (_, i) => endEntity(issuing, `notary${i}@example.com`));
  const inner = createSignerValidator({ anchors: [root.cert], revocation: { mode: 'off' } });
  let calls = 0;
  const validateSigner: typeof inner = (input) => {
    calls++;
    return inner(input);
  };
  const distinct = await verifyMessage(countersignedMail(signer, many, [signer.cert, issuing.cert, ...many.map((p) => p.cert)]), { validateSigner });
  assert.equal(distinct.status, 'trusted', distinct.summary);
  const views = viewVerdict(distinct).signers[0]!.countersignatures!;
  assert.equal(views.length, 10);
  assert.deepEqual(views.map((v) => v.trust.status), [...Array(8).fill('trusted'), 'not-checked', 'not-checked']);
  assert.match(views[9]!.trust.message, /only the first 8/);
  assert.equal(calls, 1 + 8);
  calls = 0;
  const same = await verifyMessage(countersignedMail(signer, Array(10).fill(many[0]!), [signer.cert, issuing.cert, many[0]!.cert]), { validateSigner });
  assert.deepEqual(viewVerdict(same).signers[0]!.countersignatures!.map((v) => v.trust.status), Array(10).fill('trusted'));
  assert.equal(calls, 1 + 1, 'one countersigner certificate, one judgement');
});

test('an excluded mailbox is excluded in its quoted form too ("ceo"@corp.example is ceo@corp.example)', async () => {
  // RFC 5321 4.1.2: a quoted local part names the same mailbox as the unquoted one when
  // the quotes are not needed (and a backslash-quoted character is that character).
  const ca = subCa(root, 'Excludes the CEO, quoted', { extraExtensions: [nameConstraints({ excludedEmail: ['ceo@corp.example'] })] });
  for (const name of ['"ceo"@corp.example', '"c\\eo"@corp.example', '"CEO"@corp.example']) {
    const leaf = leafUnder(ca, encodeName({ commonName: 'Mail User' }), [...signerLeafExtensions, sanExtension(rfc822(name))]);
    const r = await judge(leaf, [ca.cert], name);
    assert.equal(r.code, 'CERT_UNTRUSTED', `${name}: ${r.message}`);
  }
});

test('already right, kept: a self-issued rollover under pathLen 0, a tbs/outer signature algorithm mismatch, a same-subject decoy CA', async () => {
  const pl0k = key('p256', 'pl0-old');
  const pl0: Party = { key: pl0k.privateKey, cert: Certificate.fromDer(rawCertificate({ subject: encodeName({ commonName: 'PathLen 0 CA' }), spki: spkiOf(pl0k.publicKey), issuer: root.cert, signer: signerOf(root.key), extensions: [extension(OID.basicConstraints, true, sequence(boolean(true), integer(0))), ku(0x06, 1), extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(pl0k.publicKey))), akiOf(root)] })) };
  // RFC 5280 6.1.4 (l): a self-issued certificate (the CA's key rollover) does not count against pathLen.
  const nk = key('p256', 'pl0-new');
  const rollover: Party = { key: nk.privateKey, cert: Certificate.fromDer(rawCertificate({ subject: pl0.cert.subject, spki: spkiOf(nk.publicKey), issuer: pl0.cert, signer: signerOf(pl0.key), extensions: [extension(OID.basicConstraints, true, sequence(boolean(true), integer(0))), ku(0x06, 1), extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(nk.publicKey))), akiOf(pl0)] })) };
  const leaf = leafUnder(rollover, encodeName({ commonName: 'Mail User' }), [...signerLeafExtensions, sanExtension(rfc822('a@good.example'))]);
  assert.equal((await judge(leaf, [pl0.cert, rollover.cert], 'a@good.example')).status, 'trusted');
  assert.equal(opensslVerifies(leaf.der, [pl0.cert.der, rollover.cert.der], root.cert.der), true);
  const below = subCa(rollover, 'Below PathLen 0');
  const deep = endEntity(below, 'a@good.example').cert;
  assert.equal((await judge(deep, [pl0.cert, rollover.cert, below.cert], 'a@good.example')).code, 'CERT_UNTRUSTED');

  // RFC 5280 4.1.1.2: signatureAlgorithm MUST equal tbsCertificate.signature; OpenSSL's X509_verify refuses the link.
  const ca = subCa(root, 'Mismatch Issuer');
  const mismatched = Certificate.fromDer(rawCertificate({ subject: encodeName({ commonName: 'Mail User' }), spki: spkiOf(key('p256', 'mismatch').publicKey), issuer: ca.cert, signer: signerOf(ca.key), tbsAlgorithm: sequence(oid(OID.ecdsaWithSHA384)), extensions: [...signerLeafExtensions, sanExtension(rfc822('a@good.example')), akiOf(ca)] }));
  const m = await judge(mismatched, [ca.cert], 'a@good.example');
  assert.equal(m.code, 'CERT_UNTRUSTED', m.message);
  assert.match(m.message, /no chain/);

  // Two CAs with one subject and one SKI, different keys: the link is made by signature, not by name or key id.
  const decoyKey = key('p256', 'decoy');
  const decoy = Certificate.fromDer(rawCertificate({ subject: ca.cert.subject, spki: spkiOf(decoyKey.publicKey), issuer: root.cert, signer: signerOf(root.key), serial: integer(9), extensions: [extension(OID.basicConstraints, true, sequence(boolean(true), integer(0))), ku(0x06, 1), extension(OID.subjectKeyIdentifier, false, octetString(ca.cert.subjectKeyIdentifier!)), akiOf(root)] }));
  const genuine = endEntity(ca, 'a@good.example').cert;
  const d = await judge(genuine, [decoy, ca.cert], 'a@good.example');
  assert.equal(d.status, 'trusted', d.message);
  assert.equal(d.path[1]!.fingerprint256, ca.cert.fingerprint256);
});
