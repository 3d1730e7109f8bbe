/**
 * The master's metadata state machine (DESIGN §3-4): the namespace tree, pending
 * puts, trash, the chunk table and the request-id table, changed only by applying
 * MetaOps in log order.
 *
 * apply() is pure and deterministic: no I/O, no clock, no randomness. Times, inode
 * ids and chunk handles are chosen by the caller and carried in the op, so replaying
 * the same ops from empty (or from a snapshot) gives the same state on every master.
 * Every op is checked in full before anything changes: an op that throws leaves the
 * state exactly as it was, and validate(op) runs the same checks without applying,
 * so the leader only logs ops that apply cleanly.
 *
 * Invariants (assertInvariants() checks them all with a full walk; apply asserts, in
 * production too, the ones an op can break where it touches: ids only grow, a new
 * handle is in no file yet, a file's chunk list and the chunk table agree on the
 * chunks the op moved, a trashed file is no longer reachable by its path):
 * - A chunk handle belongs to at most one file, and the chunk table holds exactly the
 *   chunks of the files it knows (pending, in the tree, in trash).
 * - nextHandle > every handle ever seen and nextInode > every inode ever seen: apply
 *   refuses an id below them, so a handle or inode is never reused, even after the
 *   file that had it is gone (stale replicas and stale writers stay detectable).
 * - A sealed file's size is the sum of its chunk lengths and all its chunks are
 *   committed. Chunk offsets are not stored: chunk i starts where chunk i-1 ends
 *   (chunkOffsets()), so they are contiguous by construction.
 * - A file is in exactly one place: pending (writing, invisible, not in the tree),
 *   the tree (visible), or trash (hidden, chunks still referenced until purged).
 * - Nothing that is serialized depends on Map iteration order except the request-id
 *   table, whose order is log order; everything else is written sorted.
 */
import assert from 'node:assert/strict';
import type {
  MetaOp,
  OpAbandonChunk,
  OpAbortFile,
  OpAllocateChunk,
  OpCommitChunk,
  OpCompleteFile,
  OpCreateFile,
  OpDelete,
  OpMkdir,
  OpPurge,
  OpDecommission,
  OpRename,
  OpRestore,
  OpSealChunk,
  OpSetLog,
  OpCreateStream,
  OpRollSegment,
  StreamPolicy,
  OpConcatFiles,
} from '../../gen/gfs';
import { GfsError } from '../common/errors';
import { limits } from '../common/limits';
import { normalizeLoggedFilePath as normalizeFilePath, normalizeLoggedPath as normalizePath } from '../common/paths';
import { ChunkTable } from './chunk-table';
import { Dir, Namespace, childPath, comparePaths, type Probe, type TreeNode } from './namespace';
import {
  opKinds,
  type ApplyResult,
  type ChunkLifecycleState,
  type ChunkRef,
  type ChunkSummary,
  type DirNode,
  type FileNode,
  type InodeLocation,
  type ListOptions,
  type ListResult,
  type MetaCounts,
  type MetaStateOptions,
  type OpKind,
  type TrashEntry,
  type StreamPolicyState,
} from './meta-types';
import { RequestIdTable, type RememberedResult } from './request-ids';
import { checkWriterRecords, mergeWriterRecords } from './logs/writer-windows';
import { segmentName } from '../common/segment-name';
import { AuthState, type AuthPrepared } from './auth/auth-state';
import { decodeSnapshot, encodeSnapshot, snapshotCorrupt, type TrashedFile } from './snapshot-codec';

// The types moved to meta-types.ts (so nothing imports back into this module); they are
// re-exported here for the modules that take them from the state machine.
export { chunkOffsets, opKinds } from './meta-types';
export type {
  ApplyResult,
  ChunkLifecycleState,
  ChunkRef,
  ChunkSummary,
  DirNode,
  FileNode,
  InodeLocation,
  ListOptions,
  ListResult,
  MetaCounts,
  MetaStateOptions,
  OpKind,
  TrashEntry,
} from './meta-types';

/** A checked op, ready to change the state. run() never throws a GfsError. */
interface Prepared {
  replay?: ApplyResult;
  run: () => ApplyResult;
}

export class MetaState {
  private inodeNext = 1;
  private handleNext = 1;
  private readonly tree = new Namespace();
  /** Every known file by inode: pending, in the tree, or in trash. */
  private readonly files = new Map<number, FileNode>();
  /** Insertion order is inode order: creates must use ascending inodes. */
  private readonly pending = new Map<number, FileNode>();
  private readonly trashed = new Map<number, TrashEntry>();
  /** Chunkservers being drained: node id → when the drain started. */
  private readonly draining = new Map<string, number>();
  private readonly chunks = new ChunkTable();
  private readonly requests: RequestIdTable;
  /** Tokens and namespace settings (auth/auth-state.ts): read them, change them only through ops. */
  readonly auth = new AuthState();

  constructor(options: MetaStateOptions = {}) {
    this.requests = new RequestIdTable(options.requestIdsMax ?? limits.requestIdsMax);
  }

  /** The smallest inode a create may use. Read-only: only apply() moves it. */
  get nextInode(): number {
    return this.inodeNext;
  }

  /** The smallest handle an allocate may use. Read-only: only apply() moves it. */
  get nextHandle(): number {
    return this.handleNext;
  }

  // ------------------------------------------------------------------ apply

  apply(op: MetaOp): ApplyResult {
    const prepared = this.prepare(op);
    if (prepared.replay !== undefined) return prepared.replay;
    const ids = [this.inodeNext, this.handleNext] as const;
    const result = prepared.run();
    assert.ok(this.inodeNext >= ids[0] && this.handleNext >= ids[1], `${result.op} moved an id counter back`);
    const id = op.requestId ?? '';
    if (id !== '') this.requests.remember(id, remembered(result));
    return result;
  }

  /** Throws the GfsError that apply(op) would throw; changes nothing. A replayed request id is valid. */
  validate(op: MetaOp): void {
    this.prepare(op);
  }

  /** The first result of an already applied request id, so a retry needs no new record. */
  seenRequest(id: string): ApplyResult | undefined {
    const r = id === '' ? undefined : this.requests.get(id);
    return r === undefined ? undefined : this.replayOf(r);
  }

  private prepare(op: MetaOp): Prepared {
    const kind = opKindOf(op);
    const id = op.requestId ?? '';
    if (id !== '') {
      if (typeof id !== 'string' || id.length > limits.requestIdLengthMax) {
        throw new GfsError('INVALID_ARGUMENT', `request id longer than ${limits.requestIdLengthMax} characters`);
      }
      const seen = this.requests.get(id);
      if (seen !== undefined) {
        if (seen.op !== kind) {
          throw new GfsError('INVALID_ARGUMENT', `request id "${id}" was already used for ${seen.op}, not ${kind}`);
        }
        const replay = this.replayOf(seen);
        return { replay, run: () => replay };
      }
    }
    switch (kind) {
      case 'createFile': return this.prepareCreate(op.createFile!);
      case 'allocateChunk': return this.prepareAllocate(op.allocateChunk!);
      case 'commitChunk': return this.prepareCommit(op.commitChunk!);
      case 'abandonChunk': return this.prepareAbandon(op.abandonChunk!);
      case 'completeFile': return this.prepareComplete(op.completeFile!);
      case 'abortFile': return this.prepareAbort(op.abortFile!);
      case 'mkdir': return this.prepareMkdir(op.mkdir!);
      case 'rename': return this.prepareRename(op.rename!);
      case 'delete': return this.prepareDelete(op.delete!);
      case 'purge': return this.preparePurge(op.purge!);
      case 'decommission': return this.prepareDecommission(op.decommission!);
      case 'restore': return this.prepareRestore(op.restore!);
      case 'sealChunk': return this.prepareSealChunk(op.sealChunk!);
      case 'setLog': return this.prepareSetLog(op.setLog!);
      case 'createStream': return this.prepareCreateStream(op.createStream!);
      case 'rollSegment': return this.prepareRollSegment(op.rollSegment!);
      case 'concatFiles': return this.prepareConcat(op.concatFiles!);
      case 'tokenCreate': return authOp(kind, this.auth.prepareTokenCreate(op.tokenCreate!));
      case 'tokenRevoke': return authOp(kind, this.auth.prepareTokenRevoke(op.tokenRevoke!));
      case 'namespaceSet': return authOp(kind, this.auth.prepareNamespaceSet(op.namespaceSet!));
    }
  }

