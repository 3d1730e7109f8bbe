/**
 * `gfsctl stream` policy options: `--roll SIZE/AGE` and `--retention AGE/SIZE`, either
 * half optional and in either order (`64MiB/10m`, `10m`, `7d/10GiB`, `10GiB`), or `none`.
 * A half with a duration unit (ms, s, m, h, d) is an age; any other (`64MiB`, `10GB`,
 * `1000`) is a size, so `10m` is ten minutes, never ten megabytes. A flag describes the
 * whole rule: what it leaves out is "never" (roll) or "keep" (retention).
 */
import { GfsError } from '../src/common/errors';
import { durationText, parseDurationMs, parseSizeBytes, sizeText } from '../src/common/units';

export interface SizeAge { bytes: number; ageMs: number }

export function parseSizeAge(text: string, flag: string): SizeAge {
  const out: SizeAge = { bytes: 0, ageMs: 0 };
  if (text.trim().toLowerCase() === 'none') return out;
  const parts = text.split('/');
  if (parts.length > 2 || parts.some((p) => p.trim() === '')) {
    throw new GfsError('INVALID_ARGUMENT', `${flag} "${text}": use SIZE/AGE, SIZE, AGE or none (e.g. 64MiB/10m)`);
  }
  const seen = { size: false, age: false };
  for (const part of parts) {
    if (/^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)\s*$/i.test(part)) {
      if (seen.age) throw new GfsError('INVALID_ARGUMENT', `${flag} "${text}" gives two ages`);
      seen.age = true;
      out.ageMs = parseDurationMs(part);
    } else {
      if (seen.size) throw new GfsError('INVALID_ARGUMENT', `${flag} "${text}" gives two sizes`);
      seen.size = true;
      out.bytes = parseSizeBytes(part);
    }
  }
  return out;
}

/** The rule as the flags write it: `64MiB/10m`, `7d`, or `none`. */
export function sizeAgeText(bytes: number, ageMs: number): string {
  const parts = [...(bytes > 0 ? [sizeText(bytes)] : []), ...(ageMs > 0 ? [durationText(ageMs)] : [])];
  return parts.length === 0 ? 'none' : parts.join('/');
}
