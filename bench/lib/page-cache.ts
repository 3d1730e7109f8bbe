/**
 * Cold-cache reads: Node has no posix_fadvise(DONTNEED), so the only way to evict a
 * file is the global drop_caches, which needs root. Callers report "warm cache" when
 * it fails instead of failing the run, because the figure is still worth printing.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

export type CacheState = 'cold' | 'warm';

export function dropPageCache(): CacheState {
  try {
    // Dirty pages cannot be dropped, so flush them first.
    execFileSync('sync', { stdio: 'ignore' });
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return 'cold';
  } catch {
    return 'warm';
  }
}
