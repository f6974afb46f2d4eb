/**
 * The built-in OCSP responder (RFC 6960, lightweight profile RFC 5019) for the
 * internal CAs, over node:http: POST application/ocsp-request, or GET with the
 * base64 request in the path (RFC 6960 A.1).
 *
 * Each CA answers for its own certificates with its own key (RFC 6960 4.2.2.2: the
 * issuing CA may sign responses directly), responderID byKey. Status comes from
 * the store at request time: revoked (with time and reason), good for a
 * certificate the CA issued and holds, unknown otherwise (RFC 6960 2.2). A nonce in
 * the request is echoed (RFC 8954). Requests are bounded in size and count.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decode, Tag, readOid, readOctetString, readIntegerBytes, readBitString, type Tlv } from '../asn1/ber.ts';
import { sequence, oid, octetString, explicit, implicit, tlv, bitString } from '../asn1/der.ts';
import { OID } from '../asn1/oids.ts';
import { x509SignatureAlgorithm, x509Sign } from '../x509/algorithms.ts';
import { KakitomeError } from '../errors.ts';
import type { Store } from '../store/store.ts';
import { listCertificateAuthorities, openCaKey, type CertificateAuthority } from './certificate-authority.ts';

const OCSP_BASIC = '1.3.6.1.5.5.7.48.1.1';
const OCSP_NONCE = '1.3.6.1.5.5.7.48.1.2';
const MAX_REQUEST_BYTES = 16 * 1024;
const MAX_SINGLE_REQUESTS = 16;

/** OCSPResponseStatus (RFC 6960 4.2.1). */
const STATUS = { successful: 0, malformedRequest: 1, internalError: 2, tryLater: 3, unauthorized: 6 } as const;

