/**
 * The check page: drop or paste a mail, read the verdict in plain words. The form
 * posts normally (works without script); with htmx it posts in the background and
 * only the result is replaced. The upload is bounded (413 before reading past the
 * limit) and rate-limited per client; the mail lives only as long as the request.
 */
import { type ConsoleHandler, type ConsoleView } from '../console-context.ts';
import { checkMessage, type CheckOutcome } from '../check-message.ts';
import type { ReadableText } from '../readable-text.ts';
import { explainVerdict } from '../explain-verdict.ts';
import { takeRate } from '../rate-limit.ts';
import { fileField, readForm, textField } from '../read-form.ts';
import { formatBytes, formatDateTime, fragment, h, notice, page, type Html } from '../render.ts';

/** Room for the multipart framing and the other fields around the message. */
const FORM_OVERHEAD = 16 * 1024;

function checkForm(v: ConsoleView, limit: number): Html {
  const t = v.t.check;
  return h`
<p class="lead">${t.lead}</p>
<form class="card stack" method="post" action="/check" enctype="multipart/form-data" hx-post="/check" hx-target="#result" hx-swap="innerHTML" hx-indicator="#checking">
<label class="dropzone" for="message-file">${t.dropHere}
<input id="message-file" name="message-file" type="file" accept=".eml,message/rfc822,text/plain">
<span class="hint" data-file-name aria-live="polite"></span>
</label>
<div><label for="message-text">${t.paste}</label><textarea id="message-text" name="message-text" spellcheck="false" aria-describedby="paste-hint"></textarea><p class="hint" id="paste-hint">${t.pasteHint} ${t.limit(formatBytes(limit))}</p></div>
<div class="actions"><button type="submit">${t.submit}</button><span id="checking" class="htmx-indicator" role="status">${t.checking}</span></div>
</form>`;
}

/** The decrypted text, as characters in a <pre> (escaped by the template: never markup). */
function contentHtml(v: ConsoleView, c: ReadableText, status: string): Html {
  const t = v.t.mine.content;
  return h`<section class="card stack" aria-labelledby="content-title"><h3 id="content-title">${t.title}</h3>
${status === 'trusted' ? '' : h`<p class="hint">${t.notConfirmed}</p>`}
${c.fromHtml ? h`<p class="hint">${t.fromHtml}</p>` : ''}
${c.text ? h`<pre class="mail-text" tabindex="0" data-decrypted-text>${c.text}</pre>` : h`<p>${t.empty}</p>`}
${c.truncated ? h`<p class="hint">${t.truncated}</p>` : ''}
${c.attachments ? h`<p class="hint">${t.attachments(c.attachments)}</p>` : ''}
</section>`;
}

function verdictHtml(v: ConsoleView, outcome: CheckOutcome): Html {
  const t = v.t.verdict;
  if (outcome.kind === 'refused') {
    const text = outcome.reason === 'not-a-mail' ? v.t.check.notAMail
      : outcome.reason === 'unauth-enc' ? t.unauthEnc
      : outcome.reason === 'decrypt-failed' ? t.decryptFailed
      : v.t.check.unreadable(outcome.detail ?? '');
    return notice('bad', text);
  }
  if (outcome.kind === 'encrypted') {
    return h`${notice('info', outcome.signedIn ? t.encryptedNotForYou : t.encrypted)}
<dl class="facts card"><dt>${t.encryption}</dt><dd>${t.encryptionText(outcome.encryption.algorithm, outcome.encryption.recipients)}</dd><dt>${t.whatToDo}</dt><dd>${t.adviceEncrypted}</dd></dl>`;
  }
  const x = explainVerdict(v.t, outcome.view, (d) => formatDateTime(v, d));
  return h`
<div class="notice ${x.tone}" role="${x.tone === 'good' ? 'status' : 'alert'}" data-verdict="${outcome.view.status}">
<p class="verdict-head">${x.headline}</p>
${x.notes.map((n) => h`<p>${n}</p>`)}
${outcome.decryptedFor ? h`<p>${t.decryptedFor(outcome.decryptedFor)}</p>` : ''}
</div>
<dl class="facts card">
${x.facts.map((f) => h`<dt>${f.label}</dt><dd>${f.value}</dd>`)}
${outcome.encryption ? h`<dt>${t.encryption}</dt><dd>${t.encryptionText(outcome.encryption.algorithm, outcome.encryption.recipients)}</dd>` : ''}
<dt>${t.whatToDo}</dt><dd>${x.advice}</dd>
</dl>
${outcome.content ? contentHtml(v, outcome.content, outcome.view.status) : ''}
<details class="card"><summary>${t.technical}</summary>
<dl class="facts">${x.code ? h`<dt>${t.code}</dt><dd>${x.code}</dd>` : ''}<dt>${t.summaryText}</dt><dd lang="en">${x.summary}</dd></dl>
</details>`;
}

function result(v: ConsoleView, content: Html | ''): Html {
  return h`<section id="result" aria-live="polite" aria-label="${v.t.verdict.resultTitle}">${content}</section>`;
}

export const checkPage: ConsoleHandler = async (_c, cx, v) => {
  return page(v, { title: v.t.check.title, body: h`${checkForm(v, cx.checkMaxBytes)}${result(v, '')}` });
};

export const checkSubmit: ConsoleHandler = async (c, cx, v) => {
  await takeRate(cx, 'check', v.person ? `person:${v.person.id}` : v.client, cx.rates.checkPerAddress);
  const form = await readForm(c, cx.checkMaxBytes + FORM_OVERHEAD);
  const message = (await fileField(form, 'message-file')) ?? Buffer.from(textField(form, 'message-text', cx.checkMaxBytes, false).replace(/^\s+/, ''), 'utf8');
  let content: Html;
  let status = 200;
  if (message.length === 0) {
    content = notice('warn', v.t.check.nothing);
    status = 400;
  } else {
    const outcome = await checkMessage(cx, message, v.person);
    cx.service.metrics.countOperation('console-check', outcome.kind === 'verdict' ? outcome.view.status : outcome.kind);
    content = h`<h2>${v.t.verdict.resultTitle}</h2>${verdictHtml(v, outcome)}`;
  }
  message.fill(0);
  // htmx replaces only the result; a plain form post gets the whole page back.
  if (c.req.header('hx-request') === 'true') return fragment(content, status);
  return page(v, { title: v.t.check.title, status, body: h`${checkForm(v, cx.checkMaxBytes)}${result(v, content)}` });
};
