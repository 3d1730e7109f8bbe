import { Counter, Gauge, type Registry } from 'prom-client';

export interface DataPlaneMetrics {
  bytesWritten: Counter;
  bytesRead: Counter;
  corruptReads: Counter;
  openWrites: Gauge;
  chunks: Gauge;
  usedBytes: Gauge;
  capacityBytes: Gauge;
  freeBytes: Gauge;
  heartbeatFailures: Counter;
  appends: Counter;
  appendBatches: Counter;
}

export function createChunkserverMetrics(registry: Registry): DataPlaneMetrics {
  return {
    bytesWritten: new Counter({ name: 'gfs_chunkserver_written_bytes_total', help: 'Chunk bytes received for writing', registers: [registry] }),
    bytesRead: new Counter({ name: 'gfs_chunkserver_read_bytes_total', help: 'Verified chunk bytes sent to readers', registers: [registry] }),
    corruptReads: new Counter({ name: 'gfs_chunkserver_corrupt_reads_total', help: 'Reads refused because a block failed its checksum', registers: [registry] }),
    openWrites: new Gauge({ name: 'gfs_chunkserver_open_writes', help: 'Write sessions open now', registers: [registry] }),
    chunks: new Gauge({ name: 'gfs_chunkserver_chunks', help: 'Chunk replicas stored', registers: [registry] }),
    usedBytes: new Gauge({ name: 'gfs_chunkserver_used_bytes', help: 'Bytes used by chunk replicas', registers: [registry] }),
    capacityBytes: new Gauge({ name: 'gfs_chunkserver_capacity_bytes', help: 'Capacity reported to the master (the disk\'s, or --capacity)', registers: [registry] }),
    freeBytes: new Gauge({ name: 'gfs_chunkserver_free_bytes', help: 'Free bytes reported to the master', registers: [registry] }),
    heartbeatFailures: new Counter({ name: 'gfs_chunkserver_heartbeat_failures_total', help: 'Heartbeats that did not reach a master', registers: [registry] }),
    appends: new Counter({ name: 'gfs_chunkserver_appends_total', help: 'Records appended and committed as an append primary (retried duplicates not counted)', registers: [registry] }),
    appendBatches: new Counter({ name: 'gfs_chunkserver_append_batches_total', help: 'Group-commit batches committed as an append primary (one fsync per replica each)', registers: [registry] }),
  };
}
