/**
 * The documentation's cross-references hold: every relative link between README.md,
 * ARCHITECTURE.md and docs/*.md reaches a file that exists and, with a #fragment, a
 * heading of it (GitHub's anchors); every source file ARCHITECTURE.md names by a path
 * or a file name exists, so a move or a rename cannot leave the map pointing at
 * nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, normalize } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;
const docs = ['README.md', 'ARCHITECTURE.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const withoutCode = (text: string): string => text.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');

/** GitHub's anchor for a heading: lower case, punctuation dropped (letters of any script kept), spaces to hyphens. */
function anchorOf(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}_\- ]/gu, '').replace(/ /g, '-');
}

function anchorsOf(file: string): Set<string> {
  const text = readFileSync(join(root, file), 'utf8').replace(/```[\s\S]*?```/g, '');
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const m of text.matchAll(/^#{1,6} (.*)$/gm)) {
    const a = anchorOf(m[1]!);
    const n = seen.get(a) ?? 0;
    seen.set(a, n + 1);
    anchors.add(n ? `${a}-${n}` : a);
  }
  return anchors;
}

/** Every file under a folder of the repository, as a path from the root. */
function filesUnder(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? filesUnder(join(dir, d.name)) : [join(dir, d.name)]);
}

test('the documents are read (the test reads what it checks)', () => {
  assert.ok(docs.length >= 10, docs.join(', '));
  assert.ok(anchorsOf('docs/cli.md').has('exit-status'));
  assert.equal(anchorOf('A certificate for a key made on the user\'s device: `kakitome ca issue --csr`'), 'a-certificate-for-a-key-made-on-the-users-device-kakitome-ca-issue---csr');
});

test('every relative link between the documents reaches a file and, with #fragment, a heading of it', () => {
  const broken: string[] = [];
  const anchors = new Map<string, Set<string>>();
  for (const doc of docs) {
    for (const m of withoutCode(readFileSync(join(root, doc), 'utf8')).matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
      const [path, fragment] = target.split('#') as [string, string | undefined];
      const file = path ? normalize(join(dirname(doc), path)) : doc;
      if (!existsSync(join(root, file))) { broken.push(`${doc}: ${target} (no such file)`); continue; }
      if (!fragment || !file.endsWith('.md')) continue;
      if (!anchors.has(file)) anchors.set(file, anchorsOf(file));
      if (!anchors.get(file)!.has(fragment)) broken.push(`${doc}: ${target} (no such heading)`);
    }
  }
  assert.deepEqual(broken, []);
});

test('every source file ARCHITECTURE.md names exists', () => {
  const files = ['src', 'test', 'bench', 'bin'].flatMap((d) => filesUnder(d));
  const names = new Set(files.map((f) => basename(f)));
  const missing: string[] = [];
  for (const m of readFileSync(join(root, 'ARCHITECTURE.md'), 'utf8').matchAll(/`([\w./-]+\.ts)`/g)) {
    const named = m[1]!;
    const found = named.includes('/')
      ? files.some((f) => f === named || f.endsWith(`/${named}`))
      : names.has(named);
    if (!found) missing.push(named);
  }
  assert.deepEqual(missing, [], `ARCHITECTURE.md names files that do not exist: ${missing.join(', ')}`);
});
