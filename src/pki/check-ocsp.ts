/**
 * OCSP (RFC 6960) with the RFC 5019 lightweight profile: building the request,
 * sending it (POST with a nonce, or GET without, RFC 5019 2.1), and judging the
 * response: structure, signature, responder authority (RFC 6960 4.2.2.2),
 * CertID match, nonce and freshness. Also judges responses carried in the message.
 * The revocation status of a delegated responder's own certificate is the caller's
 * (check-revocation.ts), which this reports as responderCertificate.
 *
 * Written on the project's DER reader/writer rather than @peculiar/asn1-ocsp: the
 * request is six nested SEQUENCEs and the response a dozen fields, and the
 * strict reader gives coded errors for free (see read-certificate-extensions.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { decode, Tag, readOid, readTime, readOctetString, readIntegerBytes, readBitString, type Tlv } from '../asn1/ber.ts';
import { sequence, oid, NULL, octetString, unsignedInteger, explicit } from '../asn1/der.ts';
import { OID } from '../asn1/oids.ts';
import { KakitomeError, malformed } from '../errors.ts';
import { Certificate } from '../x509/certificate.ts';
import { PKI_OID, readExtKeyUsage } from './read-certificate-extensions.ts';
import { verifySignatureValue } from './verify-signed-object.ts';
import { reasonName } from './parse-crl.ts';
import type { Fetcher } from './types.ts';

export interface OcspAnswer {
  status: 'good' | 'revoked' | 'unknown';
  thisUpdate: Date;
  nextUpdate?: Date;
  producedAt: Date;
  revokedAt?: Date;
  reason?: string;
  /** Which certificate signed the response: 'issuer' (the CA) or 'delegated'. */
  responder: 'issuer' | 'delegated';
  /** The delegated responder's certificate (issued by the CA), whose own revocation the caller checks (RFC 6960 4.2.2.2.1). */
  responderCertificate?: Certificate;
}

export interface OcspCheckOptions {
  now: Date;
  /** Accepted clock difference with the responder, ms. */
  skewMs: number;
  /** Without nextUpdate, the response is fresh for this long after thisUpdate (RFC 5019 4). */
  maxAgeMs: number;
  /** The nonce sent, when one was: a response carrying a different nonce is rejected. */
  nonce?: Uint8Array;
  /** Reject responses that do not echo the nonce. */
  requireNonce?: boolean;
}

/** SHA-1 of the issuer's subjectPublicKey bits (RFC 6960 4.1.1, issuerKeyHash). */
function keyHash(issuer: Certificate, hash: string): Buffer {
  const bits = readBitString(decode(issuer.spki, { der: true }).children()[1] ?? malformed('SubjectPublicKeyInfo'));
  return createHash(hash).update(bits.bytes).digest();
}

const CERTID_HASH: Record<string, string> = { [OID.sha1]: 'sha1', [OID.sha256]: 'sha256', [OID.sha384]: 'sha384', [OID.sha512]: 'sha512' };

/**
 * CertID with SHA-1: RFC 5019 2.1.1 requires SHA-1 here, and it only names the
 * certificate (a collision would misname, not forge, a status); every responder
 * in the field accepts it.
 */
function encodeCertId(cert: Certificate, issuer: Certificate): Buffer {
  return sequence(
    sequence(oid(OID.sha1), NULL),
    octetString(createHash('sha1').update(issuer.subject).digest()),
    octetString(keyHash(issuer, 'sha1')),
    unsignedInteger(cert.serial[0] === 0 && cert.serial.length > 1 ? cert.serial.subarray(1) : cert.serial),
  );
}

/** OCSPRequest for one certificate, with a nonce extension (RFC 8954: 1..32 octets) when given. */
export function buildOcspRequest(cert: Certificate, issuer: Certificate, nonce?: Uint8Array): Buffer {
  const request = sequence(encodeCertId(cert, issuer));
  const parts: Buffer[] = [sequence(request)];
  if (nonce) {
    const ext = sequence(oid(PKI_OID.ocspNonce), octetString(octetString(nonce)));
    parts.push(explicit(2, sequence(ext)));
  }
  return sequence(sequence(...parts));
}

