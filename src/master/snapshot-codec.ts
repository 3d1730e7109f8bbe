/**
 * The metadata snapshot codec: the `gfs-meta` image that checkpoints hold and that a
 * leader sends a follower that is too far behind. The byte layout, the versioning and
 * what a reader does with an image it does not know are in SNAPSHOT-FORMAT.md beside
 * this file; golden images are in test/fixtures/format/meta/.
 *
 * The codec knows the format, not the state machine: encodeSnapshot writes whatever
 * MetaImage it is given, in the order given, and decodeSnapshot checks everything a
 * single record or the image as a whole can show (JSON, field types, the header, the
 * end record's counts) and hands back plain nodes. Whether a file's directory exists
 * or an inode or chunk handle repeats is the state's to check when it adopts them
 * (MetaState.restore), because only it holds the maps that tell.
 *
 * Invariants:
 * - Encoding is a pure function of the image: the same image gives the same bytes.
 *   The caller supplies every part in a fixed order (by path, inode, node id, or log
 *   order for request ids) so the bytes never depend on Map iteration order; the
 *   encoder asserts the orders it can check cheaply.
 * - The end record holds the counts of the records before it, as the encoder counted
 *   them; decodeSnapshot refuses an image whose counts disagree, so an image cut at a
 *   line boundary is never taken for a whole one.
 * - Every damage a decoder can see is GfsError CORRUPT; nothing is skipped or guessed.
 */
import assert from 'node:assert/strict';
import { GfsError } from '../common/errors';
import { normalizeLoggedFilePath } from '../common/paths';
import {
  opKinds, type ChunkRef, type DirNode, type FileNode, type LogMeta, type OpKind, type SegmentMeta, type StreamState, type WriterWindow,
} from './meta-types';
import type { RememberedResult } from './request-ids';

export const SNAPSHOT_FORMAT = 'gfs-meta';
/** The version written; every version in SNAPSHOT_VERSIONS_READ is read. */
export const SNAPSHOT_VERSION = 2;
const SNAPSHOT_VERSIONS_READ: readonly number[] = [1, 2];

/** Bytes of JSON buffered (encode) or decoded (decode) at a time: one string per line is slow at millions of lines. */
const blockBytes = 1 << 20;

export interface SnapshotHeader {
  /** Decoded images only: the version the image was written in (encoding always writes SNAPSHOT_VERSION). */
  version?: number;
  nextInode: number;
  nextHandle: number;
  requestIdsMax: number;
}

export interface TrashedFile {
  deletedAtMs: number;
  file: FileNode;
}

/**
 * Items in order: a list, or a function that calls `visit` on each, which lets a large
 * state be walked in place. (A generator would do too, but encoding a tree of 200,000
 * files through one took half again as long as through a callback.)
 */
export type Sequence<T> = Iterable<T> | ((visit: (item: T) => void) => void);

/**
 * Everything an image holds, each part in image order, so encoding a large state
 * walks it once and builds no lists.
 */
export interface MetaImage {
  header: SnapshotHeader;
  /** Pre-order from the root: a directory, its files by name, then each subdirectory by name. */
  tree: Sequence<DirNode | FileNode>;
  /** Files being written, by inode. */
  pending: Iterable<FileNode>;
  /** By inode. */
  trash: Iterable<TrashedFile>;
  /** Oldest first (the order a restore must remember them in). */
  requests: Iterable<readonly [string, RememberedResult]>;
  /** Chunkservers being drained and when each drain started, by node id. */
  draining: Iterable<readonly [string, number]>;
  /** v2: stream directories (by path, UTF-8 order) with their state. */
  streams?: Iterable<readonly [string, StreamState]>;
  /** v2: stream segments (by inode): their base offset and creation time. */
  segments?: Iterable<readonly [number, SegmentMeta]>;
  /** Token (`tok`) and namespace-settings (`nsx`) records, in order (auth/auth-state.ts checks their fields). */
  auth?: Iterable<unknown[]>;
}

/** What decodeSnapshot returns: the parts as lists, plus the counts of the end record. */
export interface DecodedMetaImage extends MetaImage {
  tree: (DirNode | FileNode)[];
  pending: FileNode[];
  trash: TrashedFile[];
  requests: [string, RememberedResult][];
  draining: [string, number][];
  streams: [string, StreamState][];
  segments: [number, SegmentMeta][];
  auth: unknown[][];
  counts: SnapshotCounts;
}

