/**
 * DKIM (RFC 6376), SPF (RFC 7208) and DMARC (RFC 9989) of a received message, by
 * mailauth, as Authentication-Results method results (RFC 8601 section 2.7) to
 * write beside the S/MIME one. ARC and BIMI are not evaluated (neither feeds a
 * verdict here, and each costs lookups).
 *
 * - DNS is the caller's bounded lookup (bounded-resolver.ts): a DNS failure, a
 *   slow server or a message asking for too many lookups gives temperror for what
 *   it concerns, never an exception or a held message.
 * - DKIM: rsa-sha1 is refused (RFC 8301: dkim=policy), RSA under 1024 bits too
 *   (RFC 8301 section 3.2; dkim=policy); a body hash mismatch is fail (RFC 6376
 *   section 6.1.3; mailauth's lenient mode calls it neutral); at most MAX_DKIM
 *   signatures are reported (all count for DMARC).
 * - SPF needs the client's address and HELO name: the gateway gets them from
 *   Postfix (XFORWARD ADDR and HELO). Without an address SPF is not evaluated and
 *   no spf result is written (Postfix's pickup, or no XFORWARD): "none" would claim
 *   the domain publishes nothing.
 * - DMARC: from DKIM and SPF's results and the From domain's record; a message
 *   with no From domain or several is permerror (RFC 9989 section 5.3.1: it cannot
 *   be evaluated, and such mail is suspicious).
 * Values from the message (domains, selectors) are written as RFC 8601 pvalues by
 * authentication-results.ts, quoted where they are not tokens.
 */
import type { Readable } from 'node:stream';
import { authenticate } from 'mailauth';
import type { DnsLookup } from './bounded-resolver.ts';

export type MethodName = 'dkim' | 'spf' | 'dmarc';

export interface MethodResult {
  method: MethodName;
  /** RFC 8601 result keyword: pass, fail, softfail, neutral, none, policy, temperror, permerror. */
  result: string;
  /** Why, for anything but pass (from the evaluation, ASCII). */
  reason?: string;
  /** ptype.property=value pairs, e.g. header.d=example.com. */
  properties: Array<[string, string]>;
}

export interface SenderFacts {
  /** MAIL FROM ('' for the null sender: SPF then checks the HELO name). */
  sender: string;
  /** The connecting client's IP address (XFORWARD ADDR). */
  ip?: string;
  /** The client's HELO name (XFORWARD HELO). */
  helo?: string;
  /** Our authserv-id (used in mailauth's comments). */
  authservId: string;
}

export const MAX_DKIM_RESULTS = 8;

const RESULTS = new Set(['pass', 'fail', 'softfail', 'neutral', 'none', 'policy', 'temperror', 'permerror']);

function keyword(r: string | undefined): string {
  if (r === 'temperr') return 'temperror';
  return r && RESULTS.has(r) ? r : 'permerror';
}

/** The results for `message`; every failure inside becomes temperror for each method, never an exception. */
/** `message`: in memory, or a stream (mailauth hashes the body as it reads it: the gateway's large messages). */
export async function authenticateSender(message: Buffer | Readable, facts: SenderFacts, lookup: DnsLookup): Promise<MethodResult[]> {
  let res: Awaited<ReturnType<typeof authenticate>>;
  try {
    res = await authenticate(message, {
      sender: facts.sender,
      ...(facts.ip ? { ip: facts.ip, ...(facts.helo ? { helo: facts.helo } : {}) } : {}),
      mta: facts.authservId,
      resolver: lookup,
      disableArc: true,
      disableBimi: true,
      minBitLength: 1024,
      rejectRsaSha1: true,
      ...({ maxResolveCount: 10, maxVoidCount: 2 } as object),
    });
  } catch (e) {
    const reason = `sender authentication could not be completed (${String((e as Error)?.message ?? e).slice(0, 80)})`;
    return (['dkim', ...(facts.ip ? ['spf'] : []), 'dmarc'] as MethodName[]).map((method) => ({ method, result: 'temperror', reason, properties: [] }));
  }
  const out: MethodResult[] = [];
  // mailauth reports an unsigned message as one result "none" without a signing domain.
  const dkim = res.dkim.results.filter((r) => r.signingDomain || r.status.result !== 'none');
  if (!dkim.length) out.push({ method: 'dkim', result: 'none', properties: [] });
  for (const r of dkim.slice(0, MAX_DKIM_RESULTS)) {
    let result = keyword(r.status.result);
    let reason = r.status.comment || undefined;
    if (result === 'neutral' && r.bodyHash && r.bodyHashExpecting && r.bodyHash !== r.bodyHashExpecting) {
      result = 'fail';
      reason = 'body hash did not verify';
    }
    out.push({
      method: 'dkim', result, ...(result !== 'pass' && reason ? { reason } : {}),
      properties: [...(r.signingDomain ? [['header.d', r.signingDomain] as [string, string]] : []), ...(r.selector ? [['header.s', r.selector] as [string, string]] : []), ...(r.algo ? [['header.a', r.algo] as [string, string]] : []), ...(r.signature ? [['header.b', r.signature.replace(/\s/g, '').slice(0, 8)] as [string, string]] : [])],
    });
  }
  if (facts.ip && res.spf) {
    const s = res.spf;
    const result = keyword(s.status.result);
    out.push({
      method: 'spf', result, ...(result === 'temperror' || result === 'permerror' ? { reason: String(s.status.comment ?? '').replace(/^[^:]*: /, '') } : {}),
      properties: [['smtp.mailfrom', s.status.smtp?.mailfrom ?? facts.sender], ...(facts.helo ? [['smtp.helo', facts.helo] as [string, string]] : [])],
    });
  }
  if (res.dmarc) {
    const d = res.dmarc;
    const result = keyword(d.status.result);
    out.push({
      method: 'dmarc', result, ...(result !== 'pass' && d.status.comment ? { reason: String(d.status.comment) } : {}),
      properties: [['header.from', d.status.header?.from ?? d.domain], ...(d.policy ? [['policy.dmarc', d.policy] as [string, string]] : [])],
    });
  } else if (res.dmarcSkipReason) {
    out.push({ method: 'dmarc', result: 'permerror', reason: res.dmarcSkipReason, properties: [] });
  }
  return out;
}
