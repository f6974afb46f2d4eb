/**
 * Settings → mail servers (administrators): the IMAP and SMTP servers people's
 * mail programs use, so the iPhone/iPad configuration profile sets up the Mail
 * account with S/MIME on (build-mobileconfig.ts). Checked and stored by
 * store/mail-server-settings.ts (TLS or STARTTLS only); removing them makes
 * profiles without a Mail account again.
 */
import { isKakitomeError } from '../../../errors.ts';
import { checkMailServerSettings, readMailServerSettings, saveMailServerSettings, type MailServer, type MailServerSettings } from '../../../store/mail-server-settings.ts';
import { actingFor, FORM_MAX_BYTES, type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { readForm, textField } from '../read-form.ts';
import { h, notice, page, type Html } from '../render.ts';

const DEFAULTS: MailServerSettings = { imap: { host: '', port: 993, tls: 'implicit' }, smtp: { host: '', port: 587, tls: 'starttls' }, username: 'address' };

function serverFields(v: ConsoleView, kind: 'imap' | 'smtp', s: MailServer): Html {
  const t = v.t.mine.mailServer;
  return h`<fieldset><legend>${kind === 'imap' ? t.imap : t.smtp}</legend>
<div><label for="${kind}-host">${t.host}</label><input id="${kind}-host" name="${kind}-host" value="${s.host}" required maxlength="253" autocomplete="off" spellcheck="false"></div>
<div><label for="${kind}-port">${t.port}</label><input id="${kind}-port" name="${kind}-port" type="number" min="1" max="65535" value="${String(s.port)}" required></div>
<div><label for="${kind}-tls">${t.tls}</label><select id="${kind}-tls" name="${kind}-tls"><option value="implicit"${s.tls === 'implicit' ? h` selected` : ''}>${t.implicit}</option><option value="starttls"${s.tls === 'starttls' ? h` selected` : ''}>${t.starttls}</option></select></div>
</fieldset>`;
}

function form(v: ConsoleView, s: MailServerSettings, saved: boolean): Html {
  const t = v.t.mine.mailServer;
  return h`<p class="lead">${t.lead}</p>
<form class="card stack" method="post" action="/admin/mail-server">
${serverFields(v, 'imap', s.imap)}
${serverFields(v, 'smtp', s.smtp)}
<fieldset><legend>${t.username}</legend>
<label class="choice"><input type="radio" name="username" value="address"${s.username === 'address' ? h` checked` : ''}><span>${t.usernameAddress}</span></label>
<label class="choice"><input type="radio" name="username" value="local-part"${s.username === 'local-part' ? h` checked` : ''}><span>${t.usernameLocalPart}</span></label>
</fieldset>
<div class="actions"><button type="submit" name="action" value="save">${t.save}</button>${saved ? h`<button type="submit" name="action" value="remove" class="secondary" formnovalidate>${t.remove}</button>` : ''}</div>
</form>`;
}

export const mailServerPage: ConsoleHandler = async (_c, cx, v) => {
  const saved = await readMailServerSettings(cx.service.store);
  return page(v, { title: v.t.mine.mailServer.title, body: h`${saved ? '' : notice('info', v.t.mine.mailServer.none)}${form(v, saved ?? DEFAULTS, saved !== undefined)}` });
};

export const saveMailServer: ConsoleHandler = async (c, cx, v) => {
  const t = v.t.mine.mailServer;
  const f = await readForm(c, FORM_MAX_BYTES);
  const { store } = actingFor(cx, v);
  if (textField(f, 'action', 10) === 'remove') {
    await saveMailServerSettings(store, undefined);
    return page(v, { title: t.title, body: h`${notice('good', t.removed)}${form(v, DEFAULTS, false)}` });
  }
  const server = (kind: string) => ({ host: textField(f, `${kind}-host`, 253), port: textField(f, `${kind}-port`, 5), tls: textField(f, `${kind}-tls`, 10) });
  const typed = { imap: server('imap'), smtp: server('smtp'), username: textField(f, 'username', 12) || 'address' };
  let settings: MailServerSettings;
  try {
    settings = checkMailServerSettings(typed);
  } catch (e) {
    if (!isKakitomeError(e)) throw e;
    const shown: MailServerSettings = {
      imap: { host: typed.imap.host, port: Number(typed.imap.port) || 993, tls: typed.imap.tls === 'starttls' ? 'starttls' : 'implicit' },
      smtp: { host: typed.smtp.host, port: Number(typed.smtp.port) || 587, tls: typed.smtp.tls === 'implicit' ? 'implicit' : 'starttls' },
      username: typed.username === 'local-part' ? 'local-part' : 'address',
    };
    return page(v, { title: t.title, status: 400, body: h`${notice('bad', e.message)}${form(v, shown, (await readMailServerSettings(store)) !== undefined)}` });
  }
  await saveMailServerSettings(store, settings);
  return page(v, { title: t.title, body: h`${notice('good', t.saved)}${form(v, settings, true)}` });
};
