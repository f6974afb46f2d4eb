/**
 * RFC 4180 CSV, strictly: fields separated by commas, records by CRLF or LF,
 * a field in double quotes may hold commas, line breaks and doubled quotes; a
 * quote anywhere else, or an unterminated quoted field, is an error (never
 * guessed). Bounded by the caller's row count; a UTF-8 byte order mark is skipped.
 */
import { KakitomeError } from '../errors.ts';

export function parseCsv(text: string, maxRows: number): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let wasQuoted = false;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const endRecord = () => {
    row.push(field);
    if (!(row.length === 1 && row[0] === '' && !wasQuoted)) rows.push(row);
    if (rows.length > maxRows) throw new KakitomeError('LIMIT', `The file has more than ${maxRows} rows.`);
    row = [];
    field = '';
    wasQuoted = false;
  };
  for (; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch !== '"') field += ch;
      else if (text[i + 1] === '"') {
        field += '"';
        i++;
      } else quoted = false;
      continue;
    }
    if (ch === '"') {
      if (field !== '' || wasQuoted) throw new KakitomeError('MALFORMED', `Row ${rows.length + 1}: a quote inside a field that does not start with one.`);
      quoted = true;
      wasQuoted = true;
    } else if (ch === ',') {
      row.push(field);
      field = '';
      wasQuoted = false;
    } else if (ch === '\n' || (ch === '\r' && text[i + 1] === '\n')) {
      if (ch === '\r') i++;
      endRecord();
    } else if (wasQuoted) {
      throw new KakitomeError('MALFORMED', `Row ${rows.length + 1}: text after a closing quote.`);
    } else field += ch;
  }
  if (quoted) throw new KakitomeError('MALFORMED', `Row ${rows.length + 1}: a quoted field is not closed.`);
  if (field !== '' || row.length || wasQuoted) endRecord();
  return rows;
}
