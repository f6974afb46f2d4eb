/**
 * neutralizeEntityStream, the streaming twin of neutralizeEntity (the gateway's
 * large CBC messages opened by policy or released --as decrypted): for entities
 * whose text parts fit in memory it writes the in-memory form byte for byte
 * (boundaries aside), however the input is cut; text parts over the bound become
 * an attachment (plain) or are removed with a note (HTML); nothing fetchable
 * survives; hostile structure is refused as in memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { resolveLimits } from '../../src/limits.ts';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { walkEntities } from '../../src/mime/entity.ts';
import { decodeBody } from '../../src/mime/decode-body.ts';
import { decodeText } from '../../src/mime/decode-text.ts';
import { neutralizeEntity } from '../../src/mime/neutralize-entity.ts';
import { neutralizeEntityStream, removedHtmlNotice } from '../../src/smime/neutralize-entity-stream.ts';

const limits = resolveLimits();

/** `bytes` in pieces of `size` (the last shorter). */
async function* pieces(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield Buffer.from(bytes.subarray(i, i + size));
}

async function streamed(bytes: Buffer, size: number, maxTextBytes = 1024 * 1024): Promise<Buffer> {
  const out: Buffer[] = [];
  await neutralizeEntityStream(pieces(bytes, size), async (b) => void out.push(Buffer.from(b)), { html: { banner: 'WARNING' }, maxTextBytes, limits });
  return Buffer.concat(out);
}

/** Our boundaries are random: named by order of appearance. */
function sameBoundaries(b: Buffer): string {
  const names = new Map<string, string>();
  return b.toString('latin1').replace(/----=_Kakitome_[A-Za-z0-9_-]{20}/g, (m) => {
    if (!names.has(m)) names.set(m, `BOUNDARY${names.size}`);
    return names.get(m)!;
  });
}

const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'utf8');
const b64 = (b: Buffer) => b.toString('base64').replace(/.{76}/g, '$&\n');

const binary = randomBytes(5000);
const ENTITIES: Record<string, Buffer> = {
  'html alone': crlf('Content-Type: text/html; charset=utf-8\n\n<html><body><p>Hello</p><img src="http://e.x/a"><a href="https://e.x/b">b</a></body></html>\n'),
  'plain, quoted-printable, ISO-2022-JP name': crlf('Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nCaf=C3=A9 soft=\n break, trailing blanks   \n=E6=97=A5=E6=9C=AC\n'),
  'nested multiparts, every kind of leaf': crlf([
    'Content-Type: multipart/mixed; boundary="outer"', '', 'preamble', '--outer',
    'Content-Type: multipart/alternative; boundary="alt"', '', '--alt', 'Content-Type: text/plain', '', 'plain text', '--alt',
    'Content-Type: text/html; charset=iso-8859-1', 'Content-Transfer-Encoding: quoted-printable', '', '<p style=3D"background:url(http://e.x/bg)">caf=E9</p><form action=3D"http://e.x/f"><input></form>', '--alt--', '',
    '--outer', 'Content-Type: multipart/related; boundary="rel"', '', '--rel', 'Content-Type: text/html', '', '<img src="cid:logo">', '--rel',
    'Content-Type: image/png; name="logo.png"', 'Content-ID: <logo>', 'Content-Transfer-Encoding: base64', '', b64(binary), '--rel--',
    '--outer', 'Content-Type: message/rfc822', '', 'From: x@example.com', 'Content-Type: text/html', '', '<img src="http://e.x/inner">',
    '--outer', 'Content-Type: application/pdf', 'Content-Disposition: attachment; filename="../../etc/\u202Epasswd.pdf"', 'Content-Transfer-Encoding: base64', '', b64(binary.subarray(0, 999)),
    '--outer', 'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary="sig"', '', '--sig', 'Content-Type: text/plain', '', 'signed text', '--sig',
    'Content-Type: application/pkcs7-signature', 'Content-Transfer-Encoding: base64', '', b64(binary.subarray(0, 300)), '--sig--',
    '--outer--', 'epilogue', '',
  ].join('\n')),
  'base64 without line breaks, and an empty part': crlf(`Content-Type: multipart/mixed; boundary="x"\n\n--x\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n${binary.toString('base64')}\n--x\nContent-Type: text/plain\n\n\n--x--\n`),
  'a long quoted-printable line without a break': crlf(`Content-Type: application/x-thing\nContent-Transfer-Encoding: quoted-printable\n\n${'ab=3D=\r'.repeat(40_000)}cd\n`),
};

