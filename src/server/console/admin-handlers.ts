/**
 * The handlers of the administration routes (admin-routes.ts), by page name;
 * create-console.ts mounts them with the console's own.
 */
import type { ConsoleHandler } from './console-context.ts';
import { acceptKey, declineRoot, externalDirectory, rejectKey, reopenRoot, trustRoot } from './pages/directory.ts';
import { bulkIssuePage, bulkIssueSubmit } from './pages/bulk-issue.ts';
import { peopleImportPage, peopleImportSubmit } from './pages/people-import.ts';
import { policyEdit, policyExplain, policyView } from './pages/policy.ts';
import { addIdentity, addTenant, changeSettings, createKey, limitKey, retireIdentity, revokeKey, tenantsView } from './pages/tenants.ts';
import { removePersonPasskeys } from './pages/person-passkeys.ts';
import { forgetPersonOidc } from './pages/person-oidc.ts';
import { issueForPerson, personDetail, personLeaves, renewCertificate } from './pages/person.ts';

export const ADMIN_HANDLERS: Record<string, ConsoleHandler> = {
  'admin.person': personDetail, 'admin.person.leave': personLeaves, 'admin.person.issue': issueForPerson, 'admin.certificate.renew': renewCertificate,
  'admin.person.passkeys.remove': removePersonPasskeys,
  'admin.person.oidc.forget': forgetPersonOidc,
  'admin.bulk-issue': bulkIssuePage, 'admin.bulk-issue.submit': bulkIssueSubmit,
  'admin.people.import': peopleImportPage, 'admin.people.import.submit': peopleImportSubmit,
  'admin.policy': policyView, 'admin.policy.save': policyEdit, 'admin.policy.explain': policyExplain,
  'admin.tenants': tenantsView, 'admin.tenants.add': addTenant, 'admin.tenants.settings': changeSettings, 'admin.tenants.identity': addIdentity, 'admin.tenants.identity.retire': retireIdentity,
  'admin.tenants.key': createKey, 'admin.tenants.key.revoke': revokeKey, 'admin.tenants.key.limit': limitKey,
  'admin.directory': externalDirectory, 'admin.directory.accept': acceptKey, 'admin.directory.reject': rejectKey,
  'admin.directory.roots.trust': trustRoot, 'admin.directory.roots.decline': declineRoot, 'admin.directory.roots.reopen': reopenRoot,
};
