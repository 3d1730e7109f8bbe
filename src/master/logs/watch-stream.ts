/**
 * The Watch call (gRPC server streaming): an "initial" event with the file as it is,
 * then one per change the watch hub reports, until the file is deleted, the caller
 * goes away, or this master stops leading.
 *
 * Invariants:
 * - Backpressure: a watcher whose stream holds more than limits.watchQueueBytesMax
 *   unsent is cut off with UNAVAILABLE (it watches again and gets the state anew);
 *   the master never buffers without bound for a slow reader.
 * - Every watcher is removed from the hub when its stream ends, however it ends.
 */
import type * as grpc from '@grpc/grpc-js';
import type { FileInfo, WatchEvent, WatchRequest } from '../../../gen/gfs';
import { GfsError, toGrpcError } from '../../common/errors';
import { limits } from '../../common/limits';
import { normalizePath } from '../../common/paths';
import type { FileNode, MetaState } from '../meta-state';
import type { WatchHub } from './watch-hub';

export interface WatchStreamHost {
  state: () => MetaState;
  hub: WatchHub;
  isLeader: () => boolean;
  notLeader: () => GfsError;
  /** The applied index now (an event's revision). */
  revision: () => number;
  fileInfo: (file: FileNode) => FileInfo;
}

export function watchHandler(host: WatchStreamHost): grpc.handleServerStreamingCall<WatchRequest, WatchEvent> {
  return (call) => {
    const fail = (e: unknown): void => {
      call.emit('error', toGrpcError(e) as grpc.ServiceError);
    };
    try {
      if (!host.isLeader()) throw host.notLeader();
      const node = host.state().stat(normalizePath(call.request.path));
      if (node.kind === 'dir') throw new GfsError('IS_A_DIRECTORY', `"${node.path}" is a directory`);
      const send = (ev: WatchEvent): void => {
        if (!call.write(ev) && call.writableLength > limits.watchQueueBytesMax) {
          stop();
          fail(new GfsError('UNAVAILABLE', 'watcher too far behind: watch again'));
        }
      };
      const stop = host.hub.add(node.inode, {
        event: (reason, file, revision) => {
          if (file === undefined) {
            send({ reason, revision, segments: [] });
            stop();
            call.end();
            return;
          }
          send({ file: host.fileInfo(file), reason, revision, segments: [] });
        },
        end: (error) => {
          stop();
          fail(error);
        },
      });
      call.on('cancelled', stop);
      call.on('close', stop);
      call.on('error', stop);
      send({ file: host.fileInfo(node), reason: 'initial', revision: host.revision(), segments: [] });
    } catch (e) {
      fail(e);
    }
  };
}
