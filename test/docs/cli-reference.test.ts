/**
 * docs/cli.md is the command line's reference: every command and every option the
 * program registers (src/cli/commands, as `kakitome COMMAND --help` shows them) is in
 * it, every `kakitome ...` command it shows exists, and its exit-status table has
 * the statuses of src/cli/exit-codes.ts. Where an option is explained is for the
 * reader; this keeps a new option or command from going undocumented.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/main.ts';
import { EXIT_FAILED, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE } from '../../src/cli/exit-codes.ts';

const doc = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8');
const program = await buildProgram();

/** Every command below the program, as its path of names ("certs roots trust"). */
function commandPaths(c: Command, path: string[] = []): Array<{ path: string[]; command: Command }> {
  return c.commands.filter((s) => s.name() !== 'help').flatMap((s) => [{ path: [...path, s.name()], command: s }, ...commandPaths(s, [...path, s.name()])]);
}
const commands = commandPaths(program);
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('the program is read whole (the test reads what it checks)', () => {
  assert.ok(commands.length >= 50, `${commands.length} commands`);
  assert.ok(commands.some((c) => c.path.join(' ') === 'certs roots trust'));
});

test('every command is in docs/cli.md: "kakitome A B", or B on a line after A (A import|list|...)', () => {
  const missing = commands.filter(({ path }) => {
    const leaf = escape(path.at(-1)!);
    const parent = path.slice(0, -1).map(escape).join(' ');
    return !new RegExp(`(^|[\\s\`(|])${path.map(escape).join(' ')}([\\s\`)|]|$)`, 'm').test(doc)
      && !(parent && new RegExp(`${parent} [^\\n\`]*\\b${leaf}\\b`).test(doc));
  }).map(({ path }) => path.join(' '));
  assert.deepEqual(missing, [], `commands missing from docs/cli.md: ${missing.join(', ')}`);
});

test('every option of every command is in docs/cli.md', () => {
  const missing = [program, ...commands.map((c) => c.command)].flatMap((c) => c.options
    .filter((o) => o.long && o.long !== '--version' && !new RegExp(`${escape(o.long)}(?![\\w-])`).test(doc))
    .map((o) => `${c.name()} ${o.long}`));
  assert.deepEqual(missing, [], `options missing from docs/cli.md: ${missing.join(', ')}`);
});

test('every kakitome command docs/cli.md shows (code blocks, `kakitome ...`) exists', () => {
  const lines = [...doc.matchAll(/```[^\n]*\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n'));
  lines.push(...[...doc.matchAll(/`(kakitome [^`]+)`/g)].map((m) => m[1]!));
  const unknown: string[] = [];
  for (const line of lines) {
    for (const m of line.matchAll(/(?:^|[\s(|$])kakitome((?: [a-z][a-z0-9-]*)+)/g)) {
      let c: Command = program;
      for (const word of m[1]!.trim().split(' ')) {
        if (!c.commands.length) break;
        const sub = c.commands.find((s) => s.name() === word);
        if (!sub) { unknown.push(`kakitome ${m[1]!.trim()}`); break; }
        c = sub;
      }
    }
  }
  assert.deepEqual(unknown, [], `docs/cli.md shows commands the program does not have: ${unknown.join('; ')}`);
});

test('docs/cli.md\'s exit-status table has every status of exit-codes.ts and no other', () => {
  const section = /## Exit status\n([\s\S]*?)\n## /.exec(doc)?.[1];
  assert.ok(section, 'docs/cli.md has "## Exit status"');
  const rows = [...section.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1]));
  assert.deepEqual(rows, [EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL]);
});
