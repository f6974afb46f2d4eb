/**
 * A real OpenID provider on loopback for the single sign-on tests: the npm
 * package oidc-provider (the certified implementation), with its development
 * login and consent pages, one confidential client (the console) with PKCE
 * required, and test accounts whose e-mail is verified or not. `signIn` drives
 * the provider's pages over HTTP as a browser would (its own cookie jar) and
 * returns where the provider sends the browser back: the console's callback.
 * `signOut` answers the provider's logout page (RP-Initiated Logout) as a browser
 * that confirms. A browser is a cookie jar: pass the same one to keep the
 * provider's session between calls (each call gets a new one otherwise).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export interface OidcAccount { email: string; email_verified: boolean }

export type ProviderJar = Map<string, string>;

export interface OidcPeer {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Registers the console's redirect URI and post-logout redirect URI (known once the console listens) and starts answering. */
  attach(redirectUri: string, postLogoutRedirectUri?: string): void;
  /** Follows `authorizationUrl` through login (as `account`, when asked) and consent; returns the redirect back to the client. */
  signIn(authorizationUrl: string, account: string, jar?: ProviderJar): Promise<URL>;
  /** Confirms the provider's logout page at `endSessionUrl`; returns where the provider sends the browser then. */
  signOut(endSessionUrl: string, jar?: ProviderJar): Promise<URL>;
  /** How many times the provider's login form was answered. */
  logins: number;
  close(): Promise<void>;
}

/** `logout: false`: a provider without RP-initiated logout (no end_session_endpoint). */
export async function startOidcProvider(accounts: Record<string, OidcAccount>, o: { host?: string; logout?: boolean } = {}): Promise<OidcPeer> {
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server = createServer((req, res) => {
    if (handler) handler(req, res);
    else { res.statusCode = 503; res.end(); }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://${o.host ?? '127.0.0.1'}:${port}`;
  const clientId = 'kakitome-console';
  const clientSecret = 'a-client-secret-of-the-console-0123456789';
  const go = async (jar: ProviderJar, url: string, form?: Record<string, string>): Promise<Response> => {
    const headers: Record<string, string> = {};
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    const r = await fetch(url, { method: form ? 'POST' : 'GET', headers, redirect: 'manual', ...(form ? { body: new URLSearchParams(form).toString() } : {}) });
    for (const c of r.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      jar.set(pair!.slice(0, i), pair!.slice(i + 1));
    }
    return r;
  };
  const peer: OidcPeer = {
    issuer, clientId, clientSecret, logins: 0,
    attach(redirectUri, postLogoutRedirectUri) {
      const provider = new Provider(issuer, {
        clients: [{
          client_id: clientId, client_secret: clientSecret, redirect_uris: [redirectUri], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic',
          ...(postLogoutRedirectUri ? { post_logout_redirect_uris: [postLogoutRedirectUri] } : {}),
        }],
        pkce: { required: () => true },
        claims: { openid: ['sub'], email: ['email', 'email_verified'] },
        cookies: { keys: ['kakitome test provider cookie key'] },
        features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: o.logout !== false } },
        // An account's sub is its name; its claims are read at every sign-in (a test may change an address).
        async findAccount(_ctx: unknown, id: string) {
          const a = accounts[id];
          return a ? { accountId: id, claims: async () => ({ sub: id, email: a.email, email_verified: a.email_verified }) } : undefined;
        },
      });
      handler = provider.callback();
    },
    async signIn(authorizationUrl, account, jar = new Map()) {
      let url = authorizationUrl;
      for (let step = 0; step < 12; step++) {
        const r = await go(jar, url);
        const location = r.headers.get('location');
        if (location) {
          const next = new URL(location, url);
          if (!next.href.startsWith(issuer)) return next;
          url = next.href;
          continue;
        }
        const html = await r.text();
        if (r.status !== 200) throw new Error(`provider ${url}: ${r.status} ${html.slice(0, 300)}`);
        const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
        const prompt = /name="prompt" value="([a-z]+)"/.exec(html)?.[1];
        if (!action || !prompt) throw new Error(`provider ${url}: no form in ${html.slice(0, 300)}`);
        if (prompt === 'login') peer.logins++;
        const posted = await go(jar, new URL(action, url).href, prompt === 'login' ? { prompt, login: account, password: 'any' } : { prompt });
        const after = posted.headers.get('location');
        if (!after) throw new Error(`provider ${action}: ${posted.status} ${(await posted.text()).slice(0, 300)}`);
        url = new URL(after, url).href;
      }
      throw new Error('the provider never sent the browser back');
    },
    async signOut(endSessionUrl, jar = new Map()) {
      const r = await go(jar, endSessionUrl);
      const html = await r.text();
      if (r.status !== 200) throw new Error(`provider ${endSessionUrl}: ${r.status} ${html.slice(0, 300)}`);
      const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
      const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
      if (!action || !xsrf) throw new Error(`provider ${endSessionUrl}: no logout form in ${html.slice(0, 300)}`);
      const posted = await go(jar, new URL(action, endSessionUrl).href, { xsrf, logout: 'yes' });
      const location = posted.headers.get('location');
      if (!location) throw new Error(`provider logout: ${posted.status} ${(await posted.text()).slice(0, 300)}`);
      return new URL(location, endSessionUrl);
    },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
  return peer;
}
