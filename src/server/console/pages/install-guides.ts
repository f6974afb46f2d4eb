/**
 * Short install guides, per mail program, in the reader's language: shown after
 * every download of a key (as closed sections: the reader opens theirs) and on a
 * page of their own (/me/guides). The steps are the programs' own menu names as
 * of 2026 (messages/en.ts and ja.ts, block "mine.guides").
 */
import type { ConsoleHandler, ConsoleView } from '../console-context.ts';
import { h, page, type Html } from '../render.ts';

export const GUIDE_PROGRAMS = ['outlookWindows', 'outlookMac', 'appleMail', 'iosMail', 'thunderbird', 'gmail'] as const;
export type GuideProgram = (typeof GUIDE_PROGRAMS)[number];

function guide(v: ConsoleView, program: GuideProgram): Html {
  const g = v.t.mine.guides.programs[program];
  return h`<details class="card guide" id="guide-${program}" data-guide="${program}"><summary>${g.name}</summary>
<ol>${g.steps.map((s) => h`<li>${s}</li>`)}</ol>
${g.note ? h`<p class="hint">${g.note}</p>` : ''}
</details>`;
}

/** Every guide, closed, under a heading: what a download page shows. */
export function installGuideLinks(v: ConsoleView): Html {
  const t = v.t.mine.guides;
  return h`<section aria-labelledby="guides-title" class="stack"><h2 id="guides-title">${t.title}</h2><p>${t.lead}</p>${GUIDE_PROGRAMS.map((p) => guide(v, p))}</section>`;
}

export const installGuidesPage: ConsoleHandler = async (_c, _cx, v) => {
  const t = v.t.mine.guides;
  return page(v, { title: t.title, body: h`<p class="lead">${t.lead}</p>${GUIDE_PROGRAMS.map((p) => guide(v, p))}<p><a href="/me">${v.t.me.back}</a></p>` });
};
