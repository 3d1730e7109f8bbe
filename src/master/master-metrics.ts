/**
 * The master's /metrics gauges and running totals that are read at scrape time from the metadata, the
 * registry and the lifecycle (counters on the commit path live with it in master.ts).
 *
 * Invariant: collecting changes nothing; before start() finishes (no state or lifecycle
 * yet) a gauge reads 0 or keeps its last value.
 */
import { Gauge, type Registry } from 'prom-client';
import type { RepairProgress } from '../../gen/gfs';
import { totalCounter } from '../common/admin-http';
import type { MetaState } from './meta-state';
import type { NodeRegistry } from './registry';
import type { Lifecycle } from './lifecycle/lifecycle';
import type { LogService } from './logs/log-service';
import type { StreamKeeper } from './streams/stream-keeper';

export interface MetricsSource {
  state: () => MetaState | undefined;
  registry: NodeRegistry;
  walLastIndex: () => number;
  /** WAL flushes (one write and one fdatasync each) and the records they carried. */
  walStats: () => { flushes: number; recordsWritten: number } | undefined;
  /** Proposals and the batches that carried them into the replicated log. */
  proposeStats: () => { proposals: number; batches: number } | undefined;
  lifecycle: () => Lifecycle | undefined;
  logs: () => LogService | undefined;
  streams?: () => StreamKeeper | undefined;
  isLeader: () => boolean;
  epoch: () => number;
  fillCapRatio: number;
}

