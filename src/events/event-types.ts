/**
 * Cluster events (docs/EVENTS.md): their kinds, their JSON shape, their NATS subjects and
 * their positions. Plain data and pure functions; nothing here does I/O.
 *
 * Invariants:
 * - An event's position is (rev, seq): rev is the master's applied WAL index when the
 *   event was recorded, seq its place among the events recorded at that index. The
 *   leader records events in strictly growing positions, so sorting by position is the
 *   order they happened in, and `id` ("rev.seq") names one event.
 * - An event that comes from a WAL entry (file.*, dir.*, segment.*) has the same id on
 *   every master; an observation of the leader (node.*, chunk.*, gc.*, leader.*) exists
 *   only on the leader that made it.
 * - A subject is `gfs.<cluster>.events.<kind>`, and the cluster name is one NATS token.
 */
import { GfsError } from '../common/errors';

/** Every kind, in the order docs/EVENTS.md lists them. */
export const EVENT_KINDS = [
  'leader.changed',
  'node.up',
  'node.down',
  'chunk.corrupt',
  'chunk.healed',
  'file.created',
  'file.sealed',
  'file.deleted',
  'dir.deleted',
  'file.renamed',
  'file.restored',
  'segment.rolled',
  'gc.swept',
  'token.created',
  'token.revoked',
  'namespace.changed',
  'process.started',
  'process.stopping',
] as const;

export type EventKind = (typeof EVENT_KINDS)[number];

/** Version of the JSON shape below; a consumer ignores an event with a version it does not know. */
export const EVENT_FORMAT_VERSION = 1;

export interface ClusterEvent {
  v: typeof EVENT_FORMAT_VERSION;
  /** `${rev}.${seq}`: the event's position. */
  id: string;
  /** The master's applied WAL index when it was recorded (0 for a process event of a chunkserver or gateway). */
  rev: number;
  seq: number;
  /** The epoch of the WAL entry (metadata events) or of the leader that observed it. */
  epoch: number;
  kind: EventKind;
  cluster: string;
  /** Who recorded it: `master/<id>`, `chunkserver/<node id>`, `gateway/<addr>`. */
  source: string;
  /** Wall-clock time it was recorded, ms since the epoch (informative; order by position). */
  timeMs: number;
  data: Record<string, unknown>;
}

export interface EventPosition {
  rev: number;
  /** Infinity: after every event at `rev`. */
  seq: number;
}

/** Before everything. */
export const POSITION_ZERO: EventPosition = { rev: 0, seq: Infinity };

export function comparePositions(a: EventPosition, b: EventPosition): number {
  return a.rev !== b.rev ? a.rev - b.rev : a.seq === b.seq ? 0 : a.seq < b.seq ? -1 : 1;
}

export function positionText(p: EventPosition): string {
  return p.seq === Infinity ? String(p.rev) : `${p.rev}.${p.seq}`;
}

/**
 * `REV` (after every event at that WAL index: what a consumer that reconciled from a
 * state at applied index REV asks for) or `REV.SEQ` (after that one event: the `id` of
 * the last event it processed).
 */
export function parsePosition(text: string): EventPosition {
  const m = /^(\d{1,15})(?:\.(\d{1,9}))?$/.exec(text.trim());
  if (!m) throw new GfsError('INVALID_ARGUMENT', `"${text}" is not an event position (REV or REV.SEQ, e.g. 1042 or 1042.3)`);
  return { rev: Number(m[1]), seq: m[2] === undefined ? Infinity : Number(m[2]) };
}

/** A cluster name becomes one subject token: letters, digits, '-' and '_' only. */
export function checkClusterName(name: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
    throw new GfsError('INVALID_ARGUMENT', `cluster name "${name}" must be 1-64 letters, digits, '-' or '_' (it is a NATS subject token)`);
  }
  return name;
}

export function eventSubject(cluster: string, kind: EventKind): string {
  return `gfs.${cluster}.events.${kind}`;
}

/** Every event of a cluster, for a subscriber. */
export function allEventsSubject(cluster: string): string {
  return `gfs.${cluster}.events.>`;
}
