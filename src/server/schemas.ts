/**
 * Request and response schemas, declared once (zod): requests are validated with
 * them and the OpenAPI 3.1 document (openapi.ts) is generated from them
 * (z.toJSONSchema writes JSON Schema 2020-12, the dialect of OpenAPI 3.1).
 *
 * Why zod and no OpenAPI wrapper: @hono/zod-openapi would add four packages
 * (@asteasolutions/zod-to-openapi, openapi3-ts, yaml, @hono/zod-validator) for
 * what zod 4 does alone (toJSONSchema) plus a small route table. The server's
 * dependencies are hono, @hono/node-server and zod, none of which has a
 * dependency of its own.
 */
import { z } from 'zod';
import type { VerdictView } from '../smime/verdict-view.ts';

const flag = (description: string) => z.enum(['true', 'false']).optional().describe(description);

export const SignQuery = z.object({
  opaque: flag('true: an opaque application/pkcs7-mime signed-data (only S/MIME clients can read it); false: multipart/signed. Absent: the tenant\'s setting (kakitome tenant settings), by default false.'),
  hash: z.enum(['sha256', 'sha384', 'sha512']).optional().describe('Digest algorithm (fixed by the algorithm for Ed25519). Absent: the tenant\'s setting, by default sha256.'),
  pss: flag('true: RSASSA-PSS instead of PKCS#1 v1.5 (RSA keys). Absent: the tenant\'s setting (applied to RSA keys only), by default false.'),
  dkim: flag('true: DKIM-sign the S/MIME-signed message with the active DKIM keys of the From domain (kakitome dkim add), which the tenant owns as it owns the From domain; 422 KEY_INVALID when the domain has none. Absent: the tenant\'s setting, by default false.'),
}).strict().meta({ id: 'SignQuery' });

export const EncryptQuery = z.object({
  to: z.array(z.email()).min(1).max(500).describe('A recipient address (repeat for each, e.g. ?to=a@example.com&to=b@example.com): its current certificate in the store, validated now.'),
  cipher: z.enum(['aes-128-gcm', 'aes-256-gcm', 'chacha20-poly1305', 'aes-128-cbc', 'aes-256-cbc']).optional().describe('Content encryption (default: the best every recipient is known to read; AES-256-GCM when nothing is known).'),
  oaep: flag('true: RSAES-OAEP for RSA recipients instead of PKCS#1 v1.5.'),
  sign: flag('true: sign with the tenant\'s identity for From first, then encrypt.'),
  hideSubject: flag('true: "[...]" as the outer Subject and the RFC 9788 legacy display inside; default: the header fields stay readable outside.'),
}).strict().meta({ id: 'EncryptQuery' });

export const Problem = z.object({
  type: z.string().describe('urn:kakitome:error:CODE'),
  title: z.string(),
  status: z.number().int(),
  detail: z.string().describe('What went wrong and what to do, in a sentence.'),
  code: z.string().describe('The stable error code (docs/errors.md): MALFORMED, LIMIT, UNAUTHENTICATED, FORBIDDEN, RATE_LIMITED, IDENTITY_MISMATCH, KEY_INVALID, ...'),
  remedy: z.string().optional().describe('What would let the request succeed, when the error names it (docs/errors.md): e.g. tenantIdentity, dkimKey, recipientCertificate.'),
  instance: z.string().optional().describe('The request id, also in the service log.'),
}).meta({ id: 'Problem', description: 'RFC 9457 problem details with the Kakitome error code.' });

const RevocationView = z.object({
  status: z.string(),
  source: z.string().optional(),
  time: z.string().optional(),
  revokedAt: z.string().optional(),
  reason: z.string().optional(),
  message: z.string(),
});

