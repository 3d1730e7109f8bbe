/**
 * Lifecycles that break one rule each, so the tests can show the lifecycle simulation's
 * checkers notice (a simulation that cannot fail proves nothing). Each overrides one
 * hook of the real Lifecycle; everything else is the real code.
 */
import { Lifecycle, type LifecycleHost, type LifecycleOptions } from '../../src/master/lifecycle/lifecycle';
import type { ReplicaView } from '../../src/master/registry';

/** Takes a stale replica (old version, short) for a current one: trims real copies, never re-clones. */
export class StaleAsHealthyLifecycle extends Lifecycle {
  override replicaViews(handle: number): ReplicaView[] {
    return super.replicaViews(handle).map((r) => ({ ...r, version: Number.MAX_SAFE_INTEGER, length: Number.MAX_SAFE_INTEGER }));
  }
}

/** Fills nodes to the brim: placement, healing and balancing ignore the fill cap. */
export class IgnoreFillCapLifecycle extends Lifecycle {
  override fillCapRatio(): number {
    return 1;
  }
}

/** Never hears of corruption: a corrupt replica counts as healthy and is never replaced. */
export class IgnoreCorruptLifecycle extends Lifecycle {
  override replicaViews(handle: number): ReplicaView[] {
    return super.replicaViews(handle).map((r) => ({ ...r, corrupt: false }));
  }
}

/** By the name GFS_SIM_BROKEN takes (lifecycle-sim.ts): the rule each breaks, and the checker expected to catch it. */
export const brokenLifecycles: Record<string, { flaw: string; checker: 'safety' | 'fill' | 'liveness'; create: (h: LifecycleHost, o: LifecycleOptions) => Lifecycle }> = {
  'stale-as-healthy': { flaw: 'deletes replicas without checking which are stale', checker: 'safety', create: (h, o) => new StaleAsHealthyLifecycle(h, o) },
  'ignore-fill-cap': { flaw: 'fills nodes past the fill cap', checker: 'fill', create: (h, o) => new IgnoreFillCapLifecycle(h, o) },
  'ignore-corrupt': { flaw: 'counts corrupt replicas as healthy', checker: 'liveness', create: (h, o) => new IgnoreCorruptLifecycle(h, o) },
};
