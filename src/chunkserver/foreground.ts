/**
 * Whether this chunkserver is serving foreground traffic (client reads, chain writes)
 * right now. Background copies (re-replication in and out) slow down to a lower rate
 * while it is, so a heal leaves clients most of the disk, network and CPU, and runs at
 * full speed on an idle node (Ceph's recovery yields to client I/O the same way).
 */
export class ForegroundActivity {
  private lastMs = -Infinity;

  constructor(private readonly nowMs: () => number, private readonly windowMs = 1000) {}

  /** Foreground bytes moved just now. */
  note(): void {
    this.lastMs = this.nowMs();
  }

  /** Foreground traffic within the window. */
  busy(): boolean {
    return this.nowMs() - this.lastMs < this.windowMs;
  }
}
