/**
 * The passkey ceremonies (WebAuthn, @simplewebauthn/server): registering a
 * passkey for a signed-in person, and proving one at sign-in after the password.
 *
 * The relying party is the host name the console was reached under (already
 * checked against the console's names, console-origin.ts): a passkey is bound to
 * it, so behind --public-url there is one; WebAuthn refuses IP addresses, so a
 * console opened as http://127.0.0.1 offers no passkeys (http://localhost does).
 *
 * Each ceremony's challenge is 256 random bits kept in the store as a single-use
 * secret bound to the person (console-sessions.ts: its SHA-256, 5 minutes): the
 * response is accepted only if its challenge is one the store still holds for
 * this person and purpose, and that challenge is used up by the check, whether
 * the signature then verifies or not. Any node behind a load balancer can finish
 * a ceremony another began.
 */
import { isIP } from 'node:net';
import {
  generateAuthenticationOptions, generateRegistrationOptions, verifyAuthenticationResponse, verifyRegistrationResponse,
  type AuthenticationResponseJSON, type WebAuthnCredential, type PublicKeyCredentialCreationOptionsJSON, type PublicKeyCredentialRequestOptionsJSON, type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { LinkPurpose } from '../../store/console-sessions.ts';
import { PasskeyDirectory, type Passkey } from '../../store/console-passkeys.ts';
import type { Person } from '../../store/people-directory.ts';
import type { Store } from '../../store/store.ts';
import type { ConsoleContext } from './console-context.ts';

type Transport = NonNullable<WebAuthnCredential['transports']>[number];

export const CEREMONY_TTL_MS = 5 * 60_000;
/** The largest credential response read (a registration with attestation "none" is well under 2 KiB). */
export const MAX_CREDENTIAL_JSON = 16 * 1024;

export interface RelyingParty {
  /** The RP ID: the host name without port. */
  id: string;
  name: string;
  origins: string[];
}

/** The relying party for a request's Host header, or undefined when it is an IP address (WebAuthn needs a name). */
export function relyingPartyFor(cx: ConsoleContext, host: string | undefined, organisation: string): RelyingParty | undefined {
  if (!host) return undefined;
  const name = host.toLowerCase().replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  if (!name || isIP(name)) return undefined;
  return { id: name, name: organisation, origins: [...cx.origin.origins] };
}

async function newChallenge(cx: ConsoleContext, purpose: LinkPurpose, person: Person): Promise<Uint8Array<ArrayBuffer>> {
  const { secret } = await cx.sessions.issueLink(purpose, CEREMONY_TTL_MS, person.id);
  return new Uint8Array(Buffer.from(secret, 'base64url'));
}

/** The check simplewebauthn runs on the response's challenge: one of ours, for this person, and used up now. */
function challengeOf(cx: ConsoleContext, purpose: LinkPurpose, person: Person): (challenge: string) => Promise<boolean> {
  return async (challenge) => {
    const link = await cx.sessions.checkLink(challenge, purpose);
    return link?.personId === person.id && (await cx.sessions.consumeLink(challenge, purpose));
  };
}

/** The response as JSON, or undefined when it is not a credential's shape at all. */
function parseCredential<T>(text: string): T | undefined {
  if (!text || text.length > MAX_CREDENTIAL_JSON) return undefined;
  try {
    const v = JSON.parse(text) as { id?: unknown; rawId?: unknown; response?: unknown; type?: unknown };
    return typeof v === 'object' && v !== null && typeof v.id === 'string' && typeof v.rawId === 'string' && typeof v.response === 'object' && v.response !== null && v.type === 'public-key' ? (v as T) : undefined;
  } catch {
    return undefined;
  }
}

export async function registrationOptions(cx: ConsoleContext, rp: RelyingParty, person: Person): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const existing = await new PasskeyDirectory(cx.service.store).list(person.id);
  return generateRegistrationOptions({
    rpName: rp.name, rpID: rp.id, userName: person.email, userDisplayName: person.displayName,
    userID: new Uint8Array(Buffer.from(person.id)), challenge: await newChallenge(cx, 'passkey-register', person),
    timeout: CEREMONY_TTL_MS, attestationType: 'none',
    excludeCredentials: existing.map((p) => ({ id: p.id, transports: p.transports })),
    authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
  });
}

/**
 * Verifies a registration response and keeps the passkey under `name`; undefined
 * when it is refused (not a credential, another challenge, another origin or RP,
 * a bad attestation). `store` writes the audit record as the person.
 */
export async function finishRegistration(cx: ConsoleContext, store: Store, rp: RelyingParty, person: Person, credentialJson: string, name: string): Promise<Passkey | undefined> {
  const response = parseCredential<RegistrationResponseJSON>(credentialJson);
  if (!response) return undefined;
  let verified;
  try {
    verified = await verifyRegistrationResponse({
      response, expectedChallenge: challengeOf(cx, 'passkey-register', person), expectedOrigin: rp.origins, expectedRPID: rp.id,
      requireUserVerification: false,
    });
  } catch {
    return undefined;
  }
  if (!verified.verified) return undefined;
  const { credential } = verified.registrationInfo;
  return new PasskeyDirectory(store).add({
    personId: person.id, email: person.email, id: credential.id, publicKey: credential.publicKey, signCount: credential.counter,
    ...(credential.transports ? { transports: credential.transports } : {}), name,
  });
}

/**
 * `stepUp`: a re-authentication of a signed-in person (step-up.ts): a challenge of
 * its own purpose (a sign-in's cannot answer it, nor the reverse) and user
 * verification required (the PIN or biometric of the authenticator: the person, not
 * only the device).
 */
export async function signInOptions(cx: ConsoleContext, rp: RelyingParty, person: Person, o: { stepUp?: boolean } = {}): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const passkeys = await new PasskeyDirectory(cx.service.store).list(person.id);
  return generateAuthenticationOptions({
    rpID: rp.id, challenge: await newChallenge(cx, o.stepUp ? 'step-up-passkey' : 'passkey-sign-in', person), timeout: CEREMONY_TTL_MS, userVerification: o.stepUp ? 'required' : 'preferred',
    allowCredentials: passkeys.map((p) => ({ id: p.id, transports: p.transports as Transport[] })),
  });
}

/**
 * True when the response proves one of the person's passkeys against a challenge
 * issued to them; the passkey's counter is recorded (a counter that does not grow
 * where the authenticator keeps one is refused by the library: a cloned key).
 */
export async function finishSignIn(cx: ConsoleContext, rp: RelyingParty, person: Person, credentialJson: string, o: { stepUp?: boolean } = {}): Promise<boolean> {
  const response = parseCredential<AuthenticationResponseJSON>(credentialJson);
  if (!response) return false;
  const passkeys = new PasskeyDirectory(cx.service.store);
  const passkey = await passkeys.find(person.id, response.id);
  if (!passkey) return false;
  try {
    const result = await verifyAuthenticationResponse({
      response, expectedChallenge: challengeOf(cx, o.stepUp ? 'step-up-passkey' : 'passkey-sign-in', person), expectedOrigin: rp.origins, expectedRPID: rp.id,
      credential: { id: passkey.id, publicKey: passkey.publicKey, counter: passkey.signCount, transports: passkey.transports as Transport[] },
      requireUserVerification: o.stepUp === true,
    });
    return result.verified && (await passkeys.recordUse(passkey, result.authenticationInfo.newCounter));
  } catch {
    return false;
  }
}