/** The end record: how many of each record came before it. */
export interface SnapshotCounts {
  files: number;
  /** Directories other than the root. */
  dirs: number;
  pending: number;
  trash: number;
  requestIds: number;
  /** Chunk refs in every file record (tree, pending, trash). */
  chunks: number;
}

export function snapshotCorrupt(message: string): never {
  throw new GfsError('CORRUPT', `metadata snapshot: ${message}`);
}

// -------------------------------------------------------------------- encode

export function encodeSnapshot(image: MetaImage): Uint8Array {
  const out = new LineWriter();
  const { nextInode, nextHandle, requestIdsMax } = image.header;
  out.line({ format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, nextInode, nextHandle, requestIdsMax });
  const counts: SnapshotCounts = { files: 0, dirs: 0, pending: 0, trash: 0, requestIds: 0, chunks: 0 };
  forEach(image.tree, (node) => {
    if (node.kind === 'dir') {
      out.line(['d', node.path, node.mtimeMs]);
      if (node.path !== '/') counts.dirs++;
    } else {
      out.raw('["f",' + fileJson(node) + ']');
      counts.files++;
      counts.chunks += node.chunks.length;
    }
  });
  let previous = 0;
  for (const file of image.pending) {
    assert.ok(file.inode > previous, 'pending files are written by inode');
    previous = file.inode;
    out.raw('["p",' + fileJson(file) + ']');
    counts.pending++;
    counts.chunks += file.chunks.length;
  }
  previous = 0;
  for (const { deletedAtMs, file } of image.trash) {
    assert.ok(file.inode > previous, 'trash is written by inode');
    previous = file.inode;
    out.raw('["t",' + deletedAtMs + ',' + fileJson(file) + ']');
    counts.trash++;
    counts.chunks += file.chunks.length;
  }
  for (const [id, r] of image.requests) {
    out.line(['r', id, r.op, r.inode ?? null, r.handle ?? null, r.version ?? null]);
    counts.requestIds++;
  }
  assert.ok(counts.requestIds <= requestIdsMax, 'no more request ids than the table holds');
  let previousId: string | undefined;
  for (const [id, sinceMs] of image.draining) {
    assert.ok(previousId === undefined || previousId < id, 'drained nodes are written by id');
    previousId = id;
    out.line(['n', id, sinceMs]);
  }
  encodeStreams(out, image);
  for (const rec of image.auth ?? []) {
    assert.ok(rec[0] === 'tok' || rec[0] === 'nsx', 'auth records are tok or nsx');
    out.line(rec);
  }
  out.line(['end', counts.files, counts.dirs, counts.pending, counts.trash, counts.requestIds, counts.chunks]);
  return out.bytes();
}

/** v2's stream records: `s` per stream directory by path, `g` per segment by inode (SNAPSHOT-FORMAT.md). */
function encodeStreams(out: LineWriter, image: MetaImage): void {
  let previousPath: string | undefined;
  for (const [path, st] of image.streams ?? []) {
    assert.ok(previousPath === undefined || previousPath < path, 'streams are written by path');
    previousPath = path;
    const p = st.policy;
    out.line(['s', path, p.rollBytes, p.rollAgeMs, p.retentionAgeMs, p.retentionBytes, p.replication, st.activeInode, st.nextBaseOffset, st.lastCreatedMs]);
  }
  let previousInode = 0;
  for (const [inode, g] of image.segments ?? []) {
    assert.ok(inode > previousInode, 'segments are written by inode');
    previousInode = inode;
    out.line(['g', inode, g.baseOffset, g.createdMs]);
  }
}

function forEach<T>(items: Sequence<T>, visit: (item: T) => void): void {
  if (typeof items === 'function') items(visit);
  else for (const item of items) visit(item);
}

/**
 * A file record's JSON, written by hand because it is most of a snapshot and this is
 * several times faster than JSON.stringify of an array. Integers and booleans print
 * exactly as JSON.stringify prints them.
 */
