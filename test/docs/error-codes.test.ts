/**
 * docs/errors.md is the list of stable codes clients branch on, so it must hold every
 * code the source can produce and none it no longer does. The codes are the
 * `ErrorCode` union (src/errors.ts: every KakitomeError's code, checked by the type
 * checker) plus the front ends' own additions to it (`ErrorCode | 'INTERNAL'`);
 * a code is "used" when some module outside the union and the modules that only
 * word codes for people passes it as a string.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;
const read = (path: string): string => readFileSync(join(root, path), 'utf8');

/** Every .ts file under src/, as a path from the root. */
function sourceFiles(dir = join(root, 'src')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sourceFiles(join(dir, d.name)) : d.name.endsWith('.ts') ? [relative(root, join(dir, d.name))] : []);
}

/** The string members of `export type NAME = | 'a' | 'b' ...;` in src/errors.ts. */
function unionMembers(name: string): string[] {
  const withoutComments = read('src/errors.ts').replace(/\/\*[\s\S]*?\*\//g, '');
  const body = new RegExp(`export type ${name} =([^;]*);`).exec(withoutComments)?.[1];
  assert.ok(body, `src/errors.ts declares export type ${name}`);
  return [...body.matchAll(/'(\w+)'/g)].map((m) => m[1]!);
}

/** Codes front ends add beside the union: `ErrorCode | 'INTERNAL'`. */
function addedCodes(files: string[]): Map<string, string[]> {
  const added = new Map<string, string[]>();
  for (const f of files) {
    for (const m of read(f).matchAll(/ErrorCode\s*\|\s*'([A-Z_]+)'/g)) added.set(m[1]!, [...(added.get(m[1]!) ?? []), f]);
  }
  return added;
}

/** The codes of docs/errors.md's table, with their two columns. */
function documentedCodes(): Map<string, { meaning: string; remedy: string }> {
  const rows = new Map<string, { meaning: string; remedy: string }>();
  for (const line of read('docs/errors.md').split('\n')) {
    const m = /^\| `([A-Z_]+)` \|(.*)\|(.*)\|$/.exec(line);
    if (!m) continue;
    assert.ok(!rows.has(m[1]!), `docs/errors.md lists ${m[1]} once`);
    rows.set(m[1]!, { meaning: m[2]!.trim(), remedy: m[3]!.trim() });
  }
  return rows;
}

// Modules that only word a code for people (a hint, an explanation, a label): a code
// they name is not thereby produced anywhere.
const WORDING = new Set(['src/errors.ts', 'src/cli/describe-error.ts', 'src/server/console/explain-verdict.ts', 'src/gateway/smime-result.ts']);

const files = sourceFiles();
const union = unionMembers('ErrorCode');
const added = addedCodes(files);
const documented = documentedCodes();

test('the ErrorCode union is read (the test reads what it checks)', () => {
  assert.ok(union.length >= 20, `${union.length} codes`);
  assert.ok(union.includes('MALFORMED') && union.includes('DECRYPT_FAILED'));
  assert.ok(added.has('INTERNAL'));
  assert.ok(documented.size >= union.length);
});

test('every code the source produces is in docs/errors.md, with a meaning and what to do', () => {
  const missing = [...union, ...added.keys()].filter((c) => !documented.has(c));
  assert.deepEqual(missing, [], `codes missing from docs/errors.md's table: ${missing.join(', ')}`);
  for (const [code, row] of documented) {
    assert.ok(row.meaning.length > 20, `${code}: a meaning in docs/errors.md`);
    assert.ok(row.remedy.length > 10, `${code}: what to do in docs/errors.md`);
  }
});

test('every code docs/errors.md lists exists and is used in src/', () => {
  const known = new Set([...union, ...added.keys()]);
  const dead = [...documented.keys()].filter((c) => !known.has(c));
  assert.deepEqual(dead, [], `docs/errors.md lists codes the source does not have: ${dead.join(', ')}`);
  const producing = files.filter((f) => !WORDING.has(f)).map(read).join('\n');
  const unused = union.filter((c) => !producing.includes(`'${c}'`));
  assert.deepEqual(unused, [], `codes in the ErrorCode union that no module produces (drop them from src/errors.ts and docs/errors.md): ${unused.join(', ')}`);
});

test('every remedy (KakitomeError.remedy) is named in docs/errors.md', () => {
  const remedies = unionMembers('Remedy');
  assert.ok(remedies.length >= 10, `${remedies.length} remedies`);
  const doc = read('docs/errors.md');
  const missing = remedies.filter((r) => !doc.includes(`\`${r}\``));
  assert.deepEqual(missing, [], `remedies missing from docs/errors.md: ${missing.join(', ')}`);
});