const SignerView = z.object({
  status: z.string().describe('valid | invalid | untrusted'),
  code: z.string().optional(),
  message: z.string(),
  email: z.array(z.string()),
  subject: z.string(),
  issuer: z.string().optional(),
  serial: z.string().optional(),
  chain: z.array(z.string()),
  trust: z.object({
    status: z.string(),
    code: z.string().optional(),
    message: z.string(),
    clock: z.object({ source: z.string(), time: z.string() }).optional(),
    legacy: z.array(z.string()).optional(),
  }),
  revocation: RevocationView.extend({
    certificates: z.array(RevocationView.extend({ role: z.string(), subject: z.string(), serial: z.string(), cached: z.boolean().optional() })),
  }),
  identity: z.object({ status: z.string(), from: z.string().optional(), field: z.string().optional(), certificateAddresses: z.array(z.string()), message: z.string() }),
  signingTime: z.string().optional(),
  digestAlgorithm: z.string().optional(),
  signatureAlgorithm: z.string().optional(),
  warnings: z.array(z.string()),
});

export const Verdict = z.object({
  status: z.string().describe('valid, invalid, untrusted, unsigned, partially-signed...'),
  code: z.string().optional().describe('The stable code of the first failure; absent when valid.'),
  summary: z.string(),
  signers: z.array(SignerView),
  unsignedHeaders: z.array(z.string()).optional(),
  warnings: z.array(z.string()),
  get attachedMessages() {
    return z.array(AttachedMessage).optional().describe('Forwarded mail (message/rfc822 parts), each judged on its own; never part of this verdict.');
  },
  details: z.record(z.string(), z.unknown()).optional(),
}).meta({ id: 'Verdict', description: 'The verdict, the same object as `kakitome verify --json` prints.' });

const AttachedMessage = z.object({
  part: z.string().describe('IMAP part number: "2", "1.3"'),
  filename: z.string().optional(),
  summary: z.string(),
  get verdict() {
    return Verdict.optional().describe('Its own verdict; absent when `error` says why it was not opened.');
  },
  error: z.object({ code: z.string(), message: z.string() }).optional(),
}).meta({ id: 'AttachedMessage', description: 'An attached (forwarded) message and its own verdict.' });

// The schema documents the CLI's VerdictView: tsc fails here if the two drift apart.
const verdictMatchesCli: z.infer<typeof Verdict> = null as unknown as VerdictView;
void verdictMatchesCli;

export const Decrypted = z.object({
  verdict: Verdict,
  message: z.string().optional().describe('The decrypted message, base64; absent when it is withheld (a failing signature inside).'),
}).meta({ id: 'Decrypted', description: 'The verdict of `kakitome decrypt --json` and the decrypted message.' });

const Identity = z.object({
  address: z.string(),
  certificates: z.array(z.object({
    fingerprint: z.string().describe('SHA-256 of the certificate, hex.'),
    subject: z.string(), issuer: z.string(), notBefore: z.string(), notAfter: z.string(),
    status: z.enum(['current', 'expired', 'not-yet-valid', 'revoked', 'retired', 'no-key']).describe('current: signs now (valid, not revoked, its key held and active); retired: its key was retired (DELETE /api/v1/identities/{address}) and only decrypts old mail.'),
    daysLeft: z.number().int(),
  })),
}).meta({ id: 'Identity', description: 'One address of the tenant and its certificates, oldest first.' });

export const Identities = z.object({
  identities: z.array(Identity),
}).meta({ id: 'Identities', description: 'The tenant\'s registered identities and their certificates, oldest first.' });

export const MAILBOX_KEY_TYPES = ['rsa2048', 'rsa3072', 'p256', 'p384'] as const;

export const IssueIdentity = z.object({
  email: z.email().max(254).describe('The address to issue a certificate for: within the tenant\'s domains, no other tenant\'s identity.'),
  keyType: z.enum(MAILBOX_KEY_TYPES).optional().describe('Key type (default rsa2048).'),
  days: z.number().int().min(1).max(825).optional().describe('Validity in days (default 365; at most 825, S/MIME BR 6.3.2; never past the CA\'s own).'),
}).strict().meta({ id: 'IssueIdentity', description: 'Issue a mailbox certificate from the internal CA (kakitome ca init) for the address; its key is made and sealed in the store.' });

