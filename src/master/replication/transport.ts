/**
 * Carries replication messages between masters over gRPC (one-way Deliver calls). A
 * message that cannot be delivered is dropped: the core retransmits on its heartbeat,
 * exactly as it does for loss in the simulation.
 */
import * as grpc from '@grpc/grpc-js';
import { ReplicationClient, ReplicationService, type PeerMessage } from '../../../gen/replication';
import { limits } from '../../common/limits';
import type { Message, NodeId } from './types';

/** Replication messages may carry a whole metadata image. */
export const replicationMessageBytesMax = limits.replicationMessageBytesMax;

const channelOptions: grpc.ChannelOptions = {
  'grpc.max_send_message_length': replicationMessageBytesMax,
  'grpc.max_receive_message_length': replicationMessageBytesMax,
  'grpc.initial_reconnect_backoff_ms': limits.replicationReconnectBackoffMinMs,
  'grpc.max_reconnect_backoff_ms': limits.replicationReconnectBackoffMaxMs,
};

/** Several messages to one peer go in one call; the receiver handles them in order. */
export function encodeMessage(from: NodeId, msg: Message | Message[]): PeerMessage {
  const blobs: Uint8Array[] = [];
  // `this[key]` is the value before toJSON: a Buffer would otherwise arrive as {type, data}.
  const json = JSON.stringify(msg, function (this: Record<string, unknown>, key: string, value: unknown) {
    const original = this[key];
    if (original instanceof Uint8Array) {
      blobs.push(original);
      return { $blob: blobs.length - 1 };
    }
    if (value instanceof Uint8Array) {
      blobs.push(value);
      return { $blob: blobs.length - 1 };
    }
    return value;
  });
  return { from, json, blobs: blobs.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)) };
}

export function decodeMessages(pm: PeerMessage): Message[] {
  const decoded = decodeMessage(pm) as Message | Message[];
  return Array.isArray(decoded) ? decoded : [decoded];
}

export function decodeMessage(pm: PeerMessage): Message {
  return JSON.parse(pm.json, (_key, value: unknown) => {
    if (value !== null && typeof value === 'object' && '$blob' in value) {
      const blob = pm.blobs[(value as { $blob: number }).$blob];
      if (!blob) throw new Error('replication message refers to a missing blob');
      return blob;
    }
    return value;
  }) as Message;
}

/** The service side: hands every message to `onMessage`. */
export function replicationService(onMessage: (from: NodeId, msg: Message) => void): grpc.UntypedServiceImplementation {
  return {
    deliver: (call: grpc.ServerUnaryCall<PeerMessage, object>, callback: grpc.sendUnaryData<object>) => {
      try {
        for (const msg of decodeMessages(call.request)) onMessage(call.request.from, msg);
        callback(null, {});
      } catch (e) {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: (e as Error).message });
      }
    },
  };
}

export { ReplicationService };

/**
 * The sending side: one client per peer, fire and forget. Messages sent in the same
 * turn of the event loop go to each peer as one call: under load the leader emits an
 * Append per proposal, and a gRPC call each would cost more than the replication itself.
 */
export class PeerTransport {
  private readonly clients = new Map<NodeId, ReplicationClient>();
  private readonly queued = new Map<NodeId, Message[]>();
  private flushScheduled = false;

  constructor(private readonly self: NodeId, private readonly peers: ReadonlyMap<NodeId, string>) {}

  send(to: NodeId, msg: Message): void {
    let q = this.queued.get(to);
    if (!q) { q = []; this.queued.set(to, q); }
    q.push(msg);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const [to, msgs] of this.queued) this.deliver(to, msgs.length === 1 ? msgs[0]! : msgs);
    this.queued.clear();
  }

  private deliver(to: NodeId, msg: Message | Message[]): void {
    let client = this.clients.get(to);
    if (!client) {
      const addr = this.peers.get(to);
      if (!addr) return;
      client = new ReplicationClient(addr, grpc.credentials.createInsecure(), channelOptions);
      this.clients.set(to, client);
    }
    // A gRPC deadline is real wall-clock time on the real network, whatever clock drives the core.
    client.deliver(encodeMessage(this.self, msg), new grpc.Metadata(), { deadline: Date.now() + limits.replicationDeliverTimeoutMs }, () => undefined);
  }

  close(): void {
    this.queued.clear();
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