function fileJson(f: FileNode): string {
  let s = f.inode + ',' + JSON.stringify(f.path) + ',' + f.size + ',' + f.mtimeMs + ',"' + f.state + '",' +
    f.replication + ',' + JSON.stringify(f.contentType) + ',' + JSON.stringify(f.metadata) + ',' +
    JSON.stringify(f.checksum) + ',' + f.visible + ',' + f.overwrite + ',[';
  for (let i = 0; i < f.chunks.length; i++) {
    const c = f.chunks[i]!;
    s += (i === 0 ? '[' : ',[') + c.handle + ',' + c.version + ',' + c.length + ',' + c.committed + ']';
  }
  return s + '],' + logJson(f.log);
}

/** v2's 13th file field: null, or [open, [[writer, [seqs], [offsets]], ...]] with writers in string order. */
function logJson(log: LogMeta | undefined): string {
  if (log === undefined) return 'null';
  const ids = [...log.writers.keys()].sort();
  return JSON.stringify([log.open, ids.map((id) => {
    const w = log.writers.get(id)!;
    return [id, w.seqs, w.offsets];
  })]);
}

/** Accumulates lines into ~1 MiB buffers so a big image never becomes one giant string. */
class LineWriter {
  private readonly parts: Buffer[] = [];
  private pending = '';

  line(value: unknown): void {
    this.raw(JSON.stringify(value));
  }

  /** A line that is already JSON. */
  raw(json: string): void {
    this.pending += json + '\n';
    if (this.pending.length >= blockBytes) this.flush();
  }

  bytes(): Uint8Array {
    this.flush();
    return Buffer.concat(this.parts);
  }

  private flush(): void {
    if (this.pending.length > 0) this.parts.push(Buffer.from(this.pending, 'utf8'));
    this.pending = '';
  }
}

// -------------------------------------------------------------------- decode

/** Parses and checks an image (SNAPSHOT-FORMAT.md, "Reading"); any damage throws CORRUPT. */
export function decodeSnapshot(bytes: Uint8Array): DecodedMetaImage {
  const lines = readLines(bytes);
  const first = lines.next();
  if (first.done) snapshotCorrupt('empty snapshot');
  const header = decodeHeader(first.value);
  const image: DecodedMetaImage = {
    header, tree: [], pending: [], trash: [], requests: [], draining: [], streams: [], segments: [], auth: [],
    counts: { files: 0, dirs: 0, pending: 0, trash: 0, requestIds: 0, chunks: 0 },
  };
  const seen = { requests: new Set<string>(), draining: new Set<string>() };
  let end: unknown[] | undefined;
  for (const value of lines) {
    if (end !== undefined) snapshotCorrupt('data after the end record');
    if (!Array.isArray(value)) snapshotCorrupt('record is not an array');
    if (value[0] === 'end') end = value;
    else decodeRecord(value, image, seen, header.version!);
  }
  if (end === undefined) snapshotCorrupt('snapshot is truncated (no end record)');
  const c = image.counts;
  const counted = [c.files, c.dirs, c.pending, c.trash, c.requestIds, c.chunks];
  if (JSON.stringify(end.slice(1)) !== JSON.stringify(counted)) snapshotCorrupt('snapshot counts do not match its records');
  if (c.requestIds > image.header.requestIdsMax) snapshotCorrupt('more request ids than requestIdsMax');
  return image;
}

function decodeHeader(value: unknown): SnapshotHeader {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) snapshotCorrupt('not a metadata snapshot');
  const header = value as Record<string, unknown>;
  if (header['format'] !== SNAPSHOT_FORMAT) snapshotCorrupt('not a metadata snapshot');
  const version = header['version'];
  if (typeof version !== 'number' || !SNAPSHOT_VERSIONS_READ.includes(version)) snapshotCorrupt(`unknown snapshot version ${String(version)}`);
  return {
    version,
    nextInode: intField(header['nextInode'], 1),
    nextHandle: intField(header['nextHandle'], 1),
    requestIdsMax: intField(header['requestIdsMax'], 1),
  };
}

