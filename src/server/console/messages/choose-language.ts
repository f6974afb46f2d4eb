/**
 * The page language: the language cookie when it names one we have, else the
 * first of Japanese and English in the browser's Accept-Language (by q value, then
 * order), else English. Parsing is bounded: a hostile header of any length costs
 * at most 32 entries.
 */
import type { ConsoleLanguage } from '../../../store/people-directory.ts';
import { en, type Messages } from './en.ts';
import { ja } from './ja.ts';

export const LANGUAGES: Record<ConsoleLanguage, Messages> = { ja, en };
export const LANGUAGE_COOKIE = '__Host-kakitome-lang';

export function isLanguage(v: unknown): v is ConsoleLanguage {
  return v === 'ja' || v === 'en';
}

export function chooseLanguage(cookie: string | undefined, acceptLanguage: string | undefined): ConsoleLanguage {
  if (isLanguage(cookie)) return cookie;
  const ranked = (acceptLanguage ?? '').slice(0, 1024).split(',').slice(0, 32).map((part, index) => {
    const [tag = '', ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => /^\s*q=([01](?:\.\d{0,3})?)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    return { primary: tag.split('-')[0]!, q: q === undefined ? 1 : Number(q), index };
  }).filter((r) => r.q > 0).sort((a, b) => b.q - a.q || a.index - b.index);
  for (const r of ranked) if (isLanguage(r.primary)) return r.primary;
  return 'en';
}
