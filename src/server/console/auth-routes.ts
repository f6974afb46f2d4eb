/**
 * The console's sign-in methods beyond the password (issue 11): passkeys,
 * links by mail and single sign-on (OpenID Connect), and the step-up
 * re-authentication before dangerous actions (/confirm, step-up.ts), kept
 * apart from console-routes.ts so that file only lists them. Same shape as
 * CONSOLE_ROUTES (access declared per route, walked by the role tests).
 */
import type { ConsoleHandler } from './console-context.ts';
import type { ConsoleRoute } from './console-routes.ts';
import { oidcCallback, oidcStart } from './pages/oidc.ts';
import { mailLinkPage, mailLinkSubmit, requestMailLink } from './pages/mail-link.ts';
import { stepUpOidcStart, stepUpPage, stepUpPasskey, stepUpPasskeyOptions, stepUpPassword } from './pages/step-up.ts';
import { addPasskey, mySecurity, passkeyRegistrationOptions, passkeySignInOptions, passkeySignInSubmit, passkeyStepPage, removePasskey } from './pages/passkeys.ts';

export const AUTH_ROUTES: readonly ConsoleRoute[] = [
  { method: 'get', path: '/sign-in/passkey', access: 'public', page: 'sign-in.passkey' },
  { method: 'post', path: '/sign-in/passkey/options', access: 'public', page: 'sign-in.passkey.options' },
  { method: 'post', path: '/sign-in/passkey', access: 'public', page: 'sign-in.passkey.submit' },
  { method: 'post', path: '/sign-in/link', access: 'public', page: 'sign-in.link' },
  { method: 'get', path: '/sign-in/link/:token', access: 'public', page: 'sign-in.link.open' },
  { method: 'post', path: '/sign-in/link/:token', access: 'public', page: 'sign-in.link.submit' },
  { method: 'get', path: '/sign-in/oidc', access: 'public', page: 'sign-in.oidc' },
  { method: 'get', path: '/sign-in/oidc/callback', access: 'public', page: 'sign-in.oidc.callback' },
  { method: 'get', path: '/me/security', access: 'signed-in', page: 'me.security' },
  { method: 'post', path: '/me/passkeys/options', access: 'signed-in', page: 'me.passkeys.options' },
  { method: 'post', path: '/me/passkeys', access: 'signed-in', page: 'me.passkeys.add' },
  { method: 'post', path: '/me/passkeys/:id/remove', access: 'signed-in', page: 'me.passkeys.remove' },
  { method: 'get', path: '/confirm', access: 'signed-in', page: 'confirm' },
  { method: 'post', path: '/confirm', access: 'signed-in', page: 'confirm.password' },
  { method: 'post', path: '/confirm/passkey/options', access: 'signed-in', page: 'confirm.passkey.options' },
  { method: 'post', path: '/confirm/passkey', access: 'signed-in', page: 'confirm.passkey' },
  { method: 'get', path: '/confirm/oidc', access: 'signed-in', page: 'confirm.oidc' },
];

export const AUTH_HANDLERS: Record<string, ConsoleHandler> = {
  'sign-in.passkey': passkeyStepPage, 'sign-in.passkey.options': passkeySignInOptions, 'sign-in.passkey.submit': passkeySignInSubmit,
  'sign-in.link': requestMailLink, 'sign-in.link.open': mailLinkPage, 'sign-in.link.submit': mailLinkSubmit,
  'sign-in.oidc': oidcStart, 'sign-in.oidc.callback': oidcCallback,
  'me.security': mySecurity, 'me.passkeys.options': passkeyRegistrationOptions, 'me.passkeys.add': addPasskey, 'me.passkeys.remove': removePasskey,
  confirm: stepUpPage, 'confirm.password': stepUpPassword, 'confirm.passkey.options': stepUpPasskeyOptions, 'confirm.passkey': stepUpPasskey, 'confirm.oidc': stepUpOidcStart,
};
