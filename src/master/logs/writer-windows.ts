/**
 * Exactly-once memory of a log (docs/LOG-STREAMS.md, "Exactly once"): for each writer,
 * the file offsets of its last records in sealed chunks. A seal merges what the
 * survivor's sidecar reported; AppendTarget(record_id) looks a retried record up here.
 * Pure and deterministic: part of the replicated metadata.
 *
 * Invariants:
 * - A window holds at most `perWriter` records, seqs strictly ascending, one file
 *   offset per seq; merging keeps the highest seqs (the client retries only records
 *   within its last `perWriter`, so nothing older can be retried).
 * - A seq already in the window keeps its first offset: a record is stored once.
 * - At most `writersMax` windows per log; past it, the writers whose newest record is
 *   oldest (lowest offset, then id) are forgotten.
 */
import assert from 'node:assert/strict';
import { GfsError } from '../../common/errors';
import type { WriterWindow } from '../meta-types';

export interface WriterRecordsLike {
  writer: string;
  seqs: number[];
  offsets: number[];
}

/** Checks one seal's writer records against the chunk's file range [start, end); throws INVALID_ARGUMENT. */
export function checkWriterRecords(records: readonly WriterRecordsLike[], start: number, end: number, writerIdBytesMax: number): void {
  const seen = new Set<string>();
  for (const w of records) {
    if (typeof w.writer !== 'string' || w.writer === '' || Buffer.byteLength(w.writer, 'utf8') > writerIdBytesMax) {
      throw new GfsError('INVALID_ARGUMENT', `bad writer id "${String(w.writer).slice(0, 40)}"`);
    }
    if (seen.has(w.writer)) throw new GfsError('INVALID_ARGUMENT', `writer "${w.writer}" repeated in a seal`);
    seen.add(w.writer);
    if (w.seqs.length !== w.offsets.length) throw new GfsError('INVALID_ARGUMENT', `writer "${w.writer}": seqs and offsets differ in number`);
    for (let i = 0; i < w.seqs.length; i++) {
      const seq = w.seqs[i]!;
      const offset = w.offsets[i]!;
      if (!Number.isSafeInteger(seq) || seq < 0 || (i > 0 && seq <= w.seqs[i - 1]!)) {
        throw new GfsError('INVALID_ARGUMENT', `writer "${w.writer}": seqs must ascend`);
      }
      if (!Number.isSafeInteger(offset) || offset < start || offset >= end) {
        throw new GfsError('INVALID_ARGUMENT', `writer "${w.writer}": offset ${offset} is outside the chunk [${start}, ${end})`);
      }
    }
  }
}

/** Merges one seal's records into the windows (in place). Records must have passed checkWriterRecords. */
export function mergeWriterRecords(
  windows: Map<string, WriterWindow>, records: readonly WriterRecordsLike[], perWriter: number, writersMax: number,
): void {
  for (const w of records) {
    if (w.seqs.length === 0) continue;
    const prev = windows.get(w.writer) ?? { seqs: [], offsets: [] };
    windows.set(w.writer, mergeWindow(prev, w, perWriter));
  }
  if (windows.size > writersMax) {
    const newest = (id: string): number => windows.get(id)!.offsets.reduce((a, b) => Math.max(a, b), -1);
    const order = [...windows.keys()].sort((a, b) => newest(a) - newest(b) || (a < b ? -1 : a > b ? 1 : 0));
    for (const id of order.slice(0, windows.size - writersMax)) windows.delete(id);
  }
  assert.ok(windows.size <= writersMax);
}

function mergeWindow(a: WriterWindow, b: WriterRecordsLike, perWriter: number): WriterWindow {
  const seqs: number[] = [];
  const offsets: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.seqs.length || j < b.seqs.length) {
    const takeA = j >= b.seqs.length || (i < a.seqs.length && a.seqs[i]! <= b.seqs[j]!);
    if (takeA) {
      // The same seq in both: the first copy (already in the window) wins.
      if (j < b.seqs.length && a.seqs[i] === b.seqs[j]) j++;
      seqs.push(a.seqs[i]!);
      offsets.push(a.offsets[i]!);
      i++;
    } else {
      seqs.push(b.seqs[j]!);
      offsets.push(b.offsets[j]!);
      j++;
    }
  }
  const cut = Math.max(0, seqs.length - perWriter);
  const out = { seqs: seqs.slice(cut), offsets: offsets.slice(cut) };
  assert.ok(out.seqs.every((s, k) => k === 0 || s > out.seqs[k - 1]!), 'a writer window ascends');
  return out;
}

/** The file offset a writer's record was stored at, if the window still holds it. */
export function storedOffset(windows: ReadonlyMap<string, WriterWindow>, writer: string, seq: number): number | undefined {
  const w = windows.get(writer);
  if (w === undefined) return undefined;
  let lo = 0;
  let hi = w.seqs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = w.seqs[mid]!;
    if (s === seq) return w.offsets[mid];
    if (s < seq) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}