  private replayOf(r: RememberedResult): ApplyResult {
    const result: ApplyResult = { op: r.op, replayed: true };
    if (r.inode !== undefined) {
      result.inode = r.inode;
      const file = this.files.get(r.inode);
      if (file !== undefined) result.file = file;
    }
    if (r.handle !== undefined) result.handle = r.handle;
    if (r.version !== undefined) result.version = r.version;
    return result;
  }

  private prepareCreate(o: OpCreateFile): Prepared {
    const path = normalizeFilePath(o.path);
    const inode = positiveId(o.inode, 'inode');
    if (inode < this.inodeNext) {
      throw new GfsError('INVALID_ARGUMENT', `inode ${inode} was already handed out (next is ${this.inodeNext})`);
    }
    const replication = o.replication === 0 ? limits.replicationDefault : o.replication;
    if (!Number.isInteger(replication) || replication < 1 || replication > limits.replicationMax) {
      throw new GfsError('INVALID_ARGUMENT', `replication must be 1..${limits.replicationMax}, not ${o.replication}`);
    }
    const mtimeMs = count(o.mtimeMs, 'mtime');
    const contentType = text(o.contentType, 'content type');
    const metadata = sortedMetadata(o.metadata);
    const overwrite = o.overwrite === true;
    this.refuseInStream(path, 'create a file');
    this.probeCreate(path, overwrite);
    return {
      run: () => {
        assert.ok(!this.files.has(inode));
        const file: FileNode = {
          kind: 'file', inode, path, size: 0, mtimeMs, state: 'writing', chunks: [], replication,
          contentType, metadata, checksum: '', visible: false, overwrite,
        };
        this.files.set(inode, file);
        this.pending.set(inode, file);
        this.inodeNext = inode + 1;
        assert.ok(Number.isSafeInteger(this.inodeNext));
        return { op: 'createFile', inode, file };
      },
    };
  }

  private prepareAllocate(o: OpAllocateChunk): Prepared {
    const file = this.fileByInode(o.inode)?.log !== undefined ? this.checkAppendable(o.inode, true) : this.checkWritable(o.inode);
    const handle = positiveId(o.handle, 'chunk handle');
    if (handle < this.handleNext) {
      throw new GfsError('INVALID_ARGUMENT', `chunk handle ${handle} was already handed out (next is ${this.handleNext})`);
    }
    const version = count(o.version, 'chunk version');
    return {
      run: () => {
        assert.ok(handle >= this.handleNext, `chunk handle ${handle} would be reused`);
        const ref: ChunkRef = { handle, version, length: 0, committed: false };
        file.chunks.push(ref);
        this.chunks.add(file, ref);
        this.handleNext = handle + 1;
        assert.ok(Number.isSafeInteger(this.handleNext));
        return { op: 'allocateChunk', inode: file.inode, handle, version, file };
      },
    };
  }

  private prepareCommit(o: OpCommitChunk): Prepared {
    const file = this.checkWritable(o.inode);
    const ref = this.chunkOf(file, o.handle);
    const length = count(o.length, 'chunk length');
    if (length > limits.chunkBytesMax) {
      throw new GfsError('INVALID_ARGUMENT', `chunk length ${length} is over the chunk size ${limits.chunkBytesMax}`);
    }
    // A writer that sealed the surviving replicas at a new version commits it; versions only grow.
    const version = Math.max(ref.version, count(o.version, 'chunk version'));
    const result = (): ApplyResult => ({ op: 'commitChunk', inode: file.inode, handle: ref.handle, file });
    if (ref.committed) {
      // A retried commit (CommitChunk has no request id) is a no-op; a different
      // length would move the offsets of the chunks after it.
      if (ref.length !== length) {
        throw new GfsError('INVALID_ARGUMENT', `chunk ${ref.handle} is already committed with length ${ref.length}, not ${length}`);
      }
      return { run: () => { ref.version = version; return result(); } };
    }
    return {
      run: () => {
        ref.length = length;
        ref.version = version;
        ref.committed = true;
        return result();
      },
    };
  }

  private prepareAbandon(o: OpAbandonChunk): Prepared {
    // A log's open chunk may be abandoned while nothing was appended to it (its lease grant failed).
    const file = this.fileByInode(o.inode)?.log !== undefined ? this.checkAppendable(o.inode, false) : this.checkWritable(o.inode);
    const ref = this.chunkOf(file, o.handle);
    if (file.log !== undefined && (ref.committed || file.chunks.at(-1) !== ref)) {
      throw new GfsError('FILE_NOT_WRITABLE', `chunk ${ref.handle} is not the open chunk of log "${file.path}"`);
    }
    return {
      run: () => {
        const i = file.chunks.lastIndexOf(ref);
        assert.ok(i >= 0);
        file.chunks.splice(i, 1);
        this.chunks.remove(ref.handle);
        assert.ok(!file.chunks.includes(ref), `chunk ${ref.handle} is still in file ${file.inode}`);
        return { op: 'abandonChunk', inode: file.inode, handle: ref.handle, file };
      },
    };
  }

  private prepareComplete(o: OpCompleteFile): Prepared {
    if (this.fileByInode(o.inode)?.log !== undefined) return this.prepareCloseLog(o);
    const file = this.checkWritable(o.inode);
    assert.ok(this.pending.get(file.inode) === file, 'every writing file is a pending put');
    let sum = 0;
    for (const c of file.chunks) {
      if (!c.committed) {
        throw new GfsError('FILE_NOT_WRITABLE', `chunk ${c.handle} of "${file.path}" is not committed`);
      }
      sum += c.length;
    }
    const size = count(o.size, 'size');
    if (size !== sum) {
      throw new GfsError('INVALID_ARGUMENT', `size ${size} of "${file.path}" is not the ${sum} bytes its chunks hold`);
    }
    const checksum = text(o.checksum, 'checksum');
    const mtimeMs = count(o.mtimeMs, 'mtime');
    const added = sortedMetadata(o.metadata?.entries);
    // Checked again here: another put of the same path may have completed first.
    const existing = this.probeCreate(file.path, file.overwrite);
    if (o.replaces !== undefined) {
      const inode = positiveId(o.replaces.inode, 'replaced inode');
      if (existing.kind !== 'file' || existing.file.inode !== inode) {
        throw new GfsError('PRECONDITION_FAILED', `"${file.path}" is no longer file ${inode}`);
      }
    }
    return {
      run: () => {
        const trashed = this.trashReplaced(existing, mtimeMs);
        if (Object.keys(added).length > 0) file.metadata = sortedMetadata({ ...file.metadata, ...added });
        file.size = size;
        file.checksum = checksum;
        file.mtimeMs = mtimeMs;
        file.state = 'sealed';
        file.visible = true;
        this.pending.delete(file.inode);
        this.tree.linkFile(file, mtimeMs);
        assert.ok(this.tree.lookup(file.path) === file, `completed file ${file.inode} is not at "${file.path}"`);
        return { op: 'completeFile', inode: file.inode, file, trashed };
      },
    };
  }