/** Adds one record (not the header, not the end) to the image and its counts. */
function decodeRecord(
  rec: unknown[], image: DecodedMetaImage, seen: { requests: Set<string>; draining: Set<string> }, version: number,
): void {
  const c = image.counts;
  switch (rec[0]) {
    case 'd': {
      const dir: DirNode = { kind: 'dir', path: str(rec[1]), mtimeMs: intField(rec[2], 0) };
      image.tree.push(dir);
      if (dir.path !== '/') c.dirs++;
      return;
    }
    case 'f': {
      const file = decodeFile(rec.slice(1), version);
      const open = file.log?.open === true;
      if ((file.state !== 'sealed') !== open || !file.visible) {
        snapshotCorrupt(`file "${file.path}" in the tree is not visible and sealed (or an open log)`);
      }
      image.tree.push(file);
      c.files++;
      c.chunks += file.chunks.length;
      return;
    }
    case 'p': {
      const file = decodeFile(rec.slice(1), version);
      if (file.state !== 'writing' || file.visible || file.log !== undefined) snapshotCorrupt(`pending file ${file.inode} is not writing`);
      if (!isFilePath(file.path)) snapshotCorrupt(`bad path "${file.path}"`);
      image.pending.push(file);
      c.pending++;
      c.chunks += file.chunks.length;
      return;
    }
    case 't': {
      const deletedAtMs = intField(rec[1], 0);
      const file = decodeFile(rec.slice(2), version);
      if (file.state !== 'sealed' || file.visible || file.log?.open === true) snapshotCorrupt(`trashed file ${file.inode} is not sealed and hidden`);
      if (!isFilePath(file.path)) snapshotCorrupt(`bad path "${file.path}"`);
      image.trash.push({ deletedAtMs, file });
      c.trash++;
      c.chunks += file.chunks.length;
      return;
    }
    case 'r': {
      const id = str(rec[1]);
      if (id === '' || seen.requests.has(id)) snapshotCorrupt(`request id "${id}" repeated`);
      seen.requests.add(id);
      image.requests.push([id, decodeRemembered(rec)]);
      c.requestIds++;
      return;
    }
    case 'tok':
    case 'nsx':
      // Tokens and namespace settings came with version 2 (SNAPSHOT-FORMAT.md).
      if (version < 2) snapshotCorrupt(`a ${rec[0]} record in a version ${version} image`);
      image.auth.push(rec);
      return;
    case 'n': {
      const id = str(rec[1]);
      if (id === '' || seen.draining.has(id)) snapshotCorrupt(`drained node "${id}" repeated or empty`);
      seen.draining.add(id);
      image.draining.push([id, intField(rec[2], 0)]);
      return;
    }
    case 's':
    case 'g':
      if (version < 2) snapshotCorrupt(`a version ${version} image holds a stream record`);
      decodeStreamRecord(rec, image);
      return;
    default:
      snapshotCorrupt(`unknown record ${JSON.stringify(rec[0])}`);
  }
}

/** `s` (stream directory) and `g` (segment) records, each in strictly growing order. */
function decodeStreamRecord(rec: unknown[], image: DecodedMetaImage): void {
  if (rec[0] === 's') {
    if (rec.length !== 10) snapshotCorrupt(`a stream record has ${rec.length} fields`);
    const path = str(rec[1]);
    const last = image.streams.at(-1)?.[0];
    if (!path.startsWith('/') || (last !== undefined && !(last < path))) snapshotCorrupt(`stream "${path}" out of order`);
    const [rollBytes, rollAgeMs, retentionAgeMs, retentionBytes] = [2, 3, 4, 5].map((i) => intField(rec[i], 0)) as [number, number, number, number];
    const policy = { rollBytes, rollAgeMs, retentionAgeMs, retentionBytes, replication: intField(rec[6], 1) };
    image.streams.push([path, { policy, activeInode: intField(rec[7], 0), nextBaseOffset: intField(rec[8], 0), lastCreatedMs: intField(rec[9], 0) }]);
    return;
  }
  if (rec.length !== 4) snapshotCorrupt(`a segment record has ${rec.length} fields`);
  const inode = intField(rec[1], 1);
  if (inode <= (image.segments.at(-1)?.[0] ?? 0)) snapshotCorrupt(`segment ${inode} out of order`);
  image.segments.push([inode, { baseOffset: intField(rec[2], 0), createdMs: intField(rec[3], 0) }]);
}

function decodeRemembered(rec: unknown[]): RememberedResult {
  const op = rec[2];
  if (!opKinds.includes(op as OpKind)) snapshotCorrupt(`unknown op ${String(op)}`);
  const r: RememberedResult = { op: op as OpKind };
  if (rec[3] !== null) r.inode = intField(rec[3], 1);
  if (rec[4] !== null) r.handle = intField(rec[4], 1);
  if (rec[5] !== null) r.version = intField(rec[5], 0);
  return r;
}

