/**
 * The console's routes as data: method, path and who may use it (access.ts).
 * create-console.ts mounts a handler for each, behind the same checks; the tests
 * walk this table to try every route with every role, so a route cannot be added
 * without its access being declared and tested.
 */
import { ADMINISTRATORS, AUDITORS, PEOPLE_READERS, REGISTRARS, STAFF } from './access.ts';
import type { Access } from './access.ts';
import { ADMIN_ROUTES } from './admin-routes.ts';
import { AUTH_ROUTES } from './auth-routes.ts';
import { CUSTODY_ROUTES } from './custody-routes.ts';

export interface ConsoleRoute {
  method: 'get' | 'post';
  /** Hono path pattern (":name" parameters). */
  path: string;
  access: Access;
  /** The handler's name in create-console.ts (and the route label in logs and metrics). */
  page: string;
  /**
   * Set on the routes that need a fresh step-up proof (step-up.ts; the list and
   * its reasons in docs/console.md): the page to come back to after the proof
   * (":name" parameters filled from the request).
   */
  stepUp?: string;
}


export const CONSOLE_ROUTES: readonly ConsoleRoute[] = [
  { method: 'get', path: '/', access: 'public', page: 'home' },
  { method: 'get', path: '/assets/:name', access: 'public', page: 'asset' },
  { method: 'get', path: '/sign-in', access: 'public', page: 'sign-in' },
  { method: 'post', path: '/sign-in', access: 'public', page: 'sign-in.submit' },
  { method: 'post', path: '/sign-out', access: 'signed-in', page: 'sign-out' },
  { method: 'post', path: '/language', access: 'public', page: 'language' },
  { method: 'get', path: '/setup/:token', access: 'public', page: 'setup' },
  { method: 'post', path: '/setup/:token', access: 'public', page: 'setup.submit' },
  { method: 'get', path: '/welcome/:token', access: 'public', page: 'welcome' },
  { method: 'post', path: '/welcome/:token', access: 'public', page: 'welcome.submit' },
  { method: 'get', path: '/check', access: 'check', page: 'check' },
  { method: 'post', path: '/check', access: 'check', page: 'check.submit' },
  { method: 'get', path: '/me', access: 'signed-in', page: 'me' },
  { method: 'post', path: '/me/certificate', access: 'signed-in', page: 'me.issue', stepUp: '/me' },
  { method: 'get', path: '/me/certificate/download/:id', access: 'signed-in', page: 'me.download' },
  { method: 'post', path: '/me/certificate/renew', access: 'signed-in', page: 'me.renew', stepUp: '/me' },
  { method: 'post', path: '/me/certificate/request', access: 'signed-in', page: 'me.request' },
  { method: 'post', path: '/me/keys', access: 'signed-in', page: 'me.keys', stepUp: '/me' },
  { method: 'get', path: '/me/lost', access: 'signed-in', page: 'me.lost' },
  { method: 'post', path: '/me/lost', access: 'signed-in', page: 'me.lost.submit', stepUp: '/me/lost' },
  { method: 'get', path: '/me/guides', access: 'signed-in', page: 'me.guides' },
  { method: 'get', path: '/admin/mail-server', access: ADMINISTRATORS, page: 'admin.mail-server' },
  { method: 'post', path: '/admin/mail-server', access: ADMINISTRATORS, page: 'admin.mail-server.save' },
  { method: 'get', path: '/lookup', access: 'signed-in', page: 'lookup' },
  { method: 'get', path: '/admin', access: STAFF, page: 'admin' },
  { method: 'get', path: '/admin/people', access: PEOPLE_READERS, page: 'admin.people' },
  { method: 'post', path: '/admin/people', access: REGISTRARS, page: 'admin.people.add' },
  { method: 'post', path: '/admin/people/:id/invitation', access: PEOPLE_READERS, page: 'admin.people.invite' },
  { method: 'post', path: '/admin/people/:id/roles', access: ADMINISTRATORS, page: 'admin.people.roles' },
  { method: 'get', path: '/admin/settings', access: ADMINISTRATORS, page: 'admin.settings' },
  { method: 'post', path: '/admin/settings', access: ADMINISTRATORS, page: 'admin.settings.save' },
  { method: 'get', path: '/admin/audit', access: AUDITORS, page: 'admin.audit' },
  { method: 'get', path: '/admin/audit/export', access: AUDITORS, page: 'admin.audit.export' },
  { method: 'get', path: '/admin/certificates', access: REGISTRARS, page: 'admin.certificates' },
  { method: 'post', path: '/admin/certificates/crl', access: REGISTRARS, page: 'admin.certificates.crl' },
  { method: 'get', path: '/admin/certificates/:id', access: REGISTRARS, page: 'admin.certificate' },
  { method: 'post', path: '/admin/certificates/:id/revoke', access: REGISTRARS, page: 'admin.certificate.revoke' },
  ...ADMIN_ROUTES,
  ...AUTH_ROUTES,
  ...CUSTODY_ROUTES,
];