  private prepareAbort(o: OpAbortFile): Prepared {
    const inode = positiveId(o.inode, 'inode');
    const file = this.pending.get(inode);
    if (file === undefined) {
      if (this.files.has(inode)) throw new GfsError('FILE_NOT_WRITABLE', `file ${inode} is complete; delete it instead`);
      throw new GfsError('NO_SUCH_FILE', `no pending file ${inode}`);
    }
    return {
      run: () => {
        // Its chunks become orphans: their replicas are reclaimed by GC.
        this.releaseChunks(file);
        this.pending.delete(inode);
        this.files.delete(inode);
        return { op: 'abortFile', inode };
      },
    };
  }

  /**
   * Makes a pending create a log: it is linked into the tree at once (visible, empty,
   * open for appends), replacing a file there if the create asked to overwrite.
   */
  private prepareSetLog(o: OpSetLog): Prepared {
    const inode = positiveId(o.inode, 'inode');
    const file = this.pending.get(inode);
    if (file === undefined) throw new GfsError('NO_SUCH_FILE', `no pending file ${inode} to make a log`);
    if (file.chunks.length > 0) throw new GfsError('FILE_NOT_WRITABLE', `"${file.path}" already has chunks`);
    const existing = this.probeCreate(file.path, file.overwrite);
    return {
      run: () => {
        const trashed = this.trashReplaced(existing, file.mtimeMs);
        file.log = { open: true, writers: new Map() };
        file.visible = true;
        this.pending.delete(inode);
        this.tree.linkFile(file, file.mtimeMs);
        assert.ok(this.tree.lookup(file.path) === file && file.state === 'writing');
        return { op: 'setLog', inode, file, trashed };
      },
    };
  }

  /**
   * Seals a log's open chunk at the length its surviving replicas agreed on: the chunk
   * is committed at a version that only grows, the log's size grows by its length, and
   * the writers' last records join the log's exactly-once windows.
   */
  private prepareSealChunk(o: OpSealChunk): Prepared {
    const file = this.checkAppendable(o.inode, false);
    const ref = this.chunkOf(file, o.handle);
    if (ref.committed || file.chunks.at(-1) !== ref) {
      throw new GfsError('FILE_NOT_WRITABLE', `chunk ${ref.handle} is not the open chunk of log "${file.path}"`);
    }
    const length = count(o.length, 'chunk length');
    if (length > limits.chunkBytesMax) {
      throw new GfsError('INVALID_ARGUMENT', `chunk length ${length} is over the chunk size ${limits.chunkBytesMax}`);
    }
    const version = count(o.version, 'chunk version');
    if (version < ref.version) throw new GfsError('INVALID_ARGUMENT', `chunk ${ref.handle}: version ${version} is below ${ref.version}`);
    const writers = o.writers ?? [];
    checkWriterRecords(writers, file.size, file.size + length, limits.appendWriterIdBytesMax);
    const mtimeMs = count(o.mtimeMs, 'mtime');
    return {
      run: () => {
        ref.length = length;
        ref.version = version;
        ref.committed = true;
        file.size += length;
        file.mtimeMs = Math.max(file.mtimeMs, mtimeMs);
        mergeWriterRecords(file.log!.writers, writers, limits.appendDedupPerWriter, limits.appendWritersPerLogMax);
        return { op: 'sealChunk', inode: file.inode, handle: ref.handle, version, file };
      },
    };
  }

  /** OpCompleteFile of a log closes it: no open chunk left, size = the sum of its chunks. */
  private prepareCloseLog(o: OpCompleteFile): Prepared {
    const file = this.checkAppendable(o.inode, true);
    const size = count(o.size, 'size');
    if (size !== file.size) throw new GfsError('INVALID_ARGUMENT', `size ${size} of log "${file.path}" is not its ${file.size} bytes`);
    const checksum = text(o.checksum, 'checksum');
    const mtimeMs = count(o.mtimeMs, 'mtime');
    return {
      run: () => {
        file.log!.open = false;
        file.state = 'sealed';
        file.checksum = checksum;
        file.mtimeMs = Math.max(file.mtimeMs, mtimeMs);
        return { op: 'completeFile', inode: file.inode, file };
      },
    };
  }

  /**
   * A new file made of the parts' chunks, in order, without copying data: the parts
   * (sealed, non-log files in the tree) leave the namespace for good (not to trash:
   * their chunk refs, unchanged, now belong to the new file), and the new file is linked
   * at its path, sealed, with the same create and replace preconditions as a complete.
   * Its whole-file checksum is '' (the parts' checksums do not combine).
   */
  private prepareConcat(o: OpConcatFiles): Prepared {
    const path = normalizeFilePath(o.path);
    const inode = positiveId(o.inode, 'inode');
    if (inode < this.inodeNext) throw new GfsError('INVALID_ARGUMENT', `inode ${inode} was already handed out (next is ${this.inodeNext})`);
    const replication = o.replication === 0 || o.replication === undefined ? limits.replicationDefault : o.replication;
    if (!Number.isInteger(replication) || replication < 1 || replication > limits.replicationMax) {
      throw new GfsError('INVALID_ARGUMENT', `replication must be 1..${limits.replicationMax}, not ${o.replication}`);
    }
    const mtimeMs = count(o.mtimeMs, 'mtime');
    const contentType = text(o.contentType, 'content type');
    const metadata = sortedMetadata(o.metadata);
    const parts = this.concatParts(o.parts ?? []);
    this.refuseInStream(path, 'concatenate files');
    const existing = this.probeCreate(path, o.overwrite === true);
    if (existing.kind === 'file' && parts.some((p) => p.file === existing.file)) {
      throw new GfsError('INVALID_ARGUMENT', `"${path}" is one of the parts it would be made of`);
    }
    if (o.replaces !== undefined) {
      const replaced = positiveId(o.replaces.inode, 'replaced inode');
      if (existing.kind !== 'file' || existing.file.inode !== replaced) throw new GfsError('PRECONDITION_FAILED', `"${path}" is no longer file ${replaced}`);
    }
    return {
      run: () => {
        const chunks: ChunkRef[] = [];
        for (const { file: part, parent } of parts) {
          this.tree.unlinkFile(parent, part, mtimeMs);
          for (const ref of part.chunks) { this.chunks.remove(ref.handle); chunks.push(ref); }
          part.chunks = [];
          this.files.delete(part.inode);
        }
        const trashed = this.trashReplaced(existing, mtimeMs);
        const file: FileNode = {
          kind: 'file', inode, path, size: chunks.reduce((n, c) => n + c.length, 0), mtimeMs, state: 'sealed', chunks, replication,
          contentType, metadata, checksum: '', visible: true, overwrite: o.overwrite === true,
        };
        for (const ref of chunks) this.chunks.add(file, ref);
        this.files.set(inode, file);
        this.tree.linkFile(file, mtimeMs);
        this.inodeNext = inode + 1;
        assert.ok(this.tree.lookup(path) === file && Number.isSafeInteger(this.inodeNext), `concatenated file ${inode} is not at "${path}"`);
        return { op: 'concatFiles', inode, file, trashed, consumed: parts.map((p) => ({ inode: p.file.inode, path: p.file.path })) };
      },
    };
  }

  /** The parts of a concatenation: distinct sealed non-log files in the tree, with their directories. */
  private concatParts(inodes: number[]): { file: FileNode; parent: Dir }[] {
    if (inodes.length === 0 || inodes.length > limits.concatPartsMax) {
      throw new GfsError('INVALID_ARGUMENT', `a concatenation has 1..${limits.concatPartsMax} parts, not ${inodes.length}`);
    }
    const seen = new Set<number>();
    return inodes.map((raw) => {
      const inode = positiveId(raw, 'part inode');
      const file = this.files.get(inode);
      if (file === undefined || this.inodeLocation(inode) !== 'tree') throw new GfsError('NO_SUCH_FILE', `no file with inode ${inode} in the namespace`);
      if (seen.has(inode)) throw new GfsError('INVALID_ARGUMENT', `part ${inode} is named twice`);
      seen.add(inode);
      if (file.state !== 'sealed' || file.log !== undefined) throw new GfsError('FILE_NOT_WRITABLE', `part "${file.path}" is not a sealed file`);
      // A stream's segments stay in it (its offsets are made of them): never a part.
      if (file.segment !== undefined) throw new GfsError('INVALID_ARGUMENT', `part "${file.path}" is a stream segment`);
      const found = this.tree.probe(file.path);
      assert.ok(found.kind === 'file' && found.file === file, `file ${inode} is not at "${file.path}"`);
      return { file, parent: found.parent };
    });
  }

