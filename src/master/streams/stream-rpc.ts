/**
 * The stream calls of the master service: CreateStream, and AppendTarget and SealLog
 * when their path is a stream directory (docs/LOG-STREAMS.md, "Streams, segments and
 * retention"). Any other path goes to the log handlers unchanged. The handler table is
 * rpc-service.ts.
 *
 * Invariants:
 * - A stream's policy always holds a concrete replication: 0 in a request means the
 *   master's default (create) or the stream's current one (update), resolved here, so
 *   applying the op never depends on a master's flags.
 * - An op is validated against the state before it is logged.
 */
import { MetaOp, type FileInfo, type MasterServer, type StreamPolicy } from '../../../gen/gfs';
import type { Clock } from '../../common/clock';
import type { GfsError } from '../../common/errors';
import { unaryHandler } from '../../common/grpc';
import { normalizePath } from '../../common/paths';
import type { ApplyResult, DirNode, FileNode, MetaState } from '../meta-state';
import type { StreamKeeper } from './stream-keeper';

export interface StreamRpcHost {
  state: () => MetaState;
  isLeader: () => boolean;
  notLeader: () => GfsError;
  revision: () => number;
  commit: (kind: string, op: MetaOp) => Promise<ApplyResult>;
  streams: StreamKeeper;
  replicationDefault: number;
  clock: Clock;
  fileInfo: (file: FileNode) => FileInfo;
  dirInfo: (dir: DirNode) => FileInfo;
}

type StreamCalls = Pick<MasterServer, 'createStream' | 'appendTarget' | 'sealLog' | 'watch'>;

export function streamHandlers(host: StreamRpcHost, logs: Pick<MasterServer, 'appendTarget' | 'sealLog' | 'watch'>): StreamCalls {
  const watch = host.streams.watch.handler(host);
  const appendTarget = unaryHandler(async (req: Parameters<MasterServer['appendTarget']>[0]['request']) => host.streams.appendTarget(req));
  const sealLog = unaryHandler(async (req: Parameters<MasterServer['sealLog']>[0]['request']) => {
    const sealed = await host.streams.rollNowFor(req.path);
    return sealed !== undefined ? host.fileInfo(sealed) : host.dirInfo(host.state().stat(normalizePath(req.path)) as DirNode);
  });
  return {
    createStream: unaryHandler(async (req) => {
      const path = normalizePath(req.path);
      const current = host.state().streamDir(path)?.stream?.policy;
      const replication = req.policy?.replication || (req.update ? current?.replication : undefined) || host.replicationDefault;
      const policy: StreamPolicy = { rollBytes: 0, rollAgeMs: 0, retentionAgeMs: 0, retentionBytes: 0, ...req.policy, replication };
      const op = MetaOp.fromPartial({ requestId: req.requestId, createStream: { path, policy, update: req.update, mtimeMs: host.clock.nowMs() } });
      if (!req.requestId || host.state().seenRequest(req.requestId) === undefined) host.state().validate(op);
      await host.commit('createStream', op);
      return host.dirInfo(host.state().stat(path) as DirNode);
    }),
    appendTarget: (call, callback) => (isStream(host, call.request.path) ? appendTarget : logs.appendTarget)(call, callback),
    sealLog: (call, callback) => (isStream(host, call.request.path) ? sealLog : logs.sealLog)(call, callback),
    watch: (call) => (isStream(host, call.request.path) ? watch : logs.watch)(call),
  };
}

/** A path that is a stream directory; a bad path is left to the log handlers to refuse. */
function isStream(host: StreamRpcHost, path: string): boolean {
  try {
    return host.streams.isStream(path);
  } catch {
    return false;
  }
}