/** inode, path, size, mtimeMs, state, replication, contentType, metadata, checksum, visible, overwrite, chunks (v2: log). */
function decodeFile(rec: unknown[], version: number): FileNode {
  if (rec.length !== (version === 1 ? 12 : 13)) snapshotCorrupt(`a file record of version ${version} has ${rec.length} fields`);
  const chunkRecs = rec[11];
  if (!Array.isArray(chunkRecs)) snapshotCorrupt('file chunks are not an array');
  const metadata = rec[7];
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) snapshotCorrupt('file metadata is not an object');
  for (const v of Object.values(metadata as object)) str(v);
  const state = rec[4];
  if (state !== 'writing' && state !== 'sealed') snapshotCorrupt(`bad file state ${String(state)}`);
  const chunks: ChunkRef[] = [];
  for (const c of chunkRecs as unknown[]) {
    if (!Array.isArray(c)) snapshotCorrupt('chunk is not an array');
    chunks.push({ handle: intField(c[0], 1), version: intField(c[1], 0), length: intField(c[2], 0), committed: bool(c[3]) });
  }
  const file: FileNode = {
    kind: 'file',
    inode: intField(rec[0], 1),
    path: str(rec[1]),
    size: intField(rec[2], 0),
    mtimeMs: intField(rec[3], 0),
    state,
    chunks,
    replication: intField(rec[5], 1),
    contentType: str(rec[6]),
    metadata: metadata as Record<string, string>,
    checksum: str(rec[8]),
    visible: bool(rec[9]),
    overwrite: bool(rec[10]),
  };
  if (version >= 2 && rec[12] !== null) file.log = decodeLog(rec[12]);
  return file;
}

function decodeLog(value: unknown): LogMeta {
  if (!Array.isArray(value) || value.length !== 2 || !Array.isArray(value[1])) snapshotCorrupt('bad log field');
  const writers = new Map<string, WriterWindow>();
  let previous: string | undefined;
  for (const w of value[1] as unknown[]) {
    if (!Array.isArray(w) || w.length !== 3 || !Array.isArray(w[1]) || !Array.isArray(w[2])) snapshotCorrupt('bad writer record');
    const id = str(w[0]);
    if (id === '' || (previous !== undefined && !(previous < id))) snapshotCorrupt(`writer "${id}" empty or out of order`);
    previous = id;
    const seqs = (w[1] as unknown[]).map((n) => intField(n, 0));
    const offsets = (w[2] as unknown[]).map((n) => intField(n, 0));
    if (seqs.length !== offsets.length || seqs.some((n, i) => i > 0 && n <= seqs[i - 1]!)) snapshotCorrupt(`writer "${id}": bad window`);
    writers.set(id, { seqs, offsets });
  }
  return { open: bool(value[0]), writers };
}

/** Decodes about 1 MiB of whole lines at a time: one toString per line is slow at millions of lines. */
function* readLines(image: Uint8Array): Generator<unknown> {
  const buf = Buffer.from(image.buffer, image.byteOffset, image.byteLength);
  let start = 0;
  while (start < buf.length) {
    let end = buf.lastIndexOf(0x0a, Math.min(buf.length, start + blockBytes) - 1);
    if (end < start) end = buf.indexOf(0x0a, start); // one line longer than the block
    if (end < 0) snapshotCorrupt('snapshot is truncated (partial line)');
    const block = buf.toString('utf8', start, end);
    start = end + 1;
    for (const line of block.split('\n')) {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        snapshotCorrupt(`bad JSON in ${JSON.stringify(line.slice(0, 80))}`);
      }
      yield value;
    }
  }
}

function intField(value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) snapshotCorrupt(`bad number ${String(value)}`);
  return value;
}

function str(value: unknown): string {
  if (typeof value !== 'string') snapshotCorrupt(`bad string ${String(value)}`);
  return value;
}

function bool(value: unknown): boolean {
  if (typeof value !== 'boolean') snapshotCorrupt(`bad boolean ${String(value)}`);
  return value;
}

/**
 * A file path as the log holds it: structurally normalized (paths.ts, normalizeLoggedFilePath).
 * The readability rules for new names do not apply: an image must load whatever names
 * were accepted when it was written. Tree files are checked by their place instead (cheaper).
 */
function isFilePath(path: string): boolean {
  try {
    return normalizeLoggedFilePath(path) === path;
  } catch {
    return false;
  }
}
