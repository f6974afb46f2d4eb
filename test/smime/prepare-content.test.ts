import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepareContent, type PrepareContentOptions } from '../../src/smime/prepare-content.ts';
import { splitMessage } from '../../src/smime/split-message.ts';
import { copyFieldsInside, selectProtectedFields, applyHeaderConfidentiality } from '../../src/smime/header-protection.ts';
import { encodeSevenBit, isSevenBitData } from '../../src/mime/encode-seven-bit.ts';
import { buildEntity, formatParameterizedValue, type HeaderInput } from '../../src/mime/build-entity.ts';
import { parseEntity } from '../../src/mime/parse-entity.ts';
import { DEFAULT_LIMITS, type Limits } from '../../src/limits.ts';
import { messageCorpus } from '../helpers/message-corpus.ts';

/**
 * The general composition prepareContent replaces: parse the content entity on its
 * own, re-encode it (encodeSevenBit), parse the result again, then add the protected
 * fields. prepareContent must write the same bytes from the one parse of the message.
 */
function generalPrepareContent(message: Buffer, options: PrepareContentOptions, limits: Limits): Buffer {
  const split = splitMessage(message, limits);
  const entity = parseEntity(buildEntity(split.contentHeaders, split.root.body), { limits });
  const sevenBit = encodeSevenBit(entity, limits).bytes;
  if (!options.headerProtection) return sevenBit;
  const payload = parseEntity(sevenBit, { limits });
  const ct = payload.contentType;
  const params: Record<string, string> = { ...ct.params, hp: options.headerProtection };
  if (ct.defaulted && !isSevenBitData(entity.body)) params.charset = 'utf-8';
  const headers: HeaderInput[] = [['Content-Type', formatParameterizedValue(ct.mediaType, params)]];
  for (const h of payload.headers) if (h.name.toLowerCase() !== 'content-type') headers.push(h);
  headers.push(...copyFieldsInside(selectProtectedFields(split.messageHeaders)));
  const hpOuter = (options.hpOuter ?? []).map((raw) => ({ name: 'HP-Outer', raw, value: '' }));
  return buildEntity([...headers, ...hpOuter], payload.body);
}

test('prepareContent writes the bytes of the general composition for every corpus message (no hp, hp=clear, hp=cipher)', () => {
  for (const { name, bytes } of messageCorpus()) {
    const split = splitMessage(bytes, DEFAULT_LIMITS);
    const hpOuter = applyHeaderConfidentiality(split.messageHeaders, 'baseline').hpOuter;
    const hpOuterNone = applyHeaderConfidentiality(split.messageHeaders, 'none').hpOuter;
    for (const options of [{}, { headerProtection: 'clear' }, { headerProtection: 'cipher', hpOuter }, { headerProtection: 'cipher', hpOuter: hpOuterNone }] as PrepareContentOptions[]) {
      const fast = prepareContent(splitMessage(bytes, DEFAULT_LIMITS), options, DEFAULT_LIMITS);
      const general = generalPrepareContent(bytes, options, DEFAULT_LIMITS);
      assert.equal(fast.toString('latin1'), general.toString('latin1'), `${name} ${options.headerProtection ?? 'no hp'}`);
      assert.equal(isSevenBitData(fast), true, name);
    }
  }
});

test('splitMessage writes the content entity only when asked, and the same each time', () => {
  const { bytes } = messageCorpus()[0]!;
  const split = splitMessage(bytes, DEFAULT_LIMITS);
  const content = split.content;
  assert.equal(split.content, content);
  assert.equal(content.toString('latin1'), buildEntity(split.contentHeaders, split.root.body).toString('latin1'));
});
