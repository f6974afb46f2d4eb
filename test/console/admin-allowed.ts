/**
 * Who may use each administration route (src/server/console/admin-routes.ts),
 * written out here rather than read from the route table, so a wrong declaration
 * there fails console-http.test.ts's every-route, every-role test.
 */
export const ADMIN_ALLOWED: Record<string, readonly string[]> = {
  '/admin/people/:id': ['admin', 'officer', 'helpdesk'],
  'POST /admin/people/:id/leave': ['admin', 'officer'],
  'POST /admin/people/:id/passkeys/remove': ['admin'],
  'POST /admin/people/:id/certificate': ['admin', 'officer'],
  '/admin/recoveries': ['admin', 'officer'],
  'POST /admin/people/:id/recovery': ['admin', 'officer'],
  'POST /admin/recoveries/:id/approve': ['admin'],
  'POST /admin/recoveries/:id/refuse': ['admin', 'officer'],
  'POST /admin/certificates/:id/renew': ['admin', 'officer'],
  '/admin/bulk-issue': ['admin', 'officer'],
  'POST /admin/bulk-issue': ['admin', 'officer'],
  '/admin/people-import': ['admin', 'officer'],
  'POST /admin/people-import': ['admin', 'officer'],
  '/admin/directory': ['admin', 'officer'],
  'POST /admin/directory/accept': ['admin'],
  'POST /admin/directory/reject': ['admin'],
  '/admin/policy': ['admin', 'auditor', 'helpdesk'],
  'POST /admin/policy': ['admin'],
  '/admin/policy/explain': ['admin', 'helpdesk'],
  '/admin/tenants': ['admin'],
  'POST /admin/tenants': ['admin'],
  'POST /admin/tenants/identity': ['admin'],
  'POST /admin/tenants/identity/retire': ['admin'],
  'POST /admin/tenants/keys': ['admin'],
  'POST /admin/tenants/keys/:id/revoke': ['admin'],
  'POST /admin/tenants/keys/:id/limit': ['admin'],
};
