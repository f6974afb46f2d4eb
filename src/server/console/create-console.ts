/**
 * Mounts the web console under / of the service's Hono app (the API keeps
 * /api/v1). Every console route runs the same chain, in this order, before its
 * handler:
 *   Host names the console (else 421: DNS rebinding)
 *   → language (cookie, then Accept-Language)
 *   → session (the __Host- cookie, resumed from the store)
 *   → unsafe method: Origin and Sec-Fetch-Site say it comes from the console (else 403)
 *   → access: the route's declared access against the person's roles (else sign-in or 403)
 *   → step-up: a route marked `stepUp` needs this session's fresh proof of
 *     presence (else 303 to /confirm, step-up.ts; a handler may ask too)
 *   → handler
 * and every answer, error pages included, carries the security headers
 * (security-headers.ts). The chain runs inside each route rather than as
 * app-wide middleware, so the API's routes never see it.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import type { Context, Hono } from 'hono';
import type { AppEnv } from '../service-context.ts';
import { ProblemError } from '../problem.ts';
import { decideAccess } from './access.ts';
import { CONSOLE_CSS } from './assets/console-css.ts';
import { CONSOLE_JS } from './assets/console-js.ts';
import { PASSKEY_JS } from './assets/passkey-js.ts';
import { AUTH_HANDLERS } from './auth-routes.ts';
import { checkRequestOrigin, CrossSiteRequestError, isConsoleHost, isUnsafeMethod } from './check-request.ts';
import { CONSOLE_ROUTES } from './console-routes.ts';
import { ADMIN_HANDLERS } from './admin-handlers.ts';
import { CUSTODY_HANDLERS } from './custody-routes.ts';
import type { ConsoleContext, ConsoleHandler, ConsoleView } from './console-context.ts';
import { readLanguageCookie, readSessionCookie } from './cookies.ts';
import { errorPage } from './error-page.ts';
import { chooseLanguage, LANGUAGES } from './messages/choose-language.ts';
import { fragment, notice, safeNext, seeOther } from './render.ts';
import { securityHeaders } from './security-headers.ts';
import { requireStepUp, stepUpBack, StepUpRequiredError } from './step-up.ts';
import { addPerson, invitePerson, listPeople, saveSettings, setPersonRoles, settingsPage } from './pages/admin.ts';
import { auditPage, exportAudit } from './pages/audit.ts';
import { dashboard } from './pages/dashboard.ts';
import { certificateDetail, certificateInventory, publishCrlFile, revokeCertificate } from './pages/certificates.ts';
import { checkPage, checkSubmit } from './pages/check.ts';
import { lookupPage } from './pages/lookup.ts';
import { downloadMyCertificate, issueMyCertificate, myCertificatePage } from './pages/my-certificate.ts';
import { installGuidesPage } from './pages/install-guides.ts';
import { mailServerPage, saveMailServer } from './pages/mail-server-settings.ts';
import { lostDevicePage, lostDeviceSubmit, oldMailKeys } from './pages/my-keys.ts';
import { issueFromMyRequest, renewMyCertificate } from './pages/my-renewal.ts';
import { setupPage, setupSubmit } from './pages/setup.ts';
import { home, signInPage, signInSubmit, signOut, switchLanguage } from './pages/sign-in.ts';
import { welcomePage, welcomeSubmit } from './pages/welcome.ts';

/** htmx, vendored from node_modules (never a CDN), read once. */
function readHtmx(): string {
  return readFileSync(createRequire(import.meta.url).resolve('htmx.org/dist/htmx.min.js'), 'utf8');
}

const ASSET_TYPES: Record<string, string> = { css: 'text/css; charset=utf-8', js: 'text/javascript; charset=utf-8' };

function assetHandler(): ConsoleHandler {
  const assets = new Map<string, string>([['console.css', CONSOLE_CSS], ['console.js', CONSOLE_JS], ['passkey.js', PASSKEY_JS], ['htmx.min.js', readHtmx()]]);
  return async (c) => {
    const name = c.req.param('name') ?? '';
    const body = assets.get(name);
    if (body === undefined) throw new ProblemError(404, 'NOT_FOUND', 'No such asset.');
    return new Response(body, { headers: { 'content-type': ASSET_TYPES[name.slice(name.lastIndexOf('.') + 1)]! } });
  };
}

export const CONSOLE_HANDLERS: Record<string, ConsoleHandler> = {
  home, 'sign-in': signInPage, 'sign-in.submit': signInSubmit, 'sign-out': signOut, language: switchLanguage,
  setup: setupPage, 'setup.submit': setupSubmit, welcome: welcomePage, 'welcome.submit': welcomeSubmit,
  check: checkPage, 'check.submit': checkSubmit,
  lookup: lookupPage, me: myCertificatePage, 'me.issue': issueMyCertificate, 'me.download': downloadMyCertificate,
  'me.renew': renewMyCertificate, 'me.request': issueFromMyRequest, 'me.keys': oldMailKeys, 'me.lost': lostDevicePage, 'me.lost.submit': lostDeviceSubmit, 'me.guides': installGuidesPage,
  'admin.mail-server': mailServerPage, 'admin.mail-server.save': saveMailServer,
  admin: dashboard, 'admin.people': listPeople, 'admin.people.add': addPerson, 'admin.people.invite': invitePerson,
  'admin.people.roles': setPersonRoles, 'admin.settings': settingsPage, 'admin.settings.save': saveSettings, 'admin.audit': auditPage, 'admin.audit.export': exportAudit,
  'admin.certificates': certificateInventory, 'admin.certificates.crl': publishCrlFile, 'admin.certificate': certificateDetail, 'admin.certificate.revoke': revokeCertificate,
  ...ADMIN_HANDLERS,
  ...AUTH_HANDLERS,
  ...CUSTODY_HANDLERS,
};

