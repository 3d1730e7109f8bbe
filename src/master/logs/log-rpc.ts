/**
 * The log calls of the master service (AppendTarget, SealLog, Watch) and what stat,
 * list and delete do differently for logs: report an open log's committed length, and
 * seal open logs before they go to trash. The handler table is rpc-service.ts.
 *
 * Invariants:
 * - Every call here needs the serving leader (AppendTarget and SealLog through the
 *   service's wrapper, Watch by its own check: it is a stream).
 * - A stat or list never reports an open log shorter than an acknowledged byte
 *   (LogService.committed).
 */
import type { FileInfo, MasterServer } from '../../../gen/gfs';
import { unaryHandler } from '../../common/grpc';
import type { GfsError } from '../../common/errors';
import type { FileNode, MetaState } from '../meta-state';
import type { LogService } from './log-service';
import { watchHandler } from './watch-stream';

export interface LogRpcHost {
  state: () => MetaState;
  logs: LogService;
  isLeader: () => boolean;
  notLeader: () => GfsError;
  revision: () => number;
  /** The file as FileInfo; openLength is the open chunk's committed length. */
  fileInfo: (file: FileNode, openLength?: number) => FileInfo;
}

export function logHandlers(host: LogRpcHost): Pick<MasterServer, 'appendTarget' | 'sealLog' | 'watch'> {
  return {
    appendTarget: unaryHandler(async (req) => host.logs.targets.appendTarget(req)),
    sealLog: unaryHandler(async (req) => host.fileInfo(await host.logs.targets.sealLog(req.path, req.requestId))),
    watch: watchHandler({ ...host, hub: host.logs.hub, fileInfo: (f) => host.fileInfo(f) }),
  };
}

/** FileInfo of a file as a stat answers it: an open log with its committed length. */
export async function statInfo(host: LogRpcHost, f: FileNode): Promise<FileInfo> {
  if (f.log?.open !== true) return host.fileInfo(f);
  const { file, openLength } = await host.logs.committed(f);
  return host.fileInfo(file, openLength);
}

/**
 * Before a delete of `path` (or an overwrite of the file there, filesOnly): seal the
 * open logs it would trash, so their acknowledged tail is kept in trash. A seal that
 * cannot reach any replica is skipped (the op then drops that open chunk).
 */
export async function sealBeforeDelete(host: LogRpcHost, path: string, filesOnly = false): Promise<void> {
  const state = host.state();
  let node;
  try {
    node = state.stat(path);
  } catch {
    return; // nothing there: the op itself reports it
  }
  if (filesOnly && node.kind === 'dir') return;
  const files = node.kind === 'file' ? [node] : state.list(path, { recursive: true, limit: 0, startAfter: '', filesOnly: true }).entries as FileNode[];
  await Promise.all(files.map(async (f) => {
    const open = f.log?.open === true ? state.openChunk(f) : undefined;
    if (open !== undefined) await host.logs.sealer.seal(f.inode, open.handle, 'the log is being deleted').catch(() => undefined);
  }));
}
