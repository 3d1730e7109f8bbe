/**
 * Replicas that cut one corner of the protocol each, so the tests can show that the
 * simulation's checkers notice (a simulation that cannot fail proves nothing).
 */
import { Replica, type ReplicaOptions } from '../../src/master/replication';

/** Commits as soon as the leader alone has an entry durable. */
export class MinorityCommitReplica extends Replica {
  protected override commitQuorumSize(): number {
    return 1;
  }
}

/** A new leader goes on with its own log without waiting for a majority of promises. */
export class SkipPromiseReplica extends Replica {
  protected override promiseQuorumSize(): number {
    return 1;
  }
}

/** Trusts its leadership until told otherwise: never checks the lease clock. */
export class IgnoreLeaseReplica extends Replica {
  protected override leaseValid(): boolean {
    return true;
  }
}

/** Acks and answers Prepare before its writes are durable. */
export class AckBeforeDurableReplica extends Replica {
  protected override afterDurable(reply: () => void): void {
    reply();
  }
}

/** By the name GFS_SIM_BROKEN takes (run-seeds.ts): what each one gets wrong, and how to build it. */
export const brokenReplicas: Record<string, { flaw: string; create: (opts: ReplicaOptions) => Replica }> = {
  'minority-commit': { flaw: 'commits on a minority', create: (o) => new MinorityCommitReplica(o) },
  'skip-promise': { flaw: 'skips the promise step', create: (o) => new SkipPromiseReplica(o) },
  'ignore-lease': { flaw: 'ignores its lease', create: (o) => new IgnoreLeaseReplica(o) },
  'ack-before-durable': { flaw: 'acks before its writes are durable', create: (o) => new AckBeforeDurableReplica(o) },
};