export interface ParsedBasicResponse {
  tbs: Uint8Array;
  signatureAlgorithm: Tlv;
  signatureAlgorithmOid: string;
  signatureValue: Tlv;
  responderByName?: Uint8Array;
  responderByKey?: Uint8Array;
  producedAt: Date;
  responses: Tlv[];
  nonce?: Uint8Array;
  certs: Certificate[];
}

const STATUS_TEXT = ['successful', 'malformedRequest', 'internalError', 'tryLater', 'unused', 'sigRequired', 'unauthorized'];

/** OCSPResponse → BasicOCSPResponse; a non-successful responseStatus fails. */
export function parseOcspResponse(der: Uint8Array): ParsedBasicResponse {
  const f = decode(der, { der: true }).fields('OCSPResponse');
  const st = f.expect(Tag.ENUMERATED, 'responseStatus');
  const rb = f.optional(0xa0);
  f.end();
  const code = st.value.length === 1 ? st.value[0]! : -1;
  if (code !== 0) throw new KakitomeError('CERT_UNTRUSTED', `The OCSP responder answered ${STATUS_TEXT[code] ?? 'an unknown status'}.`);
  const rbs = rb?.children()[0]?.fields('ResponseBytes') ?? malformed('successful OCSPResponse without responseBytes');
  const type = readOid(rbs.expect(Tag.OID, 'responseType'));
  const body = readOctetString(rbs.next('response'));
  rbs.end();
  if (type !== PKI_OID.ocspBasic) throw new KakitomeError('UNSUPPORTED_ALG', `OCSP response type ${type} is not id-pkix-ocsp-basic.`);

  const b = decode(body, { der: true }).fields('BasicOCSPResponse');
  const tbsT = b.expect(Tag.SEQUENCE, 'tbsResponseData');
  const sigAlg = b.expect(Tag.SEQUENCE, 'signatureAlgorithm');
  const sig = b.expect(Tag.BIT_STRING, 'signature');
  const certsT = b.optional(0xa0);
  b.end();
  const certs: Certificate[] = [];
  if (certsT) {
    const list = certsT.children()[0]?.children() ?? [];
    if (list.length > 8) malformed('more than 8 certificates in an OCSP response');
    for (const c of list) certs.push(Certificate.fromDer(c.bytes));
  }
  const t = tbsT.fields('ResponseData');
  const ver = t.optional(0xa0);
  // QUIRK: some responders encode the DEFAULT v1 explicitly (not DER); accepted, other versions are not.
  if (ver && (ver.children()[0]?.value.length !== 1 || ver.children()[0]?.value[0] !== 0)) malformed('ResponseData version other than v1');
  const rid = t.next('responderID');
  const producedAt = readTime(t.expect(Tag.GENERALIZED_TIME, 'producedAt'), 'producedAt');
  const responses = t.expect(Tag.SEQUENCE, 'responses').children();
  const extsT = t.optional(0xa1);
  t.end();
  const out: ParsedBasicResponse = {
    tbs: tbsT.bytes,
    signatureAlgorithm: sigAlg,
    signatureAlgorithmOid: readOid(sigAlg.children()[0] ?? malformed('AlgorithmIdentifier')),
    signatureValue: sig,
    producedAt,
    responses,
    certs,
  };
  // ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash } (explicitly tagged module).
  const ridInner = rid.children()[0] ?? malformed('responderID');
  if (rid.tag === 0xa1) out.responderByName = ridInner.bytes;
  else if (rid.tag === 0xa2) out.responderByKey = readOctetString(ridInner);
  else malformed('responderID');
  if (extsT) {
    for (const e of extsT.children()[0]?.children() ?? []) {
      const ef = e.fields('Extension');
      const id = readOid(ef.expect(Tag.OID, 'extnID'));
      const critical = ef.optional(Tag.BOOLEAN);
      const value = readOctetString(ef.next('extnValue'));
      if (id === PKI_OID.ocspNonce) {
        // RFC 8954: the value is an OCTET STRING; some old responders put raw bytes.
        const inner = (() => {
          try {
            const n = decode(value, { der: true });
            return n.tag === Tag.OCTET_STRING ? n.value : value;
          } catch {
            return value; // QUIRK: raw nonce bytes (pre-RFC 8954 responders)
          }
        })();
        out.nonce = inner;
      } else if (critical && critical.value[0] !== 0) {
        throw new KakitomeError('UNSUPPORTED_ALG', `Unknown critical OCSP response extension ${id}.`);
      }
    }
  }
  return out;
}

