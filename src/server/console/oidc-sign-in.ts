/**
 * Single sign-on by OpenID Connect (issue 11), with openid-client: the
 * authorization code flow with PKCE (S256), `state` and `nonce`, a confidential
 * client (client_secret_basic). The ID token is validated by openid-client
 * (signature by the issuer's published keys, `iss` equal to the configured
 * issuer, `aud` our client id, expiry, `nonce` ours); the e-mail comes from the
 * ID token or, when the provider keeps it to the UserInfo endpoint, from there
 * with its `sub` checked against the ID token's. Only an e-mail the provider says
 * is verified (`email_verified: true`) signs in, and only as the person who
 * already has an account with that address (console/pages/oidc.ts): nobody is
 * created by single sign-on.
 *
 * The flow's secrets (state, nonce, PKCE verifier: 256 random bits each) live in
 * the `__Host-kakitome-oidc` cookie (HttpOnly, SameSite=Lax so the provider's
 * redirect back carries it, 10 minutes), used once: the callback clears it, so a
 * callback opened again, or in another browser, has nothing to match. The
 * provider answers a replayed code with an error, which refuses too.
 *
 * Sign-out (RP-Initiated Logout 1.0): when the provider's discovery names an
 * end_session_endpoint, `endSessionUrl` gives where to send the browser, with our
 * client_id and post_logout_redirect_uri (no ID token is kept to send as a hint:
 * the provider may then ask the person to confirm). Without one, sign-out stays
 * local. The provider's `sub` is pinned to the person on first sign-in
 * (store/oidc-subjects.ts, console/pages/oidc.ts).
 *
 * The issuer must be https, or http on a loopback address (a provider on this
 * machine, as the tests run). The client secret comes from a pass spec
 * (`--oidc-client-secret`), is held in memory only and never logged.
 */
import * as client from 'openid-client';
import { serialize } from 'hono/utils/cookie';
import { getCookie } from 'hono/cookie';
import type { Context } from 'hono';
import { KakitomeError } from '../../errors.ts';

export interface ConsoleOidcConfig {
  /** The issuer's URL, exactly as its discovery document names it. */
  issuer: string;
  clientId: string;
  clientSecret: string;
}

export const OIDC_COOKIE = '__Host-kakitome-oidc';
/** The console's redirect URI path (registered with the provider), for sign-in and step-up alike. */
export const OIDC_CALLBACK_PATH = '/sign-in/oidc/callback';
export const OIDC_FLOW_TTL_MS = 10 * 60_000;
const B64URL_43 = /^[A-Za-z0-9_-]{43}$/;
/** A step-up flow's page (safeNext allows 501 characters: 668 in base64url). */
const B64URL_NEXT = /^[A-Za-z0-9_-]{2,700}$/;

/** An issuer URL Kakitome may use: https, or http on a loopback address. */
export function checkIssuerUrl(issuer: string): URL {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new KakitomeError('INVALID_ARGUMENT', `--oidc-issuer ${issuer}: give the provider's issuer URL, e.g. https://login.example.co.jp/realms/staff.`);
  }
  const loopback = url.hostname === '127.0.0.1' || url.hostname === '[::1]' || url.hostname === 'localhost';
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) throw new KakitomeError('INVALID_ARGUMENT', `--oidc-issuer ${issuer}: the issuer must be https (http only on this machine's loopback).`);
  if (url.username || url.password || url.search || url.hash) throw new KakitomeError('INVALID_ARGUMENT', `--oidc-issuer ${issuer}: an issuer URL has no user, query or fragment.`);
  return url;
}

/** Why a sign-in was refused, for the log (never a secret, a code or a token). */
export class OidcRefusal extends Error {}

export interface OidcIdentity {
  email: string;
  subject: string;
  /** The ID token's auth_time (seconds since the epoch), when the provider sent it. */
  authTime?: number;
  /** Set when the flow was a step-up re-authentication: the console page to come back to. */
  stepUpNext?: string;
}

export class OidcSignIn {
  readonly #settings: ConsoleOidcConfig;
  #configuration: Promise<client.Configuration> | undefined;

  constructor(settings: ConsoleOidcConfig) {
    checkIssuerUrl(settings.issuer);
    this.#settings = settings;
  }

