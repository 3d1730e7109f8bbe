import { Counter, Gauge, type Registry } from 'prom-client';

export interface DataPlaneMetrics {
  bytesWritten: Counter;
  bytesRead: Counter;
  corruptReads: Counter;
  openWrites: Gauge;
  chunks: Gauge;
  usedBytes: Gauge;
  heartbeatFailures: Counter;
}

export function createChunkserverMetrics(registry: Registry): DataPlaneMetrics {
  return {
    bytesWritten: new Counter({ name: 'gfs_chunkserver_written_bytes_total', help: 'Chunk bytes received for writing', registers: [registry] }),
    bytesRead: new Counter({ name: 'gfs_chunkserver_read_bytes_total', help: 'Verified chunk bytes sent to readers', registers: [registry] }),
    corruptReads: new Counter({ name: 'gfs_chunkserver_corrupt_reads_total', help: 'Reads refused because a block failed its checksum', registers: [registry] }),
    openWrites: new Gauge({ name: 'gfs_chunkserver_open_writes', help: 'Write sessions open now', registers: [registry] }),
    chunks: new Gauge({ name: 'gfs_chunkserver_chunks', help: 'Chunk replicas stored', registers: [registry] }),
    usedBytes: new Gauge({ name: 'gfs_chunkserver_used_bytes', help: 'Bytes used by chunk replicas', registers: [registry] }),
    heartbeatFailures: new Counter({ name: 'gfs_chunkserver_heartbeat_failures_total', help: 'Heartbeats that did not reach a master', registers: [registry] }),
  };
}
