/**
 * The handlers of the administration routes (admin-routes.ts), by page name;
 * create-console.ts mounts them with the console's own.
 */
import type { ConsoleHandler } from './console-context.ts';
import { acceptKey, externalDirectory, rejectKey } from './pages/directory.ts';
import { issueForPerson, personDetail, personLeaves, renewCertificate } from './pages/person.ts';

export const ADMIN_HANDLERS: Record<string, ConsoleHandler> = {
  'admin.person': personDetail, 'admin.person.leave': personLeaves, 'admin.person.issue': issueForPerson, 'admin.certificate.renew': renewCertificate,
  'admin.directory': externalDirectory, 'admin.directory.accept': acceptKey, 'admin.directory.reject': rejectKey,
};