test('the same bytes as neutralizeEntity in memory (boundaries aside), whatever the input pieces', async () => {
  for (const [what, entity] of Object.entries(ENTITIES)) {
    const memory = sameBoundaries(neutralizeEntity(parseEntity(entity), { banner: 'WARNING' }).entity);
    // One byte at a time only where that stays quick (the walker is fed 200,000 times otherwise).
    for (const size of [...(entity.length < 50_000 ? [1] : []), 7, 64, 4096, entity.length]) {
      assert.equal(sameBoundaries(await streamed(entity, size)), memory, `${what}, pieces of ${size}`);
    }
  }
});

test('nothing fetchable survives, parts become plain attachments with their bytes, names made harmless', async () => {
  const out = await streamed(ENTITIES['nested multiparts, every kind of leaf']!, 333);
  const text = out.toString('latin1');
  assert.ok(!text.includes('e.x'), 'no URL of the input');
  assert.doesNotMatch(text, /Content-ID|Content-Location|preamble|epilogue/);
  const parts = [...walkEntities(parseEntity(out))].filter((p) => p.contentType.type !== 'multipart');
  const attachments = parts.filter((p) => p.contentType.mediaType === 'application/octet-stream');
  assert.deepEqual(attachments.map((p) => p.contentType.params.name), ['logo.png', 'part.rfc822', 'passwd.pdf', 'part.pkcs7signature']);
  assert.deepEqual(decodeBody(attachments[0]!), binary);
  assert.deepEqual(decodeBody(attachments[2]!), binary.subarray(0, 999));
  for (const p of parts.filter((x) => x.contentType.mediaType === 'text/html')) assert.doesNotMatch(decodeText(p), /<img|<form|style=|src=|href=|action=/i);
});

test('text parts over the bound: plain text becomes an attachment with its bytes, HTML is removed and a note says so', async () => {
  const text = 'A line of plain text that goes on.\n'.repeat(3000);
  const html = `<p>${'x'.repeat(100_000)}</p><img src="http://e.x/big">`;
  const entity = crlf(`Content-Type: multipart/mixed; boundary="m"\n\n--m\nContent-Type: text/plain; charset=utf-8\n\n${text}\n--m\nContent-Type: text/html\nContent-Transfer-Encoding: base64\n\n${b64(Buffer.from(html))}\n--m--\n`);
  const out = await streamed(entity, 8192, 64 * 1024);
  assert.ok(!out.toString('latin1').includes('e.x'));
  const parts = [...walkEntities(parseEntity(out))].filter((p) => p.contentType.type !== 'multipart');
  assert.deepEqual(parts.map((p) => p.contentType.mediaType), ['application/octet-stream', 'text/plain']);
  assert.equal(decodeBody(parts[0]!).toString('utf8'), text.replace(/\n/g, '\r\n'));
  assert.match(decodeText(parts[1]!), /An HTML part of \d+ bytes or more was removed here/);
  assert.ok(removedHtmlNotice(65537).includes('65537'));
});

test('hostile structure is refused as in memory: an unknown transfer encoding, MIME nested past the limit', async () => {
  const unknown = crlf('Content-Type: image/png\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 a\n');
  assert.throws(() => neutralizeEntity(parseEntity(unknown)), (e: Error & { code?: string }) => e.code === 'UNSUPPORTED_ALG');
  await assert.rejects(streamed(unknown, 5), (e: Error & { code?: string }) => e.code === 'UNSUPPORTED_ALG');
  let deep = 'Content-Type: text/plain\n\nbottom\n';
  for (let i = 0; i < limits.maxMimeDepth + 2; i++) deep = `Content-Type: multipart/mixed; boundary="d${i}"\n\n--d${i}\n${deep}--d${i}--\n`;
  await assert.rejects(streamed(crlf(deep), 100), (e: Error & { code?: string }) => e.code === 'LIMIT');
});