export function registerMasterGauges(metrics: Registry, src: MetricsSource): void {
  const gauge = (name: string, help: string, read: () => number | undefined) => new Gauge({
    name, help, registers: [metrics], collect() { const v = read(); if (v !== undefined) this.set(v); },
  });
  gauge('gfs_master_files', 'Visible files', () => src.state()?.counts().files ?? 0);
  gauge('gfs_master_chunks', 'Chunks referenced by metadata', () => src.state()?.counts().chunks ?? 0);
  gauge('gfs_master_nodes_alive', 'Chunkservers alive', () => src.registry.alive().length);
  gauge('gfs_master_nodes_dead', 'Chunkservers known but declared dead (silent past --dead-after)', () => src.registry.nodes.size - src.registry.alive().length);
  // One master of a group reads 1; a change of leader shows as a change of these two.
  gauge('gfs_master_is_leader', '1 while this master is the serving leader', () => (src.isLeader() ? 1 : 0));
  gauge('gfs_master_epoch', 'The leader epoch this master knows: it grows by one or more with every election', () => src.epoch());
  gauge('gfs_master_fill_cap_ratio', 'No node is filled past this fraction of its capacity (--fill-cap)', () => src.fillCapRatio);
  gauge('gfs_master_wal_last_index', 'Last WAL index', () => src.walLastIndex());
  totalCounter(metrics, 'gfs_master_wal_flushes_total', 'WAL flushes, one write and one fdatasync each', () => src.walStats()?.flushes ?? 0);
  totalCounter(metrics, 'gfs_master_wal_records_total', 'WAL records written (records per flush = group commit batching)', () => src.walStats()?.recordsWritten ?? 0);
  totalCounter(metrics, 'gfs_master_proposals_total', 'Entries proposed to the replicated log by this master as leader', () => src.proposeStats()?.proposals ?? 0);
  totalCounter(metrics, 'gfs_master_propose_batches_total', 'Batches of proposals given to the replication core (one WAL append and one replication round each)', () => src.proposeStats()?.batches ?? 0);
  const repair = (name: string, help: string, pick: (p: RepairProgress) => number) =>
    gauge(name, help, () => { const lc = src.lifecycle(); return lc ? pick(lc.healer.progress()) : undefined; });
  repair('gfs_master_repair_queued_chunks', 'Chunks below their goal with no clone running yet', (p) => p.queuedChunks);
  repair('gfs_master_repair_queued_bytes', 'Bytes still to clone, not started', (p) => p.queuedBytes);
  repair('gfs_master_repair_inflight_chunks', 'Clones running now', (p) => p.inflightChunks);
  repair('gfs_master_repair_bytes_per_second', 'Re-replication bytes per second: copies running now, or completed clones over 10 s', (p) => p.bytesPerSec);
  repair('gfs_master_repair_eta_seconds', 'Estimated time until every chunk is at its goal', (p) => p.etaMs / 1000);
  repair('gfs_master_chunks_under_replicated', 'Chunks with fewer healthy replicas than their goal', (p) => p.underReplicated);
  repair('gfs_master_chunks_missing', 'Chunks with no healthy replica', (p) => p.missingChunks);
  repair('gfs_master_replicas_corrupt', 'Replicas reported corrupt, not yet deleted', (p) => p.corruptReplicas);
  repair('gfs_master_replicas_stale', 'Replicas behind the master version, not yet deleted', (p) => p.staleReplicas);
  totalCounter(metrics, 'gfs_master_repair_completed_total', 'Clones completed since start', () => src.lifecycle()?.healer.progress().completedTotal);
  totalCounter(metrics, 'gfs_master_repair_failed_total', 'Clones failed or timed out since start', () => src.lifecycle()?.healer.progress().failedTotal);
  gauge('gfs_master_safe_mode', '1 while in safe mode (no clones, no deletes)', () => (src.lifecycle()?.safeMode.on ? 1 : 0));
  gauge('gfs_master_gc_orphans_tracked', 'Unreferenced handles waiting out the orphan grace', () => src.lifecycle()?.collector.orphans.size ?? 0);
  totalCounter(metrics, 'gfs_master_gc_purged_files_total', 'Trashed files purged since start', () => src.lifecycle()?.collector.purgedTotal ?? 0);
  totalCounter(metrics, 'gfs_master_gc_orphan_deletes_total', 'Orphan replica deletes issued since start', () => src.lifecycle()?.collector.orphanDeletesTotal ?? 0);
  gauge('gfs_master_log_leases', 'Append leases the leader knows of (open log chunks with a primary)', () => src.logs()?.leases.size ?? 0);
  gauge('gfs_master_log_watchers', 'Watch streams open on this master', () => src.logs()?.hub.size ?? 0);
  totalCounter(metrics, 'gfs_master_log_chunk_seals_total', 'Open log chunks sealed since start', () => src.logs()?.sealer.sealedTotal ?? 0);
  totalCounter(metrics, 'gfs_master_log_chunk_seal_failures_total', 'Seals that failed (no replica answered) since start', () => src.logs()?.sealer.failedTotal ?? 0);
  totalCounter(metrics, 'gfs_master_log_lease_grants_total', 'Append leases granted since start', () => src.logs()?.targets.grantsTotal ?? 0);
  totalCounter(metrics, 'gfs_master_log_lease_grant_failures_total', 'Lease grants a primary refused or did not answer since start', () => src.logs()?.targets.grantFailuresTotal ?? 0);
  totalCounter(metrics, 'gfs_master_stream_segments_created_total', 'Stream segments created (first append after a roll) since start', () => src.streams?.()?.createdTotal ?? 0);
  totalCounter(metrics, 'gfs_master_stream_rolls_total', 'Stream segments rolled (sealed by size, age or SealLog) since start', () => src.streams?.()?.rolledTotal ?? 0);
  totalCounter(metrics, 'gfs_master_stream_retention_dropped_segments_total', 'Sealed stream segments dropped by retention since start', () => src.streams?.()?.droppedTotal ?? 0);
  totalCounter(metrics, 'gfs_master_stream_retention_dropped_bytes_total', 'Bytes (one copy) of stream segments dropped by retention since start', () => src.streams?.()?.droppedBytesTotal ?? 0);
  gauge('gfs_master_stream_watchers', 'Watch streams of stream directories open on this master', () => src.streams?.()?.watch.size ?? 0);
  totalCounter(metrics, 'gfs_master_gc_aborted_writes_total', 'Abandoned writes aborted since start', () => src.lifecycle()?.collector.abortedTotal ?? 0);
}
