/**
 * Whether foreground traffic (client reads, chain writes) is running on this chunkserver
 * or, as the master says, on another one. Background copies (re-replication in and out)
 * slow down to a lower rate while it is, so a heal leaves clients most of the disk,
 * network and CPU, and runs at full speed on an idle cluster (Ceph's recovery yields to
 * client I/O the same way). Copies of a chunk down to its last copy never slow down.
 */
import { limits } from '../common/limits';

export class ForegroundActivity {
  private lastMs = -Infinity;
  private clusterBusyUntilMs = -Infinity;

  constructor(private readonly nowMs: () => number, private readonly windowMs: number = limits.foregroundWindowMs) {}

  /** Foreground bytes moved just now. */
  note(): void {
    this.lastMs = this.nowMs();
  }

  /** The master says some node serves clients; believed for `forMs`. */
  noteClusterBusy(forMs: number): void {
    this.clusterBusyUntilMs = this.nowMs() + forMs;
  }

  /** This node moved foreground bytes within the window (what its heartbeat reports). */
  localBusy(): boolean {
    return this.nowMs() - this.lastMs < this.windowMs;
  }

  /** Copies should yield: this node, or another, is serving clients. */
  busy(): boolean {
    return this.localBusy() || this.nowMs() < this.clusterBusyUntilMs;
  }
}