export const Pkcs12Upload = z.object({
  pkcs12: z.string().meta({ contentMediaType: 'application/pkcs12' }).describe('The PKCS#12 file (.p12/.pfx): the key with its certificate, and the issuers.'),
  password: z.string().max(1024).describe('Its password (may be empty).'),
}).meta({ id: 'Pkcs12Upload', description: 'A PKCS#12 file and its password as multipart/form-data fields.' });

export const Pkcs12PasswordHeader = z.object({
  'kakitome-pkcs12-password': z.string().optional().describe('With an application/pkcs12 body: the file\'s password (ASCII; send it empty for an empty password; a non-ASCII password goes in the multipart form).'),
});

export const IdentityPath = z.object({
  address: z.string().max(254).describe('The identity\'s address, e.g. news@acme.example (URL-encoded or not).'),
});

export const RetireQuery = z.object({
  certificate: z.string().regex(/^(?:[0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$/, 'a SHA-256 fingerprint in hex').optional().describe('Retire only the key of this certificate (SHA-256 fingerprint, hex), e.g. the old one after a renewal with a new key; default: every key of the address.'),
}).strict().meta({ id: 'RetireQuery' });

export const IdentityAdded = z.object({
  certificate: z.string().describe('SHA-256 fingerprint of the identity\'s certificate.'),
  identities: z.array(Identity).describe('The addresses it serves, as GET /api/v1/identities lists them.'),
}).meta({ id: 'IdentityAdded', description: 'The identity added: it signs from the next request on, on every node.' });

export const IdentityRetired = z.object({
  address: z.string(),
  retired: z.array(z.object({ keyId: z.string(), certificates: z.array(z.string()) })).describe('Keys retired now (none when none was active), with the certificates they served.'),
  identity: Identity,
}).meta({ id: 'IdentityRetired', description: 'The address no longer signs; its keys still decrypt old mail for the tenant.' });

const SETTING_HASHES = ['sha256', 'sha384', 'sha512', 'default'] as const;

export const TenantPath = z.object({
  tenant: z.string().max(63).describe('The tenant\'s name: the caller key\'s own tenant (any other name is 404).'),
});

export const TenantSettings = z.object({
  tenant: z.string(),
  signing: z.object({
    opaque: z.boolean().describe('true: opaque application/pkcs7-mime signed-data; false: multipart/signed.'),
    hash: z.enum(SETTING_HASHES).describe('The digest; default: the key\'s (SHA-256; Ed25519 fixes its own).'),
    pss: z.boolean().describe('true: RSASSA-PSS for the tenant\'s RSA identities.'),
    dkim: z.boolean().describe('true: DKIM after S/MIME with the From domain\'s active keys; a domain without a key is refused.'),
  }).describe('Every setting with the value in force, defaults included.'),
}).meta({ id: 'TenantSettings', description: 'How the tenant\'s messages are signed when a request does not say (POST /api/v1/sign and batches without the query option) and always on the SMTP submission port. The same as kakitome tenant settings NAME --json.' });

export const TenantSettingsChange = z.object({
  opaque: z.boolean().optional().describe('true: opaque signed-data; false: back to multipart/signed.'),
  hash: z.enum(SETTING_HASHES).optional().describe('sha256, sha384, sha512, or default (the key\'s).'),
  pss: z.boolean().optional().describe('true: RSASSA-PSS for RSA identities; false: PKCS#1 v1.5.'),
  dkim: z.boolean().optional().describe('true: DKIM after S/MIME (refused, 422 KEY_INVALID, unless one of the tenant\'s domains has an active DKIM key: kakitome dkim add); false: no DKIM.'),
}).strict().meta({ id: 'TenantSettingsChange', description: 'The settings to change (a merge patch): a member not sent stays as it is. Unknown members are refused.' });

export const Health = z.object({
  status: z.enum(['ok', 'degraded']),
  batches: z.enum(['running', 'restarting', 'waiting-for-store']).meta({ description: 'The batch thread signs chunks; it died and starts again shortly; its workers wait for the store (no chunk attempt is spent). A batch thread stopped for good answers 503.' }),
  reason: z.string().optional(),
}).meta({ id: 'Health' });

export const BatchPath = z.object({
  id: z.uuid().describe('The batch id, as POST /api/v1/batches returned it.'),
});

export const BatchQuery = z.object({
  failuresFrom: z.string().regex(/^\d{1,10}$/, 'a message index').optional().describe('List failures from this message index on (default 0); at most 1,000 are listed, nextFailuresFrom says where the next page starts.'),
}).strict().meta({ id: 'BatchQuery' });

export const IdempotencyKeyHeader = z.object({
  'idempotency-key': z.string().min(1).max(255).optional().describe('Makes a retried upload safe: the same request with the same key gets the same batch (202, Idempotent-Replayed: true); another request with the key is 422 CONFLICT; while the first is still being received, 409. 1 to 255 printable ASCII characters, e.g. a UUID; kept while the batch is.'),
});

export const NdjsonMessage = z.union([
  z.object({ message: z.string().describe('The message as a string (its UTF-8 bytes are signed).') }).strict(),
  z.object({ base64: z.string().describe('The message bytes in padded base64 (RFC 4648).') }).strict(),
]).meta({ id: 'NdjsonMessage', description: 'One line of an application/x-ndjson batch: one message, as text or base64. Empty lines are skipped.' });

export const BATCH_STATES = ['receiving', 'queued', 'running', 'done'] as const;

export const BatchSummary = z.object({
  id: z.string(),
  state: z.enum(BATCH_STATES).describe('receiving: the upload is arriving; queued: stored, waiting for a node; running: being signed; done: every message signed or failed, the result can be fetched.'),
  total: z.number().int().describe('Messages in the upload (known once it is stored).'),
  signed: z.number().int(),
  failed: z.number().int().describe('Messages reported and skipped (never signed): see failures.'),
  pending: z.number().int().describe('Messages neither signed nor failed yet.'),
  mediaType: z.string(),
  options: z.record(z.string(), z.string()).describe('The sign options (as POST /api/v1/sign\'s query) applied to every message.'),
  receivedBytes: z.number().int(),
  resultBytes: z.number().int().describe('Size of the result so far (the whole result once done).'),
  createdAt: z.string(),
  queuedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  expiresAt: z.string().optional().describe('When the batch and its result are deleted (kakitome serve --batch-retention after it finished).'),
  result: z.string().optional().describe('Once done: the path of the signed result (application/mbox).'),
}).meta({ id: 'BatchSummary', description: 'A batch and its progress, without its failures (GET /api/v1/batches/{id} lists them).' });

export const Batch = BatchSummary.extend({
  failures: z.array(z.object({
    index: z.number().int().describe('0-based position of the message in the upload.'),
    code: z.string().describe('The stable error code, as POST /api/v1/sign would answer (MALFORMED, FORBIDDEN, IDENTITY_MISMATCH, KEY_INVALID, LIMIT...).'),
    reason: z.string(),
    remedy: z.string().optional().describe('What would let the message be signed, when the error names it (as in problem details).'),
  })).describe('Failed messages by index, at most 1,000 from failuresFrom.'),
  nextFailuresFrom: z.number().int().optional().describe('More failures follow: ask again with ?failuresFrom= this.'),
}).meta({ id: 'Batch', description: 'A batch and its progress.' });

/** A page boundary of GET /api/v1/batches: base64url of the last listed batch's creation time and id. */
export const BATCH_CURSOR = /^[A-Za-z0-9_-]{1,200}$/;

export const BatchListQuery = z.object({
  limit: z.string().regex(/^(100|[1-9][0-9]?)$/, 'a whole number from 1 to 100').optional().describe('Batches per page, 1 to 100 (default 50).'),
  before: z.string().regex(BATCH_CURSOR, 'the next value of a previous page').optional().describe('The next page: the `next` value of the page before.'),
}).strict().meta({ id: 'BatchListQuery' });

export const BatchList = z.object({
  batches: z.array(BatchSummary).describe('The tenant\'s batches, newest first (by creation time, then id).'),
  next: z.string().optional().describe('More batches follow: ask again with ?before= this.'),
}).meta({ id: 'BatchList', description: 'A page of the tenant\'s batches.' });
