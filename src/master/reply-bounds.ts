/**
 * The last check on an admin reply before it is serialized: protobuf's 64-bit fields
 * refuse a number past Number.MAX_SAFE_INTEGER (and NaN or Infinity), and one such field
 * used to fail the whole status RPC for good. Pure.
 *
 * Invariant: the reply returned holds only finite numbers in [0, MAX_SAFE_INTEGER]
 * (every number field in the admin replies is a count, a size, a rate or a time); any
 * other number is replaced by 0 and reported through `onClamp`, never thrown.
 */
import assert from 'node:assert/strict';

export function boundedReply<T extends object>(reply: T, onClamp: (path: string, value: number) => void): T {
  walk(reply as Record<string, unknown>, '', onClamp);
  return reply;
}

function inRange(v: number): boolean {
  return Number.isFinite(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER;
}

function walk(obj: Record<string, unknown> | unknown[], path: string, onClamp: (path: string, value: number) => void): void {
  for (const [key, value] of Object.entries(obj)) {
    const at = path === '' ? key : `${path}.${key}`;
    if (typeof value === 'number') {
      if (inRange(value)) continue;
      onClamp(at, value);
      (obj as Record<string, unknown>)[key] = 0;
      assert.ok(inRange((obj as Record<string, number>)[key]!), `reply field ${at} is still out of range`);
    } else if (value !== null && typeof value === 'object') {
      walk(value as Record<string, unknown>, at, onClamp);
    }
  }
}
