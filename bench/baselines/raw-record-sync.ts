/**
 * Baseline for record append: one local file, one write + fdatasync per record, one
 * record at a time, for 200 B and 4 KiB records. What an application gets from its own
 * disk when every record must be durable before it is acknowledged, with no batching:
 * records/s and the latency of each.
 *
 * Runs in the bench process itself (synchronous calls: nothing else runs meanwhile).
 */
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { makeTempDir, removeTempDir } from '../lib/temp-dirs';
import { percentile } from '../lib/percentiles';

export interface RecordSyncResult {
  recordBytes: number;
  recordsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
}

const phaseDurationMs = 2000;

export function runRawRecordSync(recordSizes: number[]): RecordSyncResult[] {
  const dir = makeTempDir('raw-record-sync');
  try {
    return recordSizes.map((bytes) => measure(join(dir, `records-${bytes}.log`), bytes));
  } finally {
    removeTempDir(dir);
  }
}

function measure(file: string, recordBytes: number): RecordSyncResult {
  const fd = openSync(file, 'w');
  const record = Buffer.alloc(recordBytes, 0x61);
  const latencies: number[] = [];
  try {
    const start = performance.now();
    while (performance.now() - start < phaseDurationMs) {
      const t0 = performance.now();
      writeSync(fd, record);
      fdatasyncSync(fd);
      latencies.push(performance.now() - t0);
    }
    const elapsedMs = performance.now() - start;
    latencies.sort((a, b) => a - b);
    return {
      recordBytes,
      recordsPerSec: latencies.length / (elapsedMs / 1000),
      p50Ms: percentile(latencies, 0.5),
      p99Ms: percentile(latencies, 0.99),
      p999Ms: percentile(latencies, 0.999),
    };
  } finally {
    closeSync(fd);
  }
}
