/**
 * Varied RFC 5322 messages for tests that compare a fast path with the general one
 * (parse-header-section, parse-content-type, prepare-content): 7-bit and 8-bit,
 * CRLF and LF-only, encoded words, folded and UTF-8 header fields, ISO-2022-JP,
 * nested multiparts, message/rfc822, no Content-Type, binary and long-line parts.
 */
import { buildEntity, buildMultipartBody } from '../../src/mime/build-entity.ts';

const crlf = (lines: string[]): Buffer => Buffer.from(lines.join('\r\n'), 'utf8');

/** ISO-2022-JP for "日本語" (ESC $ B ... ESC ( B), as Japanese mail still sends it. */
const iso2022jp = Buffer.from([0x1b, 0x24, 0x42, 0x46, 0x7c, 0x4b, 0x5c, 0x38, 0x6c, 0x1b, 0x28, 0x42]);

export function messageCorpus(): Array<{ name: string; bytes: Buffer }> {
  const out: Array<{ name: string; bytes: Buffer }> = [];
  const head = ['From: Alice <alice@example.com>', 'To: bob@example.com', 'Subject: Hello', 'Date: Mon, 23 Nov 2026 10:00:00 +0900', 'Message-ID: <m1@example.com>'];
  out.push({ name: 'plain 7bit', bytes: crlf([...head, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: 7bit', '', 'Hello there.', '']) });
  out.push({ name: 'LF only 8bit UTF-8', bytes: Buffer.from([...head, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', 'お世話になっております。', ''].join('\n')) });
  out.push({ name: 'encoded words and folded fields', bytes: crlf([
    'From: =?UTF-8?B?44Ki44Oq44K5?= <alice@example.com>',
    'To: "Bob, the builder" <bob@example.com>,',
    '\tcarol@example.com',
    'Subject: =?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?= and',
    '  =?UTF-8?Q?caf=C3=A9?=',
    'Keywords: a, b',
    'Comments: (x)',
    'MIME-Version: 1.0',
    'Content-Type: text/plain;',
    ' charset="utf-8";',
    '\tformat=flowed',
    '',
    'Body',
    '',
  ]) });
  out.push({ name: 'UTF-8 header fields (RFC 6532)', bytes: crlf(['From: アリス <alice@example.com>', 'Subject: 会議の議事録', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', 'テキスト', '']) });
  out.push({ name: 'Latin-1 header bytes', bytes: Buffer.concat([Buffer.from('From: a@example.com\r\nSubject: caf'), Buffer.from([0xe9]), Buffer.from('\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf'), Buffer.from([0xe9, 0x0d, 0x0a])]) });
  out.push({ name: 'ISO-2022-JP body', bytes: Buffer.concat([crlf(['From: a@example.com', 'Subject: =?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=', 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=ISO-2022-JP', 'Content-Transfer-Encoding: 7bit', '', '']), iso2022jp, Buffer.from('\r\n')]) });
  out.push({ name: 'no Content-Type, 8-bit body', bytes: crlf(['From: a@example.com', 'Subject: x', '', 'über', '']) });
  out.push({ name: 'no Content-Type, ASCII body, no MIME-Version', bytes: crlf(['From: a@example.com', 'Subject: x', '', 'plain', '']) });
  out.push({ name: 'no body at all', bytes: crlf(['From: a@example.com', 'Subject: empty']) });
  out.push({ name: 'long line', bytes: crlf([...head, 'Content-Type: text/plain', '', 'a'.repeat(1200), '']) });
  out.push({ name: 'quoted-printable 8-bit and base64 with a comment', bytes: crlf([...head, 'Content-Type: text/html; charset="utf-8"; name=x.html', 'Content-Transfer-Encoding: base64 (encoded)', '', Buffer.from('<p>hé</p>').toString('base64'), '']) });
  out.push({ name: 'parameters needing libmime (RFC 2231, comments, spaces)', bytes: crlf([...head, "Content-Type: text/plain; charset = utf-8; name*0*=utf-8''%E6%97%A5; name*1=.txt (comment)", 'Content-Transfer-Encoding: 8bit', '', 'é', '']) });
  const binary = Buffer.from(Array.from({ length: 700 }, (_, i) => (i * 31) & 0xff));
  const inner = buildEntity([['From', 'x@example.com'], ['Subject', 'inner'], ['Content-Type', 'text/plain; charset=utf-8'], ['Content-Transfer-Encoding', '8bit']], Buffer.from('内側\r\n'));
  const alternative = buildMultipartBody('alt-1', [
    Buffer.from('Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nテキスト\nLF line\r\n'),
    Buffer.from('Content-Type: text/html; charset=utf-8\r\n\r\n<p>ascii</p>\r\n'),
  ]);
  const mixed = buildMultipartBody('mixed=_0', [
    buildEntity([['Content-Type', 'multipart/alternative; boundary=alt-1']], alternative),
    Buffer.concat([Buffer.from('Content-Type: application/octet-stream; name="a.bin"\r\nContent-Disposition: attachment; filename="a.bin"\r\nContent-Transfer-Encoding: binary\r\n\r\n'), binary]),
    buildEntity([['Content-Type', 'message/rfc822'], ['Content-Transfer-Encoding', '8bit']], inner),
    Buffer.concat([Buffer.from('Content-Type: text/plain; charset=ISO-2022-JP\r\n\r\n'), iso2022jp]),
  ], 'preamble text');
  out.push({ name: 'nested multiparts', bytes: buildEntity([['From', 'alice@example.com'], ['Subject', '添付'], ['MIME-Version', '1.0'], ['Content-Type', 'multipart/mixed; boundary="mixed=_0"']], mixed) });
  out.push({ name: 'nested multiparts, 8bit outer CTE', bytes: buildEntity([['From', 'alice@example.com'], ['MIME-Version', '1.0'], ['Content-Type', 'multipart/mixed; boundary=alt-1'], ['Content-Transfer-Encoding', '8bit']], alternative) });
  out.push({ name: 'LF-only multipart', bytes: Buffer.from(buildEntity([['From', 'a@example.com'], ['Content-Type', 'multipart/mixed; boundary=b']], buildMultipartBody('b', [Buffer.from('Content-Type: text/plain\r\n\r\nx\r\n')])).toString('latin1').replace(/\r\n/g, '\n'), 'latin1') });
  out.push({ name: 'mbox From line, obsolete "Name :" syntax', bytes: crlf(['From alice@example.com Mon Nov 23 10:00:00 2026', 'From: a@example.com', 'Subject : spaced', 'X-Empty:', 'Content-Type: TEXT/Plain; CHARSET=UTF-8; Format="flowed"; delsp=yes;', '', 'x', '']) });
  return out;
}