  private prepareMkdir(o: OpMkdir): Prepared {
    const path = normalizePath(o.path);
    const mtimeMs = count(o.mtimeMs, 'mtime');
    const found = this.tree.probe(path);
    if (found.kind === 'file') throw new GfsError('ALREADY_EXISTS', `"${path}" is a file`);
    if (found.kind === 'none') this.refuseInStream(path, 'make a directory');
    return {
      run: () => {
        if (found.kind === 'none') this.tree.ensureDir(path, mtimeMs);
        return { op: 'mkdir' };
      },
    };
  }

  /** A file that an op replaces goes to trash (restorable), like a delete; returns its inode. */
  private trashReplaced(existing: Probe, mtimeMs: number): number[] {
    if (existing.kind !== 'file') return [];
    this.tree.unlinkFile(existing.parent, existing.file, mtimeMs);
    this.toTrash(existing.file, mtimeMs);
    return [existing.file.inode];
  }

  /** The node an op moves or removes: it exists and is not the root. */
  private locateMovable(rawPath: string, verb: string): { path: string; node: TreeNode; parent: Dir } {
    const path = normalizePath(rawPath);
    if (path === '/') throw new GfsError('INVALID_ARGUMENT', `cannot ${verb} /`);
    const found = this.tree.find(path);
    if (found === undefined) throw new GfsError('NO_SUCH_FILE', `no such file or directory: "${path}"`);
    assert.ok(found.parent !== undefined, 'only the root has no parent');
    return { path, node: found.node, parent: found.parent };
  }

  private prepareRename(o: OpRename): Prepared {
    const mtimeMs = count(o.mtimeMs, 'mtime');
    const { path: source, node, parent } = this.locateMovable(o.source, 'rename');
    const target = node.kind === 'file' ? normalizeFilePath(o.target) : normalizePath(o.target);
    if (target === source) return { run: () => ({ op: 'rename' }) };
    this.refuseInStream(target, 'move anything');
    if (node.kind === 'dir' && (target + '/').startsWith(source + '/')) {
      throw new GfsError('INVALID_ARGUMENT', `cannot move "${source}" into itself ("${target}")`);
    }
    const existing = this.tree.probe(target);
    if (existing.kind === 'dir') throw new GfsError('ALREADY_EXISTS', `"${target}" is an existing directory`);
    if (existing.kind === 'file') {
      if (node.kind === 'dir') throw new GfsError('ALREADY_EXISTS', `cannot replace the file "${target}" with a directory`);
      if (o.overwrite !== true) throw new GfsError('ALREADY_EXISTS', `"${target}" exists`);
    }
    return {
      run: () => {
        const trashed = this.trashReplaced(existing, mtimeMs);
        this.tree.move(parent, node, target, mtimeMs);
        return { op: 'rename', trashed };
      },
    };
  }

  private prepareDelete(o: OpDelete): Prepared {
    const mtimeMs = count(o.mtimeMs, 'mtime');
    const { path, node, parent } = this.locateMovable(o.path, 'delete');
    if (node.kind === 'file') {
      return {
        run: () => {
          this.tree.unlinkFile(parent, node, mtimeMs);
          this.toTrash(node, mtimeMs);
          return { op: 'delete', trashed: [node.inode] };
        },
      };
    }
    if (node.children.size > 0 && o.recursive !== true) {
      throw new GfsError('DIRECTORY_NOT_EMPTY', `"${path}" is not empty`);
    }
    return {
      run: () => {
        const files = this.tree.removeDir(parent, node, mtimeMs);
        const trashed = files.map((f) => f.inode).sort((a, b) => a - b);
        for (const f of files) this.toTrash(f, mtimeMs);
        return { op: 'delete', trashed };
      },
    };
  }

  /**
   * Starts or ends draining a chunkserver (by node id). Idempotent both ways, so a
   * retried or repeated command changes nothing.
   */
  private prepareDecommission(o: OpDecommission): Prepared {
    const nodeId = o.nodeId ?? '';
    if (nodeId === '' || nodeId.length > limits.nodeIdLengthMax || /[\s\u0000]/.test(nodeId)) {
      throw new GfsError('INVALID_ARGUMENT', `bad chunkserver id "${nodeId}"`);
    }
    const sinceMs = count(o.mtimeMs, 'mtime');
    return {
      run: () => {
        if (o.cancel) this.draining.delete(nodeId);
        else if (!this.draining.has(nodeId)) this.draining.set(nodeId, sinceMs);
        return { op: 'decommission' };
      },
    };
  }

  /** Chunkservers being drained (decommissioned), with the time each drain started. */
  drainingNodes(): ReadonlyMap<string, number> {
    return this.draining;
  }

  /**
   * Removes files from the trash for good: their chunks leave the chunk table, so GC
   * sees their replicas as orphans (and deletes them only after the orphan grace).
   * Every inode must be in the trash, once: a purge is decided by the leader from the
   * trash it sees, so anything else is a stale or malformed op.
   */
  private preparePurge(o: OpPurge): Prepared {
    const inodes = o.inodes ?? [];
    if (inodes.length === 0) throw new GfsError('INVALID_ARGUMENT', 'purge of no files');
    const seen = new Set<number>();
    for (const raw of inodes) {
      const inode = positiveId(raw, 'inode');
      if (seen.has(inode)) throw new GfsError('INVALID_ARGUMENT', `inode ${inode} is purged twice in one op`);
      seen.add(inode);
      if (!this.trashed.has(inode) && this.retainedSegment(inode) === undefined) {
        throw new GfsError('NO_SUCH_FILE', `file ${inode} is not in the trash (nor a sealed stream segment retention may drop)`);
      }
    }
    return {
      run: () => {
        const released: number[] = [];
        for (const inode of seen) {
          const file = this.files.get(inode);
          assert.ok(file !== undefined);
          const segment = this.trashed.has(inode) ? undefined : this.retainedSegment(inode);
          // Retention drops a sealed segment straight from its stream (docs/LOG-STREAMS.md):
          // its bytes are past their retention, so a trash period would only keep them longer.
          if (segment !== undefined) this.dropSegment(segment.stream, file);
          else assert.ok(this.trashed.has(inode));
          released.push(...this.releaseChunks(file));
          this.trashed.delete(inode);
          this.files.delete(inode);
        }
        return { op: 'purge', released };
      },
    };
  }

  /**
   * A sealed segment in its stream directory (which retention may drop), with that
   * directory. The active segment is open, so never one; a segment closed by SealLog
   * whose roll was not committed yet is sealed, so it may go.
   */
  private retainedSegment(inode: number): { file: FileNode; stream: Dir } | undefined {
    const file = this.files.get(inode);
    if (file?.segment === undefined || !file.visible || file.state !== 'sealed') return undefined;
    const found = this.tree.find(file.path);
    const stream = found?.parent;
    if (found?.node !== file || stream?.stream === undefined) return undefined;
    assert.ok(file.log?.open !== true, 'a sealed segment is closed');
    return { file, stream };
  }

  /** Retention takes a sealed segment out of its stream; if the stream still named it active, its roll ends here. */
  private dropSegment(dir: Dir, file: FileNode): void {
    const state = dir.stream!;
    if (state.activeInode === file.inode) {
      state.nextBaseOffset = Math.max(state.nextBaseOffset, file.segment!.baseOffset + file.size);
      state.activeInode = 0;
    }
    this.tree.unlinkFile(dir, file, dir.mtimeMs);
  }

