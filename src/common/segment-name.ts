/**
 * Stream segment names (docs/LOG-STREAMS.md; here in common so the client can read a
 * segment's base offset from its name): `<UTC yyyymmddThhmmss.mmmZ>-<base offset,
 * 16 hex digits>`, e.g. `20261206T223410.123Z-00000000000a0000`. Fixed width, so byte
 * order is time order (then base offset order), and a plain `ls` lists a stream's
 * segments oldest first.
 *
 * Invariants: segmentName is a pure function of (createdMs, baseOffset) and
 * parseSegmentName(segmentName(t, b)) gives back (t, b).
 */
import assert from 'node:assert/strict';

const pattern = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z-([0-9a-f]{16})$/;

export function segmentName(createdMs: number, baseOffset: number): string {
  assert.ok(Number.isSafeInteger(createdMs) && createdMs >= 0 && createdMs < 253402300800000, `bad segment time ${createdMs}`);
  assert.ok(Number.isSafeInteger(baseOffset) && baseOffset >= 0, `bad segment base ${baseOffset}`);
  const iso = new Date(createdMs).toISOString(); // 2026-12-06T22:34:10.123Z
  const time = iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + 'T' + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 23) + 'Z';
  return `${time}-${baseOffset.toString(16).padStart(16, '0')}`;
}

export function parseSegmentName(name: string): { createdMs: number; baseOffset: number } | undefined {
  const m = pattern.exec(name);
  if (m === null) return undefined;
  const createdMs = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, +m[7]!);
  const baseOffset = parseInt(m[8]!, 16);
  if (!Number.isSafeInteger(baseOffset) || segmentName(createdMs, baseOffset) !== name) return undefined;
  return { createdMs, baseOffset };
}
