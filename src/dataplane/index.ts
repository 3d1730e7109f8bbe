/**
 * The data plane, both ends of it (protocol: src/chunkserver/DATA-PLANE.md): the frame
 * codec, the chain link that carries a write one hop down a replica chain (from the
 * client to the head, and from each replica to the next), the replica reader (client
 * gets and chunkserver clones) and the seal call. The chunkserver's server side is
 * src/chunkserver/data-server.ts; the client and the chunkserver import only this.
 */
export {
  FRAME_PREFIX_BYTES, FrameParser, FrameType, decodeSums, encodeFrame, encodeFrameHead, encodeSums, errorFrame, frameError,
  writeFramePrefix,
  type Frame, type FrameTypeValue,
} from './frames';
export { ChainLink, type ChainLinkOptions } from './chain-link';
export { DataConnPool } from './conn-pool';
export { readReplica, type ReadReplicaOptions } from './replica-reader';
export { sealReplica, querySealReplica, grantLease, truncateReplica, chunkStat } from './seal';
export { AppendLink, type AppendRecord, type AppendResult, type RecordIdLike } from './append-link';
export { followChunk, type FollowItem } from './follow';
export {
  decodeRecordIds, encodeRecordIds, RECORD_ID_FIXED_BYTES, RECORD_WRITER_BYTES_MAX, type RecordIdEntry,
} from './record-ids';