  // ------------------------------------------------------------------ streams

  /**
   * Makes a stream directory (missing parents too), or with update changes an existing
   * stream's policy. The path must be free, or an empty directory that becomes a stream.
   */
  private prepareCreateStream(o: OpCreateStream): Prepared {
    const path = normalizePath(o.path);
    if (path === '/') throw new GfsError('INVALID_ARGUMENT', 'the root cannot be a stream');
    const policy = streamPolicy(o.policy);
    const mtimeMs = count(o.mtimeMs, 'mtime');
    const found = this.tree.probe(path);
    if (found.kind === 'file') throw new GfsError('ALREADY_EXISTS', `"${path}" is a file`);
    if (o.update === true) {
      if (found.kind !== 'dir' || found.dir.stream === undefined) throw new GfsError('NO_SUCH_FILE', `no stream "${path}"`);
      const state = found.dir.stream;
      return { run: () => { state.policy = policy; return { op: 'createStream' }; } };
    }
    if (found.kind === 'dir' && (found.dir.stream !== undefined || found.dir.children.size > 0)) {
      throw new GfsError('ALREADY_EXISTS', `"${path}" is ${found.dir.stream !== undefined ? 'a stream' : 'a directory that is not empty'}`);
    }
    this.refuseInStream(path, 'make a stream');
    return {
      run: () => {
        const dir = this.tree.ensureDir(path, mtimeMs);
        dir.stream = { policy, activeInode: 0, nextBaseOffset: 0, lastCreatedMs: 0 };
        return { op: 'createStream' };
      },
    };
  }

  /**
   * A stream's active segment rolls (sealed_inode: it is closed; its open chunk was sealed
   * by an OpSealChunk before) and/or a new empty active segment is created (new_segment).
   * The new segment's name is a function of the op's time and base offset, and its time is
   * after every earlier segment's, so names sort by time.
   */
  private prepareRollSegment(o: OpRollSegment): Prepared {
    const found = this.tree.lookup(normalizePath(o.stream));
    if (found?.kind !== 'dir' || found.stream === undefined) throw new GfsError('NO_SUCH_FILE', `no stream "${o.stream}"`);
    const dir = found;
    const state = found.stream;
    const mtimeMs = count(o.mtimeMs, 'mtime');
    const sealing = o.sealedInode === 0 ? undefined : this.rollingSegment(dir, o.sealedInode);
    const creating = (o.newSegment ?? '') === '' ? undefined : this.checkNewSegment(o, dir, sealing);
    if (sealing === undefined && creating === undefined) throw new GfsError('INVALID_ARGUMENT', 'a roll that seals and creates nothing');
    return {
      run: () => {
        if (sealing !== undefined) {
          if (sealing.log!.open) {
            sealing.log!.open = false;
            sealing.state = 'sealed';
            sealing.mtimeMs = Math.max(sealing.mtimeMs, mtimeMs);
          }
          state.activeInode = 0;
          state.nextBaseOffset = sealing.segment!.baseOffset + sealing.size;
        }
        if (creating === undefined) return { op: 'rollSegment', inode: sealing!.inode, file: sealing! };
        const file: FileNode = {
          kind: 'file', inode: creating.inode, path: creating.path, size: 0, mtimeMs, state: 'writing', chunks: [],
          replication: state.policy.replication, contentType: 'application/octet-stream', metadata: {}, checksum: '',
          visible: true, overwrite: false, log: { open: true, writers: new Map() },
          segment: { baseOffset: creating.baseOffset, createdMs: mtimeMs },
        };
        this.files.set(file.inode, file);
        this.tree.linkFile(file, mtimeMs);
        assert.ok(this.tree.lookup(file.path) === file);
        this.inodeNext = file.inode + 1;
        state.activeInode = file.inode;
        state.nextBaseOffset = creating.baseOffset;
        state.lastCreatedMs = mtimeMs;
        return { op: 'rollSegment', inode: file.inode, file };
      },
    };
  }

  /**
   * The segment a roll seals: the stream's active one, in the stream, open with no open
   * chunk (its chunk was sealed first), or already closed by SealLog. Else INVALID_ARGUMENT.
   */
  private rollingSegment(dir: Dir, inode: number): FileNode {
    const file = dir.stream!.activeInode === inode ? this.files.get(inode) : undefined;
    if (file?.segment === undefined || !file.visible || this.tree.find(file.path)?.parent !== dir) {
      throw new GfsError('INVALID_ARGUMENT', `file ${inode} is not the active segment of stream "${dir.path}"`);
    }
    if (file.log?.open === true) this.checkAppendable(inode, true);
    return file;
  }

  /** The open log a stream appends to now, if it has one (it may have been closed, deleted or moved since). */
  activeSegment(dir: Dir): FileNode | undefined {
    const inode = dir.stream?.activeInode ?? 0;
    const file = inode === 0 ? undefined : this.files.get(inode);
    if (file === undefined || !file.visible || file.log?.open !== true) return undefined;
    return this.tree.find(file.path)?.parent === dir ? file : undefined;
  }

  /**
   * Where a stream's next segment starts: after its last segment, also one that was
   * closed, deleted or moved without a roll (while the master still knows it), so stream
   * offsets are never handed out twice.
   */
  streamEnd(dir: Dir): number {
    const state = dir.stream!;
    const last = state.activeInode === 0 ? undefined : this.files.get(state.activeInode);
    return Math.max(state.nextBaseOffset, last?.segment === undefined ? 0 : last.segment.baseOffset + last.size);
  }

  private checkNewSegment(o: OpRollSegment, dir: Dir, sealing: FileNode | undefined): { inode: number; path: string; baseOffset: number } {
    const state = dir.stream!;
    if (sealing === undefined && this.activeSegment(dir) !== undefined) {
      throw new GfsError('ALREADY_EXISTS', `stream "${dir.path}" already has an active segment`);
    }
    const inode = positiveId(o.newInode, 'inode');
    if (inode < this.inodeNext) throw new GfsError('INVALID_ARGUMENT', `inode ${inode} was already handed out (next is ${this.inodeNext})`);
    const mtimeMs = count(o.mtimeMs, 'mtime');
    if (mtimeMs <= state.lastCreatedMs) {
      throw new GfsError('INVALID_ARGUMENT', `a new segment of "${dir.path}" must be newer than ${state.lastCreatedMs}, not ${mtimeMs}`);
    }
    const baseOffset = count(o.baseOffset, 'base offset');
    const floor = sealing !== undefined ? sealing.segment!.baseOffset + sealing.size : this.streamEnd(dir);
    if (baseOffset < floor) throw new GfsError('INVALID_ARGUMENT', `base offset ${baseOffset} of "${dir.path}" is below ${floor}`);
    const path = childPath(dir.path, segmentName(mtimeMs, baseOffset));
    if (normalizeFilePath(o.newSegment) !== path) throw new GfsError('INVALID_ARGUMENT', `a new segment of "${dir.path}" is named "${path}"`);
    if (this.tree.lookup(path) !== undefined) throw new GfsError('ALREADY_EXISTS', `"${path}" exists`);
    return { inode, path, baseOffset };
  }

  /**
   * A stream holds only the segments it makes (OpRollSegment): nothing is created, made
   * or moved below a stream directory, so every file there is a segment in time order.
   */
  private refuseInStream(path: string, verb: string): void {
    for (let p = path.slice(0, path.lastIndexOf('/')); p !== ''; p = p.slice(0, p.lastIndexOf('/'))) {
      const above = this.tree.lookup(p);
      if (above?.kind === 'dir' && above.stream !== undefined) {
        throw new GfsError('INVALID_ARGUMENT', `cannot ${verb} inside the stream "${p}": append to the stream instead`);
      }
    }
  }

