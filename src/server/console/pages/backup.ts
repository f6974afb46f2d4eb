/**
 * Backup (/admin/backup, administrators): an encrypted archive of the whole store
 * (store/encrypted-backup.ts: every table but sessions, one-time links and
 * transient batches; keys stay sealed under the master key, which is not in it),
 * encrypted under a passphrase the administrator types or, left empty, one made
 * here and shown once. The archive is held for that administrator's one download
 * (handovers.ts, 10 minutes), audited as `store.backup`, and restored into an
 * empty store with `kakitome restore FILE --passphrase SPEC`.
 */
import { isKakitomeError } from '../../../errors.ts';
import { createEncryptedBackup, MIN_BACKUP_PASSPHRASE } from '../../../store/encrypted-backup.ts';
import { actingFor, FORM_MAX_BYTES, type ConsoleContext, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { makeHandoverPassword } from '../hand-over-identity.ts';
import { takeRate } from '../rate-limit.ts';
import { readForm, textField } from '../read-form.ts';
import { h, notice, page, type Html } from '../render.ts';

/** Backups a minute per administrator (each reads the whole store). */
export const BACKUPS_PER_MINUTE = 3;

function backupPage(v: ConsoleView, message?: Html, status = 200): Response {
  const t = v.t.backup;
  const body = h`${message ?? ''}<p class="lead">${t.lead}</p>
<form class="card stack" method="post" action="/admin/backup">
<div><label for="backup-passphrase">${t.passphrase}</label><input id="backup-passphrase" name="passphrase" type="password" autocomplete="new-password" minlength="${MIN_BACKUP_PASSPHRASE}" maxlength="1024" aria-describedby="backup-passphrase-hint"><p class="hint" id="backup-passphrase-hint">${t.passphraseHint(MIN_BACKUP_PASSPHRASE)}</p></div>
<div><label for="backup-passphrase-again">${t.passphraseAgain}</label><input id="backup-passphrase-again" name="passphrase-again" type="password" autocomplete="new-password" maxlength="1024"></div>
<div class="actions"><button type="submit">${t.submit}</button></div></form>
<div class="card stack"><h2>${t.restoreTitle}</h2><p>${t.restoreLead}</p><pre>kakitome restore kakitome-backup.kbk --home /new/kakitome-home --passphrase prompt</pre></div>`;
  return page(v, { title: t.title, body, status });
}

export const backupView: ConsoleHandler = async (_c, _cx, v) => backupPage(v);

export const makeBackup: ConsoleHandler = async (c, cx: ConsoleContext, v) => {
  const t = v.t.backup;
  const form = await readForm(c, FORM_MAX_BYTES);
  const typed = textField(form, 'passphrase', 1024, false);
  if (typed !== textField(form, 'passphrase-again', 1024, false)) return backupPage(v, notice('bad', t.differ), 400);
  const passphrase = typed || makeHandoverPassword(6);
  await takeRate(cx, 'backup', v.person!.id, BACKUPS_PER_MINUTE);
  const { store } = actingFor(cx, v);
  let made;
  try {
    made = await createEncryptedBackup(store.engine, passphrase);
  } catch (e) {
    if (isKakitomeError(e, 'INVALID_ARGUMENT')) return backupPage(v, notice('bad', t.tooShort(MIN_BACKUP_PASSPHRASE)), 400);
    throw e;
  }
  const day = store.now().toISOString().slice(0, 10);
  const id = await cx.handovers.hold(v.person!.id, `kakitome-backup-${day}.kbk`, 'application/octet-stream', made.archive);
  await store.audit('store.backup', 'console', `encrypted archive: ${made.summary.tables} tables, ${made.summary.rows} rows, ${made.summary.bytes} bytes; passphrase ${typed ? 'given' : 'made and shown once'}`);
  const body = h`${notice('good', t.ready(made.summary.rows))}
<div class="card stack">${typed ? h`<p>${t.yourPassphrase}</p>` : h`<p><strong>${t.shownOnce}</strong></p><p class="secret" data-backup-passphrase>${passphrase}</p>`}
<div class="actions"><a class="button" href="/me/certificate/download/${id}" download data-backup-download>${t.download}</a></div>
<p class="hint">${t.keepApart}</p></div>
<p><a href="/admin/backup">${t.title}</a></p>`;
  return page(v, { title: t.title, body });
};
