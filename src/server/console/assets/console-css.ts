/**
 * The console's style sheet, served as /assets/console.css (a TypeScript module so
 * it travels with the code into dist/ without a build step). Mobile first: one
 * column, 16 px text and 44 px touch targets; wider screens get a wider column.
 * Colours keep WCAG AA contrast (axe-core checks every page in the tests). No
 * inline styles anywhere: the Content-Security-Policy allows only this file.
 */
export const CONSOLE_CSS = `
:root {
  --ink: #1b1f24; --muted: #4a5563; --line: #d0d7de; --paper: #ffffff; --wash: #f5f7fa;
  --accent: #0b57d0; --accent-ink: #ffffff;
  --good: #146c2e; --good-wash: #e6f4ea; --warn: #7a4b00; --warn-wash: #fff4e0; --bad: #a3151e; --bad-wash: #fdecea;
  --radius: 10px;
  font-family: system-ui, -apple-system, "Segoe UI", "Hiragino Sans", "Noto Sans CJK JP", "Noto Sans JP", "Yu Gothic UI", Meiryo, sans-serif;
  font-size: 16px; line-height: 1.6; color: var(--ink); background: var(--wash);
}
* { box-sizing: border-box; }
body { margin: 0; }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible, summary:focus-visible { outline: 3px solid #f5b400; outline-offset: 2px; }
.skip, .visually-hidden { position: absolute; left: -9999px; width: 1px; height: 1px; overflow: hidden; }
.skip:focus { left: 8px; top: 8px; width: auto; height: auto; background: var(--paper); padding: 8px 12px; z-index: 10; }
td fieldset { padding: 4px 8px; }
header.bar { background: var(--paper); border-bottom: 1px solid var(--line); }
header.bar .inner { max-width: 60rem; margin: 0 auto; padding: 8px 16px; display: flex; flex-wrap: wrap; align-items: center; gap: 8px 16px; }
.brand { font-weight: 700; font-size: 1.15rem; color: var(--ink); text-decoration: none; margin-right: auto; }
.brand span { color: var(--muted); font-weight: 400; }
nav ul { list-style: none; display: flex; flex-wrap: wrap; gap: 4px 12px; margin: 0; padding: 0; }
nav a { display: inline-block; padding: 10px 4px; text-decoration: none; }
nav a[aria-current="page"] { font-weight: 700; text-decoration: underline; }
.tools { display: flex; gap: 8px; align-items: center; }
.tools form { margin: 0; display: flex; gap: 6px; }
main { max-width: 60rem; margin: 0 auto; padding: 16px; }
h1 { font-size: 1.6rem; line-height: 1.3; margin: 8px 0 16px; }
h2 { font-size: 1.25rem; margin: 24px 0 8px; }
.card { background: var(--paper); border: 1px solid var(--line); border-radius: var(--radius); padding: 16px; margin: 0 0 16px; }
.lead { font-size: 1.1rem; color: var(--muted); }
.stack > * + * { margin-top: 12px; }
label { display: block; font-weight: 600; margin-bottom: 4px; }
.hint { color: var(--muted); font-size: 0.95rem; font-weight: 400; margin: 2px 0 0; }
input[type="text"], input[type="email"], input[type="password"], input[type="url"], input[type="search"], select, textarea {
  width: 100%; min-height: 44px; padding: 8px 10px; font: inherit; color: inherit; background: var(--paper);
  border: 1px solid #8c959f; border-radius: 8px;
}
textarea { min-height: 8rem; font-family: ui-monospace, "Noto Sans Mono CJK JP", monospace; font-size: 0.9rem; }
fieldset { border: 1px solid var(--line); border-radius: var(--radius); padding: 12px 16px; margin: 0; }
legend { font-weight: 700; padding: 0 4px; }
.choice { display: flex; gap: 10px; align-items: flex-start; font-weight: 400; padding: 6px 0; }
.choice input { width: 22px; height: 22px; margin-top: 2px; flex: none; }
button, .button {
  display: inline-flex; align-items: center; justify-content: center; min-height: 44px; padding: 8px 18px;
  font: inherit; font-weight: 600; border-radius: 8px; border: 1px solid var(--accent); cursor: pointer;
  background: var(--accent); color: var(--accent-ink); text-decoration: none;
}
button.secondary, .button.secondary { background: var(--paper); color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); color: var(--accent-ink); }
form.search { display: grid; gap: 12px; }
@media (min-width: 40rem) { form.search { grid-template-columns: 2fr 1fr auto; align-items: end; } }
td.wrap, dd.secret { overflow-wrap: anywhere; }
form.filters { display: grid; gap: 12px; }
@media (min-width: 40rem) { form.filters { grid-template-columns: repeat(4, 1fr) auto; align-items: end; } }
input[type="date"] { min-height: 44px; padding: 8px 10px; font: inherit; border: 1px solid #8c959f; border-radius: 8px; width: 100%; }
button.link { background: none; border: none; color: var(--accent); padding: 10px 4px; min-height: 0; font-weight: 400; text-decoration: underline; }
.tools button.lang { min-height: 36px; padding: 4px 10px; background: var(--paper); color: var(--accent); font-weight: 400; }
.tools button.lang[aria-pressed="true"] { background: var(--accent); color: var(--accent-ink); }
.actions { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 16px; }
.notice { border-radius: var(--radius); padding: 12px 16px; margin: 0 0 16px; border: 1px solid; }
.notice.good { background: var(--good-wash); border-color: var(--good); color: var(--good); }
.notice.warn { background: var(--warn-wash); border-color: var(--warn); color: var(--warn); }
.notice.bad { background: var(--bad-wash); border-color: var(--bad); color: var(--bad); }
.notice.info { background: var(--paper); border-color: var(--line); color: var(--ink); }
.notice p { margin: 0; }
.notice p + p { margin-top: 6px; }
.verdict-head { font-size: 1.3rem; font-weight: 700; margin: 0 0 4px; }
dl.facts { display: grid; grid-template-columns: 1fr; gap: 4px 16px; margin: 0; }
dl.facts dt { font-weight: 700; margin-top: 8px; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
@media (min-width: 40rem) {
  dl.facts { grid-template-columns: 14rem 1fr; }
  dl.facts dt { margin-top: 0; }
}
.status { display: inline-block; font-weight: 700; border-radius: 999px; padding: 2px 12px; border: 1px solid; }
.status.good { color: var(--good); background: var(--good-wash); }
.status.warn { color: var(--warn); background: var(--warn-wash); }
.status.bad { color: var(--bad); background: var(--bad-wash); }
.dropzone { display: block; border: 2px dashed #8c959f; border-radius: var(--radius); padding: 24px 16px; text-align: center; background: var(--paper); font-weight: 400; }
.dropzone.over { border-color: var(--accent); background: #eef4ff; }
.dropzone input[type="file"] { display: block; margin: 12px auto 0; max-width: 100%; }
pre.mail-text { white-space: pre-wrap; overflow-wrap: anywhere; max-height: 60vh; overflow: auto; background: var(--wash); border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; margin: 0; font-family: ui-monospace, "Noto Sans Mono CJK JP", monospace; }
.secret { font-family: ui-monospace, "Noto Sans Mono CJK JP", monospace; font-size: 1.3rem; letter-spacing: 0.05em; background: var(--wash); border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; overflow-wrap: anywhere; user-select: all; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; background: var(--paper); }
th, td { text-align: left; padding: 8px; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
th { font-weight: 700; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr)); gap: 12px; }
.figure { background: var(--paper); border: 1px solid var(--line); border-radius: var(--radius); padding: 12px; }
.figure strong { display: block; font-size: 1.8rem; }
footer { max-width: 60rem; margin: 0 auto; padding: 16px; color: var(--muted); font-size: 0.9rem; }
.htmx-indicator { opacity: 0; visibility: hidden; }
.htmx-request .htmx-indicator, .htmx-request.htmx-indicator { opacity: 1; visibility: visible; transition: opacity 200ms ease-in; }
@media (prefers-reduced-motion: reduce) { * { transition: none !important; } }
`;