  /** The stream directory at `path`, or undefined when there is none (no such path, a file, a plain directory). */
  streamDir(path: string): Dir | undefined {
    const node = this.tree.lookup(normalizePath(path));
    return node?.kind === 'dir' && node.stream !== undefined ? node : undefined;
  }

  /** Stream directories (with their Dir), in no particular order. */
  *streams(): Iterable<Dir> {
    const stack: Dir[] = [this.tree.root];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      if (dir.stream !== undefined) yield dir;
      for (const child of dir.children.values()) if (child.kind === 'dir') stack.push(child);
    }
  }

  /**
   * Puts a trashed file back into the tree at target (its original path or another),
   * creating missing parents: trash keeps files only, so a directory removed with
   * rm -r comes back file by file. The file keeps its inode and chunks, so nothing is
   * copied, and once out of the trash no purge can name it (a purge of it fails).
   * Named by inode: after a purge of that file, the restore fails with NO_SUCH_FILE.
   */
  private prepareRestore(o: OpRestore): Prepared {
    const inode = positiveId(o.inode, 'inode');
    if (!this.trashed.has(inode)) throw new GfsError('NO_SUCH_FILE', `file ${inode} is not in the trash`);
    const file = this.files.get(inode);
    assert.ok(file !== undefined);
    const target = normalizeFilePath(o.target === '' ? file.path : o.target);
    // A segment may go back where it was in its stream (its name keeps the time order); nothing else goes into a stream.
    if (file.segment === undefined || target !== file.path) this.refuseInStream(target, 'restore a file');
    const mtimeMs = count(o.mtimeMs, 'mtime');
    const existing = this.tree.probe(target);
    if (existing.kind === 'file') throw new GfsError('ALREADY_EXISTS', `"${target}" exists; restore it elsewhere with --to`);
    if (existing.kind === 'dir') throw new GfsError('ALREADY_EXISTS', `"${target}" is a directory`);
    return {
      run: () => {
        this.trashed.delete(inode);
        file.path = target;
        file.visible = true;
        this.tree.linkFile(file, mtimeMs);
        assert.ok(this.tree.lookup(target) === file, `restored file ${inode} is not at "${target}"`);
        return { op: 'restore', inode, file };
      },
    };
  }

  /**
   * The trashed file a restore of `path` means: the one with that inode or deletion
   * time if given, else the newest deleted (highest inode among equal times).
   */
  findTrashed(path: string, pick: { deletedAtMs?: number; inode?: number } = {}): TrashEntry {
    const p = normalizePath(path);
    const matches = [...this.trashed.values()].filter((e) => e.path === p
      && (pick.inode === undefined || pick.inode === 0 || e.inode === pick.inode)
      && (pick.deletedAtMs === undefined || pick.deletedAtMs === 0 || e.deletedAtMs === pick.deletedAtMs));
    if (matches.length === 0) {
      // Trash keeps files only: a directory removed with rm -r comes back file by file.
      const below = [...this.trashed.values()].filter((e) => e.path.startsWith(p === '/' ? '/' : p + '/')).length;
      const hint = below > 0 ? `; ${below} trashed files were below it: restore them one by one (gfsctl trash ls)` : '';
      throw new GfsError('NO_SUCH_FILE', `no trashed file "${p}" matches${hint}`);
    }
    return matches.reduce((a, b) => (b.deletedAtMs > a.deletedAtMs || (b.deletedAtMs === a.deletedAtMs && b.inode > a.inode) ? b : a));
  }

  checkRestore(inode: number, target: string): void {
    this.prepareRestore({ inode, target, mtimeMs: 0 });
  }

  /** The file must already be unlinked from the tree: what is trashed is not reachable by path. */
  private toTrash(file: FileNode, deletedAtMs: number): void {
    if (file.log?.open === true) this.closeLogForTrash(file);
    assert.ok(file.state === 'sealed' && !this.trashed.has(file.inode) && !this.pending.has(file.inode));
    assert.ok(this.tree.lookup(file.path) !== file, `trashed file ${file.inode} is still linked at "${file.path}"`);
    file.visible = false;
    this.trashed.set(file.inode, { inode: file.inode, path: file.path, deletedAtMs });
  }

  /**
   * A deleted or replaced open log is closed: an open chunk still uncommitted (the
   * server seals it first when it can) leaves the file, and GC reclaims its replicas.
   */
  private closeLogForTrash(file: FileNode): void {
    const open = this.openChunk(file);
    if (open !== undefined) {
      file.chunks.pop();
      this.chunks.remove(open.handle);
    }
    file.log!.open = false;
    file.state = 'sealed';
    assert.ok(file.chunks.every((c) => c.committed) && file.size === file.chunks.reduce((n, c) => n + c.length, 0));
  }

  /** Takes a file's chunks out of the chunk table (the file is leaving for good); returns their handles. */
  private releaseChunks(file: FileNode): number[] {
    const handles: number[] = [];
    for (const c of file.chunks) {
      assert.ok(this.chunks.get(c.handle)?.ref === c, `chunk ${c.handle} of file ${file.inode} is not in the chunk table`);
      this.chunks.remove(c.handle);
      handles.push(c.handle);
    }
    return handles;
  }

  /** A chunk of this file, or NO_SUCH_CHUNK / INVALID_ARGUMENT. */
  private chunkOf(file: FileNode, handle: number): ChunkRef {
    const entry = this.chunks.get(handle);
    if (entry === undefined) throw new GfsError('NO_SUCH_CHUNK', `no chunk ${handle}`);
    if (entry.file !== file) {
      throw new GfsError('INVALID_ARGUMENT', `chunk ${handle} belongs to file ${entry.file.inode}, not ${file.inode}`);
    }
    return entry.ref;
  }

  /** A create (or its completion) of `path` can link there; returns what is there now. */
  private probeCreate(path: string, overwrite: boolean): Probe {
    const found = this.tree.probe(path);
    if (found.kind === 'dir') throw new GfsError('IS_A_DIRECTORY', `"${path}" is a directory`);
    if (found.kind === 'file' && !overwrite) throw new GfsError('ALREADY_EXISTS', `"${path}" exists`);
    return found;
  }

  // ------------------------------------------------------------------ validators (never mutate)

  /** A put of `path` may start: a file path, no directory there, no file there unless overwrite, no file as a parent. */
  checkCreate(path: string, overwrite: boolean): void {
    this.probeCreate(normalizeFilePath(path), overwrite);
  }

  /** The file being written with this inode: NO_SUCH_FILE, or FILE_NOT_WRITABLE once sealed. */
  checkWritable(inode: number): FileNode {
    const file = typeof inode === 'number' ? this.files.get(inode) : undefined;
    if (file === undefined) throw new GfsError('NO_SUCH_FILE', `no file with inode ${inode}`);
    if (file.state !== 'writing') throw new GfsError('FILE_NOT_WRITABLE', `"${file.path}" is sealed`);
    if (file.log !== undefined) throw new GfsError('FILE_NOT_WRITABLE', `"${file.path}" is a log: it is written by record append`);
    return file;
  }

  /**
   * The open log with this inode: NO_SUCH_FILE, or FILE_NOT_WRITABLE if it is no log,
   * closed, or (forAllocate) still has an open chunk.
   */
  checkAppendable(inode: number, forAllocate: boolean): FileNode {
    const file = typeof inode === 'number' ? this.files.get(inode) : undefined;
    if (file === undefined) throw new GfsError('NO_SUCH_FILE', `no file with inode ${inode}`);
    if (file.log === undefined) throw new GfsError('FILE_NOT_WRITABLE', `"${file.path}" is not a log`);
    if (!file.log.open) throw new GfsError('FILE_NOT_WRITABLE', `log "${file.path}" is sealed`);
    if (forAllocate && file.chunks.at(-1)?.committed === false) {
      throw new GfsError('FILE_NOT_WRITABLE', `log "${file.path}" already has an open chunk`);
    }
    return file;
  }

  /** A log's open chunk (its last, uncommitted), if it has one. */
  openChunk(file: FileNode): ChunkRef | undefined {
    const last = file.chunks.at(-1);
    return file.log?.open === true && last !== undefined && !last.committed ? last : undefined;
  }

  checkRename(source: string, target: string, overwrite: boolean): void {
    this.prepareRename({ source, target, overwrite, mtimeMs: 0 });
  }

  checkDelete(path: string, recursive: boolean): void {
    this.prepareDelete({ path, recursive, mtimeMs: 0 });
  }

  /**
   * OpMkdir always behaves like mkdir -p (an existing directory is fine). With
   * parents=false this also requires the parent to exist and the path to be free,
   * which the server checks before it logs the op.
   */
  checkMkdir(path: string, parents = true): void {
    const p = normalizePath(path);
    if (!parents) {
      const i = p.lastIndexOf('/');
      const parent = this.tree.lookup(i <= 0 ? '/' : p.slice(0, i));
      if (parent === undefined) throw new GfsError('NO_SUCH_FILE', `parent of "${p}" does not exist`);
      if (parent.kind !== 'dir') throw new GfsError('NOT_A_DIRECTORY', `"${parent.path}" is a file`);
      if (this.tree.lookup(p) !== undefined) throw new GfsError('ALREADY_EXISTS', `"${p}" exists`);
    }
    this.prepareMkdir({ path: p, mtimeMs: 0 });
  }

  // ------------------------------------------------------------------ queries

  /** A visible file or a directory; pending and trashed files are not found. */
  stat(path: string): FileNode | DirNode {
    const node = this.tree.lookup(normalizePath(path));
    if (node === undefined) throw new GfsError('NO_SUCH_FILE', `no such file or directory: "${path}"`);
    return node.kind === 'dir' ? node.view() : node;
  }

  /** Entries under a directory sorted by full path (UTF-8 order); a file lists as itself. */
  list(path: string, opts: ListOptions): ListResult {
    const node = this.tree.lookup(normalizePath(path));
    if (node === undefined) throw new GfsError('NO_SUCH_FILE', `no such file or directory: "${path}"`);
    const startAfter = opts.startAfter ?? '';
    if (node.kind === 'file') {
      return { entries: startAfter === '' || comparePaths(node.path, startAfter) > 0 ? [node] : [], truncated: false };
    }
    const limit = opts.limit > 0 ? opts.limit : Infinity;
    const entries: (FileNode | DirNode)[] = [];
    for (const e of this.tree.entries(node, opts.recursive === true, startAfter)) {
      if (opts.filesOnly === true && e.kind === 'dir') continue;
      if (entries.length >= limit) return { entries, truncated: true };
      entries.push(e.kind === 'dir' ? e.view() : e);
    }
    return { entries, truncated: false };
  }

  /** Any known file: pending, visible, or in trash (see inodeLocation). */
  fileByInode(inode: number): FileNode | undefined {
    return this.files.get(inode);
  }

  inodeLocation(inode: number): InodeLocation | undefined {
    if (this.pending.has(inode)) return 'pending';
    if (this.trashed.has(inode)) return 'trash';
    return this.files.has(inode) ? 'tree' : undefined;
  }

  chunkOwner(handle: number): { inode: number; ref: ChunkRef } | undefined {
    const entry = this.chunks.get(handle);
    return entry === undefined ? undefined : { inode: entry.file.inode, ref: entry.ref };
  }

  /** Every referenced chunk, in no particular order. */
  *allChunks(): Iterable<ChunkSummary> {
    for (const { file, ref } of this.chunks.values()) {
      yield { handle: ref.handle, version: ref.version, length: ref.length, inode: file.inode, replication: file.replication };
    }
  }

  /** Every referenced chunk with its commit state and its file's place, in no particular order. */
  *lifecycleChunks(): Iterable<ChunkLifecycleState> {
    for (const { file, ref } of this.chunks.values()) {
      const location: InodeLocation = file.visible ? 'tree' : file.state === 'writing' ? 'pending' : 'trash';
      yield {
        handle: ref.handle, version: ref.version, length: ref.length, inode: file.inode, replication: file.replication,
        committed: ref.committed, location,
      };
    }
  }

  /** Puts not yet complete, by inode (so oldest first). */
  pendingFiles(): FileNode[] {
    return [...this.pending.values()];
  }

  /** Oldest deletion first. */
  trash(): TrashEntry[] {
    return [...this.trashed.values()].sort((a, b) => a.deletedAtMs - b.deletedAtMs || a.inode - b.inode);
  }

  counts(): MetaCounts {
    return {
      files: this.tree.fileCount,
      dirs: this.tree.dirCount,
      chunks: this.chunks.size,
      trash: this.trashed.size,
      pending: this.pending.size,
    };
  }

  // ------------------------------------------------------------------ snapshot

  /**
   * The whole state as a `gfs-meta` image (snapshot-codec.ts, SNAPSHOT-FORMAT.md), a
   * pure function of the logical state: two masters with the same state produce the
   * same bytes, because every part is handed to the codec in a fixed order.
   */
  snapshot(): Uint8Array {
    return encodeSnapshot({
      header: { nextInode: this.inodeNext, nextHandle: this.handleNext, requestIdsMax: this.requests.capacity },
      tree: (visit) => this.walkInImageOrder(visit),
      pending: this.pending.values(),
      trash: this.trashInImageOrder(),
      requests: this.requests.entries(),
      draining: [...this.draining.keys()].sort().map((id) => [id, this.draining.get(id)!] as const),
      streams: [...this.streams()].sort((a, b) => (a.path < b.path ? -1 : 1)).map((d) => [d.path, d.stream!] as const),
      segments: [...this.files.values()].filter((f) => f.segment !== undefined).sort((a, b) => a.inode - b.inode)
        .map((f) => [f.inode, f.segment!] as const),
      auth: this.auth.records(),
    });
  }

  /** Rebuilds the state from snapshot(); a damaged image throws CORRUPT. */
  static restore(bytes: Uint8Array): MetaState {
    const image = decodeSnapshot(bytes);
    const state = new MetaState({ requestIdsMax: image.header.requestIdsMax });
    state.inodeNext = image.header.nextInode;
    state.handleNext = image.header.nextHandle;
    for (const node of image.tree) {
      if (node.kind === 'dir') {
        if (!state.tree.restoreDir(node.path, node.mtimeMs)) snapshotCorrupt(`directory "${node.path}" out of place`);
      } else {
        state.adopt(node);
        if (!state.tree.restoreFile(node)) snapshotCorrupt(`file "${node.path}" out of place`);
      }
    }
    state.tree.endRestore();
    for (const file of image.pending) {
      state.adopt(file);
      state.pending.set(file.inode, file);
    }
    for (const { deletedAtMs, file } of image.trash) {
      state.adopt(file);
      state.trashed.set(file.inode, { inode: file.inode, path: file.path, deletedAtMs });
    }
    for (const [id, r] of image.requests) state.requests.remember(id, r);
    for (const [id, sinceMs] of image.draining) state.draining.set(id, sinceMs);
    for (const [path, stream] of image.streams) {
      const dir = state.tree.lookup(path);
      if (dir?.kind !== 'dir') snapshotCorrupt(`stream "${path}" is not a directory`);
      dir.stream = stream;
    }
    for (const [inode, segment] of image.segments) {
      const file = state.files.get(inode);
      if (file === undefined) snapshotCorrupt(`segment ${inode} is no file`);
      file.segment = segment;
    }
    for (const rec of image.auth) state.auth.restoreRecord(rec);
    state.assertInvariants();
    return state;
  }

  /** Restore: takes a decoded file into the inode map and its chunks into the chunk table. */
  private adopt(file: FileNode): void {
    if (this.files.has(file.inode)) snapshotCorrupt(`inode ${file.inode} repeated`);
    for (const ref of file.chunks) {
      if (this.chunks.get(ref.handle) !== undefined) snapshotCorrupt(`chunk ${ref.handle} repeated`);
      this.chunks.add(file, ref);
    }
    this.files.set(file.inode, file);
  }

  /** Directories and visible files in pre-order: a directory, its files by name, then its subdirectories by name. */
  private walkInImageOrder(visit: (node: Dir | FileNode) => void): void {
    const stack: Dir[] = [this.tree.root];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      visit(dir);
      const names = [...dir.children.keys()].sort(comparePaths);
      const subdirs: Dir[] = [];
      for (const name of names) {
        const child = dir.children.get(name)!;
        if (child.kind === 'dir') subdirs.push(child);
        else visit(child);
      }
      for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]!);
    }
  }

  private *trashInImageOrder(): Generator<TrashedFile> {
    for (const inode of [...this.trashed.keys()].sort((a, b) => a - b)) {
      yield { deletedAtMs: this.trashed.get(inode)!.deletedAtMs, file: this.files.get(inode)! };
    }
  }
  // ------------------------------------------------------------------ invariants

  /** Checks every invariant with a full walk (O(state)): for tests, restore and fsck, not the hot path. */
  assertInvariants(): void {
    const handles = new Set<number>();
    const checkFile = (file: FileNode, where: InodeLocation): void => {
      assert.equal(file.kind, 'file');
      assert.ok(this.files.get(file.inode) === file, `file ${file.inode} is not in the inode map`);
      assert.equal(this.inodeLocation(file.inode), where, `file ${file.inode} is in the wrong place`);
      assert.ok(file.inode >= 1 && file.inode < this.inodeNext, `inode ${file.inode} is not below nextInode`);
      assert.ok(file.replication >= 1 && file.replication <= limits.replicationMax);
      let sum = 0;
      for (const ref of file.chunks) {
        assert.ok(ref.handle >= 1 && ref.handle < this.handleNext, `handle ${ref.handle} is not below nextHandle`);
        assert.ok(!handles.has(ref.handle), `handle ${ref.handle} is in two places`);
        handles.add(ref.handle);
        const entry = this.chunks.get(ref.handle);
        assert.ok(entry !== undefined && entry.file === file && entry.ref === ref, `chunk table disagrees on ${ref.handle}`);
        assert.ok(ref.length >= 0 && ref.length <= limits.chunkBytesMax);
        if (!ref.committed) assert.equal(ref.length, 0);
        sum += ref.length;
      }
      if (file.state === 'sealed') {
        assert.ok(file.chunks.every((c) => c.committed), `sealed file ${file.inode} has an uncommitted chunk`);
        assert.equal(file.size, sum, `sealed file ${file.inode}: size is not the sum of its chunks`);
      }
      assert.equal(file.visible, where === 'tree');
      if (file.log === undefined) assert.equal(file.state === 'writing', where === 'pending');
      else checkLog(file, where);
    };
    let files = 0;
    let dirs = 0;
    const stack: Dir[] = [this.tree.root];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      for (const [name, child] of dir.children) {
        assert.equal(child.path, childPath(dir.path, name), 'a node path disagrees with its place');
        if (child.kind === 'dir') {
          dirs++;
          stack.push(child);
        } else {
          files++;
          checkFile(child, 'tree');
        }
      }
    }
    assert.equal(files, this.tree.fileCount);
    assert.equal(dirs, this.tree.dirCount);
    let previous = 0;
    for (const file of this.pending.values()) {
      assert.ok(file.inode > previous, 'pending files are in inode order');
      previous = file.inode;
      checkFile(file, 'pending');
    }
    for (const entry of this.trashed.values()) {
      const file = this.files.get(entry.inode);
      assert.ok(file !== undefined);
      assert.equal(entry.path, file.path);
      checkFile(file, 'trash');
    }
    assert.equal(this.files.size, files + this.pending.size + this.trashed.size, 'a file is in no place');
    assert.equal(this.chunks.size, handles.size, 'the chunk table holds chunks no file has');
    assert.ok(this.requests.size <= this.requests.capacity);
  }
}