/**
 * Judges a parsed response for `cert` issued by `issuer`: responder authority,
 * signature, CertID, nonce, freshness. Throws CERT_UNTRUSTED (with the reason) when
 * the response cannot be relied on; returns the status otherwise.
 */
export function evaluateOcspResponse(r: ParsedBasicResponse, cert: Certificate, issuer: Certificate, o: OcspCheckOptions): OcspAnswer {
  const reject: (why: string) => never = (why) => {
    throw new KakitomeError('CERT_UNTRUSTED', `OCSP response rejected: ${why}.`);
  };
  // 1. Who signed it (RFC 6960 4.2.2.2): the CA itself, or a certificate issued
  //    directly by the CA carrying id-kp-OCSPSigning.
  const matchesResponderId = (c: Certificate) =>
    r.responderByName ? Buffer.compare(c.subject, r.responderByName) === 0 : Buffer.compare(keyHash(c, 'sha1'), r.responderByKey!) === 0;
  let signer: Certificate | undefined;
  let responder: OcspAnswer['responder'] = 'issuer';
  if (matchesResponderId(issuer)) signer = issuer;
  else {
    const delegate = r.certs.find(matchesResponderId);
    if (!delegate) reject('the responder is neither the issuing CA nor a certificate included in the response');
    if (Buffer.compare(delegate.issuer, issuer.subject) !== 0 || !delegate.x509.verify(issuer.publicKey)) reject('the responder certificate was not issued by the certificate\'s CA');
    if (!(readExtKeyUsage(delegate) ?? []).includes(PKI_OID.ocspSigning)) reject('the responder certificate lacks id-kp-OCSPSigning');
    if (o.now < delegate.notBefore || o.now > delegate.notAfter) reject('the responder certificate is outside its validity period');
    const ku = delegate.keyUsage;
    if (ku && !ku.has('digitalSignature') && !ku.has('nonRepudiation')) reject('the responder certificate may not sign');
    signer = delegate;
    responder = 'delegated';
  }
  if (!verifySignatureValue(r.signatureAlgorithm, r.tbs, r.signatureValue, signer.publicKey)) reject('bad signature');

  // 2. The SingleResponse for our certificate.
  let single: Tlv | undefined;
  for (const s of r.responses) {
    const id = s.children()[0]?.fields('CertID') ?? malformed('SingleResponse');
    const alg = readOid(id.expect(Tag.SEQUENCE, 'hashAlgorithm').children()[0] ?? malformed('hashAlgorithm'));
    const h = CERTID_HASH[alg];
    if (!h) continue;
    const nameHash = readOctetString(id.next('issuerNameHash'));
    const kHash = readOctetString(id.next('issuerKeyHash'));
    const serial = readIntegerBytes(id.expect(Tag.INTEGER, 'serialNumber'));
    if (
      Buffer.compare(serial, cert.serial) === 0 &&
      Buffer.compare(nameHash, createHash(h).update(issuer.subject).digest()) === 0 &&
      Buffer.compare(kHash, keyHash(issuer, h)) === 0
    ) {
      single = s;
      break;
    }
  }
  if (!single) reject('it does not answer for this certificate');

  // 3. Nonce (RFC 6960 4.4.1 / RFC 8954).
  if (o.nonce) {
    if (r.nonce && Buffer.compare(r.nonce, o.nonce) !== 0) reject('the nonce does not match the request (replayed response?)');
    if (!r.nonce && o.requireNonce) reject('the responder did not echo the nonce');
  }

  const sf = single.fields('SingleResponse');
  sf.next('certID');
  const cs = sf.next('certStatus');
  const thisUpdate = readTime(sf.expect(Tag.GENERALIZED_TIME, 'thisUpdate'), 'thisUpdate');
  const nuT = sf.optional(0xa0);
  const nextUpdate = nuT ? readTime(nuT.children()[0] ?? malformed('nextUpdate'), 'nextUpdate') : undefined;

  // 4. Freshness (RFC 5019 4, RFC 6960 4.2.2.1).
  const now = o.now.getTime();
  if (thisUpdate.getTime() > now + o.skewMs) reject('thisUpdate is in the future');
  if (nextUpdate && nextUpdate.getTime() + o.skewMs < now) reject(`it is stale (nextUpdate ${nextUpdate.toISOString()} has passed)`);
  if (!nextUpdate && thisUpdate.getTime() + o.maxAgeMs < now) reject(`it is stale (thisUpdate ${thisUpdate.toISOString()}, no nextUpdate)`);

  const answer: OcspAnswer = { status: 'unknown', thisUpdate, producedAt: r.producedAt, responder };
  if (responder === 'delegated') answer.responderCertificate = signer;
  if (nextUpdate) answer.nextUpdate = nextUpdate;
  if (cs.tag === 0x80) answer.status = 'good';
  else if (cs.tag === 0xa1) {
    const rf = cs.fields('RevokedInfo');
    answer.status = 'revoked';
    answer.revokedAt = readTime(rf.expect(Tag.GENERALIZED_TIME, 'revocationTime'), 'revocationTime');
    const rr = rf.optional(0xa0);
    if (rr) {
      const e = rr.children()[0];
      if (!e || e.tag !== Tag.ENUMERATED || e.value.length !== 1) malformed('revocationReason');
      answer.reason = reasonName(e.value[0]);
    }
  } else if (cs.tag === 0x82) answer.status = 'unknown';
  else malformed('certStatus');
  return answer;
}

