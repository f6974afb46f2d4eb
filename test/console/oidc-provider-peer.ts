/**
 * A real OpenID provider on loopback for the single sign-on tests: the npm
 * package oidc-provider (the certified implementation), with its development
 * login and consent pages, one confidential client (the console) with PKCE
 * required, and test accounts whose e-mail is verified or not. `signIn` drives
 * the provider's pages over HTTP as a browser would (its own cookie jar) and
 * returns where the provider sends the browser back: the console's callback.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export interface OidcAccount { email: string; email_verified: boolean }

export interface OidcPeer {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Registers the console's redirect URI (known once the console listens) and starts answering. */
  attach(redirectUri: string): void;
  /** Follows `authorizationUrl` through login (as `account`) and consent; returns the redirect back to the client. */
  signIn(authorizationUrl: string, account: string): Promise<URL>;
  close(): Promise<void>;
}

export async function startOidcProvider(accounts: Record<string, OidcAccount>, o: { host?: string } = {}): Promise<OidcPeer> {
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
  return {
    issuer, clientId, clientSecret,
    attach(redirectUri) {
      const provider = new Provider(issuer, {
        clients: [{ client_id: clientId, client_secret: clientSecret, redirect_uris: [redirectUri], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }],
        pkce: { required: () => true },
        claims: { openid: ['sub'], email: ['email', 'email_verified'] },
        cookies: { keys: ['kakitome test provider cookie key'] },
        features: { devInteractions: { enabled: true } },
        async findAccount(_ctx: unknown, id: string) {
          const a = accounts[id];
          return a ? { accountId: id, claims: async () => ({ sub: id, ...a }) } : undefined;
        },
      });
      handler = provider.callback();
    },
    async signIn(authorizationUrl, account) {
      const jar = new Map<string, string>();
      const go = async (url: string, form?: Record<string, string>): Promise<Response> => {
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
      let url = authorizationUrl;
      for (let step = 0; step < 12; step++) {
        const r = await go(url);
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
        const posted = await go(new URL(action, url).href, prompt === 'login' ? { prompt, login: account, password: 'any' } : { prompt });
        const after = posted.headers.get('location');
        if (!after) throw new Error(`provider ${action}: ${posted.status} ${(await posted.text()).slice(0, 300)}`);
        url = new URL(after, url).href;
      }
      throw new Error('the provider never sent the browser back');
    },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
