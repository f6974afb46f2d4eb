import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findBlankLine } from '../../src/mime/find-blank-line.ts';
import { parseHeaderSection } from '../../src/mime/parse-header-section.ts';
import { DEFAULT_LIMITS } from '../../src/limits.ts';

test('findBlankLine ends a header section exactly where parseHeaderSection does, whatever the line breaks', () => {
  const lines = ['A: 1', 'B: 2', ' folded', 'C: x\ry'];
  const breaks = ['\r\n', '\n'];
  let checked = 0;
  // Every header of up to three lines, every line break for each line and for the blank line, then a body.
  for (let n = 0; n <= 3; n++) {
    for (let mask = 0; mask < 2 ** (n + 1); mask++) {
      let text = '';
      for (let i = 0; i < n; i++) text += lines[i]! + breaks[(mask >> i) & 1]!;
      text += breaks[(mask >> n) & 1]! + 'body\r\n\r\nmore\n\nend';
      const buf = Buffer.from(text, 'latin1');
      const section = parseHeaderSection(buf, 0, buf.length, DEFAULT_LIMITS);
      assert.deepEqual(findBlankLine(buf), { headerEnd: section.headerEnd, bodyStart: section.bodyStart }, JSON.stringify(text));
      checked++;
    }
  }
  assert.equal(checked, 30);
});

test('findBlankLine waits for more bytes rather than guess', () => {
  assert.equal(findBlankLine(Buffer.from('A: 1\r\nB: 2')), undefined);
  assert.equal(findBlankLine(Buffer.from('A: 1\r\n\r')), undefined, 'a CR at the end may be followed by its LF');
  assert.deepEqual(findBlankLine(Buffer.from('A: 1\r\n\r\n')), { headerEnd: 6, bodyStart: 8 });
  assert.deepEqual(findBlankLine(Buffer.from('\nbody')), { headerEnd: 0, bodyStart: 1 });
  assert.deepEqual(findBlankLine(Buffer.from('x\r\nA: 1\n\nb'), 3), { headerEnd: 8, bodyStart: 9 });
});
