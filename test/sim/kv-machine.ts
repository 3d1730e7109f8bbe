/**
 * The state machine replicated in the simulation: `set key=value` operations, each with
 * a unique operation id applied at most once (as MetaState dedupes by request id, so a
 * client may retry an operation whose outcome it does not know).
 */
import { ENTRY_TYPE_NOOP, type Entry } from '../../src/master/replication';

/** Entry type of a KV operation (any type but the no-op's). */
export const ENTRY_TYPE_KV = 1;

export interface KvOp {
  opId: string;
  key: string;
  value: string;
}

export function encodeKvOp(op: KvOp): Uint8Array {
  return Buffer.from(`${op.opId} ${op.key} ${op.value}`);
}

export function decodeKvOp(payload: Uint8Array): KvOp {
  const [opId, key, value] = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString().split(' ');
  return { opId: opId!, key: key!, value: value! };
}

export class KvMachine {
  private readonly values = new Map<string, string>();
  private readonly opIds = new Set<string>();

  apply(entry: Entry): void {
    if (entry.type === ENTRY_TYPE_NOOP) return;
    const op = decodeKvOp(entry.payload);
    if (this.opIds.has(op.opId)) return;
    this.opIds.add(op.opId);
    this.values.set(op.key, op.value);
  }

  hasApplied(opId: string): boolean {
    return this.opIds.has(opId);
  }

  image(): Uint8Array {
    const values = [...this.values].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    const opIds = [...this.opIds].sort();
    return Buffer.from(JSON.stringify({ values, opIds }));
  }

  static restore(image: Uint8Array): KvMachine {
    const { values, opIds } = JSON.parse(Buffer.from(image).toString()) as { values: [string, string][]; opIds: string[] };
    const machine = new KvMachine();
    for (const [k, v] of values) machine.values.set(k, v);
    for (const id of opIds) machine.opIds.add(id);
    return machine;
  }
}
