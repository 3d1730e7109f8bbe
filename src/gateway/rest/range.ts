/**
 * HTTP Range (RFC 9110 §14) for one byte range: `bytes=a-b`, `bytes=a-`, `bytes=-n`.
 *
 * Invariant: a satisfiable answer has 0 <= start < end <= size (end exclusive).
 * A header we do not understand (another unit, several ranges, junk) is ignored and
 * the whole body is sent, as the RFC allows; a well-formed range that selects no byte
 * of the file is `unsatisfiable` (416).
 */
import assert from 'node:assert';

export type RangeResult =
  | { kind: 'whole' }
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable' };

const SINGLE = /^bytes=(\d*)-(\d*)$/;

export function parseRange(header: string | undefined, size: number): RangeResult {
  assert.ok(Number.isSafeInteger(size) && size >= 0);
  if (header === undefined) return { kind: 'whole' };
  const m = SINGLE.exec(header.trim());
  if (!m) return { kind: 'whole' };
  const [, first, last] = m as unknown as [string, string, string];
  if (first === '' && last === '') return { kind: 'whole' };
  // Digits beyond 2^53 still compare right as doubles against any real size.
  if (first === '') {
    const n = Number(last);
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return checked(Math.max(0, size - n), size, size);
  }
  const start = Number(first);
  if (start >= size) return { kind: 'unsatisfiable' };
  if (last === '') return checked(start, size, size);
  const lastByte = Number(last);
  if (lastByte < start) return { kind: 'whole' }; // invalid syntax: ignore the header
  return checked(start, Math.min(size, lastByte + 1), size);
}

function checked(start: number, end: number, size: number): RangeResult {
  assert.ok(start >= 0 && start < end && end <= size);
  return { kind: 'partial', start, end };
}

/** `bytes a-b/size` for a 206. */
export function contentRange(start: number, end: number, size: number): string {
  return `bytes ${start}-${end - 1}/${size}`;
}