export interface OcspQueryOptions extends Omit<OcspCheckOptions, 'nonce'> {
  fetcher: Fetcher;
  /** 'post' sends a nonce (RFC 6960); 'get' is the cacheable RFC 5019 form, without one. */
  method: 'post' | 'get';
  maxBytes: number;
  timeoutMs: number;
}

/** Asks the responder at `url` about `cert`, then judges the answer. */
export async function queryOcsp(url: string, cert: Certificate, issuer: Certificate, o: OcspQueryOptions): Promise<OcspAnswer> {
  const nonce = o.method === 'post' ? randomBytes(16) : undefined;
  const req = buildOcspRequest(cert, issuer, nonce);
  let body: Uint8Array;
  if (o.method === 'get') {
    // RFC 5019 5: base64 then URL-encoded, appended to the responder URL with a slash.
    const enc = encodeURIComponent(req.toString('base64'));
    body = await o.fetcher(`${url.replace(/\/$/, '')}/${enc}`, { method: 'GET', maxBytes: o.maxBytes, timeoutMs: o.timeoutMs });
  } else {
    body = await o.fetcher(url, { method: 'POST', body: req, contentType: 'application/ocsp-request', maxBytes: o.maxBytes, timeoutMs: o.timeoutMs });
  }
  const parsed = parseOcspResponse(body);
  const opts: OcspCheckOptions = { now: o.now, skewMs: o.skewMs, maxAgeMs: o.maxAgeMs };
  if (nonce) opts.nonce = nonce;
  if (o.requireNonce !== undefined) opts.requireNonce = o.requireNonce;
  return evaluateOcspResponse(parsed, cert, issuer, opts);
}