  /** The provider's metadata, discovered once (again after a failure); its issuer must be the configured one (openid-client checks). */
  #config(): Promise<client.Configuration> {
    const url = checkIssuerUrl(this.#settings.issuer);
    this.#configuration ??= client.discovery(url, this.#settings.clientId, undefined, client.ClientSecretBasic(this.#settings.clientSecret), {
      timeout: 10,
      ...(url.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : {}),
    }).catch((e: unknown) => {
      this.#configuration = undefined;
      throw new OidcRefusal(`discovery failed: ${describe(e)}`);
    });
    return this.#configuration;
  }

  /**
   * Where to send the browser, and the cookie that binds the answer to this
   * browser. `stepUp`: a re-authentication of a signed-in person (step-up.ts),
   * coming back to the console page `next`: the provider is asked to sign the
   * person in again whatever session it holds (prompt=login, max_age=0, OpenID
   * Connect Core 3.1.2.1), and the cookie carries a fourth part, the page.
   */
  async start(redirectUri: string, stepUp?: { next: string }): Promise<{ location: string; cookie: string }> {
    const config = await this.#config();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const verifier = client.randomPKCECodeVerifier();
    const location = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri, scope: 'openid email', state, nonce,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
      ...(stepUp ? { prompt: 'login', max_age: '0' } : {}),
    });
    const flow = [state, nonce, verifier, ...(stepUp ? [Buffer.from(stepUp.next, 'utf8').toString('base64url')] : [])].join('.');
    return { location: location.href, cookie: serialize(OIDC_COOKIE, flow, { path: '/', secure: true, httpOnly: true, sameSite: 'Lax', maxAge: OIDC_FLOW_TTL_MS / 1000 }) };
  }

  /**
   * Where to send the browser to end its session at the provider, coming back to
   * `postLogoutRedirectUri` (registered with the provider); undefined when the
   * provider announces no end_session_endpoint. Throws OidcRefusal when discovery fails.
   */
  async endSessionUrl(postLogoutRedirectUri: string): Promise<string | undefined> {
    const config = await this.#config();
    if (!config.serverMetadata().end_session_endpoint) return undefined;
    return client.buildEndSessionUrl(config, { client_id: this.#settings.clientId, post_logout_redirect_uri: postLogoutRedirectUri }).href;
  }

  /**
   * The provider's answer at `callbackUrl` (our redirect URI with its query), for
   * the flow in `cookie`: the verified e-mail and subject, or OidcRefusal.
   */
  async finish(callbackUrl: URL, cookie: string | undefined): Promise<OidcIdentity> {
    const parts = (cookie ?? '').split('.');
    if ((parts.length !== 3 && parts.length !== 4) || !parts.slice(0, 3).every((p) => B64URL_43.test(p)) || (parts.length === 4 && !B64URL_NEXT.test(parts[3]!))) throw new OidcRefusal('no sign-in was started in this browser (no or a malformed flow cookie)');
    const [state, nonce, verifier, next] = parts as [string, string, string, string | undefined];
    const config = await this.#config();
    let tokens;
    try {
      tokens = await client.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
    } catch (e) {
      throw new OidcRefusal(`the answer was refused: ${describe(e)}`);
    }
    const claims = tokens.claims();
    if (!claims) throw new OidcRefusal('no ID token');
    let email = claims.email;
    let verified = claims.email_verified;
    if (email === undefined) {
      try {
        const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
        email = info.email;
        verified = info.email_verified;
      } catch (e) {
        throw new OidcRefusal(`UserInfo failed: ${describe(e)}`);
      }
    }
    if (typeof email !== 'string' || email.length > 320) throw new OidcRefusal('the provider named no e-mail address');
    if (verified !== true) throw new OidcRefusal(`the provider has not verified ${email}`);
    return {
      email, subject: claims.sub,
      ...(typeof claims.auth_time === 'number' ? { authTime: claims.auth_time } : {}),
      ...(next !== undefined ? { stepUpNext: Buffer.from(next, 'base64url').toString('utf8') } : {}),
    };
  }
}

/** An error's kind and OAuth code only: openid-client's messages may quote a response. */
function describe(e: unknown): string {
  const x = e as { name?: string; code?: string; error?: string };
  return [x?.name, x?.code, x?.error].filter(Boolean).join(' ') || 'unknown error';
}

export function readOidcCookie(c: Context): string | undefined {
  return getCookie(c, OIDC_COOKIE);
}

export function clearOidcCookie(): string {
  return serialize(OIDC_COOKIE, '', { path: '/', secure: true, httpOnly: true, sameSite: 'Lax', maxAge: 0 });
}
