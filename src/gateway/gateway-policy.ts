/**
 * The gateway's policy, from a JSON file (--policy FILE), read at start and again on
 * SIGHUP. Unknown settings and wrong values are refused with the setting's name, so
 * a typo never silently leaves a default in force. Without a file the defaults
 * below apply: sign everything, encrypt where a validated certificate is known,
 * never open unauthenticated (CBC) encryption.
 *
 * This is the global level only. The per-domain and per-address levels, the policy
 * kept in the store, `required` encryption and its triggers, subject tags and DKIM
 * are issue 13 work still to come (docs/gateway.md, "Not done yet").
 */
import { readFile } from 'node:fs/promises';
import { KakitomeError } from '../errors.ts';
import type { RevocationMode } from '../pki/check-revocation.ts';

export interface GatewayPolicy {
  /** Sign outbound mail with the sender's current key (default true). */
  sign: boolean;
  /** 'if-possible' (default): encrypt to recipients with a validated certificate; 'never'. */
  encrypt: 'never' | 'if-possible';
  /** Encryption hides the Subject outside (RFC 9788 hcp_baseline); default false: readable (hcp_no_confidentiality). */
  hideSubject: boolean;
  /**
   * Revocation checking of inbound signers (default require, docs/security.md
   * section 7: a gateway decides for everyone, an unseen revocation must not pass
   * silently; unknown is smime=temperror).
   */
  revocation: RevocationMode;
  /**
   * Revocation checking of outbound recipients' certificates (default allow-unknown,
   * as `kakitome encrypt`): refusing a certificate only because its revocation is
   * unknown would send the message unencrypted instead. A revoked one is never used.
   */
  recipientRevocation: RevocationMode;
  /**
   * Inbound CBC content no trusted signature of the sender covers (EFAIL, UNAUTH_ENC).
   * 'deliver-encrypted' (default): the original, still encrypted, in a message with a
   * notice, labelled smime=neutral; never opened. 'deliver-decrypted': opened, every
   * part rebuilt so that nothing can fetch (no URL in HTML, other parts as plain
   * attachments), under a warning, labelled smime=neutral with UNAUTH_ENC.
   */
  unauthenticatedEncryption: 'deliver-encrypted' | 'deliver-decrypted';
  /** Largest message accepted, in bytes (default 64 MiB); a larger one is refused with 552. */
  maxMessageBytes: number;
  /** Connections served at once (default 20); Postfix's maxproc for the filter should not exceed it. */
  maxConnections: number;
  /** Milliseconds the next hop may take to accept a message before the gateway answers 4xx (default 120000). */
  relayTimeoutMs: number;
}

export const DEFAULT_POLICY: Readonly<GatewayPolicy> = Object.freeze({
  sign: true,
  encrypt: 'if-possible',
  hideSubject: false,
  revocation: 'require',
  recipientRevocation: 'allow-unknown',
  unauthenticatedEncryption: 'deliver-encrypted',
  maxMessageBytes: 64 * 1024 * 1024,
  maxConnections: 20,
  relayTimeoutMs: 120_000,
});

type Check = (value: unknown) => boolean;
const oneOf = (...values: string[]): Check => (v) => typeof v === 'string' && values.includes(v);
const boolean: Check = (v) => typeof v === 'boolean';
const integer = (min: number, max: number): Check => (v) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

const SETTINGS: Record<keyof GatewayPolicy, { check: Check; expected: string }> = {
  sign: { check: boolean, expected: 'true or false' },
  encrypt: { check: oneOf('never', 'if-possible'), expected: '"never" or "if-possible" ("required" is not implemented yet)' },
  hideSubject: { check: boolean, expected: 'true or false' },
  revocation: { check: oneOf('require', 'allow-unknown', 'off'), expected: '"require", "allow-unknown" or "off"' },
  recipientRevocation: { check: oneOf('require', 'allow-unknown', 'off'), expected: '"require", "allow-unknown" or "off"' },
  unauthenticatedEncryption: { check: oneOf('deliver-encrypted', 'deliver-decrypted'), expected: '"deliver-encrypted" or "deliver-decrypted" (hold is not implemented yet)' },
  maxMessageBytes: { check: integer(1024, 512 * 1024 * 1024), expected: 'an integer from 1024 to 536870912' },
  maxConnections: { check: integer(1, 10_000), expected: 'an integer from 1 to 10000' },
  relayTimeoutMs: { check: integer(1000, 3_600_000), expected: 'an integer from 1000 to 3600000' },
};

/** The policy a JSON document sets (every setting optional), checked setting by setting. */
export function parseGatewayPolicy(text: string, source: string): GatewayPolicy {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new KakitomeError('INVALID_ARGUMENT', `${source}: not valid JSON (${(e as Error).message}).`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new KakitomeError('INVALID_ARGUMENT', `${source}: the policy must be a JSON object of settings, e.g. {"sign": true, "encrypt": "if-possible"}.`);
  const policy: Record<string, unknown> = { ...DEFAULT_POLICY };
  for (const [name, value] of Object.entries(doc)) {
    const setting = SETTINGS[name as keyof GatewayPolicy];
    if (!setting) throw new KakitomeError('INVALID_ARGUMENT', `${source}: unknown setting "${name}" (known: ${Object.keys(SETTINGS).join(', ')}).`);
    if (!setting.check(value)) throw new KakitomeError('INVALID_ARGUMENT', `${source}: "${name}" must be ${setting.expected}; it is ${JSON.stringify(value)}.`);
    policy[name] = value;
  }
  return policy as unknown as GatewayPolicy;
}

/** Reads and checks the policy file; without a path, the defaults. */
export async function loadGatewayPolicy(path: string | undefined): Promise<GatewayPolicy> {
  if (path === undefined) return { ...DEFAULT_POLICY };
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new KakitomeError('INVALID_ARGUMENT', `--policy ${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`);
  }
  return parseGatewayPolicy(text, `--policy ${path}`);
}