// -------------------------------------------------------------------- helpers

/** A log's invariants (meta-types.ts): open exactly while writing and in the tree, only its last chunk open. */
function checkLog(file: FileNode, where: InodeLocation): void {
  const log = file.log!;
  assert.equal(file.state === 'writing', log.open, `log ${file.inode}: open exactly while writing`);
  assert.ok(where !== 'pending' && (where === 'tree' || !log.open), `log ${file.inode} is open outside the tree`);
  assert.ok(file.chunks.slice(0, -1).every((c) => c.committed), `log ${file.inode}: only its last chunk may be open`);
  const sealed = file.chunks.filter((c) => c.committed).reduce((n, c) => n + c.length, 0);
  assert.equal(file.size, sealed, `log ${file.inode}: size is the sum of its sealed chunks`);
  assert.ok(log.writers.size <= limits.appendWritersPerLogMax);
  for (const w of log.writers.values()) assert.ok(w.seqs.length === w.offsets.length && w.seqs.length <= limits.appendDedupPerWriter);
}

/** A stream policy from an op: every number a safe count, replication 1..max (the server fills in the default). */
function streamPolicy(p: StreamPolicy | undefined): StreamPolicyState {
  if (p === undefined) throw new GfsError('INVALID_ARGUMENT', 'a stream needs a policy');
  const replication = p.replication;
  if (!Number.isInteger(replication) || replication < 1 || replication > limits.replicationMax) {
    throw new GfsError('INVALID_ARGUMENT', `replication must be 1..${limits.replicationMax}, not ${replication}`);
  }
  return {
    rollBytes: count(p.rollBytes, 'roll size'), rollAgeMs: count(p.rollAgeMs, 'roll age'),
    retentionAgeMs: count(p.retentionAgeMs, 'retention age'), retentionBytes: count(p.retentionBytes, 'retention size'),
    replication,
  };
}

