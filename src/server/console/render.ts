/**
 * The page shell and small building blocks, as hono/html templates: every value
 * interpolated is escaped (text and attribute alike); only other templates pass
 * through unescaped. Pages import `h` and compose; nothing builds HTML by string
 * concatenation.
 */
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { hasStaffRole } from './access.ts';
import type { ConsoleView } from './console-context.ts';
import { LANGUAGES } from './messages/choose-language.ts';

export type Html = HtmlEscapedString;
/** hono/html's `html`, typed as the synchronous templates the console uses (no promises inside). */
export const h = html as (strings: TemplateStringsArray, ...values: unknown[]) => Html;

export type Tone = 'good' | 'warn' | 'bad' | 'info';

export function notice(tone: Tone, ...lines: Array<string | Html>): Html {
  return h`<div class="notice ${tone}" role="${tone === 'bad' || tone === 'warn' ? 'alert' : 'status'}">${lines.map((l) => h`<p>${l}</p>`)}</div>`;
}

/** A path to come back to after sign-in or a language change: only our own absolute paths. */
export function safeNext(next: string | null | undefined): string {
  return next && /^\/(?![/\\])[\x21-\x7e]{0,500}$/.test(next) ? next : '/';
}

function navLink(v: ConsoleView, href: string, label: string): Html {
  const current = v.path === href || (href !== '/' && href !== '/admin' && v.path.startsWith(`${href}/`));
  return h`<li><a href="${href}"${current ? h` aria-current="page"` : ''}>${label}</a></li>`;
}

function navigation(v: ConsoleView): Html {
  const t = v.t.nav;
  const roles = v.person?.roles ?? [];
  const links: Html[] = [];
  if (v.person) links.push(navLink(v, '/me', t.me));
  links.push(navLink(v, '/check', t.check));
  if (v.person) links.push(navLink(v, '/lookup', t.lookup));
  if (hasStaffRole(v.person)) links.push(navLink(v, '/admin', t.admin));
  if (roles.some((r) => r === 'administrator' || r === 'registration-officer' || r === 'helpdesk')) links.push(navLink(v, '/admin/people', t.people));
  if (roles.some((r) => r === 'administrator' || r === 'registration-officer')) links.push(navLink(v, '/admin/certificates', t.certificates));
  if (roles.some((r) => r === 'administrator' || r === 'registration-officer')) links.push(navLink(v, '/admin/directory', t.directory));
  if (roles.some((r) => r === 'administrator' || r === 'auditor' || r === 'helpdesk')) links.push(navLink(v, '/admin/policy', t.policy));
  if (roles.includes('administrator')) links.push(navLink(v, '/admin/tenants', t.tenants));
  if (roles.some((r) => r === 'administrator' || r === 'registration-officer')) links.push(navLink(v, '/admin/recoveries', v.t.recovery.nav));
  if (roles.some((r) => r === 'administrator' || r === 'auditor')) links.push(navLink(v, '/admin/audit', t.audit));
  if (roles.includes('administrator')) links.push(navLink(v, '/admin/settings', t.settings));
  if (roles.includes('administrator')) links.push(navLink(v, '/admin/mail-server', v.t.mine.mailServer.nav));
  if (roles.includes('administrator')) links.push(navLink(v, '/admin/backup', v.t.backup.nav));
  return h`<nav aria-label="${t.label}"><ul>${links}</ul></nav>`;
}

function tools(v: ConsoleView): Html {
  const languages = Object.values(LANGUAGES).map((m) => h`<button class="lang" type="submit" name="lang" value="${m.lang}" lang="${m.lang}" aria-pressed="${m.lang === v.lang ? 'true' : 'false'}">${m.languageName}</button>`);
  const account = v.person
    ? h`<a href="/me/security"${v.path === '/me/security' ? h` aria-current="page"` : ''}>${v.t.passkeys.nav}</a><form method="post" action="/sign-out"><button class="link" type="submit">${v.t.nav.signOut}</button></form>`
    : v.path === '/sign-in' ? '' : h`<a href="/sign-in">${v.t.nav.signIn}</a>`;
  return h`<div class="tools"><form method="post" action="/language" aria-label="${v.t.nav.language}"><input type="hidden" name="next" value="${safeNext(v.back)}">${languages}</form>${account}</div>`;
}

export interface PageOptions {
  title: string;
  body: Html;
  status?: number;
  headers?: Record<string, string>;
}

/** A whole page. */
export function page(v: ConsoleView, o: PageOptions): Response {
  const doc = h`<!doctype html>
<html lang="${v.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{"includeIndicatorCSS":false,"history":false}'>
<title>${o.title} · ${v.t.appName}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/console.css">
<script src="/assets/htmx.min.js" defer></script>
<script src="/assets/console.js" defer></script>
</head>
<body>
<a class="skip" href="#main">${v.t.skipToContent}</a>
<header class="bar"><div class="inner">
<a class="brand" href="/">${v.t.appName} <span>${v.t.appTagline}</span></a>
${navigation(v)}
${tools(v)}
</div></header>
<main id="main" tabindex="-1">
<h1>${o.title}</h1>
${o.body}
</main>
<footer>${v.t.footer(v.organisation)}</footer>
</body>
</html>
`;
  return new Response(doc.toString(), { status: o.status ?? 200, headers: { 'content-type': 'text/html; charset=utf-8', ...o.headers } });
}

/** An HTML fragment (htmx swaps it into the page). */
export function fragment(body: Html, status = 200): Response {
  return new Response(body.toString(), { status, headers: { 'content-type': 'text/html; charset=utf-8' } });
}

/** 303 See Other: after a form, the browser GETs the next page. */
export function seeOther(location: string, headers: Record<string, string> = {}): Response {
  return new Response(null, { status: 303, headers: { location, ...headers } });
}

/**
 * The date formats, made once per language: an Intl.DateTimeFormat costs far more
 * to make than to use (made per call, the dates of the external certificates'
 * rows took a third of the page's CPU on bench/console.ts).
 */
const DATE_FORMATS = {
  ja: { date: new Intl.DateTimeFormat('ja-JP', { dateStyle: 'long', timeZone: 'UTC' }), dateTime: new Intl.DateTimeFormat('ja-JP', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' }) },
  en: { date: new Intl.DateTimeFormat('en-GB', { dateStyle: 'long', timeZone: 'UTC' }), dateTime: new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' }) },
};

/** A date as the reader expects it: 2026年12月6日 / 6 December 2026 (UTC, the server's only zone). */
export function formatDate(v: ConsoleView, d: Date): string {
  return DATE_FORMATS[v.lang === 'ja' ? 'ja' : 'en'].date.format(d);
}

export function formatDateTime(v: ConsoleView, d: Date): string {
  return `${DATE_FORMATS[v.lang === 'ja' ? 'ja' : 'en'].dateTime.format(d)} UTC`;
}

export function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${Math.round(n / 1024 / 1024)} MiB` : `${Math.round(n / 1024)} KiB`;
}
