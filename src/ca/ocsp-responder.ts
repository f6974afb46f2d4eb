/**
 * The built-in OCSP responder (RFC 6960, lightweight profile RFC 5019) for the
 * internal CAs, over node:http: POST application/ocsp-request, or GET with the
 * base64 request in the path (RFC 6960 A.1).
 *
 * Each CA's answers are signed by its delegated OCSP signing certificate
 * (issue-ocsp-signing-certificate.ts; RFC 6960 4.2.2.2), included in the response,
 * responderID byKey. The responder never opens a CA key: a compromise of this
 * network-facing process yields a key that can only sign OCSP answers for 30 days,
 * not one that issues certificates or decrypts mail. Delegates renewed in the store
 * (`kakitome ca ocsp-signer`) are picked up within a minute.
 *
 * Status comes from the store at request time: revoked (with time and reason), good
 * for a certificate the CA issued and holds, unknown otherwise (RFC 6960 2.2). A
 * nonce in the request is echoed (RFC 8954). A request for one certificate without
 * a nonce (RFC 5019's lightweight form) reuses a response signed earlier for the
 * same status (ocsp-response-cache.ts), so a revocation still shows at once.
 *
 * Bounds (OcspResponderOptions): concurrent connections, header bytes, the time to
 * send the headers and the whole request (slow senders are cut off), the body
 * size, requests per connection, and 16 certificates per request.
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
import type { Certificate } from '../x509/certificate.ts';
import { listCertificateAuthorities, type CertificateAuthority } from './certificate-authority.ts';
import { findOcspSigningCertificate } from './issue-ocsp-signing-certificate.ts';
import { OcspResponseCache } from './ocsp-response-cache.ts';

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

/** One CA the responder answers for, and the delegate that signs for it (none: tryLater). */
interface Responder {
  ca: CertificateAuthority;
  /** The CA's subjectPublicKey bits, for the CertID issuerKeyHash. */
  caKeyBits: Uint8Array;
  signer?: { certificate: Certificate; key: KeyObject; keyBits: Uint8Array };
}

function statusOnly(status: number): Buffer {
  return sequence(tlv(Tag.ENUMERATED, Buffer.of(status)));
}

function publicKeyBits(cert: Certificate): Uint8Array {
  return readBitString(decode(cert.spki, { der: true }).children()[1]!).bytes;
}

export interface OcspResponderOptions {
  /** Seconds until nextUpdate in each answer (default 3600); a reused response is served for half of it. */
  validitySeconds?: number;
  clock?: () => Date;
  /** Signed responses kept for reuse (default 10,000; 0: sign every answer). */
  cacheEntries?: number;
  /** Connections open at once; more are refused at accept (default 256). */
  maxConnections?: number;
  /** Time a client has to send the request headers, ms (default 5,000). */
  headersTimeoutMs?: number;
  /** Time a client has to send the whole request, ms (default 10,000). */
  requestTimeoutMs?: number;
  /** Bytes of request line and headers (default 8 KiB; 431 beyond). */
  maxHeaderBytes?: number;
  /** Seconds between looks in the store for a renewed or revoked delegate (default 60). */
  signerCheckSeconds?: number;
}

type CertId = ReturnType<typeof parseOcspRequest>['certIds'][number];

/** The status of `id` under `r`'s CA: its DER (RFC 6960 4.2.1 CertStatus) and a key for the cache. */
async function lookUpStatus(store: Store, r: Responder, id: CertId): Promise<{ der: Buffer; key: string }> {
  const rows = await store.engine.all(
    `SELECT c.revoked_at, c.revocation_reason FROM certificates c JOIN issued_certificates i ON i.certificate_id = c.id
     WHERE c.issuer_hex = ? AND c.serial_hex = ? AND i.ca_id = ?`,
    [Buffer.from(r.ca.certificate.subject).toString('hex'), Buffer.from(id.serial).toString('hex'), r.ca.id],
  );
  const row = rows[0];
  if (!row) return { der: implicit(2, false), key: 'unknown' };
  if (!row.revoked_at) return { der: implicit(0, false), key: 'good' };
  const reason = Number(row.revocation_reason ?? 0);
  const info = [generalizedTime(new Date(String(row.revoked_at)))];
  if (reason !== 0) info.push(explicit(0, tlv(Tag.ENUMERATED, Buffer.of(reason))));
  return { der: implicit(1, true, ...info), key: `revoked ${String(row.revoked_at)} ${reason}` };
}

