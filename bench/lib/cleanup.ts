/**
 * Nothing outlives the run: forked roles, cluster processes and temp dirs are removed
 * on every way out (normal end, thrown error, Ctrl-C). The exit hook must be
 * synchronous, so it uses SIGKILL and rmSync; the orderly async path
 * (cluster.stop()) runs first in the runner's finally blocks.
 */
import { killAllChildren } from './children';
import { descendantPids } from './proc-stat';
import { removeAllTempDirs } from './temp-dirs';

export function cleanUpNow(): void {
  killAllChildren();
  // Processes the cluster started on our behalf (masters, chunkservers, gateway):
  // they are our descendants, so they are ours to end, by pid.
  for (const pid of descendantPids(process.pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  removeAllTempDirs();
}

export function installCleanupHooks(): void {
  process.on('exit', cleanUpNow);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, cleaning up\n`);
      process.exit(130);
    });
  }
}