function opKindOf(op: MetaOp): OpKind {
  let kind: OpKind | undefined;
  for (const k of opKinds) {
    if (op[k] === undefined || op[k] === null) continue;
    if (kind !== undefined) throw new GfsError('INVALID_ARGUMENT', `a MetaOp holds both ${kind} and ${k}`);
    kind = k;
  }
  if (kind === undefined) throw new GfsError('INVALID_ARGUMENT', 'a MetaOp holds no operation');
  return kind;
}

function authOp(op: OpKind, prepared: AuthPrepared): Prepared {
  return { run: () => { prepared.run(); return { op }; } };
}

function remembered(result: ApplyResult): RememberedResult {
  const r: RememberedResult = { op: result.op };
  if (result.inode !== undefined) r.inode = result.inode;
  if (result.handle !== undefined) r.handle = result.handle;
  if (result.version !== undefined) r.version = result.version;
  return r;
}

function positiveId(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new GfsError('INVALID_ARGUMENT', `bad ${what}: ${value}`);
  return value;
}

function count(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new GfsError('INVALID_ARGUMENT', `bad ${what}: ${value}`);
  return value;
}

function text(value: string, what: string): string {
  if (value === undefined) return '';
  if (typeof value !== 'string') throw new GfsError('INVALID_ARGUMENT', `${what} is not a string`);
  return value;
}

/** Keys sorted, own data properties only (a key named __proto__ stays a key). */
function sortedMetadata(metadata: Record<string, string> | undefined): Record<string, string> {
  const entries = Object.entries(metadata ?? {});
  for (const [k, v] of entries) {
    if (typeof v !== 'string') throw new GfsError('INVALID_ARGUMENT', `metadata "${k}" is not a string`);
  }
  entries.sort(([a], [b]) => comparePaths(a, b));
  return Object.fromEntries(entries);
}