export function generalizedTime(d: Date): Buffer {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const s = `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return tlv(Tag.GENERALIZED_TIME, Buffer.from(s, 'latin1'));
}

const HASHES: Record<string, 'sha1' | 'sha256' | 'sha384' | 'sha512'> = {
  [OID.sha1]: 'sha1',
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
};

interface Responder {
  ca: CertificateAuthority;
  key: KeyObject;
  keyBits: Uint8Array;
}

function statusOnly(status: number): Buffer {
  return sequence(tlv(Tag.ENUMERATED, Buffer.of(status)));
}

export interface OcspResponderOptions {
  /** Seconds until nextUpdate in each answer (default 3600). */
  validitySeconds?: number;
  clock?: () => Date;
}

/** Answers one DER OCSPRequest; never throws (failures become an OCSP error status). */
export async function answerOcspRequest(store: Store, responders: readonly Responder[], request: Uint8Array, o: OcspResponderOptions = {}): Promise<Buffer> {
  let parsed: { certIds: { hash: string; nameHash: Uint8Array; keyHash: Uint8Array; serial: Uint8Array; der: Uint8Array }[]; nonce?: Uint8Array };
  try {
    parsed = parseOcspRequest(request);
  } catch {
    return statusOnly(STATUS.malformedRequest);
  }
  try {
    const now = new Date(Math.floor((o.clock?.() ?? new Date()).getTime() / 1000) * 1000);
    const next = new Date(now.getTime() + (o.validitySeconds ?? 3600) * 1000);
    let signer: Responder | undefined;
    const singles: Buffer[] = [];
    for (const id of parsed.certIds) {
      const r = responders.find((x) => {
        const h = HASHES[id.hash]!;
        return Buffer.compare(createHash(h).update(x.ca.certificate.subject).digest(), id.nameHash) === 0 && Buffer.compare(createHash(h).update(x.keyBits).digest(), id.keyHash) === 0;
      });
      signer ??= r;
      let status: Buffer = implicit(2, false); // unknown
      if (r && r === signer) {
        const rows = await store.engine.all(
          `SELECT c.revoked_at, c.revocation_reason FROM certificates c JOIN issued_certificates i ON i.certificate_id = c.id
           WHERE c.issuer_hex = ? AND c.serial_hex = ? AND i.ca_id = ?`,
          [Buffer.from(r.ca.certificate.subject).toString('hex'), Buffer.from(id.serial).toString('hex'), r.ca.id],
        );
        const row = rows[0];
        if (row && row.revoked_at) {
          const reason = Number(row.revocation_reason ?? 0);
          const info = [generalizedTime(new Date(String(row.revoked_at)))];
          if (reason !== 0) info.push(explicit(0, tlv(Tag.ENUMERATED, Buffer.of(reason))));
          status = implicit(1, true, ...info);
        } else if (row) {
          status = implicit(0, false); // good
        }
      }
      singles.push(sequence(id.der, status, generalizedTime(now), explicit(0, generalizedTime(next))));
    }
    if (!signer) return statusOnly(STATUS.unauthorized); // RFC 6960 2.3: not a CA we answer for
    const exts = parsed.nonce ? [explicit(1, sequence(sequence(oid(OCSP_NONCE), octetString(octetString(parsed.nonce)))))] : [];
    const responderId = explicit(2, octetString(createHash('sha1').update(signer.keyBits).digest()));
    const tbs = sequence(responderId, generalizedTime(now), sequence(...singles), ...exts);
    const sigAlg = x509SignatureAlgorithm(signer.key);
    const basic = sequence(tbs, sigAlg, bitString(x509Sign(signer.key, tbs)), explicit(0, sequence(signer.ca.certificate.der)));
    return sequence(tlv(Tag.ENUMERATED, Buffer.of(STATUS.successful)), explicit(0, sequence(oid(OCSP_BASIC), octetString(basic))));
  } catch {
    return statusOnly(STATUS.internalError);
  }
}

function parseOcspRequest(der: Uint8Array) {
  const req = decode(der, { der: false, maxDepth: 16 }).fields('OCSPRequest');
  const tbs = req.expect(Tag.SEQUENCE, 'tbsRequest').fields('TBSRequest');
  req.optional(0xa0); // optionalSignature: requests are not required to be signed, and we do not check one
  req.end();
  tbs.optional(0xa0); // version
  tbs.optional(0xa1); // requestorName
  const list = tbs.expect(Tag.SEQUENCE, 'requestList').children();
  const extsT = tbs.optional(0xa2);
  tbs.end();
  if (list.length === 0 || list.length > MAX_SINGLE_REQUESTS) throw new KakitomeError('LIMIT', 'OCSP request count');
  const certIds = list.map((r: Tlv) => {
    const rf = r.fields('Request');
    const idT = rf.expect(Tag.SEQUENCE, 'reqCert');
    rf.optional(0xa0);
    rf.end();
    const f = idT.fields('CertID');
    const alg = f.expect(Tag.SEQUENCE, 'hashAlgorithm').children();
    const hash = readOid(alg[0] ?? idT);
    if (!HASHES[hash]) throw new KakitomeError('UNSUPPORTED_ALG', 'CertID hash');
    const nameHash = readOctetString(f.expect(Tag.OCTET_STRING, 'issuerNameHash'));
    const keyHash = readOctetString(f.expect(Tag.OCTET_STRING, 'issuerKeyHash'));
    const serial = readIntegerBytes(f.expect(Tag.INTEGER, 'serialNumber'));
    f.end();
    return { hash, nameHash, keyHash, serial, der: idT.bytes };
  });
  let nonce: Uint8Array | undefined;
  if (extsT) {
    for (const e of extsT.children()[0]?.children() ?? []) {
      const ef = e.fields('Extension');
      const id = readOid(ef.expect(Tag.OID, 'extnID'));
      ef.optional(Tag.BOOLEAN);
      const v = readOctetString(ef.next('extnValue'));
      ef.end();
      if (id === OCSP_NONCE) {
        // RFC 8954 2.1: the nonce is an OCTET STRING of 1..32 octets (OpenSSL 3.0 sends 16).
        const inner = decode(v, { der: true });
        nonce = inner.tag === Tag.OCTET_STRING ? readOctetString(inner) : v;
        if (nonce.length < 1 || nonce.length > 32) throw new KakitomeError('MALFORMED', 'nonce length');
      }
    }
  }
  return nonce ? { certIds, nonce } : { certIds };
}

export interface RunningOcspResponder {
  url: string;
  close(): Promise<void>;
}

/** Starts the responder on `host:port` (port 0 picks a free one); CA keys are opened once, audited. */
export async function startOcspResponder(store: Store, listen: { host?: string; port?: number } = {}, o: OcspResponderOptions = {}): Promise<RunningOcspResponder> {
  const responders: Responder[] = [];
  for (const ca of await listCertificateAuthorities(store)) {
    const key = await openCaKey(store, ca, 'ocsp-responder');
    const spki = decode(ca.certificate.spki, { der: true }).children()[1]!;
    responders.push({ ca, key, keyBits: readBitString(spki).bytes });
  }
  if (!responders.length) throw new KakitomeError('INVALID_ARGUMENT', 'No certificate authority in this store: run `kakitome ca init` first.');
  const server = createServer((req, res) => void handle(req, res));
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, body: Buffer) => {
      res.writeHead(status, { 'content-type': 'application/ocsp-response', 'content-length': body.length, 'cache-control': 'max-age=0, no-cache' });
      res.end(body);
    };
    try {
      let body: Buffer;
      if (req.method === 'POST') {
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const c of req as AsyncIterable<Buffer>) {
          size += c.length;
          if (size > MAX_REQUEST_BYTES) return reply(413, statusOnly(STATUS.malformedRequest));
          chunks.push(c);
        }
        body = Buffer.concat(chunks);
      } else if (req.method === 'GET') {
        const path = decodeURIComponent((req.url ?? '/').replace(/^\/+/, ''));
        if (path.length > MAX_REQUEST_BYTES * 2) return reply(414, statusOnly(STATUS.malformedRequest));
        body = Buffer.from(path, 'base64');
      } else {
        res.writeHead(405, { allow: 'GET, POST' }).end();
        return;
      }
      reply(200, await answerOcspRequest(store, responders, body, o));
    } catch {
      reply(500, statusOnly(STATUS.internalError));
    }
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port ?? 0, listen.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

