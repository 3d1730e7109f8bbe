/**
 * The shapes of the master's metadata (DESIGN §3-4): file and directory nodes, chunk
 * refs, trash entries, op kinds and what applying an op answers. Types only (and one
 * pure helper on them), so that the namespace, the chunk table, the request-id table,
 * the snapshot codec and everything outside the master can name them without
 * importing the state machine in meta-state.ts; this module imports nothing of the
 * master, so no import cycle can pass through it.
 *
 * Invariants these shapes carry (MetaState enforces them, see its opening comment):
 * - A FileNode is in exactly one place: pending (state 'writing', not visible),
 *   the tree (sealed, visible; or an open log: 'writing', visible) or trash (sealed,
 *   not visible).
 * - A log (`log` set) has at most one uncommitted chunk, its last: the open chunk. Its
 *   size is the sum of its sealed chunks; the open chunk's committed length is soft
 *   state on its primary.
 * - A ChunkRef with committed false has length 0; a chunk's version only grows.
 * - Chunk offsets are not stored: chunk i starts where chunk i-1 ends (chunkOffsets).
 */

export interface ChunkRef {
  handle: number;
  version: number;
  /** Bytes in the chunk; 0 until committed. */
  length: number;
  committed: boolean;
}

export interface FileNode {
  kind: 'file';
  inode: number;
  /** Where it is (tree), will be linked (pending) or was (trash). */
  path: string;
  size: number;
  mtimeMs: number;
  state: 'writing' | 'sealed';
  chunks: ChunkRef[];
  replication: number;
  contentType: string;
  metadata: Record<string, string>;
  /** Whole-file checksum as the writer gave it at complete; '' while writing. */
  checksum: string;
  visible: boolean;
  /** The create asked to replace an existing file at `path`. */
  overwrite: boolean;
  /** Set for a log (written by record append, docs/LOG-STREAMS.md); absent for other files. */
  log?: LogMeta;
  /** Set for a segment of a stream (docs/LOG-STREAMS.md): made by OpRollSegment in its stream directory. */
  segment?: SegmentMeta;
}

/** A log's metadata beyond a file's. */
export interface LogMeta {
  /** Appends may go on (state 'writing'); false once SealLog closed it (state 'sealed'). */
  open: boolean;
  /**
   * Exactly-once memory: each writer's last records (at most limits.appendDedupPerWriter)
   * in sealed chunks, so a retried record is answered with its file offset.
   */
  writers: Map<string, WriterWindow>;
}

/** One writer's last records: seqs ascending, offsets are FILE offsets, one per seq. */
export interface WriterWindow {
  seqs: number[];
  offsets: number[];
}

/** A stream segment's place in its stream. */
export interface SegmentMeta {
  /** Stream offset of the segment's first byte: stream offset = base + offset in the segment. */
  baseOffset: number;
  /** When it became the active segment (its name's time). */
  createdMs: number;
}

/** A stream directory's policy; 0 means never (roll) or keep (retention). */
export interface StreamPolicyState {
  rollBytes: number;
  rollAgeMs: number;
  retentionAgeMs: number;
  retentionBytes: number;
  /** Replication of its segments (always set: the server fills in the cluster default). */
  replication: number;
}

/** What a stream directory holds beyond a directory's (Dir.stream). */
export interface StreamState {
  policy: StreamPolicyState;
  /** Inode of the segment appends go to; 0 when none (the next append creates one). */
  activeInode: number;
  /** Base offset of the next segment: the end of the last segment sealed (or active). */
  nextBaseOffset: number;
  /** Creation time of the newest segment: the next one's is later, so names sort by time. */
  lastCreatedMs: number;
}

export interface DirNode {
  kind: 'dir';
  path: string;
  mtimeMs: number;
  /** A stream directory: its state (a copy). */
  stream?: StreamState;
}

export interface TrashEntry {
  inode: number;
  path: string;
  deletedAtMs: number;
}

export type OpKind =
  | 'createFile'
  | 'allocateChunk'
  | 'commitChunk'
  | 'abandonChunk'
  | 'completeFile'
  | 'abortFile'
  | 'mkdir'
  | 'rename'
  | 'delete'
  | 'purge'
  | 'decommission'
  | 'restore'
  | 'sealChunk'
  | 'setLog'
  | 'createStream'
  | 'rollSegment'
  | 'concatFiles'
  | 'tokenCreate'
  | 'tokenRevoke'
  | 'namespaceSet';

export const opKinds: readonly OpKind[] = [
  'createFile',
  'allocateChunk',
  'commitChunk',
  'abandonChunk',
  'completeFile',
  'abortFile',
  'mkdir',
  'rename',
  'delete',
  'purge',
  'decommission',
  'restore',
  'sealChunk',
  'setLog',
  'createStream',
  'rollSegment',
  'concatFiles',
  'tokenCreate',
  'tokenRevoke',
  'namespaceSet',
];

export interface ApplyResult {
  op: OpKind;
  /** createFile, allocate/commit/abandonChunk, completeFile, abortFile, concatFiles. */
  inode?: number;
  /** allocate/commit/abandonChunk. */
  handle?: number;
  /** allocateChunk. */
  version?: number;
  /** The file as it is now (a live object: read it, never change it); absent once it is gone. */
  file?: FileNode;
  /** Inodes this op moved to trash (overwrite, delete), ascending. Not kept for replays. */
  trashed?: number[];
  /** concatFiles: the parts' inodes, now gone (their chunks are the new file's). Not kept for replays. */
  consumed?: { inode: number; path: string }[];
  /** purge: chunk handles that are no longer referenced. Not kept for replays. */
  released?: number[];
  /** The request id was seen before: nothing was applied, this is the first result. */
  replayed?: boolean;
}

export interface ListOptions {
  recursive: boolean;
  /** At most this many entries; 0 or less means no limit (the server should bound it). */
  limit: number;
  /** A full path: only entries sorting after it ('' for all). */
  startAfter: string;
  /** Leave directories out (S3-style listings). */
  filesOnly?: boolean;
}

export interface ListResult {
  entries: (FileNode | DirNode)[];
  truncated: boolean;
}

export interface ChunkSummary {
  handle: number;
  version: number;
  length: number;
  inode: number;
  replication: number;
}

/** A chunk as healing and GC need it: also whether it is final and where its file is. */
export interface ChunkLifecycleState extends ChunkSummary {
  /** False while the chunk is being written: its length is not final. */
  committed: boolean;
  /** Where its file is: tree (visible), pending (being written) or trash. */
  location: InodeLocation;
}

export interface MetaCounts {
  /** Visible files in the tree. */
  files: number;
  /** Directories, the root excluded. */
  dirs: number;
  chunks: number;
  trash: number;
  pending: number;
}

export type InodeLocation = 'pending' | 'tree' | 'trash';

export interface MetaStateOptions {
  /** Request ids remembered; every master of a group must use the same value. */
  requestIdsMax?: number;
}

/** Byte offset of each chunk in its file: chunk i starts where chunk i-1 ends. */
export function chunkOffsets(file: FileNode): number[] {
  const offsets: number[] = [];
  let offset = 0;
  for (const c of file.chunks) {
    offsets.push(offset);
    offset += c.length;
  }
  return offsets;
}
