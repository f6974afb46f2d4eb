/**
 * The administration routes of people, certificates, the external directory,
 * gateway policy and the signing service (pages/people-admin.ts...), as data like
 * console-routes.ts (which includes them): method, path and the roles that may
 * use each. Enforced on the server before any handler (create-console.ts); the
 * rules inside a page (who may act on whom) are enforced by the handlers.
 */
import { ADMINISTRATORS, EXPLAINERS, PEOPLE_READERS, POLICY_READERS, REGISTRARS } from './access.ts';
import type { ConsoleRoute } from './console-routes.ts';


export const ADMIN_ROUTES: readonly ConsoleRoute[] = [
  { method: 'get', path: '/admin/people/:id', access: PEOPLE_READERS, page: 'admin.person' },
  { method: 'post', path: '/admin/people/:id/leave', access: REGISTRARS, page: 'admin.person.leave' },
  { method: 'post', path: '/admin/people/:id/passkeys/remove', access: ADMINISTRATORS, page: 'admin.person.passkeys.remove', stepUp: '/admin/people/:id' },
  { method: 'post', path: '/admin/people/:id/oidc/forget', access: ADMINISTRATORS, page: 'admin.person.oidc.forget', stepUp: '/admin/people/:id' },
  { method: 'post', path: '/admin/people/:id/certificate', access: REGISTRARS, page: 'admin.person.issue' },
  { method: 'post', path: '/admin/certificates/:id/renew', access: REGISTRARS, page: 'admin.certificate.renew' },
  { method: 'get', path: '/admin/bulk-issue', access: REGISTRARS, page: 'admin.bulk-issue' },
  { method: 'post', path: '/admin/bulk-issue', access: REGISTRARS, page: 'admin.bulk-issue.submit' },
  { method: 'get', path: '/admin/people-import', access: REGISTRARS, page: 'admin.people.import' },
  { method: 'post', path: '/admin/people-import', access: REGISTRARS, page: 'admin.people.import.submit' },
  { method: 'get', path: '/admin/directory', access: REGISTRARS, page: 'admin.directory' },
  { method: 'post', path: '/admin/directory/accept', access: ADMINISTRATORS, page: 'admin.directory.accept' },
  { method: 'post', path: '/admin/directory/reject', access: ADMINISTRATORS, page: 'admin.directory.reject' },
  { method: 'post', path: '/admin/directory/roots/trust', access: ADMINISTRATORS, page: 'admin.directory.roots.trust', stepUp: '/admin/directory' },
  { method: 'post', path: '/admin/directory/roots/decline', access: ADMINISTRATORS, page: 'admin.directory.roots.decline' },
  { method: 'post', path: '/admin/directory/roots/reopen', access: ADMINISTRATORS, page: 'admin.directory.roots.reopen' },
  { method: 'get', path: '/admin/policy', access: POLICY_READERS, page: 'admin.policy' },
  { method: 'post', path: '/admin/policy', access: ADMINISTRATORS, page: 'admin.policy.save', stepUp: '/admin/policy' },
  { method: 'get', path: '/admin/policy/explain', access: EXPLAINERS, page: 'admin.policy.explain' },
  { method: 'get', path: '/admin/tenants', access: ADMINISTRATORS, page: 'admin.tenants' },
  { method: 'post', path: '/admin/tenants', access: ADMINISTRATORS, page: 'admin.tenants.add' },
  { method: 'post', path: '/admin/tenants/settings', access: ADMINISTRATORS, page: 'admin.tenants.settings' },
  { method: 'post', path: '/admin/tenants/identity', access: ADMINISTRATORS, page: 'admin.tenants.identity' },
  { method: 'post', path: '/admin/tenants/identity/retire', access: ADMINISTRATORS, page: 'admin.tenants.identity.retire' },
  { method: 'post', path: '/admin/tenants/keys', access: ADMINISTRATORS, page: 'admin.tenants.key' },
  { method: 'post', path: '/admin/tenants/keys/:id/revoke', access: ADMINISTRATORS, page: 'admin.tenants.key.revoke' },
  { method: 'post', path: '/admin/tenants/keys/:id/limit', access: ADMINISTRATORS, page: 'admin.tenants.key.limit' },
];
