/**
 * Recovery at open (FORMAT.md, "Recovery at open"): from whatever a crash left in the
 * directory to a consistent log, or a CORRUPT error that names the file and offset.
 * Never guesses: a torn tail is cut only when nothing good follows it.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { GfsError, isGfsError } from '../common/errors';
import type { Logger } from '../common/log';
import {
  CHECKPOINT_CORRUPT_SUFFIX, checkpointFileName, isCheckpointTempFileName, parseCheckpointFileName, verifyCheckpointFile,
} from './checkpoint';
import { fsyncDir } from './durable-fs';
import { EpochHistory, type EpochStart } from './epoch-history';
import { isSegmentTempFileName, parseSegmentFileName, scanSegment, segmentFileName } from './segment';

export interface SegmentState {
  file: string;
  firstIndex: number;
  /** firstIndex - 1 while the segment holds no record. */
  lastIndex: number;
  /** Bytes of header and durable records: where the next flush writes. */
  bytes: number;
}

export interface RecoveredState {
  segments: SegmentState[];
  epochs: EpochHistory;
  checkpointIndexes: number[];
}

/**
 * Brings the directory to a consistent state and describes it: removes temporary
 * files of interrupted writes, picks the newest checkpoint that verifies (renaming a
 * corrupt one aside), scans every segment, cuts a torn tail of the last, and refuses
 * (CORRUPT) anything it cannot explain.
 */
export async function recover(dir: string, log: Logger): Promise<RecoveredState> {
  const names = (await fsp.readdir(dir)).sort();
  let directoryChanged = false;

  for (const name of names.filter((n) => isSegmentTempFileName(n) || isCheckpointTempFileName(n))) {
    await fsp.unlink(path.join(dir, name));
    log.warn({ file: name }, 'WAL: removed the temporary file of an interrupted write');
    directoryChanged = true;
  }

  const checkpointIndexes = names.map(parseCheckpointFileName).filter((i): i is number => i !== undefined);
  checkpointIndexes.sort((a, b) => b - a);
  let checkpoint: { index: number; epoch: number } | undefined;
  while (checkpointIndexes.length > 0 && checkpoint === undefined) {
    const file = path.join(dir, checkpointFileName(checkpointIndexes[0]!));
    try {
      checkpoint = await verifyCheckpointFile(file, checkpointIndexes[0]!);
    } catch (e) {
      if (!isGfsError(e, 'CORRUPT')) throw e;
      // Kept for inspection, out of the way of retention, which counts valid names only.
      await fsp.rename(file, file + CHECKPOINT_CORRUPT_SUFFIX);
      directoryChanged = true;
      checkpointIndexes.shift();
      log.error({ file, err: e.message }, 'WAL: checkpoint is corrupt; renamed it aside and trying the previous one');
    }
  }

  const segmentFirsts = names.map(parseSegmentFileName).filter((i): i is number => i !== undefined);
  segmentFirsts.sort((a, b) => a - b);
  let segments: SegmentState[] = [];
  const recordStarts: EpochStart[] = [];
  let epoch = 0;
  for (let i = 0; i < segmentFirsts.length; i++) {
    const firstIndex = segmentFirsts[i]!;
    const file = path.join(dir, segmentFileName(firstIndex));
    const previous = segments.at(-1);
    if (previous && previous.lastIndex + 1 !== firstIndex) {
      throw new GfsError('CORRUPT',
        `WAL segments are not contiguous: ${previous.file} ends at index ${previous.lastIndex} but the next segment ${file} starts at ${firstIndex}`,
        { detail: { file } });
    }
    const scan = await scanSegment(file, firstIndex, {
      isLast: i === segmentFirsts.length - 1,
      previousEpoch: epoch,
      onRecord: (r) => {
        if (recordStarts.length === 0 || r.epoch !== epoch) recordStarts.push({ index: r.index, epoch: r.epoch });
        epoch = r.epoch;
      },
    });
    if (scan.tornTail) {
      log.warn({ file, offset: scan.tornTail.offset, bytes: scan.tornTail.bytes, reason: scan.tornTail.reason },
        `WAL: cutting a torn tail of ${scan.tornTail.bytes} bytes from the last segment`);
      const fh = await fsp.open(file, 'r+');
      try {
        await fh.truncate(scan.validBytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    segments.push({ file, firstIndex, lastIndex: scan.lastIndex, bytes: scan.validBytes });
  }

  const base: EpochStart = checkpoint ?? { index: 0, epoch: 0 };
  let starts = recordStarts;
  const logFirst = segments[0]?.firstIndex;
  const logLast = segments.at(-1)?.lastIndex ?? base.index;
  if (checkpoint && logFirst !== undefined && !logHoldsCheckpoint(checkpoint, logFirst, logLast, recordStarts)) {
    // Only a checkpoint that replaces the log (writeCheckpoint, Raft §7) can disagree with
    // it, and it is durable before any segment is deleted: finish that job.
    log.warn({ checkpointIndex: checkpoint.index, logFirst, logLast },
      'WAL: the checkpoint does not match the segments (an interrupted replace); deleting the segments');
    for (const segment of segments.reverse()) await fsp.unlink(segment.file);
    directoryChanged = true;
    segments = [];
    starts = [];
  } else if (logFirst !== undefined && logFirst > base.index + 1) {
    const holder = checkpoint ? `the newest valid checkpoint ends at ${base.index}` : 'there is no checkpoint';
    throw new GfsError('CORRUPT',
      `WAL records ${base.index + 1}..${logFirst - 1} are missing: the first segment ${segments[0]!.file} starts at ${logFirst} and ${holder}`,
      { detail: { file: segments[0]!.file } });
  }
  if (directoryChanged) await fsyncDir(dir);

  // The base entry describes the record just before the segments, when it is known.
  const lastIndex = segments.at(-1)?.lastIndex ?? base.index;
  if (segments.length === 0 || segments[0]!.firstIndex === base.index + 1) {
    const firstRecordEpoch = starts[0]?.epoch;
    if (firstRecordEpoch !== undefined && firstRecordEpoch < base.epoch) {
      throw new GfsError('CORRUPT',
        `WAL record ${base.index + 1} in ${segments[0]!.file} has epoch ${firstRecordEpoch}, lower than the checkpoint's ${base.epoch}`,
        { detail: { file: segments[0]!.file } });
    }
    starts = firstRecordEpoch === base.epoch ? [{ ...base }, ...starts.slice(1)] : [{ ...base }, ...starts];
  }
  return { segments, epochs: new EpochHistory(starts, lastIndex), checkpointIndexes };
}

function logHoldsCheckpoint(
  cp: { index: number; epoch: number },
  logFirst: number,
  logLast: number,
  starts: EpochStart[],
): boolean {
  if (cp.index > logLast) return false;
  if (cp.index < logFirst) return true; // below the segments: they continue it (checked by the caller)
  const history = new EpochHistory(starts, logLast);
  return history.epochAt(cp.index) === cp.epoch;
}