function clientOf(c: Context): string {
  const socket = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming?.socket;
  return socket?.remoteAddress ?? 'local';
}

function withHeaders(res: Response, headers: Record<string, string>): Response {
  for (const [k, v] of Object.entries(headers)) if (!res.headers.has(k) || k === 'cache-control') res.headers.set(k, v);
  return res;
}

async function viewFor(c: Context, cx: ConsoleContext): Promise<ConsoleView> {
  const lang = chooseLanguage(readLanguageCookie(c), c.req.header('accept-language'));
  // After a POST the language switch goes back to the start page: the page it answered cannot be fetched again.
  return { lang, t: LANGUAGES[lang], path: c.req.path, back: c.req.method === 'GET' ? c.req.path : '/', organisation: (await cx.organisation.name()) ?? 'Kakitome', client: clientOf(c) };
}

/** The console's 404 page, for any path outside the API that no route matches. */
export async function consoleNotFound(c: Context<AppEnv>, cx: ConsoleContext): Promise<Response> {
  if (!isConsoleHost(c.req.header('host'), cx.origin)) return misdirected(cx);
  const v = await viewFor(c, cx);
  const { response } = errorPage(cx, v, new ProblemError(404, 'NOT_FOUND', 'No such page.'), c.get('state')?.requestId ?? '');
  return withHeaders(response, securityHeaders({ secure: cx.origin.secure, cache: 'none' }));
}

function misdirected(cx: ConsoleContext): Response {
  return withHeaders(new Response('421 Misdirected Request: this console is not served under this host name.\n', { status: 421, headers: { 'content-type': 'text/plain; charset=utf-8' } }), securityHeaders({ secure: cx.origin.secure, cache: 'none' }));
}

export function mountConsole(app: Hono<AppEnv>, cx: ConsoleContext): void {
  const handlers: Record<string, ConsoleHandler> = { ...CONSOLE_HANDLERS, asset: assetHandler() };
  for (const route of CONSOLE_ROUTES) {
    const handler = handlers[route.page];
    if (!handler) throw new Error(`No console handler for ${route.page}`);
    const cache = route.page === 'asset' ? 'asset' : 'none';
    app.on(route.method.toUpperCase(), route.path, async (c) => {
      const state = c.get('state');
      state.route = route.path;
      if (!isConsoleHost(c.req.header('host'), cx.origin)) {
        state.code = 'MISDIRECTED';
        return misdirected(cx);
      }
      const v = await viewFor(c, cx);
      let res: Response;
      try {
        const secret = readSessionCookie(c);
        const session = await cx.sessions.resume(secret);
        if (session) {
          v.person = session.person;
          v.sessionSecret = secret!;
        }
        if (isUnsafeMethod(c.req.method) && checkRequestOrigin(c.req.raw.headers, cx.origin) !== 'same-origin') throw new CrossSiteRequestError();
        const decision = decideAccess(route.access, v.person, route.access === 'check' ? await cx.organisation.checkPageAccess() : 'public');
        if (decision === 'sign-in' && c.req.method === 'GET') res = seeOther(`/sign-in?next=${encodeURIComponent(safeNext(c.req.path))}`);
        else if (decision === 'sign-in') throw new ProblemError(401, 'UNAUTHENTICATED', 'Sign in first.');
        else if (decision === 'forbidden') throw new ProblemError(403, 'FORBIDDEN', 'This route is not for the roles of this person.');
        else {
          if (route.stepUp) await requireStepUp(cx, v, stepUpBack(route.stepUp, c.req.param()));
          res = await handler(c, cx, v);
        }
      } catch (e) {
        if (e instanceof StepUpRequiredError) {
          // Nothing was done: the person proves their presence again, then comes back to the page (step-up.ts).
          state.code = 'STEP_UP_REQUIRED';
          return withHeaders(seeOther(`/confirm?next=${encodeURIComponent(e.back)}`), securityHeaders({ secure: cx.origin.secure, cache }));
        }
        const failed = errorPage(cx, v, e, state.requestId);
        state.code = failed.code;
        // htmx swaps the answer into the page: give it the message, not a whole page.
        res = c.req.header('hx-request') === 'true' ? fragment(notice('bad', failed.text), failed.status) : failed.response;
      }
      return withHeaders(res, securityHeaders({ secure: cx.origin.secure, cache }));
    });
  }
}
