/**
 * The console's routes for keys leaving the store on someone else's behalf:
 * key recovery with two-person approval (pages/key-recovery.ts), and the
 * store's encrypted backup (pages/backup.ts). Same shape as
 * CONSOLE_ROUTES (access declared per route, walked by the role tests); the
 * rules inside (a second administrator, the named recipient only) are the
 * store's (store/key-recoveries.ts). Every route where a key leaves asks for a
 * fresh step-up proof (`stepUp`, step-up.ts).
 */
import { ADMINISTRATORS, REGISTRARS } from './access.ts';
import type { ConsoleHandler } from './console-context.ts';
import type { ConsoleRoute } from './console-routes.ts';
import { backupView, makeBackup } from './pages/backup.ts';
import { approveRecovery, receiveRecovered, recoveredView, recoveriesView, refuseRecovery, requestRecovery } from './pages/key-recovery.ts';


export const CUSTODY_ROUTES: readonly ConsoleRoute[] = [
  { method: 'get', path: '/admin/recoveries', access: REGISTRARS, page: 'admin.recoveries' },
  { method: 'post', path: '/admin/people/:id/recovery', access: REGISTRARS, page: 'admin.person.recovery' },
  { method: 'post', path: '/admin/recoveries/:id/approve', access: ADMINISTRATORS, page: 'admin.recoveries.approve', stepUp: '/admin/recoveries' },
  { method: 'post', path: '/admin/recoveries/:id/refuse', access: REGISTRARS, page: 'admin.recoveries.refuse' },
  { method: 'get', path: '/admin/backup', access: ADMINISTRATORS, page: 'admin.backup' },
  { method: 'post', path: '/admin/backup', access: ADMINISTRATORS, page: 'admin.backup.make', stepUp: '/admin/backup' },
  { method: 'get', path: '/me/recovered', access: 'signed-in', page: 'me.recovered' },
  { method: 'post', path: '/me/recovered/:id', access: 'signed-in', page: 'me.recovered.receive', stepUp: '/me/recovered' },
];

export const CUSTODY_HANDLERS: Record<string, ConsoleHandler> = {
  'admin.recoveries': recoveriesView, 'admin.person.recovery': requestRecovery, 'admin.recoveries.approve': approveRecovery, 'admin.recoveries.refuse': refuseRecovery,
  'admin.backup': backupView, 'admin.backup.make': makeBackup,
  'me.recovered': recoveredView, 'me.recovered.receive': receiveRecovered,
};
