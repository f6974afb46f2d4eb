/**
 * The passkey script, served as /assets/passkey.js and loaded only by the pages
 * with a passkey form (pages/passkeys.ts; no inline script: the
 * Content-Security-Policy allows only files from this server). On submit of a
 * form marked data-passkey="register" or "sign-in" it posts the form to the
 * data-options address, hands the options to navigator.credentials, puts the
 * authenticator's answer (as JSON, binary fields in base64url) into the form's
 * "credential" field and submits the form for real: the server's answer is an
 * ordinary page. Messages come from the form's data-msg-* attributes (the page's
 * language). Written for browsers without PublicKeyCredential.toJSON too.
 */
export const PASSKEY_JS = `
(function () {
  'use strict';
  function toBytes(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var b = atob(s), a = new Uint8Array(b.length);
    for (var i = 0; i < b.length; i++) a[i] = b.charCodeAt(i);
    return a.buffer;
  }
  function toText(buf) {
    if (!buf) return undefined;
    var a = new Uint8Array(buf), s = '';
    for (var i = 0; i < a.length; i++) s += String.fromCharCode(a[i]);
    return btoa(s).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  }
  function say(form, key) {
    var out = form.querySelector('[data-passkey-status]');
    if (out) out.textContent = form.getAttribute('data-msg-' + key) || '';
  }
  function answer(cred, mode) {
    var r = cred.response, response = { clientDataJSON: toText(r.clientDataJSON) };
    if (mode === 'register') {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      if (r.userHandle) response.userHandle = toText(r.userHandle);
    }
    return { id: cred.id, rawId: toText(cred.rawId), type: cred.type, response: response,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      authenticatorAttachment: cred.authenticatorAttachment || undefined };
  }
  function run(form) {
    var mode = form.getAttribute('data-passkey');
    var body = new URLSearchParams(new FormData(form));
    body.delete('credential');
    say(form, 'working');
    return fetch(form.getAttribute('data-options'), { method: 'POST', body: body, credentials: 'same-origin' }).then(function (res) {
      if (!res.ok) {
        say(form, res.status === 401 ? 'password' : res.status === 429 ? 'rate' : res.status === 400 && mode === 'sign-in' ? 'expired' : 'failed');
        return;
      }
      return res.json().then(function (o) {
        o.challenge = toBytes(o.challenge);
        (o.allowCredentials || []).concat(o.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
        if (mode === 'register') o.user.id = toBytes(o.user.id);
        var p = mode === 'register' ? navigator.credentials.create({ publicKey: o }) : navigator.credentials.get({ publicKey: o });
        return p.then(function (cred) {
          form.querySelector('input[name="credential"]').value = JSON.stringify(answer(cred, mode));
          var pw = form.querySelector('input[type="password"]');
          if (pw) { pw.required = false; pw.value = ''; }
          form.submit();
        });
      });
    }).catch(function () { say(form, 'failed'); });
  }
  function wire(form) {
    if (!window.PublicKeyCredential || !navigator.credentials) { say(form, 'unsupported'); return; }
    form.addEventListener('submit', function (e) {
      if (form.querySelector('input[name="credential"]').value) return;
      e.preventDefault();
      run(form);
    });
  }
  function init() { document.querySelectorAll('form[data-passkey]').forEach(wire); }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
})();
`;
