/** Human units on the command line: durations `500ms 5s 2m 1h 24h`, sizes `4KiB 64MiB 10GiB`. */
import { GfsError } from './errors';

const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_BYTES: Record<string, number> = {
  '': 1, b: 1,
  k: 1000, kb: 1000, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  ki: 1024, kib: 1024, mi: 1024 ** 2, mib: 1024 ** 2, gi: 1024 ** 3, gib: 1024 ** 3, ti: 1024 ** 4, tib: 1024 ** 4,
};

export function parseDurationMs(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/i.exec(text);
  if (!m) throw new GfsError('INVALID_ARGUMENT', `invalid duration "${text}" (use e.g. 500ms, 5s, 2m, 1h)`);
  return Math.round(Number(m[1]) * DURATION_MS[m[2]!.toLowerCase()]!);
}

export function parseSizeBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m?.[2]?.toLowerCase();
  if (!m || unit === undefined || !(unit in SIZE_BYTES)) {
    throw new GfsError('INVALID_ARGUMENT', `invalid size "${text}" (use e.g. 4KiB, 64MiB, 10GiB)`);
  }
  return Math.round(Number(m[1]) * SIZE_BYTES[unit]!);
}

/** ms as the shortest text parseDurationMs reads back exactly (`30s`, `24h`, `7d`, `1500ms`): defaults in --help. */
export function durationText(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms > 0 && ms % DURATION_MS[unit]! === 0) return `${ms / DURATION_MS[unit]!}${unit}`;
  }
  return `${ms}ms`;
}

/** Bytes as the shortest binary-unit text parseSizeBytes reads back exactly (`64MiB`, `4KiB`, `1000`). */
export function sizeText(bytes: number): string {
  for (const unit of ['TiB', 'GiB', 'MiB', 'KiB'] as const) {
    const n = SIZE_BYTES[unit.toLowerCase()]!;
    if (bytes > 0 && bytes % n === 0) return `${bytes / n}${unit}`;
  }
  return String(bytes);
}

/** A whole number in [min, max] (counts, ports, replication goals): `abc`, `1.5` or `-1` are refused, never NaN. */
export function parseInteger(text: string, min: number, max: number): number {
  const n = /^\s*-?\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new GfsError('INVALID_ARGUMENT', `"${text}" is not a whole number from ${min} to ${max}`);
  }
  return n;
}

/** A decimal number in [min, max] (ratios and fractions). */
export function parseDecimal(text: string, min: number, max: number): number {
  const n = /^\s*-?(\d+(\.\d*)?|\.\d+)\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new GfsError('INVALID_ARGUMENT', `"${text}" is not a number from ${min} to ${max}`);
  }
  return n;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${Math.round(s % 60)}s`;
  return `${Math.floor(m / 60)}h${m % 60}m`;
}
