/**
 * Never-completed multipart uploads are aborted once they are older than the gateway's
 * upload expiry (`gfs gateway --s3-upload-expiry`, limits.s3UploadExpiryMs; S3's
 * AbortIncompleteMultipartUpload lifecycle rule, on for every bucket): their directory
 * is deleted, so their part files go to trash, are purged after the trash period, and
 * GC then deletes their chunks. A sweep runs every expiry / 4 (at most
 * limits.s3UploadSweepMaxIntervalMs apart).
 *
 * Invariants:
 * - Only `/<bucket>/.s3-uploads/<uploadId>` directories are ever deleted (no key maps
 *   there, docs/S3-KEYS.md), and only when the upload's record (or, without one, the
 *   directory) was last changed more than the expiry ago.
 * - One sweep at a time; a failed sweep is logged and retried at the next tick.
 */
import assert from 'node:assert/strict';
import type { FileInfo, GfsClient } from '../../client';
import { limits } from '../../common/limits';
import type { Clock } from '../../common/clock';
import type { Logger } from '../../common/log';
import { UPLOADS_DIR, UPLOAD_RECORD } from './multipart';

async function* listAll(client: GfsClient, dir: string): AsyncGenerator<FileInfo> {
  let startAfter = '';
  for (;;) {
    let res;
    try {
      res = await client.list(dir, { startAfter, limit: limits.s3ListScanEntries });
    } catch (e) {
      if ((e as { code?: string }).code === 'NO_SUCH_FILE') return;
      throw e;
    }
    for (const e of res.entries) { startAfter = e.path; yield e; }
    if (!res.truncated || res.entries.length === 0) return;
  }
}

/** Deletes every upload older than `expiryMs`; returns how many. */
export async function sweepExpiredUploads(client: GfsClient, nowMs: number, expiryMs: number, log: Logger): Promise<number> {
  let removed = 0;
  for await (const bucket of listAll(client, '/')) {
    if (!bucket.isDir) continue;
    for await (const upload of listAll(client, `${bucket.path}/${UPLOADS_DIR}`)) {
      if (!upload.isDir) continue;
      assert.ok(upload.path.startsWith(`${bucket.path}/${UPLOADS_DIR}/`));
      const record = await client.stat(`${upload.path}/${UPLOAD_RECORD}`).catch(() => undefined);
      if ((record?.mtimeMs ?? upload.mtimeMs) + expiryMs > nowMs) continue;
      await client.delete(upload.path, { recursive: true });
      removed++;
      log.info({ upload: upload.path }, 'expired multipart upload aborted');
    }
  }
  return removed;
}

export class UploadSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly client: GfsClient, private readonly expiryMs: number, private readonly clock: Clock, private readonly log: Logger) {}

  start(): void {
    const every = Math.max(1, Math.min(Math.floor(this.expiryMs / 4), limits.s3UploadSweepMaxIntervalMs));
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = sweepExpiredUploads(this.client, this.clock.nowMs(), this.expiryMs, this.log)
        .then(() => undefined, (e: unknown) => { this.log.warn({ err: (e as Error).message }, 'multipart upload sweep failed'); })
        .finally(() => { this.running = undefined; });
    }, every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