function matchesIssuer(r: Responder, id: CertId): boolean {
  const h = HASHES[id.hash]!;
  return Buffer.compare(createHash(h).update(r.ca.certificate.subject).digest(), id.nameHash) === 0 && Buffer.compare(createHash(h).update(r.caKeyBits).digest(), id.keyHash) === 0;
}

/** Answers one DER OCSPRequest; never throws (failures become an OCSP error status). */
async function answerOcspRequest(store: Store, responders: readonly Responder[], cache: OcspResponseCache, request: Uint8Array, o: OcspResponderOptions = {}): Promise<Buffer> {
  let parsed: ReturnType<typeof parseOcspRequest>;
  try {
    parsed = parseOcspRequest(request);
  } catch {
    return statusOnly(STATUS.malformedRequest);
  }
  try {
    const now = new Date(Math.floor((o.clock?.() ?? new Date()).getTime() / 1000) * 1000);
    const validityMs = (o.validitySeconds ?? 3600) * 1000;
    const next = new Date(now.getTime() + validityMs);
    // One delegate signs the whole answer: the first of our CAs named; a CertID of another CA is "unknown".
    const r = parsed.certIds.map((id) => responders.find((x) => matchesIssuer(x, id))).find((x) => x !== undefined);
    if (!r) return statusOnly(STATUS.unauthorized); // RFC 6960 2.3: not a CA we answer for
    const signer = r.signer;
    if (!signer) return statusOnly(STATUS.tryLater); // no valid delegate until `ca ocsp-signer` runs
    const statuses = await Promise.all(parsed.certIds.map((id) => (matchesIssuer(r, id) ? lookUpStatus(store, r, id) : { der: implicit(2, false), key: 'unknown' })));
    const reusable = parsed.certIds.length === 1 && !parsed.nonce;
    if (reusable) {
      const hit = cache.get(parsed.certIds[0]!.der, statuses[0]!.key, now.getTime());
      if (hit) return hit;
    }
    const singles = parsed.certIds.map((id, i) => sequence(id.der, statuses[i]!.der, generalizedTime(now), explicit(0, generalizedTime(next))));
    const exts = parsed.nonce ? [explicit(1, sequence(sequence(oid(OCSP_NONCE), octetString(octetString(parsed.nonce)))))] : [];
    const responderId = explicit(2, octetString(createHash('sha1').update(signer.keyBits).digest()));
    const tbs = sequence(responderId, generalizedTime(now), sequence(...singles), ...exts);
    const sigAlg = x509SignatureAlgorithm(signer.key);
    const basic = sequence(tbs, sigAlg, bitString(x509Sign(signer.key, tbs)), explicit(0, sequence(signer.certificate.der)));
    const response = sequence(tlv(Tag.ENUMERATED, Buffer.of(STATUS.successful)), explicit(0, sequence(oid(OCSP_BASIC), octetString(basic))));
    // Never served past half its window, nor past the delegate's own end.
    if (reusable) cache.set(parsed.certIds[0]!.der, { status: statuses[0]!.key, response, expiresAt: Math.min(now.getTime() + validityMs / 2, signer.certificate.notAfter.getTime()) });
    return response;
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
  /** The delegated certificates signing answers now, one per CA. */
  signers(): Certificate[];
  close(): Promise<void>;
}

/**
 * The delegates in the store now: for each CA, its current OCSP signing certificate
 * and key (opened and audited as key.use.ocsp-responder), reusing `previous` where
 * the delegate is unchanged. A CA key is never opened here.
 */
async function loadResponders(store: Store, now: Date, previous: readonly Responder[] = []): Promise<Responder[]> {
  const out: Responder[] = [];
  for (const ca of await listCertificateAuthorities(store)) {
    const r: Responder = { ca, caKeyBits: publicKeyBits(ca.certificate) };
    const cert = await findOcspSigningCertificate(store, ca, now);
    const same = previous.find((p) => p.ca.id === ca.id)?.signer;
    if (cert && same?.certificate.fingerprint256 === cert.fingerprint256) r.signer = same;
    else if (cert) {
      const key = await store.usePrivateKeyFor(cert, 'ocsp-responder');
      if (key) r.signer = { certificate: cert, key, keyBits: publicKeyBits(cert) };
    }
    out.push(r);
  }
  return out;
}

/**
 * Starts the responder on `host:port` (port 0 picks a free one). Every CA needs a
 * current delegated OCSP signing certificate (made by `ca init`, renewed by
 * `ca ocsp-signer`); the responder opens those keys only, never a CA key.
 */
export async function startOcspResponder(store: Store, listen: { host?: string; port?: number } = {}, o: OcspResponderOptions = {}): Promise<RunningOcspResponder> {
  const clock = () => o.clock?.() ?? new Date();
  let responders = await loadResponders(store, clock());
  if (!responders.length) throw new KakitomeError('INVALID_ARGUMENT', 'No certificate authority in this store: initialise the internal CA first.', { remedy: 'internalCa' });
  const missing = responders.filter((r) => !r.signer).map((r) => `"${r.ca.name}"`);
  if (missing.length) {
    throw new KakitomeError('KEY_INVALID', `No current OCSP signing certificate for ${missing.join(', ')}: issue one for each (a delegated OCSP signing certificate; the responder never signs with a CA key).`, { remedy: 'ocspSigner' });
  }
  const cache = new OcspResponseCache(o.cacheEntries ?? 10_000);
  // Renewed or revoked delegates are picked up at most this often, on a request.
  let checkedAt = clock().getTime();
  let checking: Promise<void> | undefined;
  const refresh = async (): Promise<void> => {
    const now = clock();
    if (now.getTime() - checkedAt < (o.signerCheckSeconds ?? 60) * 1000) return;
    checking ??= (async () => {
      try {
        const next = await loadResponders(store, now, responders);
        const changed = next.some((r, i) => r.signer !== responders[i]?.signer) || next.length !== responders.length;
        responders = next;
        if (changed) cache.clear();
        checkedAt = now.getTime();
      } finally {
        checking = undefined;
      }
    })();
    await checking;
  };

  const headersTimeout = o.headersTimeoutMs ?? 5_000;
  const requestTimeout = o.requestTimeoutMs ?? 10_000;
  const server = createServer({
    maxHeaderSize: o.maxHeaderBytes ?? 8 * 1024,
    headersTimeout,
    requestTimeout,
    // Node checks those two timeouts on this period (30 s by default): a slow
    // sender would otherwise hold its connection far longer than the bound.
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(headersTimeout / 2))),
    keepAliveTimeout: 5_000,
  }, (req, res) => void handle(req, res));
  server.maxConnections = o.maxConnections ?? 256;
  server.maxRequestsPerSocket = 100;
  server.setTimeout(requestTimeout); // an idle connection (nothing sent or read) is closed too

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, body: Buffer) => {
      res.writeHead(status, { 'content-type': 'application/ocsp-response', 'content-length': body.length, 'cache-control': 'max-age=0, no-cache' });
      res.end(body);
    };
    try {
      let body: Buffer;
      if (req.method === 'POST') {
        if (Number(req.headers['content-length'] ?? 0) > MAX_REQUEST_BYTES) return reply(413, statusOnly(STATUS.malformedRequest));
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
      await refresh();
      reply(200, await answerOcspRequest(store, responders, cache, body, o));
    } catch {
      if (!res.headersSent) reply(500, statusOnly(STATUS.internalError));
      else res.destroy();
    }
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port ?? 0, listen.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}/`,
    signers: () => responders.flatMap((r) => (r.signer ? [r.signer.certificate] : [])),
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
