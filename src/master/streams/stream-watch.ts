/**
 * Watch of a stream directory (docs/LOG-STREAMS.md, "Follow"; WatchEvent.segments): an
 * "initial" event with the stream's segments, then one each time its active segment
 * gets or ends a chunk ("chunk"), is closed ("sealed"), the stream rolls or retention
 * drops segments ("rolled"), the stream is renamed ("renamed") or deleted ("deleted",
 * the last event). Each event carries the active segment (`file`, absent when there is
 * none) and the newest segments, oldest first, so a follower finds the segment after
 * the one it read without listing.
 *
 * Invariants:
 * - A watcher is keyed by the stream's directory object, so a rename keeps it and a new
 *   stream at the old path does not.
 * - Watchers exist only on the leader; when it stops leading they all end (the client
 *   watches again on the new leader).
 * - Backpressure as for file watches: a watcher more than limits.watchQueueBytesMax
 *   behind is cut off with UNAVAILABLE; every watcher leaves the table however it ends.
 */
import type * as grpc from '@grpc/grpc-js';
import type { FileInfo, MetaOp, WatchEvent, WatchRequest } from '../../../gen/gfs';
import { GfsError, toGrpcError } from '../../common/errors';
import { limits } from '../../common/limits';
import { normalizePath } from '../../common/paths';
import type { ApplyResult, FileNode, MetaState } from '../meta-state';
import type { Dir } from '../namespace';

type Reason = 'initial' | 'chunk' | 'sealed' | 'rolled' | 'renamed' | 'deleted';

interface StreamWatcher {
  path: string;
  event: (reason: Reason, revision: number) => void;
  end: (error: GfsError) => void;
}

/** What the Watch call needs from the service. */
export interface StreamWatchHost {
  isLeader: () => boolean;
  notLeader: () => GfsError;
  revision: () => number;
  fileInfo: (file: FileNode) => FileInfo;
}

export class StreamWatch {
  private readonly byDir = new Map<Dir, Set<StreamWatcher>>();
  private count = 0;

  constructor(private readonly state: () => MetaState) {}

  get size(): number { return this.count; }

  /** Every applied op (on every master; only the leader has watchers). */
  applied(op: MetaOp, result: ApplyResult | undefined, revision: number): void {
    if (this.count === 0 || result === undefined || result.replayed === true) return;
    const state = this.state();
    for (const [dir, set] of [...this.byDir]) {
      const reason = this.touched(state, dir, set, op, result);
      if (reason !== undefined) for (const w of [...set]) w.event(reason, revision);
    }
  }

  private touched(state: MetaState, dir: Dir, set: Set<StreamWatcher>, op: MetaOp, result: ApplyResult): Reason | undefined {
    if (state.streamDir(dir.path) !== dir) return 'deleted';
    const watchedPath = set.values().next().value!.path;
    if (dir.path !== watchedPath) {
      for (const w of set) w.path = dir.path;
      return 'renamed';
    }
    if (op.rollSegment !== undefined) return normalizePath(op.rollSegment.stream) === dir.path ? 'rolled' : undefined;
    if (op.purge !== undefined) return 'rolled'; // cheap and rare: a drop may have been this stream's
    const file = result.file ?? (result.inode !== undefined ? state.fileByInode(result.inode) : undefined);
    if (file?.segment === undefined || !file.path.startsWith(dir.path + '/')) return undefined;
    if (op.completeFile !== undefined) return 'sealed';
    return op.allocateChunk !== undefined || op.sealChunk !== undefined || op.abandonChunk !== undefined ? 'chunk' : undefined;
  }

  /** This master stopped leading: every watcher ends. */
  endAll(error: GfsError): void {
    for (const set of [...this.byDir.values()]) for (const w of [...set]) w.end(error);
  }

  private add(dir: Dir, w: StreamWatcher): () => void {
    if (this.count >= limits.watchersMax) throw new GfsError('UNAVAILABLE', `too many watchers (${limits.watchersMax}); retry later`);
    let set = this.byDir.get(dir);
    if (set === undefined) this.byDir.set(dir, (set = new Set()));
    set.add(w);
    this.count++;
    return () => {
      if (!set!.delete(w)) return;
      this.count--;
      if (set!.size === 0 && this.byDir.get(dir) === set) this.byDir.delete(dir);
    };
  }

  /** The event for a stream now: its active segment and its newest segments, oldest first (no chunk lists). */
  private eventOf(host: StreamWatchHost, dir: Dir, reason: Reason, revision: number): WatchEvent {
    const state = this.state();
    const names = [...dir.children.keys()].sort().slice(-limits.streamWatchSegmentsMax);
    const segments: FileInfo[] = [];
    for (const name of names) {
      const f = dir.children.get(name)!;
      if (f.kind === 'file' && f.segment !== undefined) segments.push({ ...host.fileInfo(f), chunks: [] });
    }
    const active = state.activeSegment(dir);
    const ev: WatchEvent = { reason, revision, segments };
    if (active !== undefined) ev.file = host.fileInfo(active);
    return ev;
  }

  /** The Watch call for a stream path (stream-rpc.ts routes it here). */
  handler(host: StreamWatchHost): grpc.handleServerStreamingCall<WatchRequest, WatchEvent> {
    return (call) => {
      const fail = (e: unknown): void => { call.emit('error', toGrpcError(e) as grpc.ServiceError); };
      try {
        if (!host.isLeader()) throw host.notLeader();
        const dir = this.state().streamDir(call.request.path);
        if (dir === undefined) throw new GfsError('NO_SUCH_FILE', `no stream "${call.request.path}"`);
        const send = (ev: WatchEvent): void => {
          if (!call.write(ev) && call.writableLength > limits.watchQueueBytesMax) {
            stop();
            fail(new GfsError('UNAVAILABLE', 'watcher too far behind: watch again'));
          }
        };
        const stop = this.add(dir, {
          path: dir.path,
          event: (reason, revision) => {
            if (reason !== 'deleted') return send(this.eventOf(host, dir, reason, revision));
            send({ reason, revision, segments: [] });
            stop();
            call.end();
          },
          end: (error) => { stop(); fail(error); },
        });
        call.on('cancelled', stop);
        call.on('close', stop);
        call.on('error', stop);
        send(this.eventOf(host, dir, 'initial', host.revision()));
      } catch (e) {
        fail(e);
      }
    };
  }
}
