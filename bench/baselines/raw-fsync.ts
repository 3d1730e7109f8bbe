/**
 * Baselines for small durable writes, the cost that bounds metadata operations:
 *
 * - group commit: 16 producers append 100-byte records to one file; whatever records
 *   are waiting when the previous sync returns go out in one write + one fdatasync.
 *   This is the ceiling of a WAL that acks each record only once it is durable, so
 *   it is the baseline for gfs's file creates.
 * - plain fdatasync rate: one 4 KiB append + fdatasync at a time, the disk's sync
 *   latency with no batching.
 *
 * Runs in the bench process itself: it is one file and one event loop, like a
 * master's WAL.
 */
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { makeTempDir, removeTempDir } from '../lib/temp-dirs';
import { KiB } from '../lib/units';

export interface RawFsyncResult {
  groupCommitRecordsPerSec: number;
  /** Mean records per fdatasync: how much batching the producers achieved. */
  groupCommitRecordsPerSync: number;
  plainSyncsPerSec: number;
}

const recordBytes = 100;
const producerCount = 16;
const syncWriteBytes = 4 * KiB;
const phaseDurationMs = 2000;

export async function runRawFsync(): Promise<RawFsyncResult> {
  const dir = makeTempDir('raw-fsync');
  try {
    const groupCommit = await measureGroupCommit(join(dir, 'group-commit.log'));
    const plainSyncsPerSec = measurePlainSyncs(join(dir, 'plain-sync.log'));
    return { ...groupCommit, plainSyncsPerSec };
  } finally {
    removeTempDir(dir);
  }
}

interface PendingRecord {
  record: Buffer;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** Appends records; each append resolves once a shared fdatasync has covered it. */
class GroupCommitLog {
  syncCount = 0;
  private waiting: PendingRecord[] = [];
  private committing = false;

  constructor(private readonly handle: FileHandle) {}

  append(record: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ record, resolve, reject });
      // Start on the next turn of the event loop, not now: every producer that is
      // ready in this turn then joins the batch instead of waiting for the next sync.
      if (!this.committing) {
        this.committing = true;
        setImmediate(() => void this.commitWhileWaiting());
      }
    });
  }

  private async commitWhileWaiting(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting;
      this.waiting = [];
      try {
        await this.handle.writev(batch.map((pending) => pending.record));
        await this.handle.datasync();
        this.syncCount++;
        for (const pending of batch) pending.resolve();
      } catch (error) {
        for (const pending of batch) pending.reject(error as Error);
      }
    }
    this.committing = false;
  }
}

async function measureGroupCommit(filePath: string): Promise<Omit<RawFsyncResult, 'plainSyncsPerSec'>> {
  const handle = await open(filePath, 'w');
  try {
    const log = new GroupCommitLog(handle);
    const record = Buffer.alloc(recordBytes, 0x61);
    const startedAtMs = performance.now();
    const deadlineMs = startedAtMs + phaseDurationMs;
    let committedRecords = 0;
    const producer = async (): Promise<void> => {
      while (performance.now() < deadlineMs) {
        await log.append(record);
        committedRecords++;
      }
    };
    await Promise.all(Array.from({ length: producerCount }, producer));
    const elapsedMs = performance.now() - startedAtMs;
    return {
      groupCommitRecordsPerSec: committedRecords / (elapsedMs / 1000),
      groupCommitRecordsPerSync: committedRecords / Math.max(1, log.syncCount),
    };
  } finally {
    await handle.close();
  }
}

/** Synchronous calls on purpose: one sync at a time is the point, and they are cheapest. */
function measurePlainSyncs(filePath: string): number {
  const fd = openSync(filePath, 'w');
  try {
    const block = Buffer.alloc(syncWriteBytes, 0x62);
    const startedAtMs = performance.now();
    let syncCount = 0;
    while (performance.now() - startedAtMs < phaseDurationMs) {
      writeSync(fd, block);
      fdatasyncSync(fd);
      syncCount++;
    }
    return syncCount / ((performance.now() - startedAtMs) / 1000);
  } finally {
    closeSync(fd);
  }
}
