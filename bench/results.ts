/** What a run measured, step by step; figures.ts turns it into the printed rows. */
import type { RawChainResult } from './baselines/raw-chain';
import type { RawCopyResult } from './baselines/raw-copy';
import type { RawFsyncResult } from './baselines/raw-fsync';
import type { RawReadResult } from './baselines/raw-read';
import type { CreatesResult, GetResult, PutResult } from './gfs-figures';
import type { FailoverResult, MetadataResult } from './ha-figures';
import type { HealResult, ScrubResult } from './heal-figures';
import type { StepName } from './options';
import type { RecordSyncResult } from './baselines/raw-record-sync';
import type { LogAppendResult } from './log-figures';

export interface BenchResults {
  sizeBytes: number;
  rawChain?: RawChainResult;
  rawRead?: RawReadResult;
  rawFsync?: RawFsyncResult;
  rawCopy?: RawCopyResult;
  rawRecordSync?: RecordSyncResult[];
  append?: LogAppendResult;
  put?: PutResult;
  get?: GetResult;
  creates?: CreatesResult;
  meta?: MetadataResult[];
  failover?: FailoverResult;
  heal?: HealResult;
  scrub?: ScrubResult;
  failures: { step: StepName; message: string }[];
}
