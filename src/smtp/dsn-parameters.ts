/**
 * The DSN parameters of RFC 3461 as the relay carries them: RET and ENVID on MAIL
 * FROM, NOTIFY and ORCPT on each RCPT TO. smtp-server parses them (with its DSN
 * extension on: hideDSN false): it decodes xtext, refuses control characters, a bad
 * RET or NOTIFY value, NEVER combined with another NOTIFY value, and an ORCPT
 * without an addr-type. What it does not check is checked here (the values are
 * hostile input that goes on to the next hop and into its DSNs):
 * - ENVID: printable US-ASCII (RFC 3461 4.4), at most 100 characters xtext-encoded
 *   (RFC 3461 lets MAIL FROM grow by 100 characters for it);
 * - ORCPT: an addr-type that is an atom, `;`, an address of printable US-ASCII
 *   (RFC 3461 4.2), at most 500 characters encoded (RCPT TO may grow by 500 for it);
 * - NOTIFY: each value once.
 * The listeners refuse a command whose parameters fail these checks (501 5.5.4);
 * the relay client checks again before it writes anything (relay-connection.ts).
 * Values are written xtext-encoded, as received: ORCPT's addr-type as it is, its
 * address encoded.
 */

export type NotifyValue = 'NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY';

/** MAIL FROM's DSN parameters. */
export interface MailDsn {
  ret?: 'FULL' | 'HDRS';
  /** Decoded (not xtext). */
  envid?: string;
}

/** One recipient's DSN parameters. */
export interface RcptDsn {
  notify?: readonly NotifyValue[];
  /** Decoded: `addr-type;address`. */
  orcpt?: string;
}

/** What the gateway's own messages (its DSNs, its notices, all with the null sender) ask for: no DSN of them, ever (RFC 3461, 3464: a DSN goes with the null reverse-path and NOTIFY=NEVER or none, so that it never loops). */
export const NOTIFY_NEVER: RcptDsn = { notify: ['NEVER'] };

export const MAX_ENVID = 100;
export const MAX_ORCPT = 500;
const NOTIFY_VALUES = new Set<string>(['NEVER', 'SUCCESS', 'FAILURE', 'DELAY']);
const PRINTABLE = /^[\x20-\x7e]+$/;
// RFC 5322 atext.
const ADDR_TYPE = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$/;

/** xtext (RFC 3461 4): "!" to "~" except "+" and "=" as they are, every other byte as "+XX". */
export function encodeXtext(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) out += byte >= 0x21 && byte <= 0x7e && byte !== 0x2b && byte !== 0x3d ? String.fromCharCode(byte) : `+${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** Why MAIL FROM's DSN parameters cannot be relayed, or undefined when they can. */
export function mailDsnProblem(dsn: MailDsn | undefined): string | undefined {
  if (!dsn) return undefined;
  if (dsn.ret !== undefined && dsn.ret !== 'FULL' && dsn.ret !== 'HDRS') return 'RET must be FULL or HDRS';
  if (dsn.envid !== undefined) {
    if (!PRINTABLE.test(dsn.envid)) return 'ENVID must be printable US-ASCII';
    if (encodeXtext(dsn.envid).length > MAX_ENVID) return `ENVID is longer than ${MAX_ENVID} characters`;
  }
  return undefined;
}

/** Why a recipient's DSN parameters cannot be relayed, or undefined when they can. */
export function rcptDsnProblem(dsn: RcptDsn | undefined): string | undefined {
  if (!dsn) return undefined;
  if (dsn.notify !== undefined) {
    const n = dsn.notify;
    if (n.length === 0 || n.some((v) => !NOTIFY_VALUES.has(v))) return 'NOTIFY must be NEVER, or any of SUCCESS, FAILURE and DELAY';
    if (new Set(n).size !== n.length) return 'NOTIFY names a value twice';
    if (n.includes('NEVER') && n.length > 1) return 'NOTIFY=NEVER cannot be combined with other values';
  }
  if (dsn.orcpt !== undefined) {
    const semicolon = dsn.orcpt.indexOf(';');
    const type = dsn.orcpt.slice(0, semicolon);
    const address = dsn.orcpt.slice(semicolon + 1);
    if (semicolon < 1 || !ADDR_TYPE.test(type)) return 'ORCPT must start with an addr-type and ";"';
    if (!PRINTABLE.test(address)) return 'ORCPT\'s address must be printable US-ASCII';
    if (encodedOrcpt(type, address).length > MAX_ORCPT) return `ORCPT is longer than ${MAX_ORCPT} characters`;
  }
  return undefined;
}

function encodedOrcpt(type: string, address: string): string {
  return `${type};${encodeXtext(address)}`;
}

/** MAIL FROM's DSN parameters as written (checked first: mailDsnProblem). */
export function mailDsnParameters(dsn: MailDsn | undefined): string[] {
  const params: string[] = [];
  if (dsn?.ret) params.push(`RET=${dsn.ret}`);
  if (dsn?.envid !== undefined) params.push(`ENVID=${encodeXtext(dsn.envid)}`);
  return params;
}

/** A recipient's DSN parameters as written (checked first: rcptDsnProblem). */
export function rcptDsnParameters(dsn: RcptDsn | undefined): string[] {
  const params: string[] = [];
  if (dsn?.notify?.length) params.push(`NOTIFY=${dsn.notify.join(',')}`);
  if (dsn?.orcpt !== undefined) {
    const semicolon = dsn.orcpt.indexOf(';');
    params.push(`ORCPT=${encodedOrcpt(dsn.orcpt.slice(0, semicolon), dsn.orcpt.slice(semicolon + 1))}`);
  }
  return params;
}

/** MAIL FROM's parameters from smtp-server's session.envelope.dsn (null: not given). */
export function mailDsnOf(parsed: { ret: string | null; envid: string | null } | undefined): MailDsn | undefined {
  if (!parsed || (parsed.ret === null && parsed.envid === null)) return undefined;
  return { ...(parsed.ret !== null ? { ret: parsed.ret as MailDsn['ret'] & string } : {}), ...(parsed.envid !== null ? { envid: parsed.envid } : {}) };
}

/** A recipient's parameters from smtp-server's address.dsn. */
export function rcptDsnOf(parsed: { notify?: string[] | undefined; orcpt?: string | undefined } | undefined): RcptDsn | undefined {
  if (!parsed || (parsed.notify === undefined && parsed.orcpt === undefined)) return undefined;
  return { ...(parsed.notify !== undefined ? { notify: parsed.notify as NotifyValue[] } : {}), ...(parsed.orcpt !== undefined ? { orcpt: parsed.orcpt } : {}) };
}
