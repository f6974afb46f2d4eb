/**
 * The file name a part carries (RFC 2183 Content-Disposition filename, else the
 * older Content-Type name parameter), decoded for display; undefined when it has
 * none. A name to show a person, never a path to write to.
 */
import { decodeHeaderText } from './decode-header-text.ts';
import type { MimeEntity } from './entity.ts';

export function readPartFilename(entity: Pick<MimeEntity, 'headers' | 'contentType'>): string | undefined {
  const cd = entity.headers.find((h) => h.name.toLowerCase() === 'content-disposition');
  const fn = entity.contentType.params.name ?? (cd ? /filename\*?=\s*"?([^";]+)"?/i.exec(cd.value)?.[1] : undefined);
  return fn ? decodeHeaderText(fn) : undefined;
}
